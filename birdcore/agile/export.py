"""From the loop to the rest of the workbench: the archive's labels as a training dataset (the import
route), as `row_id,target` for `birdcore evaluate --labels`, and as Raven selection tables.

- `export_dataset`: `birdcore.ingest.import_recordings` reads the archive's `labels.csv` (the app
  annotations source: each saved window one row, empty windows `nocall`) with the audio found by
  file_id in a folder of links to the archive's recordings; the dataset's `train_audio/` links to
  the user's files (`mode="copy"` copies). Any run, page or command then reads it.
- `export_labels_table`: one row per labelled (window, species): `row_id` =
  `<file_id>_<species>_<end_time>` (BirdCLEF's form; whole seconds written without a decimal point),
  `target` True for a positive.
- `export_raven`: one `<file_id>.Table.1.selections.txt` per recording with at least one positive
  (tab-separated, UTF-8; Begin/End Time = the window, Low/High Freq 0–16000 Hz: the loop knows no
  frequency range). Raven's convention is that a table lists *every* call of its recording, so
  importing these tables back treats the recording's unlisted windows as negatives.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from birdcore.agile.labels import (
    LoopError,
    file_ids,
    labelled_windows,
    labels_path,
    read_loop_labels,
)
from birdcore.archive.layout import require_archive
from birdcore.archive.window_table import read_table
from birdcore.atomic_io import atomic_write_text


def _end_text(x: float) -> str:
    return str(round(x)) if abs(x - round(x)) < 1e-9 else f"{x:g}"


def export_dataset(archive_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                   taxonomy: str | os.PathLike | None = None, species: Sequence[str] | None = None,
                   mode: str = "link") -> Path:
    """Import the archive's labelled windows into a new dataset folder `out_dir`; returns it.
    `species`: keep only these species (other species' rows are dropped, a window left with none
    becomes a negative)."""
    from birdcore.annotation.store import save_windows
    from birdcore.ingest.importer import import_recordings

    layout, _ = require_archive(archive_dir)
    table = read_table(layout)
    sub, saved = labelled_windows(archive_dir, table)
    if not len(sub):
        raise LoopError(f"{labels_path(archive_dir)}: no labelled archive windows to export")
    keep = set(species) if species is not None else None
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.labels-", dir=out.parent))
    try:
        audio = work / "audio"
        audio.mkdir()
        for path in pd.unique(sub["path"].astype(str)):
            src = Path(path)
            if not src.is_file():
                raise LoopError(f"{src}: the recording of a labelled archive window is gone; it cannot be exported")
            os.symlink(src.resolve(), audio / f"{src.stem}{src.suffix}")
        windows = []
        for stem, a, b, w in zip(file_ids(sub), sub["start_s"], sub["end_s"], sub["window_id"]):
            sp = saved[int(w)]
            windows.append((stem, float(a), float(b), sorted(sp & keep if keep is not None else sp)))
        save_windows(work / "labels.csv", windows, annotator="agile-export")
        import_recordings([work / "labels.csv"], out, taxonomy=taxonomy, mode=mode, audio_dirs=[audio])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def export_labels_table(archive_dir: str | os.PathLike, out_csv: str | os.PathLike) -> Path:
    """`row_id,target` of every labelled (window, species) for `birdcore evaluate --labels`."""
    from birdcore.annotation.store import write_labels_table

    labels = read_loop_labels(archive_dir)
    if labels.empty:
        raise LoopError(f"{labels_path(archive_dir)}: no labels to export")
    stems = labels["path"].map(lambda p: Path(p).stem)
    rows = pd.DataFrame({"row_id": [f"{s}_{sp}_{_end_text(e)}" for s, sp, e in
                                    zip(stems, labels["species"], labels["end_s"])],
                         "target": (labels["label"] == "positive").to_numpy()})
    rows = rows.sort_values("row_id", kind="stable").drop_duplicates("row_id")
    return write_labels_table(out_csv, rows)


def export_raven(archive_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """One Raven selection table per recording with a positive label; returns the files written."""
    from birdcore.annotation.store import raven_text

    layout, _ = require_archive(archive_dir)
    table = read_table(layout)
    sub, saved = labelled_windows(archive_dir, table)
    rows = [(stem, float(a), float(b), sp) for stem, a, b, w in
            zip(file_ids(sub), sub["start_s"], sub["end_s"], sub["window_id"]) for sp in sorted(saved[int(w)])]
    if not rows:
        raise LoopError(f"{labels_path(archive_dir)}: no positive labels to export as selection tables")
    ann = pd.DataFrame(rows, columns=["file_id", "start", "end", "species"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, grp in ann.groupby("file_id", sort=True):
        path = out / f"{stem}.Table.1.selections.txt"
        atomic_write_text(path, raven_text(grp))
        written.append(path)
    return written
