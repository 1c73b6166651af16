"""On-disk cache of BirdNET window embeddings: recording x window -> vector.

One `.npy` per recording and parameter set, holding its (n_windows, 1024) embeddings as float16
(halves the disk; BirdNET embeddings are post-ReLU averages of order 0-3, where float16's 3
significant digits are plenty for probes and nearest-neighbour search). The file name is a hash
of the recording's absolute path, size and mtime plus every parameter that changes the result
(window, hop, minimum last window, model version), so an edited recording or another setting
recomputes, and a repeat request only reads. Writes are atomic: a crash never leaves a torn file,
and two processes computing the same entry both write a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path
from birdcore.errors import AudioError
from birdcore.pretrained.birdnet import (
    DEFAULT_BATCH,
    MODEL_TAG,
    embed_windows,
    end_times,
)

_FORMAT_VERSION = 1


class EmbeddingCache:
    """Cache of per-window BirdNET embeddings under `cache_dir` (use one folder per dataset).

    `compute_fn` defaults to `birdnet.embed_windows` (same signature); tests and callers may wrap
    it. Counters: `hits` (recordings read from disk) and `computed` (recordings embedded), summed
    over the cache object's life.
    """

    def __init__(self, cache_dir: str | os.PathLike, *, dtype: Any = np.float16,
                 compute_fn: Callable[..., tuple[pd.DataFrame, np.ndarray]] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.dtype = np.dtype(dtype)
        self.compute_fn = compute_fn or embed_windows
        self.hits = 0
        self.computed = 0

    def entry_path(self, path: str | os.PathLike, window_s: float = 5.0, hop_s: float = 1.0,
                   min_last_s: float = 1.5) -> Path:
        """Where the embeddings of `path` with these parameters live. AudioError if `path` is missing."""
        p = Path(path).resolve()
        try:
            st = p.stat()
        except OSError:
            raise AudioError(f"{path}: audio file not found") from None
        ident = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "window_s": float(window_s),
                 "hop_s": float(hop_s), "min_last_s": float(min_last_s), "model": MODEL_TAG,
                 "dtype": self.dtype.name, "format": _FORMAT_VERSION}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        return self.cache_dir / key[:2] / f"{key}.npy"

    def get_or_compute(self, paths: list[str | os.PathLike], window_s: float = 5.0, hop_s: float = 1.0, *,
                       min_last_s: float = 1.5, batch_size: int = DEFAULT_BATCH, num_threads: int = 2,
                       model: Any = None, progress: Any = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Embeddings of every window of `paths`: (index DataFrame `path, end_time`, matrix (M, D) float32).

        Rows follow `paths` order, windows in time order; `path` is the string as given. Recordings
        not cached are embedded in one batched `compute_fn` call and stored. Values are always
        the stored precision (float16-rounded by default), so a first and a second call return
        identical matrices. A corrupt cache file is treated as missing and rewritten.
        """
        params = dict(window_s=window_s, hop_s=hop_s, min_last_s=min_last_s)
        names = [str(p) for p in paths]
        entries = {n: self.entry_path(n, **params) for n in dict.fromkeys(names)}
        found: dict[str, np.ndarray] = {}
        for name, entry in entries.items():
            mat = _read(entry)
            if mat is not None:
                found[name] = mat
        self.hits += len(found)
        todo = [n for n in entries if n not in found]
        if todo:
            index, matrix = self.compute_fn(todo, None, window_s, hop_s, min_last_s=min_last_s,
                                            batch_size=batch_size, num_threads=num_threads,
                                            model=model, progress=progress)
            path_col = index["path"].astype(str).to_numpy()
            for name in todo:
                mat = np.asarray(matrix[path_col == name], dtype=self.dtype)
                _write(entries[name], mat)
                found[name] = mat
            self.computed += len(todo)
        mats = [found[n].astype(np.float32) for n in names]
        index = pd.DataFrame({
            "path": [n for n, m in zip(names, mats) for _ in range(len(m))],
            "end_time": np.concatenate([end_times(len(m), window_s) for m in mats]) if mats else [],
        })
        dim = mats[0].shape[1] if mats else 0
        return index, (np.concatenate(mats) if mats else np.zeros((0, dim), np.float32))

    def clear(self) -> int:
        """Delete every cached entry under `cache_dir`; returns how many were removed."""
        removed = 0
        for f in self.cache_dir.glob("*/*.npy"):
            f.unlink(missing_ok=True)
            removed += 1
        return removed


def _read(entry: Path) -> np.ndarray | None:
    if not entry.is_file():
        return None
    try:
        mat = np.load(entry, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # torn/corrupt (should not happen with atomic writes): recompute
    return mat if mat.ndim == 2 and mat.shape[0] > 0 else None


def _write(entry: Path, mat: np.ndarray) -> None:
    with atomic_path(entry, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save on a name would append ".npy"
            np.save(fh, mat, allow_pickle=False)
