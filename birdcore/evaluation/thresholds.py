"""Decision thresholds: tune on out-of-fold predictions, save/load as JSON, apply.

Why thresholds matter: the BirdCLEF 2022 score is macro balanced accuracy, so recall of a rare
species' few positives weighs as much as all of its negatives; the best thresholds are far below
0.5 (0.045 in the seed, 0.05–0.3 for the top teams; see /work/shared/notes/birdclef-reference.md).

A detection is `score >= threshold` everywhere (same rule as `birdcore.evaluation.metrics.binarize`).

Tuning is vectorised: every score is binned once against the sorted grid (`searchsorted`), per
class histograms of positives / all rows are reverse-cumsummed, which gives TP and FP for every
(class, grid threshold) pair in O(N·C·log G) without an (N, C, G) tensor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from birdcore.atomic_io import atomic_write_json
from birdcore.errors import ConfigError, not_found_message
from birdcore.evaluation.metrics import METRICS, score_pair

__all__ = ["THRESHOLDS_FILE", "Thresholds", "apply_thresholds", "check_thresholds_cover", "class_thresholds",
           "default_grid", "load_thresholds", "save_thresholds", "threshold_vector", "tune_thresholds",
           "uncovered_classes"]

THRESHOLDS_FILE = "thresholds.json"  # in a run folder and an exported model folder
SCHEMA_VERSION = 1
METHODS = ("grid", "quantile", "fixed")
# made from other thresholds, not tuned: the per-class mean of an ensemble's members' thresholds
DERIVED_METHODS = ("mean",)
_REQUIRED = ("schema_version", "classes", "global_threshold", "per_class", "metric", "method")
_OPTIONAL = ("quantile", "scores", "source")


def default_grid() -> np.ndarray:
    """0.005–0.95: step 0.0025 below 0.1, 0.005 up to 0.3, 0.01 above (dense where optima lie)."""
    parts = [np.arange(0.005, 0.1, 0.0025), np.arange(0.1, 0.3, 0.005), np.arange(0.3, 0.9501, 0.01)]
    return np.unique(np.round(np.concatenate(parts), 6))


# ------------------------------------------------------------------------------ dataclass
def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_prob(v: Any, where: str, name: str, allow_none: bool = False) -> float:
    if v is None and allow_none:
        return float("nan")
    if not _is_num(v):
        raise ConfigError(f"{where}: {name}: expected a number, got {v!r}")
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ConfigError(f"{where}: {name}: {v!r} is outside [0, 1]")
    return float(v)


def _validate(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Type- and range-check every field; return normalised values (ConfigError names the field)."""
    if type(d.get("schema_version")) is not int or d.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema_version: expected {SCHEMA_VERSION}, got {d.get('schema_version')!r}")
    classes = d["classes"]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) and c for c in classes):
        raise ConfigError(f"{where}: classes: expected a list of non-empty strings")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"{where}: classes: contains duplicates")
    out = {"schema_version": SCHEMA_VERSION, "classes": list(classes)}
    out["global_threshold"] = _check_prob(d["global_threshold"], where, "global_threshold")
    per = d["per_class"]
    if not isinstance(per, dict):
        raise ConfigError(f"{where}: per_class: expected a mapping species -> threshold")
    unknown = sorted(set(per) - set(classes))
    if unknown:
        raise ConfigError(f"{where}: per_class: species not in classes: {unknown[:5]}")
    out["per_class"] = {k: _check_prob(v, where, f"per_class.{k}") for k, v in per.items()}
    if not isinstance(d["metric"], str) or d["metric"] not in METRICS:
        raise ConfigError(f"{where}: metric: {d['metric']!r} is not one of {sorted(METRICS)}")
    out["metric"] = d["metric"]
    if d["method"] not in METHODS + DERIVED_METHODS:
        raise ConfigError(f"{where}: method: {d['method']!r} is not one of {list(METHODS + DERIVED_METHODS)}")
    out["method"] = d["method"]
    q = d.get("quantile")
    out["quantile"] = None if q is None else _check_prob(q, where, "quantile")
    scores = d.get("scores", {})
    if not isinstance(scores, dict) or not all(isinstance(k, str) for k in scores):
        raise ConfigError(f"{where}: scores: expected a mapping name -> number")
    out["scores"] = {}
    for k, v in scores.items():  # NaN (undefined score) is stored as JSON null
        v = None if _is_num(v) and math.isnan(v) else v
        out["scores"][k] = _check_prob(v, where, f"scores.{k}", allow_none=True)
    if not isinstance(d.get("source", ""), str):
        raise ConfigError(f"{where}: source: expected a string, got {d.get('source')!r}")
    out["source"] = d.get("source", "")
    return out


def class_thresholds(classes: Sequence[str], global_threshold: float,
                     per_class: dict[str, float] | None = None) -> np.ndarray:
    """One threshold per class in `classes` order: its per-class value, else the global one.

    The one implementation of this rule (`Thresholds.for_classes` and `threshold_vector` call it).
    """
    per_class = per_class or {}
    return np.array([float(per_class.get(c, global_threshold)) for c in classes], dtype=float)


@dataclass
class Thresholds:
    """Tuned thresholds for a list of species, plus how and how well they were tuned.

    `per_class` may omit species: they use `global_threshold`. `scores` holds the tuning metric
    at 0.5 (`at_0.5`), at the global threshold (`global`) and with per-class values (`per_class`),
    measured on the tuning data (optimistic; tune on out-of-fold predictions).
    """

    classes: list[str]
    global_threshold: float
    per_class: dict[str, float] = field(default_factory=dict)
    metric: str = "birdclef2022"
    method: str = "fixed"
    quantile: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    source: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for k, v in _validate(self.__dict__, "Thresholds").items():
            setattr(self, k, v)

    def for_classes(self, classes: Sequence[str]) -> np.ndarray:
        """Thresholds in the order of `classes`; species without a per-class value get the global."""
        return class_thresholds(classes, self.global_threshold, self.per_class)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema_version first; NaN scores become null)."""
        return {
            "schema_version": self.schema_version,
            "classes": list(self.classes),
            "global_threshold": float(self.global_threshold),
            "per_class": {k: float(v) for k, v in self.per_class.items()},
            "metric": self.metric,
            "method": self.method,
            "quantile": None if self.quantile is None else float(self.quantile),
            "scores": {k: (None if math.isnan(v) else float(v)) for k, v in self.scores.items()},
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "thresholds") -> "Thresholds":
        """Strictly build from a dict: unknown/missing keys, wrong types, out-of-range values,
        or a different schema_version raise ConfigError naming `where` and the field."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; expected {list(_REQUIRED + _OPTIONAL)}")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing}")
        return cls(**_validate(d, where))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "thresholds") -> "Thresholds":
        """A thresholds JSON given as bytes (e.g. an upload), strictly validated (ConfigError names `where`)."""
        try:
            raw = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{where}: not a thresholds JSON file ({exc})") from None
        return cls.from_dict(raw, where)


def threshold_vector(thresholds: Thresholds | float, classes: Sequence[str]) -> np.ndarray:
    """Per-class thresholds in `classes` order: a class's own value, else the global one.

    The one place this rule lives; a plain number applies to every class.
    """
    if isinstance(thresholds, Thresholds):
        return thresholds.for_classes(list(classes))
    return np.full(len(classes), float(thresholds))


# ------------------------------------------------------------------------ class coverage
def uncovered_classes(thr: Thresholds, classes: Sequence[str]) -> list[str]:
    """The classes of `classes` (in their order) that `thr` was not made for.

    A file is made for the classes it lists in `classes`, not only those in `per_class`: tuning
    leaves a class with too few positives (`min_positives`) at the global threshold on purpose, and
    such a class is covered. A file listing no class at all is a global-only file, meant for every
    class: it covers all of them.
    """
    if not thr.classes:
        return []
    known = set(thr.classes)
    return [c for c in classes if c not in known]


def _few(names: Sequence[str], k: int = 5) -> str:
    """'a, b, c' or 'a, b, c, d, e…' (the first `k`, an ellipsis when there are more)."""
    return ", ".join(names[:k]) + ("…" if len(names) > k else "")


def check_thresholds_cover(thr: Thresholds, classes: Sequence[str], where: str) -> str | None:
    """Check that thresholds `thr` (read from `where`) were made for the model's `classes`.

    Raises ConfigError when they share no class with `classes` (every class would silently fall
    back to the global threshold), naming `where`, a few of the model's classes missing from it and
    a few of its classes unknown to the model. Returns a warning (for the caller to show) when only
    some classes are covered, else None.
    """
    classes = list(classes)
    missing = uncovered_classes(thr, classes)
    if not classes or not missing:
        return None
    if len(missing) == len(classes):
        unknown = [c for c in thr.classes if c not in set(classes)]
        raise ConfigError(
            f"{where}: these thresholds were made for other classes: none of the model's {len(classes)} classes"
            f" is in it (the model's, missing from it: {_few(missing)}; its own, unknown to the model:"
            f" {_few(unknown)}); use the thresholds tuned for this model, or tune new ones"
            " (birdcore tune-thresholds RUN)")
    return (f"{where} has no threshold for {len(missing)} of {len(classes)} classes ({_few(missing, 3)});"
            f" they use the global threshold {thr.global_threshold:g}")


# ------------------------------------------------------------------------------- tuning
def _grid_counts(t: np.ndarray, s: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP of shape (C, G) for `s >= grid[j]`, by histogramming each score once."""
    n_classes, n_grid = s.shape[1], grid.size
    k = np.searchsorted(grid, s, side="right")  # number of grid values <= score, 0..G
    flat = (np.arange(n_classes)[None, :] * (n_grid + 1) + k).ravel()
    size = n_classes * (n_grid + 1)
    pos_hist = np.bincount(flat, weights=t.ravel().astype(float), minlength=size).reshape(n_classes, -1)
    all_hist = np.bincount(flat, minlength=size).reshape(n_classes, -1).astype(float)
    # score >= grid[j]  <=>  k >= j + 1: reverse cumulative sums, then drop bin 0.
    tp = np.cumsum(pos_hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    pred = np.cumsum(all_hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return tp, pred - tp


def _argmax_mid(vals: np.ndarray) -> np.ndarray:
    """Per row, the middle index among the maximal entries (NaN ignored).

    A plateau of equally good thresholds is common on small data; its middle generalises better
    than either edge.
    """
    v = np.where(np.isnan(vals), -np.inf, vals)
    mask = v >= v.max(axis=1, keepdims=True) - 1e-12
    target = (mask.sum(1) + 1) // 2
    return np.argmax(np.cumsum(mask, axis=1) >= target[:, None], axis=1)


def _per_class_objective(metric: str, tp, fp, pos, neg) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "birdclef2022":  # ½(TPR + TNR); NaN for one-sided species (skipped)
            val = 0.5 * (tp / pos[:, None] + (neg[:, None] - fp) / neg[:, None])
            return np.where(((pos > 0) & (neg > 0))[:, None], val, np.nan)
        fn = pos[:, None] - tp  # F1 with sklearn's zero_division=0
        den = 2 * tp + fp + fn
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)


def _global_objective(metric: str, tp, fp, pos, neg) -> np.ndarray:
    if metric == "micro_f1":
        stp, sfp, sfn = tp.sum(0), fp.sum(0), (pos[:, None] - tp).sum(0)
        den = 2 * stp + sfp + sfn
        return np.where(den > 0, 2 * stp / np.where(den > 0, den, 1), 0.0)
    per = _per_class_objective(metric, tp, fp, pos, neg)
    ok = ~np.isnan(per).all(axis=1)
    return per[ok].mean(0) if ok.any() else np.full(tp.shape[1], np.nan)


def _micro_coordinate_ascent(tp, fp, pos, start: int, eligible: np.ndarray, sweeps: int = 5) -> np.ndarray:
    """Per-class grid indices that greedily raise the pooled micro F1 (monotone, so it terminates)."""
    c_all = np.arange(tp.shape[0])
    idx = np.full(tp.shape[0], start)
    for _ in range(sweeps):
        changed = False
        for c in np.flatnonzero(eligible):
            cur_tp, cur_fp = tp[c_all, idx], fp[c_all, idx]
            o_tp, o_fp = cur_tp.sum() - cur_tp[c], cur_fp.sum() - cur_fp[c]
            o_fn = (pos - cur_tp).sum() - (pos[c] - cur_tp[c])
            num = 2 * (o_tp + tp[c])
            den = num + o_fp + fp[c] + o_fn + (pos[c] - tp[c])
            f = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
            j = int(_argmax_mid(f[None, :])[0])
            if f[j] > f[idx[c]] + 1e-12:
                idx[c], changed = j, True
        if not changed:
            break
    return idx


def tune_thresholds(
    y_true: Any,
    y_score: Any,
    classes: Sequence[str],
    metric: str = "birdclef2022",
    grid: Any = None,
    min_positives: int = 3,
    method: str = "grid",
    quantile: float = 0.25,
    fixed_value: float = 0.5,
    source: str = "",
) -> Thresholds:
    """Tune a global threshold and per-class thresholds on (N, C) labels and scores.

    1. Global: the grid value maximising `metric` (the middle of a tied plateau; 0.5 if the metric
       is undefined everywhere, e.g. no positives at all).
    2. Per class, by `method`:
       * "grid": birdclef2022 → maximise that class's ½(TPR+TNR); macro_f1 → that class's F1;
         micro_f1 → coordinate ascent on the pooled micro F1. Classes with fewer than
         `min_positives` positives (or, for birdclef2022, no negatives) keep the global value.
       * "quantile": threshold = the (1 − q) quantile of the class's scores, i.e. the top
         `quantile` fraction of rows is predicted True (labels unused; all classes).
       * "fixed": every class gets `fixed_value` (also the global); nothing is tuned.
    3. `.scores` = the metric at 0.5, at the global threshold, and with per-class thresholds,
       computed by `birdcore.evaluation.metrics.METRICS[metric]` on the same data (optimistic).
    """
    t, s = score_pair(y_true, y_score, "y_score")
    s = s.astype(float)
    classes = list(classes)
    if len(classes) != t.shape[1]:
        raise ValueError(f"{len(classes)} class names for {t.shape[1]} columns")
    metric_fn = METRICS[metric]  # ConfigError for unknown names
    if method not in METHODS:
        raise ConfigError(f"method: {method!r} is not one of {list(METHODS)}")
    if not np.isfinite(s).all():
        raise ValueError("y_score contains NaN or infinite values")
    g = default_grid() if grid is None else np.unique(np.asarray(grid, dtype=float).ravel())
    if g.size == 0 or not np.isfinite(g).all() or g.min() < 0 or g.max() > 1:
        raise ConfigError("grid: expected a non-empty list of thresholds within [0, 1]")

    pos = t.sum(0).astype(float)
    neg = t.shape[0] - pos
    q_used = None
    if method == "fixed":
        global_thr = _check_prob(fixed_value, "tune_thresholds", "fixed_value")
        per_vec = np.full(len(classes), global_thr)
    else:
        tp, fp = _grid_counts(t, s, g)
        gobj = _global_objective(metric, tp, fp, pos, neg)
        g_idx = int(_argmax_mid(gobj[None, :])[0]) if not np.isnan(gobj).all() else None
        global_thr = float(g[g_idx]) if g_idx is not None else 0.5
        if method == "quantile":
            q_used = _check_prob(quantile, "tune_thresholds", "quantile")
            per_vec = np.clip(np.quantile(s, 1.0 - q_used, axis=0), 0.0, 1.0) if t.shape[0] else np.full(len(classes), global_thr)
        else:
            eligible = pos >= max(int(min_positives), 1)
            if metric == "birdclef2022":
                eligible &= neg > 0
            per_vec = np.full(len(classes), global_thr)
            if metric == "micro_f1":
                if g_idx is not None:
                    per_vec = g[_micro_coordinate_ascent(tp, fp, pos, g_idx, eligible)]
            else:
                best = g[_argmax_mid(_per_class_objective(metric, tp, fp, pos, neg))]
                per_vec = np.where(eligible, best, global_thr)

    thr = Thresholds(
        classes=classes,
        global_threshold=float(global_thr),
        per_class={c: float(v) for c, v in zip(classes, per_vec)},
        metric=metric,
        method=method,
        quantile=q_used,
        source=source,
    )
    thr.scores = {
        "at_0.5": float(metric_fn(t, s, 0.5)),
        "global": float(metric_fn(t, s, thr.global_threshold)),
        "per_class": float(metric_fn(t, s, thr.for_classes(classes))),
    }
    return thr


# --------------------------------------------------------------------------------- I/O
def save_thresholds(path: str | Path, thr: Thresholds) -> Path:
    """Write `thr` as pretty JSON atomically (a crash never leaves a half-written file)."""
    return atomic_write_json(path, thr.to_dict())


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and strictly validate a thresholds JSON; ConfigError names the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(not_found_message(p, "thresholds file")) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read thresholds file ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON (truncated?) at line {e.lineno} column {e.colno}: {e.msg}") from None
    return Thresholds.from_dict(data, where=str(p))


def apply_thresholds(y_score: Any, thr: Thresholds | float, classes: Sequence[str]) -> np.ndarray:
    """Boolean (N, C) detections `y_score >= threshold of that column's class`.

    `classes` names the columns of `y_score` (they may be ordered differently from `thr.classes`;
    classes unknown to `thr` use its global threshold). A plain number applies to every class.
    """
    s = np.asarray(y_score, dtype=float)
    if s.ndim != 2 or s.shape[1] != len(classes):
        raise ValueError(f"y_score has shape {s.shape} but {len(classes)} classes were given")
    vec = threshold_vector(thr, classes)
    return s >= vec[None, :]
