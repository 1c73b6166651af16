"""CPU inference speed: real-time factor on 1-minute soundscapes, PyTorch vs ONNX Runtime.

Whole pipeline (decode ogg + mel front end + network + windowing) for the default EfficientNet-B0
SED model (`birdclef2022` preset: 128 mels, hop 512, 5-s windows), random weights (speed does not
depend on them). Real-time factor = seconds of audio processed per second of wall time.
Target: ≥ 250× with ONNX Runtime on 2 cores.
Usage: python benchmarks/bench_inference.py [--files N] [--threads T] [--config PRESET]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdcore.audio.io import write_audio  # noqa: E402
from birdcore.config.run import load_run_config  # noqa: E402
from birdcore.inference.predict import predict_files  # noqa: E402
from birdcore.inference.scorers import load_scorer  # noqa: E402
from birdcore.models import build_model  # noqa: E402
from birdcore.training.checkpoint import save_checkpoint  # noqa: E402
from birdcore.training.runs import create_run  # noqa: E402


def fake_run(tmp: Path, preset: str, classes: list[str]) -> Path:
    """A run folder holding an untrained model of `preset` (the scorers load run folders)."""
    cfg = load_run_config(preset, ["model.pretrained=false"])
    run = create_run(tmp / "runs", cfg, tmp, classes)
    model = build_model(cfg, len(classes))
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0, "classes": classes})
    return run.path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=6, help="1-minute soundscapes to process")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--config", default="birdclef2022")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    classes = [f"sp{i:03d}" for i in range(21)]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        files = []
        for i in range(args.files):
            tt = np.arange(60 * 32000) / 32000
            y = 0.05 * rng.standard_normal(len(tt)) + 0.2 * np.sin(2 * np.pi * (1500 + 300 * i) * tt) * (np.sin(tt) > 0.5)
            files.append(write_audio(tmp / f"soundscape_{i}.ogg", y.astype(np.float32)))
        run = fake_run(tmp, args.config, classes)
        audio_s = 60.0 * len(files)
        print(f"{args.config}: {len(files)} × 60-s soundscapes, {args.threads} threads, {len(classes)} classes")
        for backend in ("torch", "onnx"):
            t0 = time.perf_counter()
            scorer = load_scorer(run, backend=backend, threads=args.threads)
            setup = time.perf_counter() - t0
            predict_files(files[:1], [scorer])  # warm-up (allocations, kernel selection)
            t0 = time.perf_counter()
            res = predict_files(files, [scorer])
            dt = time.perf_counter() - t0
            print(f"  {backend:<6} real-time factor {audio_s / dt:6.0f}×   ({dt / len(files) * 1000:.0f} ms per"
                  f" minute of audio; {len(res.table)} windows; load/export {setup:.1f} s)")
        from birdcore.inference.scorers import OnnxScorer

        whole = OnnxScorer(Path(run) / "onnx", threads=args.threads, prefer_network=False)
        predict_files(files[:1], [whole])
        t0 = time.perf_counter()
        predict_files(files, [whole])
        dt = time.perf_counter() - t0
        print(f"  onnx, waveform-in model.onnx (front end in ORT too; the Kaggle bundle's path): {audio_s / dt:.0f}×")
        # where the time goes, for one minute (12 windows)
        from birdcore.audio.io import load_audio

        t0 = time.perf_counter()
        y = load_audio(files[0])
        t_dec = time.perf_counter() - t0
        scorer = load_scorer(run, backend="torch", threads=args.threads)
        x = torch.from_numpy(y[: 12 * 160000].reshape(12, 160000))
        with torch.inference_mode():
            t0 = time.perf_counter()
            mel = scorer.model.frontend(x)
            t_mel = time.perf_counter() - t0
            t0 = time.perf_counter()
            scorer.model.forward_mel(mel)
            t_net = time.perf_counter() - t0
        print(f"  one minute, torch: decode {t_dec * 1000:.0f} ms, mel {t_mel * 1000:.0f} ms, network {t_net * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
