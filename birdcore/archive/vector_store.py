"""The archive's vectors: one `.npy` shard per committed batch of files, read memory-mapped.

A shard is written atomically *before* the table row that names it (see `window_table`), so a
kill leaves at worst a whole shard nobody names: `discard_orphans` deletes those (and temp files a
SIGKILL left mid-write) when the next `embed` starts, under the archive lock.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from birdcore.archive.layout import ArchiveError, ArchiveLayout
from birdcore.atomic_io import atomic_path, stray_temp_files

_SHARD = re.compile(r"^shard-(\d{6,})\.npy$")


def shard_ids_on_disk(layout: ArchiveLayout) -> list[int]:
    """Ids of the complete shard files in the folder (committed or not)."""
    if not layout.shards.is_dir():
        return []
    return sorted(int(m.group(1)) for p in layout.shards.iterdir() if (m := _SHARD.match(p.name)))


def next_shard_id(layout: ArchiveLayout, table: pd.DataFrame) -> int:
    """A shard id no file and no table row uses yet."""
    used = shard_ids_on_disk(layout) + ([int(table["shard"].max())] if len(table) else [])
    return max(used, default=-1) + 1


def write_shard(layout: ArchiveLayout, shard_id: int, vectors: np.ndarray, dtype: str) -> Path:
    """Write one batch's vectors atomically; returns the shard's path."""
    path = layout.shard_path(shard_id)
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save on a name would append ".npy"
            np.save(fh, np.ascontiguousarray(vectors, dtype=dtype), allow_pickle=False)
    return path


def discard_orphans(layout: ArchiveLayout, table: pd.DataFrame) -> list[Path]:
    """Delete shards the committed table does not name, and stray temp files; returns what went.

    Call only under the archive lock: a writer's shard is an "orphan" until its table commit.
    """
    named = set(map(int, table["shard"].unique())) if len(table) else set()
    gone = [layout.shard_path(s) for s in shard_ids_on_disk(layout) if s not in named]
    gone += stray_temp_files(layout.shards) if layout.shards.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def open_shard(layout: ArchiveLayout, shard_id: int) -> np.ndarray:
    """A committed shard, memory-mapped. ArchiveError when it is missing or damaged."""
    path = layout.shard_path(shard_id)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ArchiveError(f"{path}: vector shard missing or damaged ({exc}); the window table names it."
                           " Embed the sources again into a new archive") from None


def iter_vectors(layout: ArchiveLayout, table: pd.DataFrame, dtype: type = np.float32,
                 block: int = 65536) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Yield (rows of `table`, their vectors as `dtype`), shard by shard, in blocks of at most
    `block` rows (so a million float16 vectors never sit twice in memory as float32)."""
    for shard_id, rows in table.groupby("shard", sort=True):
        mat = open_shard(layout, int(shard_id))
        idx = rows["row"].to_numpy(np.int64)
        if len(mat) <= idx.max(initial=-1):
            raise ArchiveError(f"{layout.shard_path(int(shard_id))}: holds {len(mat)} vectors but the window table"
                               f" names row {int(idx.max())}")
        for s in range(0, len(idx), block):
            part = idx[s:s + block]
            if len(part) and part[-1] - part[0] == len(part) - 1 and (np.diff(part) == 1).all():
                view = mat[part[0]:part[-1] + 1]  # the usual case, a whole run of a shard: a view, no copy
            else:
                view = mat[part]
            yield rows.iloc[s:s + block], np.asarray(view, dtype=dtype)


def read_vectors(layout: ArchiveLayout, table: pd.DataFrame, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(window ids, vectors (N, D)) of `table`'s rows, in shard order."""
    parts = list(iter_vectors(layout, table, dtype))
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, 0), dtype)
    return (np.concatenate([p[0]["window_id"].to_numpy(np.int64) for p in parts]),
            np.concatenate([p[1] for p in parts]))
