"""Benchmark BirdNET V2.4 on CPU: model load time and throughput as a real-time factor.

Real-time factor (RTF) = seconds of audio processed per second of wall time, on the 60-s
soundscape `../shared/data/real-audio/opensoundscape_1min.wav`, 2 interpreter threads.
Scoring and embedding share one invoke (both outputs come from the same pass), so their model
costs are equal; the table still times both public paths. Default windowing: 5-s windows, 3-s
chunks at 0/1/2 s inside each (36 chunks = 108 s of model input per minute of audio).

    .venv/bin/python benchmarks/bench_birdnet.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from birdcore.audio.io import load_audio  # noqa: E402
from birdcore.pretrained import birdnet as bn  # noqa: E402

SOUNDSCAPE = REPO.parent / "shared" / "data" / "real-audio" / "opensoundscape_1min.wav"
TAXONOMY = REPO.parent / "shared" / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv"


def interleaved_medians(cases: list[tuple[str, int, Callable[[], object]]], repeats: int) -> list[float]:
    """Median wall time per case. Each case is warmed up once (the first invoke after a tensor
    re-allocation is ~2x slower while XNNPACK packs weights); then the cases are timed in
    round-robin, so a burst of load from another process hits all of them alike."""
    for _, _, fn in cases:
        fn()
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for k, (_, _, fn) in enumerate(cases):
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=bn.DEFAULT_BATCH)
    args = ap.parse_args()
    if not bn.is_available():
        print("BirdNET extra not installed: pip install -r requirements-birdnet.txt")
        return 1
    if not SOUNDSCAPE.exists():
        print(f"needs {SOUNDSCAPE}")
        return 1

    t = time.perf_counter()
    model = bn.load_birdnet(num_threads=args.threads)
    load_s = time.perf_counter() - t
    print(f"model load (read + expose embedding + interpreter): {load_s:.2f} s; "
          f"{model.num_classes} classes, embedding dim {model.embedding_dim}")

    audio_s = 60.0
    t = time.perf_counter()
    y = load_audio(SOUNDSCAPE, sr=bn.SAMPLE_RATE)
    decode_s = time.perf_counter() - t
    print(f"decode + resample 32->48 kHz of {len(y) / bn.SAMPLE_RATE:.1f} s: {decode_s * 1000:.0f} ms")

    _, starts, _ = bn.window_plan(len(y))
    chunks = np.stack([y[s:s + bn.CHUNK_SAMPLES] for s in starts])
    print(f"{len(chunks)} chunks of 3 s per minute (5-s windows, hop 1 s)\n")
    cases: list[tuple[str, int, Callable[[], object]]] = []
    for batch in (1, args.batch):
        cases += [
            ("score_chunks (model only)", batch, lambda b=batch: model.score_chunks(chunks, batch_size=b)),
            ("embed_chunks (model only)", batch, lambda b=batch: model.embed_chunks(chunks, batch_size=b)),
            ("embed_windows(file)", batch, lambda b=batch: bn.embed_windows([SOUNDSCAPE], batch_size=b, model=model)),
        ]
        if TAXONOMY.exists():
            cases.append(("score_windows(file), all 6,421 codes", batch, lambda b=batch: bn.score_windows(
                SOUNDSCAPE, taxonomy_csv=TAXONOMY, batch_size=b, model=model)))
    cases.sort(key=lambda c: c[0])
    print(f"{'path':<40}{'batch':>6}{'wall s':>9}{'RTF':>8}{'chunk RTF':>11}")
    for (name, batch, _), wall in zip(cases, interleaved_medians(cases, args.repeats)):
        # RTF: seconds of recording per wall second; chunk RTF: seconds of model input (3 s x chunks).
        print(f"{name:<40}{batch:>6}{wall:>9.3f}{audio_s / wall:>8.1f}{3 * len(chunks) / wall:>11.1f}")
    # Shared 2-core machines: a load average above the core count means the figures are pessimistic.
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
