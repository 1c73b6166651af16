"""BirdNET as a teacher: turn its window scores into pseudo-labels for training.

Input is the table `predict_files` returns (`file_id, end_time, <eBird codes...>`); output is a
labels table with the same key columns and one column per requested class, the format the
trainer reads for unlabeled soundscapes. Pseudo-labelling unlabeled soundscapes helped several
top BirdCLEF teams (see notes/birdclef-reference.md, "Training that helped").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path
from birdcore.errors import ConfigError, DatasetError

KEY_COLUMNS = ["file_id", "end_time"]


def pseudo_labels(window_scores_df: pd.DataFrame, classes: list[str], floor: float = 0.5,
                  soft: bool = True) -> pd.DataFrame:
    """Pseudo-labels per window: `file_id, end_time, <classes...>`.

    - soft=True: the probability itself, with values below `floor` set to 0 (float32 in [0, 1]).
    - soft=False: 1 where the probability >= `floor`, else 0 (int8).
    A class absent from the scores, or NaN (BirdNET lacks the species), becomes 0: the teacher has
    no opinion, so it must not invent a positive. Raises ConfigError for a floor outside [0, 1] and
    DatasetError when the key columns are missing.
    """
    if not 0.0 <= float(floor) <= 1.0:
        raise ConfigError(f"floor={floor}: must be a probability in [0, 1]")
    missing_keys = [c for c in KEY_COLUMNS if c not in window_scores_df.columns]
    if missing_keys:
        raise DatasetError(f"window scores lack column(s) {', '.join(missing_keys)} (expected predict_files output)")
    out = window_scores_df[KEY_COLUMNS].copy()
    for code in classes:
        if code in window_scores_df.columns:
            p = pd.to_numeric(window_scores_df[code], errors="coerce").to_numpy(np.float32)
        else:
            p = np.zeros(len(window_scores_df), np.float32)
        p = np.nan_to_num(p, nan=0.0)
        keep = p >= floor
        out[code] = np.where(keep, p, 0.0).astype(np.float32) if soft else keep.astype(np.int8)
    return out.reset_index(drop=True)


def write_pseudo_labels(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a pseudo-label table as CSV atomically (readers never see a half-written file)."""
    p = Path(path)
    with atomic_path(p, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return p
