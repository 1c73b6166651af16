"""Thresholds for an ensemble's averaged probabilities, and a line saying where they came from.

An ensemble scores the mean of its members' probabilities, so no member's own `thresholds.json`
fits it: a low-threshold member would drag the others along. In order of preference:

1. **Tuned on the ensemble's out-of-fold predictions**, when every member is a run with an OOF
   table: each validation recording's score is the mean over the members that validated on it.
   That one rule covers both kinds of ensemble: the folds of one cross-validation (disjoint
   recordings: the pooled OOF, as Kaggle notebooks tune a fold ensemble) and different models on
   the same fold (the same recordings: the true ensemble average).
2. **The mean of the members' own thresholds**, per class, when every member has a
   `thresholds.json` but not every member has OOF predictions (e.g. exported models).
3. **The one member's thresholds** that exist, said as such; else nothing (the caller uses 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from birdcore.errors import RunError
from birdcore.evaluation.curves import read_oof_rows
from birdcore.evaluation.thresholds import THRESHOLDS_FILE, Thresholds, load_thresholds, tune_thresholds

OOF_FILE = "oof_predictions.parquet"


@dataclass
class EnsembleThresholds:
    """What an ensemble is thresholded with: `thresholds` (None when no member has any) and `how`,
    one line for the user ("tuned on the ensemble's out-of-fold predictions: …")."""

    thresholds: Thresholds | None
    how: str


def ensemble_oof(members: Sequence[str | Path], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(y_true (N, C) bool, y_score (N, C), N members' tables read) over the union of the members'
    validation recordings: per recording and class, the mean of the members that scored it.

    RunError naming the file when a member's OOF table is missing or broken, or when no member
    scores one of `classes`.
    """
    scores: list[pd.DataFrame] = []  # per member: its recordings × the wanted classes it scores
    truths: list[pd.DataFrame] = []
    for m in members:
        # one read: read_oof's checks (file named, finite scores, p:/t: pairs) and the filenames to match rows on
        (y_true, y_score, oof_classes), files = read_oof_rows(Path(m) / OOF_FILE)
        col = {c: k for k, c in enumerate(oof_classes)}
        have = [c for c in classes if c in col]
        keep = [col[c] for c in have]
        scores.append(pd.DataFrame(y_score[:, keep], index=files, columns=have))
        truths.append(pd.DataFrame(y_true[:, keep].astype(float), index=files, columns=have))
    lacking = [c for c in classes if not any(c in s.columns for s in scores)]
    if lacking:
        raise RunError(f"no member's out-of-fold table scores {', '.join(lacking[:5])}")
    # mean over the members that hold a (recording, class): NaN where a member did not validate on it
    score = pd.concat(scores, keys=range(len(members))).groupby(level=1).mean()
    truth = pd.concat(truths, keys=range(len(members))).groupby(level=1).max()
    score, truth = score[list(classes)], truth.loc[score.index, list(classes)]
    return truth.to_numpy(float) >= 0.5, score.fillna(0.0).to_numpy(float), len(members)


def ensemble_thresholds(members: Sequence[str | Path], classes: Sequence[str]) -> EnsembleThresholds:
    """Thresholds for the averaged probabilities of `members` (run folders or exported model
    folders) over `classes`; see the module docstring for the order of preference. The metric
    and method of tuning follow the first member's `thresholds.json` (default birdclef2022, grid)."""
    paths = [Path(m) for m in members]
    own = {p: load_thresholds(p / THRESHOLDS_FILE) for p in paths if (p / THRESHOLDS_FILE).is_file()}
    names = ", ".join(p.name for p in paths)
    why_not = "not every member has out-of-fold predictions to tune the ensemble on"
    if all((p / OOF_FILE).is_file() for p in paths):
        first = own.get(paths[0])
        metric = first.metric if first is not None and first.metric else "birdclef2022"
        try:
            y_true, y_score, k = ensemble_oof(paths, classes)
        except RunError as exc:  # a torn table must not block the submission: the next rule applies
            why_not = f"the ensemble's out-of-fold predictions are unusable: {exc}"
        else:
            thr = tune_thresholds(y_true, y_score, list(classes), metric=metric,
                                  source=f"ensemble OOF of {names}")
            return EnsembleThresholds(thr, f"tuned ({metric}) on the ensemble's out-of-fold predictions:"
                                           f" {len(y_true)} recordings, each the mean of the members that"
                                           f" validated on it ({k} members)")
    if own and len(own) == len(paths):
        per_class = {c: float(np.mean([t.for_classes([c])[0] for t in own.values()])) for c in classes}
        glob = float(np.mean([t.global_threshold for t in own.values()]))
        thr = Thresholds(classes=list(classes), global_threshold=glob, per_class=per_class, method="mean",
                         metric=next(iter(own.values())).metric, source=f"mean of the thresholds of {names}")
        return EnsembleThresholds(thr, f"the mean of the {len(paths)} members' own thresholds, per class ({why_not})")
    if own:
        (p, thr), = list(own.items())[:1]
        return EnsembleThresholds(thr, f"{p.name}'s thresholds.json, the only member that has one: tune the others"
                                       " (or submit them alone) for thresholds made for the ensemble")
    return EnsembleThresholds(None, "no member has thresholds.json or out-of-fold predictions")
