"""The annotation queue: which windows a person should label next."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from birdcore.audio.windows import WINDOW_S
from birdcore.evaluation.thresholds import Thresholds, threshold_vector


def uncertain_windows(table: pd.DataFrame, classes: Sequence[str], thresholds: Thresholds | float, *,
                      window_s: float = WINDOW_S, exclude: Iterable[tuple[str, float, float]] = (),
                      limit: int | None = None) -> pd.DataFrame:
    """Windows ranked by doubt: the smallest |prob − threshold| over species comes first.

    `table`: `predict_table(...).table` (file_id, end_time, <classes>). Returns file_id, start, end,
    species (the doubtful one), prob, threshold, margin. `exclude`: (file_id, start, end) keys
    already annotated. These windows teach a model most per label (uncertainty sampling).
    """
    thr = threshold_vector(thresholds, classes)
    p = table[list(classes)].to_numpy(dtype=float)
    margin = np.abs(p - thr[None, :])
    margin = np.where(np.isnan(margin), np.inf, margin)
    j = margin.argmin(axis=1) if len(p) else np.zeros(0, int)
    end = table["end_time"].astype(float).to_numpy()
    out = pd.DataFrame({"file_id": table["file_id"].astype(str).to_numpy(), "start": np.round(end - window_s, 3),
                        "end": np.round(end, 3), "species": [classes[k] for k in j],
                        "prob": p[np.arange(len(p)), j], "threshold": thr[j], "margin": margin[np.arange(len(p)), j]})
    out = out[np.isfinite(out["margin"])]
    done = set(exclude)
    if done:
        out = out[[k not in done for k in zip(out["file_id"], out["start"], out["end"])]]
    out = out.sort_values(["margin", "file_id", "start"], kind="stable").reset_index(drop=True)
    return out.head(limit) if limit else out


def context_span(start: float, end: float, duration: float | None = None, neighbours: int = 1,
                 window_s: float = WINDOW_S) -> tuple[float, float]:
    """The stretch of a recording shown around the window [start, end): `neighbours` windows on each
    side, cut at 0 and at `duration` (when known), so the annotator sees what leads in and out."""
    lo = max(0.0, float(start) - neighbours * window_s)
    hi = float(end) + neighbours * window_s
    if duration is not None:
        hi = max(min(hi, float(duration)), float(end))
    return round(lo, 3), round(hi, 3)


def window_edges(start: float, end: float, window_s: float = WINDOW_S) -> list[float]:
    """The window boundaries (multiples of `window_s`) from `start` to `end`, both included when on the grid."""
    first = int(np.ceil(round(start / window_s, 6)))
    last = int(np.floor(round(end / window_s, 6)))
    return [round(k * window_s, 3) for k in range(first, last + 1)]
