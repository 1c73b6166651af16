"""BirdCLEF 2022 submissions: read test.csv, build / validate / write `row_id,target`, evaluate.

Format (see /work/shared/notes/birdclef-reference.md): `test.csv` has one row per scored bird per
5-s window, `row_id = <file_id>_<bird>_<end_time>`; the submission has exactly those rows, in the
same order, with `target` written as `True`/`False` (as in `sample_submission.csv`).

Missing-prediction policy (`build_submission(missing=...)`): by default ("error") a test row
whose window was not predicted, or whose bird is not a model class, raises SubmissionError — a
silent False would hide a broken inference run. `missing="false"` marks such rows False, logs a
warning and records the counts in `sub.attrs["n_missing_windows"]` / `["n_unknown_birds"]`
(useful when a model deliberately covers only some of the scored birds).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from birdcore.atomic_io import atomic_write_text
from birdcore.data.metadata import TEST_COLUMNS, read_test_table  # noqa: F401  (re-exported)
from birdcore.errors import ConfigError, SubmissionError
from birdcore.evaluation.metrics import align_tables, birdclef2022_per_class
from birdcore.evaluation.thresholds import threshold_vector

__all__ = [
    "TEST_COLUMNS",
    "read_test_table",
    "build_submission",
    "validate_submission",
    "write_submission",
    "evaluate_submission",
]

log = logging.getLogger(__name__)

SUB_COLUMNS = ["row_id", "target"]
_SHOW = 5  # how many offending ids a message lists


def _first(values: Iterable[Any]) -> list:
    out = []
    for v in values:
        out.append(v)
        if len(out) >= _SHOW:
            break
    return out


# -------------------------------------------------------------------------------- test.csv
# ---------------------------------------------------------------------------------- build
def _window_end_times(values: pd.Series) -> np.ndarray:
    et = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(et) | (np.round(et) != et)
    if bad.any():
        raise SubmissionError(f"window_probs.end_time must be whole seconds; {int(bad.sum())} bad, e.g. {_first(values[bad])}")
    return et.astype(np.int64)


def build_submission(
    window_probs: pd.DataFrame,
    test_df: pd.DataFrame,
    thresholds: Any,
    classes: Sequence[str],
    missing: str = "error",
) -> pd.DataFrame:
    """Turn per-window probabilities into the `row_id,target` table for `test_df`.

    `window_probs`: one row per (file_id, end_time) — end_time in whole seconds, the window's end,
    as in test.csv — and one probability column per name in `classes`. `thresholds`: a
    `birdcore.evaluation.thresholds.Thresholds`, one number, or one number per class. A row is True when
    `prob[window, bird] >= threshold[bird]`.

    Returns the rows of `test_df` in the same order, `target` of dtype bool (`.tolist()` yields
    Python bools). Raises SubmissionError on missing class columns, duplicated windows, non-finite
    probabilities, and (with `missing="error"`) test rows without a window prediction or whose
    bird is not in `classes`; see the module docstring for `missing="false"`.
    """
    if missing not in ("error", "false"):
        raise ConfigError(f"missing: {missing!r} is not one of ['error', 'false']")
    classes = [str(c) for c in classes]
    lacking = [c for c in TEST_COLUMNS if c not in test_df.columns]
    if lacking:
        raise SubmissionError(f"test table lacks column(s) {lacking}; read it with read_test_table()")
    lacking = [c for c in ["file_id", "end_time", *classes] if c not in window_probs.columns]
    if lacking:
        raise SubmissionError(f"window_probs lacks {len(lacking)} column(s), e.g. {_first(lacking)}")
    keys = pd.DataFrame({
        "file_id": window_probs["file_id"].astype(str).to_numpy(),
        "end_time": _window_end_times(window_probs["end_time"]),
    })
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        first = _first(map(tuple, keys[dup].drop_duplicates().to_numpy().tolist()))
        raise SubmissionError(f"window_probs has {int(dup.sum())} rows with a duplicated (file_id, end_time), e.g. {first}")
    probs = window_probs[classes].to_numpy(dtype=float)
    if not np.isfinite(probs).all():
        raise SubmissionError(f"window_probs holds {int((~np.isfinite(probs)).sum())} NaN/infinite probabilities")

    detections = probs >= threshold_vector(thresholds, classes)[None, :]

    left = pd.DataFrame({"file_id": test_df["file_id"].astype(str).to_numpy(),
                         "end_time": pd.to_numeric(test_df["end_time"]).astype("int64").to_numpy()})
    w = left.merge(keys.assign(_w=np.arange(len(keys))), on=["file_id", "end_time"], how="left")["_w"].to_numpy()
    c = pd.Index(classes).get_indexer(test_df["bird"].astype(str))
    no_window, unknown = np.isnan(w), c < 0
    row_ids = test_df["row_id"].astype(str).to_numpy()
    if missing == "error" and (no_window.any() or unknown.any()):
        parts = []
        if no_window.any():
            parts.append(f"{int(no_window.sum())} test row(s) have no prediction for their (file_id, end_time), "
                         f"e.g. {_first(row_ids[no_window])}")
        if unknown.any():
            birds = sorted(set(test_df["bird"].astype(str)[unknown]))
            parts.append(f"{int(unknown.sum())} test row(s) name a bird that is not a model class "
                         f"({_first(birds)}), e.g. {_first(row_ids[unknown])}")
        raise SubmissionError("; ".join(parts) + " (`birdcore submit --missing false`, or missing='false' in Python,"
                              " marks them False)")
    ok = ~no_window & ~unknown
    target = np.zeros(len(test_df), dtype=bool)
    target[ok] = detections[w[ok].astype(np.int64), c[ok]]
    sub = pd.DataFrame({"row_id": row_ids, "target": target})
    sub.attrs["n_missing_windows"] = int(no_window.sum())
    sub.attrs["n_unknown_birds"] = int(unknown.sum())
    if not ok.all():
        log.warning("build_submission: %d row(s) without a window prediction and %d with an unknown bird set False",
                    int(no_window.sum()), int(unknown.sum()))
    return sub


# ------------------------------------------------------------------------------- validate
def _bool_problems(target: pd.Series) -> np.ndarray:
    """Mask of entries that are not booleans (strings "True", 0/1, NaN all count as bad)."""
    if target.dtype == bool:
        return np.zeros(len(target), dtype=bool)
    return ~target.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)


def validate_submission(sub: pd.DataFrame, test_df: pd.DataFrame) -> None:
    """Raise SubmissionError unless `sub` is exactly `row_id,target` for the rows of `test_df`.

    Checks: columns are exactly ["row_id", "target"]; no duplicated row_id; no missing or extra
    rows; the same order as test_df; every target a boolean (bool dtype or Python/numpy bools —
    the strings "True"/"False" or 0/1 are rejected). Every failing check is reported in one
    message with counts and the first few offending row_ids.
    """
    if not isinstance(sub, pd.DataFrame):
        raise SubmissionError(f"submission must be a pandas DataFrame, got {type(sub).__name__}")
    if list(sub.columns) != SUB_COLUMNS:
        raise SubmissionError(f"submission columns must be exactly {SUB_COLUMNS}, got {list(sub.columns)}")
    ids = sub["row_id"].astype(str).to_numpy()
    expected = test_df["row_id"].astype(str).to_numpy()
    problems = []
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(f"{int(dup.sum())} rows share a row_id, e.g. {_first(pd.unique(ids[dup]))}")
    want, have = set(expected), set(ids)
    missing = [r for r in expected if r not in have]
    extra = [r for r in ids if r not in want]
    if missing:
        problems.append(f"{len(missing)} test row(s) missing, e.g. {_first(missing)}")
    if extra:
        problems.append(f"{len(extra)} extra row(s) not in test.csv, e.g. {_first(extra)}")
    if not problems and not np.array_equal(ids, expected):
        diff = np.flatnonzero(ids != expected)
        problems.append(f"row order differs from test.csv at {diff.size} position(s); first at row {int(diff[0])}: "
                        f"expected {expected[diff[0]]!r}, got {ids[diff[0]]!r}")
    bad = _bool_problems(sub["target"])
    if bad.any():
        problems.append(f"{int(bad.sum())} target value(s) are not booleans, e.g. "
                        f"{_first(zip(ids[bad], sub['target'][bad].tolist()))}")
    if problems:
        raise SubmissionError("invalid submission: " + "; ".join(problems))


def write_submission(path: str | Path, sub: pd.DataFrame, test_df: pd.DataFrame) -> Path:
    """Validate, then atomically write `row_id,target` with `True`/`False` and `\\n` line ends.

    Byte-for-byte the layout of `sample_submission.csv`. When invalid it raises SubmissionError
    before touching `path`, so an existing file stays intact.
    """
    validate_submission(sub, test_df)
    out = pd.DataFrame({"row_id": sub["row_id"].astype(str).to_numpy(), "target": sub["target"].astype(bool).to_numpy()})
    return atomic_write_text(path, out.to_csv(index=False, lineterminator="\n"))


# ------------------------------------------------------------------------------- evaluate
def evaluate_submission(
    sub: pd.DataFrame,
    labels_df: pd.DataFrame,
    scored: Iterable[str] | None = None,
    skip_empty: bool = True,
) -> dict[str, Any]:
    """Score a submission against a `row_id,target` ground truth (e.g. the demo's test_labels.csv).

    Rows are joined on row_id (order may differ); the bird comes from a `bird` column of
    `labels_df` or from the row_id. `scored` keeps only those birds' rows (Kaggle dropped the
    un-scored ones). Returns:

    * birdclef2022 — mean over species of ½·(TPR+TNR); species without positives (or negatives)
      skipped unless `skip_empty=False` (see `metrics.birdclef2022_per_class`);
    * micro_f1 — F1 pooled over all rows; macro_f1 — mean of per-species F1 (0 when a species has
      no positives and no detections, like sklearn's zero_division=0);
    * n_rows, n_species, and per_species — DataFrame with species, n_rows, support, tp, fp, fn,
      tn, precision, recall, f1, balanced_acc (NaN where undefined).

    Raises SubmissionError when the row sets differ, row_ids repeat, or a target cannot be read as
    a boolean (bools, 0/1 and the strings True/False are accepted here).
    """
    al = align_tables(labels_df, sub, scored)
    if al.empty:
        raise SubmissionError(f"no rows left to score (scored birds: {None if scored is None else sorted(scored)})")
    rows = []
    for bird, g in al.groupby("bird", sort=True):
        t, p = g["y_true"].to_numpy(), g["y_pred"].to_numpy()
        tp, fp = int((t & p).sum()), int((~t & p).sum())
        fn, tn = int((t & ~p).sum()), int((~t & ~p).sum())
        rows.append({
            "species": bird, "n_rows": len(g), "support": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else np.nan,
            "recall": tp / (tp + fn) if tp + fn else np.nan,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan,
            "balanced_acc": float(birdclef2022_per_class(t, p, skip_empty)[0]),
        })
    per = pd.DataFrame(rows)
    bal = per["balanced_acc"].dropna()
    return {
        "birdclef2022": float(bal.mean()) if len(bal) else float("nan"),
        "micro_f1": float(f1_score(al["y_true"], al["y_pred"], zero_division=0)),
        "macro_f1": float(per["f1"].fillna(0.0).mean()),
        "n_rows": int(len(al)),
        "n_species": int(len(per)),
        "per_species": per,
    }
