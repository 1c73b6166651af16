"""Competition metrics for multi-label bird detection (BirdCLEF 2021–2025), numpy/sklearn only.

Conventions used by every function here:

* `y_true` is an (N, C) array of 0/1 (or bool) labels, one row per 5-s window, one column per
  species; `y_score` / `y_prob` is an (N, C) array of probabilities in the same layout.
* A probability counts as a detection when `score >= threshold` (greater-or-equal, so that a
  quantile threshold taken from the scores themselves selects the row that defines it).
* Undefined values are `float("nan")`, never an exception, so the training loop can log every
  epoch even when a validation fold lacks some species.

Sources: /work/shared/notes/birdclef-reference.md (competition evaluation texts and the official
Kaggle metric code of 2023 and 2024).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from birdcore.errors import ConfigError, SubmissionError


# sklearn.metrics and scipy.stats are imported on first use: together ~2 s, which every app page
# importing thresholds (through this module) paid before drawing anything, metric or not.
def _f1_score(*args, **kwargs):
    from sklearn.metrics import f1_score

    return f1_score(*args, **kwargs)


def _average_precision_score(*args, **kwargs):
    from sklearn.metrics import average_precision_score

    return average_precision_score(*args, **kwargs)


def _rankdata(*args, **kwargs):
    from scipy.stats import rankdata

    return rankdata(*args, **kwargs)


__all__ = [
    "binarize",
    "micro_f1",
    "macro_f1",
    "birdclef2022_per_class",
    "birdclef2022_score",
    "birdclef2022_score_table",
    "align_tables",
    "coerce_bool_target",
    "bird_from_row_id",
    "padded_cmap",
    "per_class_roc_auc",
    "macro_roc_auc",
    "per_class_report",
    "compute_all",
    "METRICS",
    "get_metric",
]


# ----------------------------------------------------------------------------------- helpers
def _as_2d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a.to_numpy() if isinstance(a, (pd.DataFrame, pd.Series)) else a)
    if arr.ndim == 1:  # a single species given as a vector
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (rows, species) array, got shape {arr.shape}")
    return arr


def score_pair(y_true: Any, y_other: Any, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    t = _as_2d(y_true, "y_true").astype(bool)
    o = _as_2d(y_other, other_name)
    if t.shape != o.shape:
        raise ValueError(f"y_true has shape {t.shape} but {other_name} has shape {o.shape}")
    return t, o


def _threshold_vector(threshold: Any, n_classes: int, classes: Sequence[str] | None = None) -> np.ndarray | float:
    """Scalar, per-class array, or a `Thresholds` object (duck-typed to avoid a circular import).

    A `Thresholds` is laid out in the order of `classes` when given, else in its own class order.
    """
    if hasattr(threshold, "for_classes") and hasattr(threshold, "classes"):
        vec = np.asarray(threshold.for_classes(threshold.classes if classes is None else classes), dtype=float)
    elif np.ndim(threshold) == 0:
        return float(threshold)
    else:
        vec = np.asarray(threshold, dtype=float).ravel()
    if vec.shape != (n_classes,):
        raise ValueError(f"threshold has {vec.size} values but there are {n_classes} classes")
    return vec


def binarize(y_score: Any, threshold: Any = 0.5) -> np.ndarray:
    """Boolean detections `y_score >= threshold`; `threshold` scalar or one value per column."""
    s = _as_2d(y_score, "y_score").astype(float)
    return s >= _threshold_vector(threshold, s.shape[1])


# ------------------------------------------------------------------------------------- F1
def micro_f1(y_true: Any, y_prob: Any, threshold: Any = 0.5) -> float:
    """Micro F1 = 2·ΣTP / (2·ΣTP + ΣFP + ΣFN), pooled over every (row, species) cell.

    BirdCLEF 2021 scored a row-wise micro F1 (with a `nocall` label; not modelled here).
    `sklearn.metrics.f1_score(average="micro", zero_division=0)`: 0.0 when nothing is true and
    nothing is predicted.
    """
    t, p = score_pair(y_true, y_prob, "y_prob")
    pred = binarize(p, threshold)
    return float(_f1_score(t, pred, average="micro", zero_division=0))


def macro_f1(y_true: Any, y_prob: Any, threshold: Any = 0.5) -> float:
    """Macro F1 = mean over species of 2·TP / (2·TP + FP + FN).

    `sklearn.metrics.f1_score(average="macro", zero_division=0)`. Pitfall: a species with no
    positive rows and no detections (TP+FP+FN = 0) counts as F1 = 0 and still enters the mean.
    """
    t, p = score_pair(y_true, y_prob, "y_prob")
    pred = binarize(p, threshold)
    return float(_f1_score(t, pred, average="macro", zero_division=0))


# --------------------------------------------------------------------------- BirdCLEF 2022
def birdclef2022_per_class(y_true: Any, y_pred_bool: Any, skip_empty: bool = True) -> np.ndarray:
    """Per-species ½·(TPR + TNR) (balanced accuracy); NaN for species that do not count.

    TPR = TP / #positive rows, TNR = TN / #negative rows of that species.

    * Both classes present: ½·(TPR + TNR).
    * `skip_empty=True` (default): a species with no positive rows (TPR undefined) or no negative
      rows (TNR undefined) is NaN, i.e. dropped from the mean.
    * `skip_empty=False`: the literal "weighted accuracy" reading of the 2022 evaluation text —
      each species carries the same total weight, split equally between its positives and
      negatives; when one side is empty its rows carry the species' whole weight, so the
      contribution is TNR alone (no positives) or TPR alone (no negatives).
    * A species with no rows at all (N = 0) is always NaN.
    """
    t, p = score_pair(y_true, y_pred_bool, "y_pred_bool")
    p = p.astype(bool)
    pos = t.sum(0)
    neg = t.shape[0] - pos
    tp = (t & p).sum(0)
    tn = (~t & ~p).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.where(pos > 0, tp / np.maximum(pos, 1), np.nan)
        tnr = np.where(neg > 0, tn / np.maximum(neg, 1), np.nan)
    out = 0.5 * (tpr + tnr)
    if not skip_empty:
        out = np.where(pos == 0, tnr, out)
        out = np.where(neg == 0, tpr, out)
    return out.astype(float)


def birdclef2022_score(y_true: Any, y_pred_bool: Any, skip_empty: bool = True) -> float:
    """BirdCLEF 2022 score: mean over species of ½·(TPR + TNR) (macro balanced accuracy).

    Source: the 2022 evaluation text ("weighted classification accuracy ... all of the species are
    assigned the same total weight and the true negatives and true positives for each species have
    the same weight"). All-True and all-False predictions both score 0.5. See
    `birdclef2022_per_class` for `skip_empty`; NaN when no species counts.
    """
    per = birdclef2022_per_class(y_true, y_pred_bool, skip_empty)
    per = per[~np.isnan(per)]
    return float(per.mean()) if per.size else float("nan")


def bird_from_row_id(row_ids: pd.Series) -> pd.Series:
    """Species code from a 2022 row id `<file_id>_<bird>_<end_time>` (file ids contain `_`).

    Raises SubmissionError listing the first few ids that do not have that shape.
    """
    bird = row_ids.astype(str).str.extract(r"^.+_([^_]+)_\d+$", expand=False)
    bad = bird.isna().to_numpy()
    if bad.any():
        first = row_ids[bad].head(5).tolist()
        raise SubmissionError(
            f"{int(bad.sum())} row_id(s) are not '<file_id>_<bird>_<end_time>', e.g. {first}; "
            "pass a 'bird' column instead"
        )
    return bird.astype(str).rename("bird")


def coerce_bool_target(values: pd.Series, what: str, error: type[Exception] = SubmissionError) -> np.ndarray:
    """Leniently read a target column: bools, 0/1, or the strings True/False (any case).

    For ground-truth tables and already-written CSVs. `validate_submission` is stricter.
    """
    if values.dtype == bool:
        return values.to_numpy()
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    as_text = values.map(lambda v: str(v).strip().lower() if v is not None else "")
    out = as_text.map(mapping)
    bad = out.isna()
    if bad.any():
        first = values[bad.to_numpy()].head(5).tolist()
        raise error(f"{what}: {int(bad.sum())} target value(s) are not True/False, e.g. {first}")
    return out.astype(bool).to_numpy()


def align_tables(
    solution_df: pd.DataFrame, submission_df: pd.DataFrame, scored: Iterable[str] | None = None
) -> pd.DataFrame:
    """Join a (row_id, target[, bird]) truth table with a (row_id, target) submission on row_id.

    Returns columns row_id, bird, y_true, y_pred (bool) in the truth table's order. The bird comes
    from a `bird` column of the truth table if present, else it is parsed from row_id. With
    `scored`, rows of other birds are dropped first (Kaggle 2022 dropped un-scored rows).
    Raises SubmissionError on missing columns, duplicated row_ids, or rows missing from / extra in
    the submission (count and first few ids).
    """
    for name, df in (("solution", solution_df), ("submission", submission_df)):
        missing_cols = {"row_id", "target"} - set(df.columns)
        if missing_cols:
            raise SubmissionError(f"{name} table lacks column(s) {sorted(missing_cols)}; has {list(df.columns)}")
        dup = df["row_id"].duplicated(keep=False)
        if dup.any():
            first = df.loc[dup, "row_id"].drop_duplicates().head(5).tolist()
            raise SubmissionError(f"{name} table has {int(dup.sum())} rows with duplicated row_id, e.g. {first}")
    sol = solution_df.copy()
    sol["row_id"] = sol["row_id"].astype(str)
    bird = sol["bird"].astype(str) if "bird" in sol.columns else bird_from_row_id(sol["row_id"])
    sol = pd.DataFrame({"row_id": sol["row_id"].to_numpy(), "bird": bird.to_numpy(), "target": sol["target"].to_numpy()})
    sub = pd.DataFrame({"row_id": submission_df["row_id"].astype(str).to_numpy(),
                        "target": submission_df["target"].to_numpy()})
    sol_ids, sub_ids = set(sol["row_id"]), set(sub["row_id"])
    missing = [r for r in sol["row_id"] if r not in sub_ids]
    extra = [r for r in sub["row_id"] if r not in sol_ids]
    if missing or extra:
        raise SubmissionError(
            f"submission rows differ from the solution: {len(missing)} missing (e.g. {missing[:5]}), "
            f"{len(extra)} extra (e.g. {extra[:5]})"
        )
    if scored is not None:
        sol = sol[sol["bird"].isin(set(scored))]
    merged = sol.merge(sub, on="row_id", how="left", suffixes=("_true", "_pred"), validate="one_to_one")
    return pd.DataFrame({
        "row_id": merged["row_id"].to_numpy(),
        "bird": merged["bird"].to_numpy(),
        "y_true": coerce_bool_target(merged["target_true"], "solution"),
        "y_pred": coerce_bool_target(merged["target_pred"], "submission"),
    })


def birdclef2022_score_table(
    solution_df: pd.DataFrame,
    submission_df: pd.DataFrame,
    skip_empty: bool = True,
    scored: Iterable[str] | None = None,
) -> float:
    """BirdCLEF 2022 score on Kaggle-shaped (row_id, target) tables.

    Each species is scored on its own rows only (test.csv has one row per scored bird per window):
    ½·(TPR + TNR) per species, then the mean over species; `skip_empty` as in
    `birdclef2022_per_class`. See `align_tables` for the join and its errors.
    """
    al = align_tables(solution_df, submission_df, scored)
    per = []
    for _, g in al.groupby("bird", sort=True):
        per.append(birdclef2022_per_class(g["y_true"].to_numpy(), g["y_pred"].to_numpy(), skip_empty)[0])
    arr = np.asarray(per, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


# ------------------------------------------------------------------------ ranking metrics
def padded_cmap(y_true: Any, y_score: Any, padding: int = 5) -> float:
    """BirdCLEF 2023 padded cmAP: append `padding` rows of ones to BOTH truth and scores, then
    `sklearn.metrics.average_precision_score(average="macro")`.

    Source: the official 2023 Kaggle metric. The padding keeps species without positives defined
    (each gets ≥ `padding` positives ranked first) and shrinks the penalty of rare species.
    Pitfall: padding with zeros is a common mistake and gives different numbers.
    """
    t, s = score_pair(y_true, y_score, "y_score")
    ones = np.ones((int(padding), t.shape[1]))
    t_pad = np.vstack([t.astype(float), ones])
    s_pad = np.vstack([s.astype(float), ones])
    if t_pad.shape[0] == 0:
        return float("nan")
    return float(_average_precision_score(t_pad, s_pad, average="macro"))


def per_class_roc_auc(y_true: Any, y_score: Any) -> np.ndarray:
    """ROC-AUC per column via the rank-sum (Mann–Whitney U) identity; NaN for one-class columns.

    AUC = (Σ ranks of positives − P·(P+1)/2) / (P·Nneg), with average ranks for ties — identical
    to `sklearn.metrics.roc_auc_score` but vectorised over all columns (fast for every epoch).
    """
    t, s = score_pair(y_true, y_score, "y_score")
    pos = t.sum(0).astype(float)
    neg = t.shape[0] - pos
    if t.shape[0] == 0:
        return np.full(t.shape[1], np.nan)
    ranks = _rankdata(s.astype(float), axis=0, method="average")
    rank_sum = (ranks * t).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def macro_roc_auc(y_true: Any, y_score: Any) -> float:
    """BirdCLEF 2024/2025: mean ROC-AUC over species with ≥ 1 positive (and ≥ 1 negative) row.

    The official metric drops columns without positives; columns without negatives are dropped
    too because AUC is undefined there. NaN when no column qualifies.
    """
    auc = per_class_roc_auc(y_true, y_score)
    auc = auc[~np.isnan(auc)]
    return float(auc.mean()) if auc.size else float("nan")


# ------------------------------------------------------------------------------- reports
def per_class_report(y_true: Any, y_score: Any, classes: Sequence[str], thresholds: Any = 0.5) -> pd.DataFrame:
    """One row per species: species, support (#positive rows), precision, recall, f1, ap, auc,
    threshold, balanced_acc (½·(TPR+TNR)).

    NaN where undefined: precision without detections, recall without positives, f1 when
    TP+FP+FN = 0, ap without positives, auc/balanced_acc without positives or negatives.
    """
    t, s = score_pair(y_true, y_score, "y_score")
    if len(classes) != t.shape[1]:
        raise ValueError(f"{len(classes)} class names for {t.shape[1]} columns")
    thr = np.broadcast_to(_threshold_vector(thresholds, t.shape[1], classes), (t.shape[1],)).astype(float)
    pred = s >= thr
    tp = (t & pred).sum(0)
    fp = (~t & pred).sum(0)
    fn = (t & ~pred).sum(0)
    support = t.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    ap = np.full(t.shape[1], np.nan)
    for c in np.flatnonzero(support > 0):
        ap[c] = _average_precision_score(t[:, c], s[:, c])
    return pd.DataFrame({
        "species": list(classes),
        "support": support.astype(int),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ap": ap,
        "auc": per_class_roc_auc(t, s),
        "threshold": thr,
        "balanced_acc": birdclef2022_per_class(t, pred, skip_empty=True),
    })


def compute_all(y_true: Any, y_score: Any, classes: Sequence[str], threshold: Any = 0.5) -> dict[str, float]:
    """Every headline metric at once, for per-epoch logging.

    `threshold`: a number, one number per class, or a `Thresholds` (laid out in `classes` order).
    Keys: micro_f1, macro_f1, birdclef2022 (skip_empty=True), cmap_pad5, macro_auc. Values are
    Python floats; NaN where undefined (e.g. no species with positives for birdclef2022/AUC).
    """
    t, s = score_pair(y_true, y_score, "y_score")
    if len(classes) != t.shape[1]:
        raise ValueError(f"{len(classes)} class names for {t.shape[1]} columns")
    s = s.astype(float)
    pred = s >= _threshold_vector(threshold, s.shape[1], classes)
    return {
        "micro_f1": float(_f1_score(t, pred, average="micro", zero_division=0)),
        "macro_f1": float(_f1_score(t, pred, average="macro", zero_division=0)),
        "birdclef2022": birdclef2022_score(t, pred, skip_empty=True),
        "cmap_pad5": padded_cmap(t, s, padding=5),
        "macro_auc": macro_roc_auc(t, s),
    }


# ------------------------------------------------------------------------------ registry
MetricFn = Callable[[Any, Any, Any], float]


class _MetricRegistry(dict):
    """A dict whose unknown-key lookups raise ConfigError listing the valid names."""

    def __missing__(self, key: str) -> MetricFn:
        raise ConfigError(f"unknown metric {key!r}; choose one of {sorted(self)}")


def _bc22(y_true: Any, y_score: Any, thresholds: Any = 0.5) -> float:
    return birdclef2022_score(y_true, binarize(y_score, thresholds))


# Threshold-dependent metrics selectable by name: fn(y_true, y_score, thresholds) -> float.
METRICS: dict[str, MetricFn] = _MetricRegistry(
    birdclef2022=_bc22,
    micro_f1=micro_f1,
    macro_f1=macro_f1,
)


def get_metric(name: str) -> MetricFn:
    """Look a metric up by name; ConfigError listing the valid names when unknown."""
    return METRICS[name]
