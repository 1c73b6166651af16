"""Data layer speed: metadata load time and audio decode speed.

Prints the time to load the real 14,852-row BirdCLEF 2022 metadata + taxonomy (target < 1 s) and
decode speed (seconds of audio per second) for 32 kHz ogg: whole files and 5-s windows.
Usage: python benchmarks/bench_data.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdcore.audio.io import load_audio, write_audio  # noqa: E402
from birdcore.data.dataset import load_dataset  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "birdclef2022"


def bench_metadata() -> None:
    if not REAL.exists():
        print(f"metadata load: skipped ({REAL} absent)")
        return
    load_dataset(REAL)  # warm the file cache and imports
    times = []
    for _ in range(5):
        t = time.perf_counter()
        ds = load_dataset(REAL)
        times.append(time.perf_counter() - t)
    print(f"metadata load: {len(ds.metadata)} rows, {ds.num_classes} species, taxonomy {len(ds.taxonomy)} rows:"
          f" median {np.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms (target < 1000 ms)")


def bench_decode() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(6):
            t = np.arange(32000 * 30) / 32000
            y = 0.3 * np.sin(2 * np.pi * (2000 + 500 * i) * t) + 0.05 * rng.standard_normal(len(t))
            files.append(write_audio(Path(tmp) / f"r{i}.ogg", y.astype(np.float32)))
        t0 = time.perf_counter()
        total = sum(len(load_audio(f)) for f in files) / 32000
        dt = time.perf_counter() - t0
        print(f"decode ogg 32 kHz, whole 30-s files: {total / dt:.0f} s of audio per second")
        t0 = time.perf_counter()
        n = 0
        for _ in range(5):
            for f in files:
                load_audio(f, offset=float(rng.uniform(0, 25)), duration=5.0)
                n += 1
        dt = time.perf_counter() - t0
        print(f"decode ogg 32 kHz, random 5-s windows: {n / dt:.0f} windows/s ({5 * n / dt:.0f} s of audio per second)")


if __name__ == "__main__":
    bench_metadata()
    bench_decode()
