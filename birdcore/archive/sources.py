"""SOURCES of `birdcore embed` → the recordings to archive, each with the source it came from.

A source is a dataset folder (it holds `train_metadata.csv`: its `train_audio/` files in metadata
order, then `test_soundscapes/`), a folder of recordings (sub-folders included), or one audio file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from birdcore.audio.inventory import find_audio_files
from birdcore.audio.io import AUDIO_EXTENSIONS
from birdcore.errors import BirdcoreError


@dataclass(frozen=True)
class SourceFile:
    """One recording to archive: its absolute path and the source id (the SOURCES entry, absolute)."""

    path: str
    source: str


@dataclass(frozen=True)
class SourceList:
    """The recordings found, and the dataset rows whose audio file is missing (reported, skipped)."""

    files: list[SourceFile]
    missing: list[str]


def _dataset_files(root: Path) -> tuple[list[Path], list[str]]:
    from birdcore.data.dataset import load_dataset

    ds = load_dataset(root)
    listed = list(dict.fromkeys(ds.audio_paths()))  # windows of one long recording are several rows
    present = [p for p in listed if p.is_file()]
    missing = [str(p) for p in listed if not p.is_file()]
    return present + list(ds.soundscapes), missing


def collect_sources(sources: Sequence[str | os.PathLike]) -> SourceList:
    """Every recording under `sources`, de-duplicated by absolute path (first source wins).

    Raises BirdcoreError for a source that does not exist, is not audio, or holds no audio at all.
    """
    if not sources:
        raise BirdcoreError("embed: give at least one source (a dataset folder, a folder of recordings or a file)")
    files: dict[str, SourceFile] = {}
    missing: list[str] = []
    for item in sources:
        p = Path(item).expanduser()
        if not p.exists():
            raise BirdcoreError(f"{p}: no such file or folder")
        root = os.path.normpath(p.absolute())
        if p.is_dir() and (p / "train_metadata.csv").is_file():
            found, gone = _dataset_files(p)
            missing += gone
        elif p.is_dir():
            found = find_audio_files(p)
        elif p.suffix.lower() in AUDIO_EXTENSIONS:
            found = [p]
        else:
            raise BirdcoreError(f"{p}: not an audio file ({' '.join(AUDIO_EXTENSIONS)})")
        if not found:
            raise BirdcoreError(f"{p}: no audio files ({' '.join(AUDIO_EXTENSIONS)}) in it or its sub-folders")
        for f in found:
            key = os.path.normpath(Path(f).absolute())  # not resolve(): keep the names of imported links
            files.setdefault(key, SourceFile(path=key, source=root))
    return SourceList(files=list(files.values()), missing=missing)
