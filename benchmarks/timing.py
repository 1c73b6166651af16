"""Timing helper shared by the benchmark scripts (run as `python benchmarks/bench_x.py`, so this
folder is on sys.path)."""

from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """Least `clock` time of `repeats` calls of `fn` after one warm-up call: the run least disturbed by
    other users. `time.perf_counter` gives wall seconds; `time.process_time` CPU-seconds of this
    process (all its threads)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best
