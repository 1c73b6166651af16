"""Cutting recordings into scored windows, and smoothing window probabilities over time.

BirdCLEF scores 5-s windows ending at 5, 10, …, 60 s. Soundscapes last "within a few ms of one
minute", so the number of windows is decided by a rule, not by exact length: a trailing partial
window counts when it holds at least `min_last_s` seconds (1.5 s, BirdNET's own minimum), and a
recording shorter than one window still gives one (zero-padded) window.
"""

from __future__ import annotations

import numpy as np

WINDOW_S = 5.0  # BirdCLEF's scored window
MIN_LAST_S = 1.5  # a trailing partial window counts from this many seconds (BirdNET's own minimum)


def window_count(n_samples: int, sr: int, window_s: float = WINDOW_S, min_last_s: float = MIN_LAST_S) -> int:
    """Number of `window_s` windows for a recording of `n_samples` samples (at least 1)."""
    win = int(round(window_s * sr))
    full, rest = divmod(n_samples, win)
    return max(1, full + (1 if rest >= min_last_s * sr else 0))


def end_times(n_windows: int, window_s: float = WINDOW_S) -> list[float | int]:
    """Window end times in seconds (ints when `window_s` is whole): 5, 10, …"""
    ends = [(i + 1) * window_s for i in range(n_windows)]
    return [int(e) if float(e).is_integer() else e for e in ends]


def cut_windows(y: np.ndarray, sr: int, window_s: float = WINDOW_S, context_s: float | None = None,
                hop_s: float | None = None, min_last_s: float = MIN_LAST_S) -> tuple[np.ndarray, np.ndarray]:
    """Cut `y` into model inputs; returns (inputs (M, L), owner (M,) = target window index).

    - Plain: one input per window, the window itself (L = window).
    - `hop_s` < window: overlapping inputs every `hop_s`; each input belongs to every target
      window it overlaps by at least half — `owner` then repeats inputs (callers average them).
    - `context_s` > window: each input is `context_s` long and centred on its window (zero
      padding at the edges); the caller keeps the centre of the output (see `centre_frames`).
    """
    win = int(round(window_s * sr))
    n = window_count(len(y), sr, window_s, min_last_s)
    if context_s and context_s > window_s:
        ctx = int(round(context_s * sr))
        pad = (ctx - win) // 2
        padded = np.pad(y, (pad, pad + ctx + n * win))
        inputs = np.stack([padded[i * win: i * win + ctx] for i in range(n)])
        return inputs.astype(np.float32), np.arange(n)
    padded = np.pad(y, (0, max(0, n * win - len(y)) + win))
    if hop_s and hop_s < window_s:
        hop = int(round(hop_s * sr))
        starts = np.arange(0, n * win - win + 1, hop)
        inputs, owners = [], []
        for s in starts:
            for w in range(n):
                overlap = min(s + win, (w + 1) * win) - max(s, w * win)
                if overlap >= win / 2:
                    inputs.append(padded[s: s + win])
                    owners.append(w)
        return np.stack(inputs).astype(np.float32), np.asarray(owners)
    inputs = np.stack([padded[i * win: (i + 1) * win] for i in range(n)])
    return inputs.astype(np.float32), np.arange(n)


def pool_owners(probs: np.ndarray, owners: np.ndarray, n_windows: int) -> np.ndarray:
    """Average the rows of `probs` (M, K) per target window → (n_windows, K)."""
    out = np.zeros((n_windows, probs.shape[1]), dtype=np.float64)
    np.add.at(out, owners, probs)
    counts = np.bincount(owners, minlength=n_windows)[:, None]
    return (out / np.maximum(counts, 1)).astype(np.float32)


def centre_frames(n_frames: int, context_s: float, window_s: float) -> slice:
    """The frames of a `context_s` input that cover its centre `window_s` seconds."""
    keep = max(1, int(round(n_frames * window_s / context_s)))
    start = (n_frames - keep) // 2
    return slice(start, start + keep)


def smooth(probs: np.ndarray, kernel: list[float] | tuple[float, ...] | None) -> np.ndarray:
    """Temporal smoothing of one recording's window probabilities (n_windows, K).

    `kernel` is an odd-length list of weights centred on the window, e.g. [0.1, 0.8, 0.1] (±1
    window); it is renormalised at the edges so the first and last windows are not damped.
    None or [1] leaves the probabilities unchanged.
    """
    if not kernel or len(kernel) == 1:
        return probs
    k = np.asarray(kernel, dtype=np.float64)
    if len(k) % 2 == 0 or (k < 0).any() or k.sum() <= 0:
        raise ValueError(f"smoothing kernel {list(kernel)} must have odd length and non-negative weights")
    half = len(k) // 2
    n = len(probs)
    out = np.zeros_like(probs, dtype=np.float64)
    norm = np.zeros((n, 1))
    for j, w in enumerate(k):
        shift = j - half
        lo, hi = max(0, -shift), min(n, n - shift)
        if lo >= hi:
            continue
        out[lo:hi] += w * probs[lo + shift: hi + shift]
        norm[lo:hi] += w
    return (out / norm).astype(np.float32)
