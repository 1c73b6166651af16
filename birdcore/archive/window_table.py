"""The window table: one row per embedded 5-s window, the archive's single commit point.

Columns: `window_id` (int64, never reused), `path` (the recording, absolute), `digest` (BLAKE2 of its
bytes, as the embedding cache keys it), `start_s`, `end_s` (the inference window grid), `source`
(the SOURCES argument the file was found under: a dataset or a folder), `shard`, `row` (where its
vector lives) and `norm` (the vector's L2 norm, so exact cosine search needs no second pass).

A batch commits by writing its shard first and then this table (old rows + new rows, minus the
rows of files whose content changed) atomically: before the rename the batch does not exist, after
it the batch is whole. A shard the table does not name is an orphan of a killed run.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from birdcore.archive.layout import ArchiveError, ArchiveLayout
from birdcore.atomic_io import atomic_path

COLUMNS = {"window_id": "int64", "path": "object", "digest": "object", "start_s": "float64", "end_s": "float64",
           "source": "object", "shard": "int64", "row": "int64", "norm": "float32"}


def empty_table() -> pd.DataFrame:
    """A window table with no rows and the right column types."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


_LAST: dict[tuple[str, int, int, int], pd.DataFrame] = {}  # the last table read, by (path, inode, size, mtime_ns)


def read_table(layout: ArchiveLayout) -> pd.DataFrame:
    """The committed window table, sorted by window id (empty for a new archive). ArchiveError
    when unreadable.

    The last table read is kept while its file is unchanged (a 1M-row table takes ~0.5 s to
    read; a commit replaces the file, which changes the key): do not modify it in place."""
    try:
        st = layout.table.stat()
    except OSError:
        return empty_table()
    key = (str(layout.table.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _LAST:
        return _LAST[key]
    try:
        table = pd.read_parquet(layout.table)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise ArchiveError(f"{layout.table}: window table unreadable ({exc}); the archive's vectors cannot be"
                           " attributed without it: embed the sources again into a new archive") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ArchiveError(f"{layout.table}: window table lacks column(s) {', '.join(missing)}")
    table = table[list(COLUMNS)].astype({c: t for c, t in COLUMNS.items() if t != "object"})
    # Repeated strings (a file's path, digest and source on each of its windows) as categories:
    # picking k hit rows is then O(k), where arrow-backed strings re-gather the whole column.
    table = table.astype({c: "category" for c, t in COLUMNS.items() if t == "object"})
    if not table["window_id"].is_monotonic_increasing:  # commits append increasing ids; keep it certain
        table = table.sort_values("window_id", kind="stable", ignore_index=True)
    _LAST.clear()
    _LAST[key] = table
    return table


def write_table(layout: ArchiveLayout, table: pd.DataFrame) -> None:
    """Replace the committed table atomically (the commit point of a batch)."""
    with atomic_path(layout.table, suffix=".parquet") as tmp:
        table.reset_index(drop=True).to_parquet(tmp, index=False)


def commit_rows(layout: ArchiveLayout, table: pd.DataFrame, new_rows: pd.DataFrame,
                replaced_paths: set[str]) -> pd.DataFrame:
    """Commit `new_rows` (their shard is already on disk): drop the old rows of `replaced_paths`
    (files whose content changed), append, write atomically; returns the new table."""
    kept = table[~table["path"].isin(replaced_paths)] if replaced_paths else table
    out = pd.concat([kept, new_rows[list(COLUMNS)]], ignore_index=True) if len(kept) else new_rows[list(COLUMNS)].copy()
    if out["window_id"].duplicated().any():  # a bug, never user input: refuse to commit it
        raise AssertionError("window table would hold duplicated window ids")
    write_table(layout, out)
    return out


def next_window_id(table: pd.DataFrame, index_max_id: int = -1) -> int:
    """The first id of the next batch: above every id committed (and every id the index ever held,
    so a window dropped from the table never lends its id to another window)."""
    top = int(table["window_id"].max()) if len(table) else -1
    return max(top, index_max_id) + 1


def ids_digest(ids: np.ndarray) -> str:
    """A checksum of a set of window ids (order-free), to tie an index to the table it was built on."""
    return hashlib.blake2b(np.sort(np.asarray(ids, np.int64)).tobytes(), digest_size=16).hexdigest()
