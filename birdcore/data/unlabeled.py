"""Unlabeled soundscapes: recordings with no labels, the raw material of self-training.

BirdCLEF 2024–2025 ship them as `unlabeled_soundscapes/` beside `train_audio/`; any folder of
recordings works too (sub-folders included). The demo dataset keeps their truth in
`unlabeled_truth.csv` beside the folder, for measurement only: nothing that trains reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from birdcore.audio.io import AUDIO_EXTENSIONS
from birdcore.errors import DatasetError, not_found_message

UNLABELED_DIR = "unlabeled_soundscapes"
UNLABELED_TRUTH = "unlabeled_truth.csv"


def unlabeled_folder(path: str | os.PathLike) -> Path:
    """The folder of unlabeled recordings `path` names: a dataset's `unlabeled_soundscapes/`, else
    `path` itself (any folder of recordings). DatasetError when it does not exist."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(not_found_message(p, "folder of unlabeled recordings"))
    if not p.is_dir():
        raise DatasetError(f"{p}: not a folder (expected a dataset with {UNLABELED_DIR}/ or a folder of recordings)")
    return p / UNLABELED_DIR if (p / UNLABELED_DIR).is_dir() else p


def list_unlabeled(path: str | os.PathLike) -> list[Path]:
    """Every audio file under `unlabeled_folder(path)`, sorted. DatasetError when there is none, or
    when two files share a name stem (pseudo-label tables key windows by `file_id` = stem)."""
    folder = unlabeled_folder(path)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise DatasetError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found")
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise DatasetError(f"{folder}: two recordings share the name {f.stem!r} ({seen[f.stem]}, {f});"
                               " rename one (windows are keyed by file name)")
        seen[f.stem] = f
    return files


def read_unlabeled_truth(path: str | os.PathLike) -> pd.DataFrame | None:
    """The per-window truth of a dataset's unlabeled soundscapes (`file_id, end_time, <species> 0/1`),
    or None when the dataset has none. For measurement only: training never calls this."""
    p = Path(path)
    f = p / UNLABELED_TRUTH if p.is_dir() else p
    if not f.is_file():
        return None
    df = pd.read_csv(f)
    missing = [c for c in ("file_id", "end_time") if c not in df.columns]
    if missing:
        raise DatasetError(f"{f}: lacks column(s) {', '.join(missing)}")
    return df
