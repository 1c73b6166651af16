"""The approximate vector index over an archive's windows, kept in step with the window table.

Library: FAISS (`faiss-cpu`), an inverted-file index with float16 scalar quantisation
(`IVF{nlist},SQfp16`, inner product on L2-normalised vectors = cosine), keyed by window id.
Chosen over USearch's HNSW (what perch-hoplite and BirdNET-Analyzer use) on measurements
(`benchmarks/bench_archive.py`, 2 busy CPU cores, clustered non-negative 1024-d vectors like
BirdNET's): at 100k vectors FAISS builds in 3.7 s vs 146 s for USearch (f16, M=16), recall@10
1.000 vs 0.999, 10 ms vs 1.3 ms per query. At 1M, FAISS builds in 67–111 s and answers in
21–27 ms (recall@10 1.000, three runs on a shared machine; the target is <= 50 ms); USearch would
need ~25 min to build (extrapolated). Queries are fast
enough either way, so build time decides: it is also the time to rebuild a damaged index or to
retrain a grown one. Cost of the choice: non-negative embeddings give uneven IVF lists (~7x
imbalance), so queries are ~3x slower than on balanced data. Below `FLAT_BELOW` windows an exact
flat FAISS index is used (an IVF index needs ~40 training vectors per list, and a flat scan of 20k
vectors is a few ms). The IVF lists are trained once on a sample; when the archive has grown
`RETRAIN_GROWTH`-fold since, the index is rebuilt rather than extended, so lists keep matching the
data (amortised linear cost).

FAISS is optional: without it `load_or_rebuild` says so and search falls back to the exact path.

Integrity: `index/index.json` records the index file's name, byte size, BLAKE2 digest, vector
count and a checksum of the window ids it holds. A missing, truncated or altered file, or one whose
ids disagree with its record, is rebuilt from the stored vectors, with a message saying why.
Window ids the table no longer holds are removed, new ones added (`sync_index`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from birdcore.archive.layout import ArchiveLayout, Manifest
from birdcore.archive.vector_store import iter_vectors
from birdcore.archive.window_table import ids_digest, read_table
from birdcore.atomic_io import (
    atomic_path,
    atomic_write_json,
    file_lock,
    stray_temp_files,
)

LIBRARY = "faiss"
FLAT_BELOW = 20000  # exact flat index below this many windows: < ~25 ms per query, no training
RETRAIN_GROWTH = 4.0
LISTS_PER_SQRT = 2  # nlist = 2·sqrt(N) (FAISS suggests 1–16·sqrt(N)): 2,000 lists at 1M windows
NPROBE = 16  # lists scanned per query (measured: see the module docstring and the benchmark)
TRAIN_PER_LIST = 40  # k-means sample per list; with KMEANS_ITER it bounds the build time at 1M windows
KMEANS_ITER = 10
META = "index.json"
_VERIFIED: dict[tuple[str, int, int], str] = {}  # (file, size, mtime_ns) -> digest already checked in this process
_LOADED: dict[tuple[str, int, int], Any] = {}  # the last index loaded for reading, by the same key


def faiss_module() -> Any | None:
    """The faiss module, or None when the optional `faiss-cpu` package is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


@dataclass(frozen=True)
class IndexMeta:
    """What `index.json` records about the index file beside it."""

    library: str
    kind: str  # "flat" or "ivf"
    file: str
    bytes: int
    digest: str
    count: int
    ids_digest: str
    max_id: int
    trained_on: int
    nlist: int = 0


@dataclass
class IndexReport:
    """What `sync_index` / `load_or_rebuild` did, for messages and tests."""

    state: str = "ok"  # ok | updated | built | rebuilt | unavailable
    reason: str = ""  # why a rebuild happened (missing, digest mismatch, ...)
    count: int = 0
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    kind: str = ""
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines (the CLI prints them)."""
        if self.state == "unavailable":
            return [self.reason]
        head = {"ok": f"{self.kind} index of {self.count} windows is up to date",
                "updated": f"{self.kind} index updated: +{self.added} / -{self.removed} windows ({self.count} in all)",
                "built": f"{self.kind} index built over {self.count} windows in {self.seconds:.1f} s",
                "rebuilt": f"{self.kind} index rebuilt from the stored vectors ({self.count} windows,"
                           f" {self.seconds:.1f} s): {self.reason}"}[self.state]
        return [head, *self.notes]


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20)).hexdigest()


def read_index_meta(layout: ArchiveLayout) -> IndexMeta | None:
    """The index record, None when absent or unreadable (both mean: build the index)."""
    try:
        return IndexMeta(**json.loads((layout.index_dir / META).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError, UnicodeDecodeError):
        return None


def _index_ids(faiss: Any, index: Any) -> np.ndarray:
    """Every window id the index holds."""
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    inv = faiss.extract_index_ivf(index).invlists
    parts = [faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy()
             for i in range(inv.nlist) if inv.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_index(layout: ArchiveLayout, shared: bool = True) -> tuple[Any | None, IndexMeta | None, str]:
    """(index, its record, "") when the index is intact, else (None, record or None, why not).

    `shared`: the index last loaded in this process is kept and returned while its file is
    unchanged (the app searches many times; a 1M-window index is 2 GB to read). Callers that
    modify the index pass `shared=False` and get their own copy."""
    faiss = faiss_module()
    meta = read_index_meta(layout)
    if faiss is None:
        return None, meta, "faiss-cpu is not installed"
    if meta is None:
        return None, None, "no index yet" if not (layout.index_dir / META).exists() else "index.json unreadable"
    path = layout.index_dir / meta.file
    try:
        st = path.stat()
    except OSError:
        return None, meta, f"index file {path.name} is missing"
    if st.st_size != meta.bytes:
        return None, meta, f"index file {path.name} has {st.st_size} bytes, its record says {meta.bytes}"
    key = (str(path), st.st_size, st.st_mtime_ns)
    if shared and key in _LOADED and _VERIFIED.get(key) == meta.digest:
        return _LOADED[key], meta, ""
    if _VERIFIED.get(key) != meta.digest:  # hashing a GB-sized index once per process is enough
        if _file_digest(path) != meta.digest:
            return None, meta, f"index file {path.name} fails its checksum (altered or damaged)"
        _VERIFIED[key] = meta.digest
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        return None, meta, f"index file {path.name} unreadable ({str(exc).splitlines()[0][:120]})"
    if index.ntotal != meta.count:
        return None, meta, f"index holds {index.ntotal} vectors, its record says {meta.count}"
    if shared:
        _LOADED.clear()  # one index at a time: bounded memory
        _LOADED[key] = index
    return index, meta, ""


def _new_index(faiss: Any, n: int, dim: int, sample: np.ndarray | None) -> tuple[Any, str, int]:
    if n < FLAT_BELOW or sample is None:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), "flat", 0
    # FAISS wants >= 39 training points per list
    nlist = int(max(16, min(LISTS_PER_SQRT * np.sqrt(n), len(sample) // 39)))
    index = faiss.index_factory(dim, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.niter = KMEANS_ITER
    index.train(sample)
    faiss.extract_index_ivf(index).nprobe = min(NPROBE, nlist)
    return index, "ivf", nlist


def _training_sample(layout: ArchiveLayout, table: pd.DataFrame, nlist_hint: int, seed: int = 0) -> np.ndarray:
    """L2-normalised random rows of the table, enough to train `nlist_hint` lists."""
    want = min(len(table), TRAIN_PER_LIST * nlist_hint)
    rows = table.iloc[np.sort(np.random.default_rng(seed).choice(len(table), want, replace=False))]
    return _normalised(np.concatenate([v for _, v in iter_vectors(layout, rows)]))


def build_index(layout: ArchiveLayout, manifest: Manifest, table: pd.DataFrame) -> tuple[Any, IndexMeta]:
    """A fresh index over every row of `table`, saved with its record (under the archive lock). Needs faiss."""
    faiss = faiss_module()
    n = len(table)
    sample = None
    if n >= FLAT_BELOW:
        sample = _training_sample(layout, table, int(LISTS_PER_SQRT * np.sqrt(n)))
    index, kind, nlist = _new_index(faiss, n, manifest.dim, sample)
    for rows, vecs in iter_vectors(layout, table):
        index.add_with_ids(_normalised(vecs), rows["window_id"].to_numpy(np.int64))
    max_id = int(table["window_id"].max()) if n else -1
    return index, _save(layout, index, kind, nlist, trained_on=n, max_id=max_id, ids=table["window_id"].to_numpy())


def _save(layout: ArchiveLayout, index: Any, kind: str, nlist: int, trained_on: int, max_id: int,
          ids: np.ndarray) -> IndexMeta:
    """Write the index under a new name, then its record (the commit point), then drop old files."""
    faiss = faiss_module()
    layout.index_dir.mkdir(parents=True, exist_ok=True)
    digest_ids = ids_digest(ids)
    name = f"index-{time.time_ns():x}.faiss"  # a new name each time: a reader never sees a file change under it
    path = layout.index_dir / name
    with atomic_path(path, suffix=".faiss") as tmp:
        faiss.write_index(index, str(tmp))
    st = path.stat()
    meta = IndexMeta(library=LIBRARY, kind=kind, file=name, bytes=st.st_size, digest=_file_digest(path),
                     count=int(index.ntotal), ids_digest=digest_ids, max_id=int(max_id), trained_on=int(trained_on),
                     nlist=int(nlist))
    _VERIFIED[(str(path), st.st_size, st.st_mtime_ns)] = meta.digest
    atomic_write_json(layout.index_dir / META, asdict(meta))
    # callers hold the archive lock, so no other writer's temp file can be in flight here
    for old in [*layout.index_dir.glob("index-*.faiss"), *stray_temp_files(layout.index_dir)]:
        if old.name != name:
            old.unlink(missing_ok=True)
    return meta


def _needs_retrain(meta: IndexMeta, n: int) -> bool:
    if meta.kind == "flat":
        return n >= FLAT_BELOW
    return n > RETRAIN_GROWTH * max(meta.trained_on, 1)


def sync_index(layout: ArchiveLayout, manifest: Manifest, table: pd.DataFrame) -> IndexReport:
    """Bring the index in step with `table` (call under the archive lock).

    Intact and current: nothing. Intact but behind: adds new windows, removes dropped ones (or
    rebuilds when the archive outgrew the index's training). Missing or damaged: rebuilt from the
    stored vectors, `reason` saying what was wrong.
    """
    t0 = time.perf_counter()
    if faiss_module() is None:
        return IndexReport(state="unavailable", count=0,
                           reason="no approximate index: faiss-cpu is not installed (search is exact)")
    index, meta, why = load_index(layout, shared=False)  # modified below: never the shared copy
    n = len(table)
    if index is not None and ids_digest(_index_ids(faiss_module(), index)) != meta.ids_digest:
        index, why = None, "the ids in the index disagree with its record"
    if index is None or _needs_retrain(meta, n):
        first = index is None and why == "no index yet"
        note = ([f"retrained: the archive grew to {n} windows (the index was trained on {meta.trained_on})"]
                if index is not None else [])
        index, meta = build_index(layout, manifest, table)
        return IndexReport(state="built" if first or note else "rebuilt", reason="" if first or note else why,
                           count=meta.count, seconds=time.perf_counter() - t0, kind=meta.kind, notes=note)
    faiss = faiss_module()
    have = _index_ids(faiss, index)
    live = table["window_id"].to_numpy(np.int64)
    dead = np.setdiff1d(have, live, assume_unique=True)
    new_rows = table[~np.isin(live, have)]
    if not len(dead) and not len(new_rows):
        return IndexReport(state="ok", count=meta.count, kind=meta.kind)
    if len(dead):
        index.remove_ids(dead)
    for rows, vecs in iter_vectors(layout, new_rows):
        index.add_with_ids(_normalised(vecs), rows["window_id"].to_numpy(np.int64))
    max_id = max(meta.max_id, int(live.max(initial=-1)))
    meta = _save(layout, index, meta.kind, meta.nlist, meta.trained_on, max_id, _index_ids(faiss, index))
    return IndexReport(state="updated", count=meta.count, added=len(new_rows), removed=len(dead),
                       seconds=time.perf_counter() - t0, kind=meta.kind)


def load_or_rebuild(layout: ArchiveLayout, manifest: Manifest, table: pd.DataFrame) -> tuple[Any | None, IndexReport]:
    """The index for a search over `table`. (None, report) without faiss or on an empty archive.

    Intact: used as it is, even when behind the table (an `embed` running or interrupted; the
    report says how many windows it lacks; search filters dropped windows out). Missing or damaged:
    rebuilt from the stored vectors under the archive lock, the report saying why.
    """
    if faiss_module() is None:
        return None, IndexReport(state="unavailable", reason="faiss-cpu is not installed: exact search used")
    if not len(table):
        return None, IndexReport(state="ok", count=0, kind="none")
    index, meta, why = load_index(layout)
    if index is None:
        with file_lock(layout.lock):
            index, meta, why = load_index(layout)  # another process may have rebuilt it meanwhile
            if index is None:
                t0 = time.perf_counter()
                fresh = why == "no index yet"
                index, meta = build_index(layout, manifest, read_table_for_index(layout, table))
                return index, IndexReport(state="built" if fresh else "rebuilt", reason="" if fresh else why,
                                          count=meta.count, seconds=time.perf_counter() - t0, kind=meta.kind)
    report = IndexReport(state="ok", count=meta.count, kind=meta.kind)
    lacking = int((table["window_id"].to_numpy() > meta.max_id).sum())
    if lacking:
        report.notes.append(f"the index lacks the {lacking} newest windows (an embed is running or was interrupted):"
                            " run `birdcore embed` again to add them, or search with --exact")
    return index, report


def read_table_for_index(layout: ArchiveLayout, table: pd.DataFrame) -> pd.DataFrame:
    """The table to rebuild from: the committed one on disk (it may have moved on since `table`)."""
    return read_table(layout) if layout.table.is_file() else table
