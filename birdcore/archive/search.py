"""`search_archive`: the archive windows most similar (cosine) to a query clip or vector.

Exact: a numpy matrix product over every stored vector (float32, block by block), cosine via the
norms kept in the window table. Approximate: the FAISS index (`vector_index`), falling back to
exact (and saying so) when faiss is not installed. Archives under `FLAT_BELOW` windows have a flat
(exhaustive) index, so their "approximate" search is exact and is reported as exact. The result
always says which was used (`method`, `detail`).

A query file is embedded through the same path as the archive (`window_embeddings`), so a window
of an archived recording finds itself with score ≈ 1. Its query vector is its first 5-s window by
default; with `start_s`/`end_s`, the mean of the unit-length embeddings of the grid windows that
overlap [start_s, end_s) (the archive holds grid windows, so a span is described in their terms).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from birdcore.archive.layout import (
    ArchiveError,
    ArchiveLayout,
    read_manifest,
    require_archive,
)
from birdcore.archive.vector_index import FLAT_BELOW, NPROBE, load_or_rebuild
from birdcore.archive.vector_store import iter_vectors
from birdcore.archive.window_embeddings import embed_files
from birdcore.archive.window_table import read_table
from birdcore.errors import BirdcoreError, ConfigError
from birdcore.pretrained.embedding_cache import EmbeddingCache

HIT_COLUMNS = ["rank", "score", "path", "start_s", "end_s", "window_id", "source"]


@dataclass
class SearchResult:
    """Top-k windows (`hits`: rank, score, path, start_s, end_s, window_id, source), best first."""

    hits: pd.DataFrame
    method: str  # "exact" or "approximate"
    detail: str  # how, in words ("exact cosine over 1,234 windows (numpy)", ...)
    query: str  # what the query vector was
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.method == "exact"


def query_vector(query: Any, dim: int, *, start_s: float | None = None, end_s: float | None = None,
                 cache: EmbeddingCache | None = None, model: Any = None, num_threads: int = 2,
                 window_s: float = 5.0, hop_s: float = 1.0, min_last_s: float = 1.5) -> tuple[np.ndarray, str]:
    """(query vector (dim,) float32, description). `query`: an audio file path or a vector."""
    if not isinstance(query, (str, os.PathLike)):
        if start_s is not None or end_s is not None:
            raise ConfigError("start_s/end_s apply to a query file, not a query vector")
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
        if vec.shape != (dim,) or not np.all(np.isfinite(vec)):
            raise ConfigError(f"query vector must be {dim} finite numbers, got shape {np.shape(query)}")
        return vec, "a given vector"
    path = Path(query)
    if not path.is_file():
        raise BirdcoreError(f"{path}: query audio file not found")
    if start_s is not None and end_s is not None and not start_s < end_s:
        raise ConfigError(f"start {start_s} s must be before end {end_s} s")
    if (start_s is not None and start_s < 0) or (end_s is not None and end_s <= 0):
        raise ConfigError("start/end must be >= 0 seconds")
    w = embed_files([path], cache or EmbeddingCache(), window_s=window_s, hop_s=hop_s, min_last_s=min_last_s,
                    num_threads=num_threads, model=model)[0]
    if start_s is None and end_s is None:
        return w.vectors[0], f"{path} [{w.start_s[0]:g}–{w.end_s[0]:g} s] (its first window)"
    lo = 0.0 if start_s is None else float(start_s)
    hi = float(w.end_s[-1]) if end_s is None else float(end_s)
    pick = (w.start_s < hi) & (w.end_s > lo)
    if not pick.any():
        raise BirdcoreError(f"{path}: the span {lo:g}–{hi:g} s lies beyond the recording's windows"
                            f" (0–{w.end_s[-1]:g} s)")
    unit = w.vectors[pick] / np.maximum(np.linalg.norm(w.vectors[pick], axis=1, keepdims=True), 1e-12)
    n = int(pick.sum())
    said = (f"{path} [{w.start_s[pick][0]:g}–{w.end_s[pick][-1]:g} s] (mean of {n} window{'s' if n > 1 else ''}"
            f" overlapping {lo:g}–{hi:g} s)")
    return unit.mean(axis=0).astype(np.float32), said


def exact_scores(layout: ArchiveLayout, table: pd.DataFrame, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(window ids, cosine scores) of the top `k` rows of `table`, by brute force."""
    qn = (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float32)
    best_ids, best_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    for rows, vecs in iter_vectors(layout, table):
        s = (vecs @ qn) / np.maximum(rows["norm"].to_numpy(np.float32), 1e-12)
        ids_all = np.concatenate([best_ids, rows["window_id"].to_numpy(np.int64)])
        s_all = np.concatenate([best_scores, s.astype(np.float32)])
        top = np.argpartition(-s_all, k - 1)[:k] if len(s_all) > k else np.arange(len(s_all))
        best_ids, best_scores = ids_all[top], s_all[top]
    order = np.argsort(-best_scores, kind="stable")
    return best_ids[order], best_scores[order]


def _rows_of(table: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """Positions in `table` of window `ids` (-1 where the table lacks one): a binary search, as
    `read_table` gives the table sorted by window id."""
    if not len(table):
        return np.full(len(ids), -1, np.int64)
    col = table["window_id"].to_numpy(np.int64)
    pos = np.minimum(np.searchsorted(col, ids), len(col) - 1)
    return np.where(col[pos] == ids, pos, -1)


def approximate_scores(index: Any, table: pd.DataFrame, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(window ids, cosine scores) of the index's top `k` among the rows of `table`.

    Over-fetches when the index holds windows the table dropped (an interrupted update), so
    those never crowd out live hits."""
    qn = (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float32)[None, :]
    fetch = min(int(index.ntotal), k + max(0, int(index.ntotal) - len(table)))
    while True:
        scores, ids = index.search(qn, max(fetch, 1))
        ok = ids[0] >= 0
        ids, scores = ids[0][ok], scores[0][ok]
        live = _rows_of(table, ids) >= 0
        if live.sum() >= k or fetch >= index.ntotal:
            return ids[live][:k].astype(np.int64), scores[live][:k].astype(np.float32)
        fetch = min(int(index.ntotal), fetch * 2)


def search_archive(archive_dir: str | os.PathLike, query: Any, k: int = 10, exact: bool = False,
                   start_s: float | None = None, end_s: float | None = None, *, cache: EmbeddingCache | None = None,
                   model: Any = None, num_threads: int = 2) -> SearchResult:
    """Top-`k` archive windows most similar to `query` (an audio file, with an optional span, or a vector).

    `exact=True`: brute-force cosine over every stored vector; else the approximate index (exact
    when faiss is missing). Raises BirdcoreError for a missing archive or query, bad k or span.
    """
    if int(k) < 1:
        raise ConfigError(f"k={k}: must be >= 1")
    t0 = time.perf_counter()
    layout, manifest = require_archive(archive_dir)
    table = read_table(layout)
    q, described = query_vector(query, manifest.dim, start_s=start_s, end_s=end_s, cache=cache, model=model,
                                num_threads=num_threads, window_s=manifest.window_s, hop_s=manifest.hop_s,
                                min_last_s=manifest.min_last_s)
    notes: list[str] = []
    index = None
    if not exact and len(table):
        index, report = load_or_rebuild(layout, manifest, table)
        if report.state in ("built", "rebuilt"):
            notes += report.lines()
        elif report.state == "unavailable":
            notes.append(report.reason)
        else:
            notes += report.notes
    if index is not None:
        ids, scores = approximate_scores(index, table, q, int(k))
        if report.kind == "ivf":
            method, detail = "approximate", (f"approximate: faiss IVF index (float16 lists, nprobe {NPROBE})"
                                             f" over {int(index.ntotal)} windows")
        else:  # below FLAT_BELOW windows the index is a flat one: it scans every vector, so it is exact
            method, detail = "exact", (f"exact: faiss flat index over {int(index.ntotal)} windows (archives under"
                                       f" {FLAT_BELOW} windows need no approximation)")
    else:
        ids, scores = exact_scores(layout, table, q, int(k))
        method, detail = "exact", f"exact cosine over {len(table)} windows (numpy)"
    rows = table.iloc[_rows_of(table, ids)] if len(ids) else table.iloc[:0]
    hits = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "score": scores, "path": rows["path"].to_numpy(),
                         "start_s": rows["start_s"].to_numpy(), "end_s": rows["end_s"].to_numpy(),
                         "window_id": ids, "source": rows["source"].to_numpy()})
    return SearchResult(hits=hits[HIT_COLUMNS], method=method, detail=detail, query=described,
                        seconds=time.perf_counter() - t0, notes=notes)


def window_at(archive_dir: str | os.PathLike, path: str | os.PathLike, start_s: float) -> int | None:
    """The id of the archive window of recording `path` (compared as resolved paths) that starts at
    `start_s`, else the latest-starting one whose span contains it; None when `archive_dir` holds no
    archive or no such window. Reads the cached window table (`read_table`): cheap on every rerun.
    ArchiveError when the archive's window table is unreadable."""
    layout = ArchiveLayout(Path(archive_dir))
    if not layout.root.is_dir() or read_manifest(layout) is None:
        return None
    table = read_table(layout)
    if not len(table):
        return None
    want = os.path.realpath(path)
    paths = table["path"].cat.categories
    same = [p for p in paths if p == want or p == str(path)] or [p for p in paths if os.path.realpath(p) == want]
    if not same:
        return None
    rows = table[table["path"].isin(same)]
    t, eps = float(start_s), 1e-6
    rows = rows[(rows["start_s"] <= t + eps) & ((rows["end_s"] > t) | ((rows["start_s"] - t).abs() <= eps))]
    if not len(rows):
        return None
    best = rows.sort_values(["start_s", "window_id"], ascending=[False, True], kind="stable").iloc[0]
    return int(best["window_id"])


def window_span(archive_dir: str | os.PathLike, window_id: int) -> tuple[str, float, float]:
    """(path, start_s, end_s) of archive window `window_id`; ArchiveError when the table lacks it."""
    table = read_table(ArchiveLayout(Path(archive_dir)))
    col = table["window_id"].to_numpy()
    pos = int(col.searchsorted(int(window_id))) if len(col) else 0
    if pos >= len(col) or int(col[pos]) != int(window_id):
        raise ArchiveError(f"{archive_dir}: no window {window_id} in this archive (ids run"
                           f" {int(col[0]) if len(col) else 0}–{int(col[-1]) if len(col) else 0})")
    row = table.iloc[pos]
    return str(row["path"]), float(row["start_s"]), float(row["end_s"])


def archive_summary(archive_dir: str | os.PathLike) -> dict | None:
    """windows, recordings, audio hours, BirdNET model tag and dimension of the archive at
    `archive_dir`; None when the folder holds no archive yet. ArchiveError when it holds a broken one."""
    layout = ArchiveLayout(Path(archive_dir))
    manifest = read_manifest(layout)
    if manifest is None:
        return None
    table = read_table(layout)
    hours = float(table.groupby("path", observed=True)["end_s"].max().sum()) / 3600 if len(table) else 0.0
    return {"windows": len(table), "recordings": int(table["path"].nunique()), "hours": hours,
            "model": manifest.model_tag, "dim": manifest.dim}
