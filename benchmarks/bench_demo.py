"""Benchmark the demo dataset generator: wall time, CPU time, size on disk and counts.

Usage: python benchmarks/bench_demo.py [--seed N] [--out DIR]
Without --out the dataset is written to a temporary folder and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

from birdcore.demo import SPECIES_BY_CODE, generate_demo_dataset  # noqa: E402


def _report(root: Path, wall: float, cpu: float) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    meta = pd.read_csv(root / "train_metadata.csv")
    scapes = sorted((root / "test_soundscapes").glob("*.ogg"))
    labels = pd.read_csv(root / "test_labels.csv")
    train_s = sum(sf.info(root / "train_audio" / f).duration for f in meta["filename"])
    scored = json.loads((root / "scored_birds.json").read_text())
    print(f"generation: {wall:.1f} s wall, {cpu:.1f} s CPU (this process)")
    print(f"size: {size_mb:.1f} MB in {len(files)} files")
    print(f"training: {len(meta)} recordings, {train_s / 60:.1f} min of audio, "
          f"{(meta['secondary_labels'] != '[]').mean():.0%} with a secondary label")
    print(f"soundscapes: {len(scapes)} x 60 s, {len(labels)} test rows, {labels['target'].mean():.1%} positive")
    print("species (recordings, scored, voice):")
    for code, n in meta["primary_label"].value_counts().items():
        mark = "*" if code in scored else " "
        species = SPECIES_BY_CODE[code]
        print(f"  {code} {mark} {n:3d}  {species.common_name:20s} {species.voice.description}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the dataset here (overwritten)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        start, cpu = time.perf_counter(), time.process_time()
        generate_demo_dataset(out, seed=args.seed, overwrite=True)
        _report(out, time.perf_counter() - start, time.process_time() - cpu)


if __name__ == "__main__":
    main()
