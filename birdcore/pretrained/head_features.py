"""What a head on BirdNET reads per 5-s window: the embedding, and BirdNET's own logit per class.

Both come from one set of cached chunk embeddings (`EmbeddingCache.get_chunks`): the embedding
is the mean of a window's chunks, BirdNET's window logit of a class is the max over its chunks of
the last layer (`BirdNET.classifier`). A dataset code that several BirdNET labels map to takes the
strongest of them; a class BirdNET lacks gets 0 (and is masked out by the head).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from birdcore.pretrained.birdnet import LOGIT_CLIP, end_times, window_max_logits, window_mean
from birdcore.pretrained.label_map import birdnet_to_ebird, codes_to_indices

Chunks = tuple[int, np.ndarray, np.ndarray]


def birdnet_class_index(model: Any, classes: Sequence[str], taxonomy_csv: str | os.PathLike | None) -> list[list[int]]:
    """Per class, the BirdNET label indices that map to it ([] = BirdNET does not know it)."""
    if taxonomy_csv is None:
        return [[] for _ in classes]
    by_code = codes_to_indices(birdnet_to_ebird(model.labels, taxonomy_csv))
    return [list(map(int, by_code.get(c, []))) for c in classes]


def window_features(chunks: Sequence[Chunks], class_index: Sequence[Sequence[int]], model: Any,
                    window_s: float, paths: Sequence[str] | None = None
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(index `path, end_time`, embeddings (M, D), BirdNET logits (M, K) clipped to ±15, 0 where unknown)."""
    flat = sorted({i for idx in class_index for i in idx})
    if flat:
        weights, bias = model.classifier()
        w_sub, b_sub = weights[flat], bias[flat]
    col = {i: j for j, i in enumerate(flat)}
    embs, priors, names, ends = [], [], [], []
    for k, (n, mat, owner) in enumerate(chunks):
        embs.append(window_mean(mat, owner, n))
        prior = np.zeros((n, len(class_index)), np.float32)
        if flat:
            logits = window_max_logits(mat, owner, n, w_sub, b_sub)
            for c, idx in enumerate(class_index):
                if idx:
                    prior[:, c] = logits[:, [col[i] for i in idx]].max(axis=1)
        priors.append(np.clip(prior, -LOGIT_CLIP, LOGIT_CLIP))
        names += [paths[k] if paths is not None else f"<{k}>"] * n
        ends.append(end_times(n, window_s))
    dim = embs[0].shape[1] if embs else 0
    index = pd.DataFrame({"path": names, "end_time": np.concatenate(ends) if ends else []})
    return (index, np.concatenate(embs) if embs else np.zeros((0, dim), np.float32),
            np.concatenate(priors) if priors else np.zeros((0, len(class_index)), np.float32))
