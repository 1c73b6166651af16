"""Train presets on the full demo dataset; print wall time, samples/s and validation scores.

Target (issue): `demo-cpu` ≥ 0.85 validation micro F1 in ≤ 5 minutes on the 2-core CPU machine.
`--config birdnet-head` (repeatable) compares the BirdNET-embedding head on the same fold.
Usage: python benchmarks/bench_train.py [--data DIR] [--config demo-cpu --config birdnet-head] [--set k=v]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdcore.config.run import load_run_config  # noqa: E402
from birdcore.demo import default_demo_dir, ensure_demo_dataset  # noqa: E402
from birdcore.training.launcher import prepare_run, run_in_process  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--runs", type=Path, default=None)
    ap.add_argument("--config", action="append", default=None)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    data = ensure_demo_dataset(args.data or default_demo_dir())
    runs = args.runs or Path(tempfile.mkdtemp(prefix="bench-train-"))
    for name in args.config or ["demo-cpu"]:
        bench(data, runs, load_run_config(name, args.set))
    return 0


def bench(data: Path, runs: Path, cfg) -> None:
    run = prepare_run(data, cfg, runs)
    t0 = time.time()

    def show(rec: dict) -> None:
        if rec.get("kind") == "epoch":
            print(f"  epoch {rec['epoch']:>2}  {time.time() - t0:6.1f}s  loss {rec['train_loss']:.4f}"
                  f"  micro_f1 {rec.get('micro_f1')}  macro_f1 {rec.get('macro_f1')}"
                  f"  {rec['train_samples_per_s']:.1f} samples/s", flush=True)

    status = run_in_process(run, progress=show)
    wall = time.time() - t0
    epochs = run.epoch_records()
    best = max(epochs, key=lambda r: r.get("micro_f1") or 0)
    rate = sum(r["train_samples_per_s"] for r in epochs) / len(epochs)
    print(f"preset {cfg.name} ({cfg.model.backbone}, {cfg.mel.n_mels} mels), {len(epochs)} epochs,"
          f" {status['train_size']} train / {status['val_size']} val recordings, cpu threads {os.cpu_count()}")
    print(f"wall time        {wall:.1f} s")
    print(f"train samples/s  {rate:.1f}")
    print(f"best micro F1    {best['micro_f1']:.4f} (epoch {best['epoch']})")
    print(f"its macro F1     {best['macro_f1']:.4f}; BirdCLEF 2022 score at 0.3: {best['birdclef2022']:.4f}")
    print(f"target           micro F1 >= 0.85 in <= 300 s: {'met' if best['micro_f1'] >= 0.85 and wall <= 300 else 'NOT met'}")
    print(f"run folder       {run.path}\n")


if __name__ == "__main__":
    raise SystemExit(main())
