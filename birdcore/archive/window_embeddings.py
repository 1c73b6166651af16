"""BirdNET window embeddings of recordings, through the one path every BirdNET head uses.

`EmbeddingCache.get_chunks` (content-keyed, shared with training and inference) gives each file's
3-s chunk embeddings; `head_features.window_features` turns them into 5-s window embeddings (the
mean of a window's chunks) on the inference window grid (`audio.windows`). The archive and its
queries both come through here, so a query window and the same archived window are equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from birdcore.pretrained.birdnet import DEFAULT_BATCH
from birdcore.pretrained.embedding_cache import EmbeddingCache
from birdcore.pretrained.head_features import window_features


@dataclass(frozen=True)
class FileWindows:
    """One recording's windows: grid start/end times (s) and embeddings (n, D) float32."""

    start_s: np.ndarray
    end_s: np.ndarray
    vectors: np.ndarray


def embed_files(paths: Sequence[str | os.PathLike], cache: EmbeddingCache, *, window_s: float = 5.0,
                hop_s: float = 1.0, min_last_s: float = 1.5, num_threads: int = 2, batch_size: int = DEFAULT_BATCH,
                model: Any = None, progress: Callable[[int, int], None] | None = None) -> list[FileWindows]:
    """Window embeddings of each path (in order). Raises AudioError for an unreadable file."""
    names = [str(p) for p in paths]
    if not names:
        return []
    chunks = cache.get_chunks(names, window_s, hop_s, min_last_s=min_last_s, batch_size=batch_size,
                              num_threads=num_threads, model=model, progress=progress)
    index, vectors, _ = window_features(chunks, [], None, window_s, names)  # [] classes: embeddings only
    out, at = [], 0
    for n, _mat, _owner in chunks:
        ends = index["end_time"].to_numpy(np.float64)[at:at + n]
        out.append(FileWindows(start_s=ends - window_s, end_s=ends, vectors=vectors[at:at + n]))
        at += n
    return out
