"""Everything behind the threshold page: per-class score distributions and curves, overall scores
for a set of thresholds, and tuning thresholds of a run from its out-of-fold (OOF) predictions.

A run's `oof_predictions.parquet` holds one row per validation recording with `p:<code>`
probabilities and `t:<code>` 0/1 targets (written by the training loop at its best epoch).
`read_oof` turns it into `(y_true, y_score, classes)` (`read_oof_rows` adds each row's `filename`);
the functions below take those arrays, so they work as well on predictions from anywhere else.

Conventions (the same as `birdcore.evaluation.metrics` and `birdcore.evaluation.thresholds`):

* a detection is `score >= threshold`;
* per-class values are NaN where undefined (precision without detections, recall without
  positives, ½(TPR+TNR) without positives or without negatives);
* the "BirdCLEF 2022" value of one class is its balanced accuracy ½(TPR + TNR); the competition
  score is their mean over classes (`birdcore.evaluation.metrics.birdclef2022_score`).

`tune_run_thresholds(run, metric)` is what `birdcore tune-thresholds` and the app's "optimise
all" call: tune on the OOF table, save `thresholds.json` into the run (atomically), return the
`Thresholds` and a small score summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from birdcore.errors import ConfigError, RunError
from birdcore.evaluation.metrics import METRICS
from birdcore.evaluation.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    class_thresholds,
    load_thresholds,
    save_thresholds,
    tune_thresholds,
)

__all__ = [
    "TUNE_METRICS", "CURVE_METRICS", "Oof", "read_oof", "read_oof_rows", "oof_epoch", "order_classes",
    "score_histograms", "default_curve_grid", "threshold_curve", "operating_point", "pr_curve", "overall_scores",
    "make_thresholds", "load_run_thresholds", "save_run_thresholds", "tune_run_thresholds",
]

TUNE_METRICS = ("birdclef2022", "micro_f1", "macro_f1")  # threshold-dependent, selectable by name
CURVE_METRICS = ("f1", "birdclef2022", "precision", "recall")  # per-class, columns of `threshold_curve`


class Oof(NamedTuple):
    """Out-of-fold predictions: (N, C) bool targets, (N, C) float scores, the C class codes."""

    y_true: np.ndarray
    y_score: np.ndarray
    classes: list[str]


# ---------------------------------------------------------------------------------- reading
def _run_path(run: Any) -> Path:
    """A RunFolder (duck-typed: `.path`) or a run folder path."""
    return Path(run.path if hasattr(run, "path") else run)


def read_oof(path: str | Path) -> Oof:
    """Read an OOF table (`p:<code>` probabilities, `t:<code>` 0/1 targets) into `Oof`.

    `path` is the parquet file or a run folder (its `oof_predictions.parquet`). Classes come in
    the file's column order. RunError (naming the file) when the file is missing or unreadable,
    a `p:` column has no `t:` partner, or a score is not a finite number.
    """
    return _read_oof_table(path)[0]


def read_oof_rows(path: str | Path) -> tuple[Oof, list[str]]:
    """`read_oof`, and the recording each row scores (the table's `filename` column, as the
    training loop writes it): for callers that match rows across tables, from one read of the file.

    RunError (naming the file) as `read_oof`, and when the table has no `filename` column.
    """
    oof, df, p = _read_oof_table(path)
    if "filename" not in df.columns:
        raise RunError(f"{p}: no `filename` column to say which recording each row scores")
    return oof, df["filename"].tolist()


def _read_oof_table(path: str | Path) -> tuple[Oof, pd.DataFrame, Path]:
    """(the checked `Oof`, the table as read, the file): the one reader behind `read_oof` and `read_oof_rows`."""
    p = Path(path)
    if p.is_dir():
        p = p / "oof_predictions.parquet"
    if not p.is_file():
        raise RunError(f"{p}: no out-of-fold predictions (a run writes them after its first validated epoch)")
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for a torn or foreign file
        raise RunError(f"{p}: cannot read the OOF table ({type(exc).__name__}: {exc})") from None
    classes = [c[2:] for c in df.columns if isinstance(c, str) and c.startswith("p:")]
    if not classes:
        raise RunError(f"{p}: no `p:<species>` probability columns")
    missing = [c for c in classes if f"t:{c}" not in df.columns]
    if missing:
        raise RunError(f"{p}: probability columns without targets: {', '.join('t:' + c for c in missing[:5])}")
    y_score = df[[f"p:{c}" for c in classes]].to_numpy(dtype=float)
    bad = ~np.isfinite(y_score)
    if bad.any():
        raise RunError(f"{p}: {int(bad.sum())} probabilities are NaN or infinite (did training diverge?)")
    y_true = df[[f"t:{c}" for c in classes]].to_numpy(dtype=float) >= 0.5
    return Oof(y_true, y_score, classes), df, p


def oof_epoch(path: str | Path) -> int | None:
    """The (0-based) epoch whose predictions the OOF table holds; None when it does not say."""
    p = Path(path)
    if p.is_dir():
        p = p / "oof_predictions.parquet"
    try:
        col = pd.read_parquet(p, columns=["epoch"])["epoch"]
    except Exception:
        return None
    return int(col.iloc[0]) if len(col) else None


def order_classes(classes: Sequence[str], scored: Iterable[str] = ()) -> list[str]:
    """Scored species first, then the others; alphabetical within each group."""
    scored = set(scored)
    return sorted(classes, key=lambda c: (c not in scored, c))


# ---------------------------------------------------------------------------- one class
def _one_class(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).astype(float).ravel() >= 0.5
    s = np.asarray(y_score, dtype=float).ravel()
    if t.shape != s.shape:
        raise ValueError(f"y_true has {t.size} values but y_score has {s.size}")
    return t, s


def score_histograms(y_true: Any, y_score: Any, bins: int = 20) -> pd.DataFrame:
    """Scores of one class's positive and negative rows in `bins` equal bins over [0, 1].

    Columns: bin_start, bin_end, positives, negatives (counts), pos_share, neg_share (each
    group's counts divided by its size, so a handful of positives stays visible next to many
    negatives; NaN for an empty group). Bins are [start, end) except the last, which includes 1.
    """
    if bins < 1:
        raise ValueError("bins must be >= 1")
    t, s = _one_class(y_true, y_score)
    edges = np.linspace(0.0, 1.0, bins + 1)
    s = np.clip(s, 0.0, 1.0)
    pos = np.histogram(s[t], bins=edges)[0]
    neg = np.histogram(s[~t], bins=edges)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        pos_share = pos / pos.sum() if pos.sum() else np.full(bins, np.nan)
        neg_share = neg / neg.sum() if neg.sum() else np.full(bins, np.nan)
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "positives": pos, "negatives": neg,
                         "pos_share": pos_share, "neg_share": neg_share})


def default_curve_grid(step: float = 0.005) -> np.ndarray:
    """0, step, …, 1 (201 thresholds by default), rounded so that 0.3 is exactly 0.3."""
    n = int(round(1.0 / step))
    return np.round(np.linspace(0.0, 1.0, n + 1), 6)


def threshold_curve(y_true: Any, y_score: Any, thresholds: Any = None) -> pd.DataFrame:
    """Confusion counts and metrics of one class at each threshold (`score >= threshold`).

    Columns: threshold, tp, fp, fn, tn, precision = TP/(TP+FP), recall = TPR = TP/P,
    tnr = TN/Nneg, f1 = 2TP/(2TP+FP+FN), birdclef2022 = ½(TPR+TNR). Default thresholds:
    `default_curve_grid()`. Sorting each group once makes every threshold a binary search, so a
    class of 100k rows costs milliseconds.
    """
    t, s = _one_class(y_true, y_score)
    thr = default_curve_grid() if thresholds is None else np.asarray(thresholds, dtype=float).ravel()
    pos_sorted, neg_sorted = np.sort(s[t]), np.sort(s[~t])
    n_pos, n_neg = pos_sorted.size, neg_sorted.size
    tp = n_pos - np.searchsorted(pos_sorted, thr, side="left")  # rows with score >= thr
    fp = n_neg - np.searchsorted(neg_sorted, thr, side="left")
    fn, tn = n_pos - tp, n_neg - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.full(thr.shape, np.nan) if n_pos == 0 else tp / n_pos
        tnr = np.full(thr.shape, np.nan) if n_neg == 0 else tn / n_neg
        f1 = np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    return pd.DataFrame({"threshold": thr, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision,
                         "recall": recall, "tnr": tnr, "f1": f1, "birdclef2022": 0.5 * (recall + tnr)})


def operating_point(y_true: Any, y_score: Any, threshold: float) -> dict[str, float]:
    """`threshold_curve` at one threshold, as a dict (the point marked on the page's charts)."""
    row = threshold_curve(y_true, y_score, [threshold]).iloc[0]
    return {k: (int(v) if k in ("tp", "fp", "fn", "tn") else float(v)) for k, v in row.items()}


def pr_curve(y_true: Any, y_score: Any) -> pd.DataFrame:
    """Precision–recall curve of one class: one point per distinct score, highest threshold first.

    Columns threshold, precision, recall, tp, fp — the points of
    `sklearn.metrics.precision_recall_curve` without its artificial (recall 0, precision 1) end.
    Empty when the class has no positive rows (recall undefined).
    """
    t, s = _one_class(y_true, y_score)
    n_pos = int(t.sum())
    if n_pos == 0 or s.size == 0:
        return pd.DataFrame({"threshold": [], "precision": [], "recall": [], "tp": [], "fp": []})
    order = np.argsort(-s, kind="mergesort")
    s_desc, t_desc = s[order], t[order]
    # The last row of each run of equal scores: predicting `>= that score` takes the whole run.
    last = np.r_[np.flatnonzero(np.diff(s_desc) != 0), s_desc.size - 1]
    tp = np.cumsum(t_desc)[last]
    fp = (last + 1) - tp
    return pd.DataFrame({"threshold": s_desc[last], "precision": tp / (tp + fp), "recall": tp / n_pos,
                         "tp": tp.astype(int), "fp": fp.astype(int)})


# ------------------------------------------------------------------------------ all classes
def overall_scores(y_true: Any, y_score: Any, classes: Sequence[str], global_threshold: float,
                   per_class: Mapping[str, float] | None = None, metric: str = "birdclef2022") -> dict[str, float]:
    """`metric` (a key of `birdcore.evaluation.metrics.METRICS`) over all classes, three ways.

    Keys as in `Thresholds.scores`: "at_0.5" (every class at 0.5), "global" (every class at
    `global_threshold`), "per_class" (each class at its `per_class` value, else the global one).
    """
    fn = METRICS[metric]  # ConfigError naming the valid metrics
    vec = class_thresholds(classes, global_threshold, per_class)
    if vec.size != np.shape(y_score)[-1]:
        raise ValueError(f"{len(classes)} class names for {np.shape(y_score)[-1]} score columns")
    return {"at_0.5": float(fn(y_true, y_score, 0.5)),
            "global": float(fn(y_true, y_score, float(global_threshold))),
            "per_class": float(fn(y_true, y_score, vec))}


def make_thresholds(y_true: Any, y_score: Any, classes: Sequence[str], global_threshold: float,
                    per_class: Mapping[str, float] | None = None, metric: str = "birdclef2022",
                    method: str = "fixed", source: str = "") -> Thresholds:
    """A `Thresholds` for hand-set values, its `scores` measured on (y_true, y_score).

    Every class gets an explicit per-class value (its own, else the global), so the saved file
    means the same thing to any reader. `method`: "grid" when the values came from the tuner
    unchanged, "fixed" when set by hand.
    """
    vec = class_thresholds(classes, global_threshold, per_class)
    thr = Thresholds(classes=list(classes), global_threshold=float(global_threshold),
                     per_class={c: float(v) for c, v in zip(classes, vec)}, metric=metric, method=method,
                     source=source)
    thr.scores = overall_scores(y_true, y_score, classes, global_threshold, per_class, metric)
    return thr


# ---------------------------------------------------------------------------------- runs
def load_run_thresholds(run: Any) -> Thresholds | None:
    """The run's `thresholds.json`, or None when it has none. ConfigError when it is invalid."""
    p = _run_path(run) / THRESHOLDS_FILE
    return load_thresholds(p) if p.is_file() else None


def save_run_thresholds(run: Any, thr: Thresholds) -> Path:
    """Write `thr` to the run's `thresholds.json` atomically; returns the path."""
    return save_thresholds(_run_path(run) / THRESHOLDS_FILE, thr)


def _comparable_config(folder: Path) -> tuple[dict, list]:
    """(config without the fields a cross-validation varies, classes) of a run folder."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{folder / 'config.json'}: cannot read the run's config ({exc})") from None
    classes = cfg.pop("classes", [])
    for key in ("name", "data_dir", "created_at", "run_id"):
        cfg.pop(key, None)
    cfg.get("train", {}).pop("fold", None)
    return cfg, classes


def _pooled_oof(target: Path, sources: list[Path]) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """The OOF tables of `sources` (e.g. the folds of a cross-validation) pooled, for a run of the
    same config trained on all data (`train.fold=-1`), which has no OOF of its own."""
    want_cfg, want_classes = _comparable_config(target)
    trues, scores = [], []
    for src in sources:
        cfg, classes = _comparable_config(src)
        if classes != want_classes:
            raise ConfigError(f"{src}: its classes differ from {target.name}'s; thresholds come from a run of the same data")
        if cfg != want_cfg:
            diff = sorted(k for k in set(cfg) | set(want_cfg) if cfg.get(k) != want_cfg.get(k))
            raise ConfigError(f"{src}: its config differs from {target.name}'s in {', '.join(diff)} (only train.fold"
                              " may differ)")
        y_true, y_score, oof_classes = read_oof(src)
        order = [oof_classes.index(c) for c in want_classes] if oof_classes != want_classes else slice(None)
        trues.append(y_true[:, order])
        scores.append(y_score[:, order])
    source = "pooled OOF of " + ", ".join(s.name for s in sources)
    return np.concatenate(trues), np.concatenate(scores), list(want_classes), source


def tune_run_thresholds(run: Any, metric: str = "birdclef2022", *, method: str = "grid", min_positives: int = 3,
                        quantile: float = 0.25, grid: Any = None,
                        save: bool = True, oof_from: Sequence[Any] = ()) -> tuple[Thresholds, dict[str, Any]]:
    """Tune thresholds on a run's OOF predictions, save them as its `thresholds.json`.

    `run`: a RunFolder or a run folder path. `metric`, `method`, `min_positives`, `quantile`,
    `grid`: as in `birdcore.evaluation.thresholds.tune_thresholds`. With `save=False` nothing is written.
    `oof_from`: other runs (the folds of a cross-validation with the same config) whose pooled
    out-of-fold predictions tune the thresholds of `run` (a `train.fold=-1` run has none of its own).

    Returns (thresholds, summary); summary = {"run", "metric", "method", "global_threshold",
    "at_0.5", "global", "per_class" (the metric three ways, on the OOF data — optimistic),
    "recordings", "classes", "tuned_classes" (classes whose threshold differs from the global
    one), "epoch" (of the OOF predictions), "path" (of thresholds.json, None when not saved)}.
    """
    if metric not in TUNE_METRICS:
        raise ConfigError(f"metric: {metric!r} is not one of {', '.join(TUNE_METRICS)}")
    folder = _run_path(run)
    if oof_from:
        y_true, y_score, classes, source = _pooled_oof(folder, [_run_path(r) for r in oof_from])
        epoch = None
    else:
        oof_path = folder / "oof_predictions.parquet"
        y_true, y_score, classes = read_oof(oof_path)
        epoch = oof_epoch(oof_path)
        source = f"{folder.name}/oof_predictions.parquet" + (f" (epoch {epoch})" if epoch is not None else "")
    thr = tune_thresholds(y_true, y_score, classes, metric=metric, grid=grid, min_positives=min_positives,
                          method=method, quantile=quantile, source=source)
    path = save_run_thresholds(folder, thr) if save else None
    tuned = int(np.sum(np.abs(thr.for_classes(classes) - thr.global_threshold) > 1e-12))
    summary = {"run": folder.name, "metric": metric, "method": method, "global_threshold": thr.global_threshold,
               **thr.scores, "recordings": int(y_true.shape[0]), "classes": len(classes), "tuned_classes": tuned,
               "epoch": epoch, "path": str(path) if path else None}
    return thr, summary
