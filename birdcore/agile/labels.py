"""The loop's labels: archive windows ↔ the archive's annotation store (`<archive>/labels.csv`).

See `birdcore.agile.loop` for what a positive, a negative and a skip are.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.archive.layout import require_archive
from birdcore.archive.window_table import read_table
from birdcore.atomic_io import atomic_write_text, file_lock
from birdcore.errors import BirdcoreError

LABELS = ("positive", "negative", "skip")
CODE = re.compile(r"^[A-Za-z0-9]+$")


class LoopError(BirdcoreError):
    """A loop request that cannot be served: unknown windows, too few labels, a bad species code."""


# ------------------------------------------------------------------------------------ paths
def labels_path(archive_dir: str | os.PathLike) -> Path:
    """The archive's annotation store."""
    return Path(archive_dir) / "labels.csv"


def loop_dir(archive_dir: str | os.PathLike) -> Path:
    return Path(archive_dir) / "loop"


def rounds_path(archive_dir) -> Path:
    return loop_dir(archive_dir) / "rounds.jsonl"


def _skips_path(archive_dir) -> Path:
    return loop_dir(archive_dir) / "skips.csv"


def _species_path(archive_dir) -> Path:
    return loop_dir(archive_dir) / "species.txt"


def loop_species(archive_dir) -> set[str]:
    """Species ever labelled in the loop (one with only negatives is in no store row)."""
    try:
        return {s.strip() for s in _species_path(archive_dir).read_text(encoding="utf-8").splitlines() if s.strip()}
    except OSError:
        return set()


def _ms(x: float) -> float:
    return round(float(x) * 1000.0) / 1000.0


def file_ids(table: pd.DataFrame) -> pd.Series:
    """The store's file_id (name stem) of every table row."""
    paths = table["path"].astype(str)
    uniq = pd.unique(paths)
    stem = {p: Path(p).stem for p in uniq}
    return paths.map(stem)


def check_species(species: str) -> str:
    sp = str(species).strip()
    if not CODE.match(sp):
        raise LoopError(f"species {species!r}: use a species code (letters and digits, e.g. an eBird code)")
    return sp


# ------------------------------------------------------------------------------------ labels
def label_windows(archive_dir: str | os.PathLike, window_ids: list[int], species: str, label: str,
                  annotator: str = "app") -> int:
    """Label archive windows for `species` ("positive", "negative" or "skip"); returns the store rows
    written (skip: the skip records written to `loop/skips.csv`, the store is untouched)."""
    if label not in LABELS:
        raise LoopError(f"label {label!r}: use one of {', '.join(LABELS)}")
    sp = check_species(species)
    layout, _ = require_archive(archive_dir)
    table = read_table(layout)
    ids = list(dict.fromkeys(int(i) for i in window_ids))
    if not ids:
        return 0
    pos = np.searchsorted(table["window_id"].to_numpy(np.int64), ids)
    found = [p < len(table) and int(table["window_id"].iat[p]) == i for p, i in zip(pos, ids)]
    missing = [i for i, f in zip(ids, found) if not f]
    if missing:
        raise LoopError(f"{layout.root}: no window id(s) {', '.join(map(str, missing[:10]))} in the archive")
    rows = table.iloc[pos]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if label == "skip":
        path = _skips_path(archive_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path):
            new = not path.is_file()
            with open(path, "a", encoding="utf-8") as fh:
                if new:
                    fh.write("window_id,species,annotator,updated_at\n")
                fh.writelines(f"{i},{sp},{annotator},{now}\n" for i in ids)
                fh.flush()
                os.fsync(fh.fileno())
        return len(ids)
    stems = file_ids(rows)
    _check_unique_stems(table, set(stems))
    from birdcore.annotation.store import read_annotations, save_windows, window_species

    store = labels_path(archive_dir)
    loop_dir(archive_dir).mkdir(parents=True, exist_ok=True)
    # The species set of a window is read, changed and saved as one step (another saver cannot
    # slip between): `save_windows` takes the store's own lock inside, so this one is another file.
    with file_lock(loop_dir(archive_dir) / "labels-merge"):
        current = window_species(read_annotations(store))
        windows = []
        for stem, a, b in zip(stems, rows["start_s"], rows["end_s"]):
            have = set(current.get((stem, _ms(a), _ms(b)), set()))
            have = have | {sp} if label == "positive" else have - {sp}
            windows.append((stem, float(a), float(b), sorted(have)))
        save_windows(store, windows, annotator=annotator)
        known = loop_species(archive_dir)
        if sp not in known:  # a species labelled only negative still has labels: remember it
            atomic_write_text(_species_path(archive_dir), "\n".join(sorted(known | {sp})) + "\n")
    return sum(max(1, len(w[3])) for w in windows)


def _check_unique_stems(table: pd.DataFrame, stems: set[str]) -> None:
    paths = table["path"].astype(str)
    uniq = pd.Series(pd.unique(paths))
    st = uniq.map(lambda p: Path(p).stem)
    dup = st[st.isin(stems) & st.duplicated(keep=False)]
    if len(dup):
        stem = dup.iloc[0]
        both = uniq[st == stem].tolist()[:2]
        raise LoopError(f"file_id {stem!r} names two archive files ({both[0]} and {both[1]}): the label store keys"
                        " windows by file name stem; rename one of them")


def labelled_windows(archive_dir, table: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, set[str]]]:
    """(table rows of saved windows, window_id → species saved)."""
    from birdcore.annotation.store import read_annotations, window_species

    ann = read_annotations(labels_path(archive_dir))
    if ann.empty or not len(table):
        return table.iloc[:0], {}
    saved = window_species(ann)
    files = {k[0] for k in saved}
    paths = pd.Series(pd.unique(table["path"].astype(str)))
    wanted = set(paths[paths.map(lambda p: Path(p).stem).isin(files)])
    sub = table[table["path"].astype(str).isin(wanted)]
    stems = file_ids(sub)
    keys = list(zip(stems, sub["start_s"].map(_ms), sub["end_s"].map(_ms)))
    hit = np.array([k in saved for k in keys], bool)
    sub = sub[hit]
    keys = [k for k, h in zip(keys, hit) if h]
    return sub, {int(w): saved[k] for w, k in zip(sub["window_id"], keys)}


def read_loop_labels(archive_dir: str | os.PathLike) -> pd.DataFrame:
    """Every (window, species) label: window_id, path, start_s, end_s, species, label
    ("positive"/"negative"); a saved window is a label for every species of the store (see above)."""
    cols = ["window_id", "path", "start_s", "end_s", "species", "label"]
    layout, _ = require_archive(archive_dir)
    table = read_table(layout)
    sub, saved = labelled_windows(archive_dir, table)
    all_species = sorted({s for v in saved.values() for s in v} | (loop_species(archive_dir) if saved else set()))
    if not len(sub) or not all_species:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "window_id" else "float64"
                                          if c in ("start_s", "end_s") else "object") for c in cols})
    base = pd.DataFrame({"window_id": sub["window_id"].to_numpy(np.int64), "path": sub["path"].astype(str).to_numpy(),
                         "start_s": sub["start_s"].to_numpy(float), "end_s": sub["end_s"].to_numpy(float)})
    parts = []
    for sp in all_species:
        lab = np.where([sp in saved[int(w)] for w in base["window_id"]], "positive", "negative")
        parts.append(base.assign(species=sp, label=lab))
    return pd.concat(parts, ignore_index=True)[cols]


def skipped_windows(archive_dir, species: str) -> set[int]:
    path = _skips_path(archive_dir)
    if not path.is_file():
        return set()
    df = pd.read_csv(path, dtype={"species": str})
    return set(df.loc[df["species"] == species, "window_id"].astype(int))


