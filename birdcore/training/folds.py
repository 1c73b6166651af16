"""Validation folds: stratified K-fold on `primary_label`, seeded, rare classes handled."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold


def assign_folds(labels: np.ndarray | list[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold id (0..n_folds-1) per recording; -1 for recordings that are always in training.

    Stratified on the label so each fold sees every class in proportion. Classes with fewer than
    `n_folds` recordings cannot be stratified: each of their recordings goes to a fold in turn,
    except that a class's last remaining recording (or a class of one) is kept in training (-1),
    so no class vanishes from training.
    """
    labels = np.asarray(labels)
    folds = np.full(len(labels), -1, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    common = np.isin(labels, classes[counts >= n_folds])
    idx = np.flatnonzero(common)
    if len(idx):
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for f, (_, val) in enumerate(skf.split(idx, labels[idx])):
            folds[idx[val]] = f
    rng = np.random.default_rng(seed)
    start = 0
    for cls, cnt in zip(classes, counts):
        if cnt >= n_folds:
            continue
        rows = rng.permutation(np.flatnonzero(labels == cls))
        for r in rows[:-1]:  # keep one recording of the class in training for every fold
            folds[r] = start % n_folds
            start += 1
    return folds
