"""A teacher's window scores → pseudo-labels for training on unlabeled soundscapes.

Input is a window table as the predictors return it (`file_id, end_time, <codes...>`): BirdNET's
scores, a run's or an ensemble's probabilities. Output is the pseudo-label table the trainer reads
(`birdcore.training.pseudo`): the key columns, optionally `path` and `teacher`, then one target
column per requested class. Pseudo-labelling unlabeled soundscapes decided BirdCLEF 2024–2026
(see notes/birdclef-reference.md, "Training that helped", and `birdcore.config.pseudo`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path
from birdcore.errors import ConfigError, DatasetError

KEY_COLUMNS = ["file_id", "end_time"]
INFO_COLUMNS = ["path", "teacher"]  # where the window's audio is; who labelled it


def pseudo_labels(window_scores_df: pd.DataFrame, classes: list[str], floor: float = 0.5,
                  soft: bool = True, *, power: float = 1.0, cap_per_class: int = 0,
                  teacher: str | None = None, paths: dict[str, str] | None = None) -> pd.DataFrame:
    """Pseudo-labels per window: `file_id, end_time, [path, teacher,] <classes...>`.

    - soft=True: the probability itself, with values below `floor` set to 0, then raised to
      `power` (float32 in [0, 1]); soft=False: 1 where the probability >= `floor`, else 0.
    - `cap_per_class` > 0 keeps only that many windows per class (the highest scores; ties keep the
      earlier window), the others become 0.
    - `teacher` adds a `teacher` column naming who labelled the windows; `paths` ({file_id: audio
      path}) adds the `path` column the trainer reads the audio from.
    A class absent from the scores, or NaN (BirdNET lacks the species), stays NaN ("no opinion";
    an empty cell in the CSV): the trainer masks it out of the loss (`ClipLoss`), because a 0
    would teach the student that the species is absent from every window. Raises ConfigError for a floor outside [0, 1], a
    power <= 0 or a negative cap, DatasetError when the key columns are missing or a file_id has no
    path in `paths`.
    """
    if not 0.0 <= float(floor) <= 1.0:
        raise ConfigError(f"floor={floor}: must be a probability in [0, 1]")
    if not float(power) > 0:
        raise ConfigError(f"power={power}: must be > 0")
    if int(cap_per_class) < 0:
        raise ConfigError(f"cap_per_class={cap_per_class}: must be >= 0 (0 = no cap)")
    missing_keys = [c for c in KEY_COLUMNS if c not in window_scores_df.columns]
    if missing_keys:
        raise DatasetError(f"window scores lack column(s) {', '.join(missing_keys)} (expected predict_files output)")
    out = window_scores_df[KEY_COLUMNS].copy().reset_index(drop=True)
    if paths is not None:
        ids = out["file_id"].astype(str)
        lost = sorted(set(ids) - set(paths))
        if lost:
            raise DatasetError(f"window scores name file(s) with no known audio path: {', '.join(lost[:5])}")
        out["path"] = ids.map(paths)
    if teacher is not None:
        out["teacher"] = str(teacher)
    for code in classes:
        if code in window_scores_df.columns:
            p = pd.to_numeric(window_scores_df[code], errors="coerce").to_numpy(np.float32)
        else:
            p = np.full(len(window_scores_df), np.nan, np.float32)
        known = np.isfinite(p)
        keep = known & (np.nan_to_num(p, nan=0.0) >= floor)
        if cap_per_class and keep.sum() > cap_per_class:
            order = np.argsort(-p, kind="stable")  # stable: ties keep the earlier window
            capped = np.zeros_like(keep)
            capped[order[:cap_per_class]] = True
            keep &= capped
        target = np.power(np.where(keep, p, 0.0), float(power)) if soft else keep.astype(np.float32)
        out[code] = np.where(known, target, np.nan).astype(np.float32)
    return out


def passed_per_class(table: pd.DataFrame, classes: list[str]) -> dict[str, int]:
    """{class: windows whose target is > 0}: how many windows passed the floor (and the cap);
    windows the teacher has no opinion on (NaN) do not count."""
    return {c: int((pd.to_numeric(table[c], errors="coerce").fillna(0) > 0).sum()) for c in classes if c in table}


def write_pseudo_labels(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a pseudo-label table as CSV atomically (readers never see a half-written file)."""
    p = Path(path)
    with atomic_path(p, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return p
