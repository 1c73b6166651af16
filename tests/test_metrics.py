"""Metric formulas pinned by small hand-computed cases (including degenerate columns)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from birdcore.errors import ConfigError, SubmissionError
from birdcore.evaluation.metrics import (
    METRICS,
    binarize,
    birdclef2022_per_class,
    birdclef2022_score,
    birdclef2022_score_table,
    compute_all,
    get_metric,
    macro_f1,
    macro_roc_auc,
    micro_f1,
    padded_cmap,
    per_class_report,
)

# 2 species × 4 rows, computed by hand:
#   A: positives rows 0,1 -> TP 1 -> TPR 1/2; negatives rows 2,3 -> TN 1 -> TNR 1/2 -> 1/2
#   B: positive row 2 -> TPR 1; negatives rows 0,1,3 -> TN 2 -> TNR 2/3 -> 5/6
#   score = (1/2 + 5/6) / 2 = 2/3
Y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=bool)
P = np.array([[1, 1], [0, 0], [0, 1], [1, 0]], dtype=bool)


def test_birdclef2022_hand_case():
    assert birdclef2022_per_class(Y, P) == pytest.approx([0.5, 5 / 6])
    assert birdclef2022_score(Y, P) == pytest.approx(2 / 3)


def test_birdclef2022_all_true_and_all_false_are_half():
    rng = np.random.default_rng(0)
    y = rng.random((50, 6)) < 0.3
    y[0], y[1] = True, False  # every species has both classes
    assert birdclef2022_score(y, np.ones_like(y)) == pytest.approx(0.5)
    assert birdclef2022_score(y, np.zeros_like(y)) == pytest.approx(0.5)


def test_birdclef2022_one_sided_species():
    # C has no positive rows, D no negative rows.
    y = np.column_stack([Y, np.zeros(4, bool), np.ones(4, bool)])
    p = np.column_stack([P, np.zeros(4, bool), np.array([1, 1, 0, 1], bool)])
    # skip_empty=True: C and D are dropped -> same as the 2-species case.
    assert birdclef2022_score(y, p) == pytest.approx(2 / 3)
    assert np.isnan(birdclef2022_per_class(y, p)[2:]).all()
    # skip_empty=False: C counts TNR only (1.0), D counts TPR only (3/4).
    assert birdclef2022_per_class(y, p, skip_empty=False) == pytest.approx([0.5, 5 / 6, 1.0, 0.75])
    assert birdclef2022_score(y, p, skip_empty=False) == pytest.approx((0.5 + 5 / 6 + 1 + 0.75) / 4)
    # Nothing scorable -> NaN, not an exception.
    assert math.isnan(birdclef2022_score(np.zeros((3, 2)), np.ones((3, 2))))


def _tables():
    birds, ends = ["akiapo", "hawpet1"], [5, 10, 15, 20]
    ids = [f"soundscape_1_{b}_{e}" for e in ends for b in birds]  # file_id contains '_'
    truth = pd.DataFrame({"row_id": ids, "target": Y.ravel()})
    sub = pd.DataFrame({"row_id": ids, "target": P.ravel()})
    return truth, sub


def test_birdclef2022_table_matches_array_and_ignores_order():
    truth, sub = _tables()
    assert birdclef2022_score_table(truth, sub) == pytest.approx(2 / 3)
    shuffled = sub.sample(frac=1.0, random_state=1)
    assert birdclef2022_score_table(truth, shuffled) == pytest.approx(2 / 3)
    # Targets read back from CSV text also work; `bird` column overrides parsing.
    text = sub.assign(target=sub["target"].map({True: "True", False: "False"}))
    assert birdclef2022_score_table(truth, text) == pytest.approx(2 / 3)
    odd = truth.assign(row_id=[f"r{i}" for i in range(8)], bird=["akiapo", "hawpet1"] * 4)
    assert birdclef2022_score_table(odd, sub.assign(row_id=odd["row_id"])) == pytest.approx(2 / 3)
    assert birdclef2022_score_table(truth, sub, scored=["hawpet1"]) == pytest.approx(5 / 6)


def test_birdclef2022_table_errors():
    truth, sub = _tables()
    with pytest.raises(SubmissionError, match=r"1 missing.*soundscape_1_hawpet1_20"):
        birdclef2022_score_table(truth, sub.iloc[:-1])
    extra = pd.concat([sub, pd.DataFrame({"row_id": ["soundscape_1_akiapo_25"], "target": [True]})])
    with pytest.raises(SubmissionError, match=r"1 extra.*akiapo_25"):
        birdclef2022_score_table(truth, extra)
    with pytest.raises(SubmissionError, match="duplicated"):
        birdclef2022_score_table(truth, pd.concat([sub, sub.iloc[:1]]))
    bad_ids = truth.assign(row_id=[f"r{i}" for i in range(8)])
    with pytest.raises(SubmissionError, match="bird"):
        birdclef2022_score_table(bad_ids, sub.assign(row_id=bad_ids["row_id"]))
    with pytest.raises(SubmissionError, match="not True/False"):
        birdclef2022_score_table(truth, sub.assign(target=["maybe"] * 8))


def test_padded_cmap_hand_case_and_zero_padding_differs():
    # Class 0: y=[1,0], s=[0.2,0.8]; padded: +5 rows (y=1, s=1), 6 positives.
    #   cut 1.0: P=1, R=5/6; cut 0.8: R unchanged; cut 0.2: P=6/7, R=1 -> AP = 5/6 + 1/6·6/7 = 41/42
    # Class 1: y=[0,1], s=[0.3,0.9] -> all positives ranked first -> AP = 1
    y = np.array([[1, 0], [0, 1]])
    s = np.array([[0.2, 0.3], [0.8, 0.9]])
    assert padded_cmap(y, s) == pytest.approx((41 / 42 + 1) / 2)
    assert padded_cmap(y[:, :1], s[:, :1]) == pytest.approx(41 / 42)
    zero_padded = average_precision_score(np.vstack([y, np.zeros((5, 2))]), np.vstack([s, np.zeros((5, 2))]), average="macro")
    assert zero_padded == pytest.approx((0.5 + 1) / 2)
    assert padded_cmap(y, s) != pytest.approx(zero_padded)


def test_padded_cmap_defined_for_class_without_positives():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn would warn about a column without positives
        assert padded_cmap(np.zeros((2, 1)), np.array([[0.2], [0.9]])) == pytest.approx(1.0)


def test_macro_auc_skips_single_class_columns():
    y = np.array([[0, 0, 1, 1], [0, 0, 1, 0], [1, 0, 1, 0], [1, 0, 1, 0]])
    s = np.array([[0.1, 0.5, 0.5, 0.9], [0.4, 0.5, 0.5, 0.1], [0.35, 0.5, 0.5, 0.2], [0.8, 0.5, 0.5, 0.9]])
    # col 0: pos {0.35, 0.8} vs neg {0.1, 0.4}: 3 of 4 pairs -> 0.75
    # col 3: pos {0.9} vs neg {0.1, 0.2, 0.9 (tie = 1/2)} -> 2.5/3 = 5/6; cols 1, 2 are one-class
    assert macro_roc_auc(y, s) == pytest.approx((0.75 + 5 / 6) / 2)
    assert macro_roc_auc(y, s) == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in (0, 3)]))
    assert math.isnan(macro_roc_auc(np.zeros((4, 2)), s[:, :2]))


def test_micro_macro_f1_hand_case():
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 1]])
    prob = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.8], [0.1, 0.2]])
    # @0.5: class 0: TP1 FP1 FN1 -> F1 1/2; class 1: TP2 FP0 FN1 -> F1 4/5
    assert macro_f1(y, prob) == pytest.approx((0.5 + 0.8) / 2)
    # micro: TP 3, FP 1, FN 2 -> 6 / 9
    assert micro_f1(y, prob) == pytest.approx(2 / 3)
    # per-class thresholds: class 1 at 0.15 catches row 3 -> F1 1
    assert macro_f1(y, prob, threshold=[0.5, 0.15]) == pytest.approx(0.75)
    # a class with no positives and no detections counts as F1 = 0 (zero_division=0)
    y3, p3 = np.column_stack([y, np.zeros(4)]), np.column_stack([prob, np.zeros(4)])
    assert macro_f1(y3, p3) == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_binarize_is_greater_or_equal():
    assert binarize(np.array([[0.5, 0.49]]), 0.5).tolist() == [[True, False]]


def test_compute_all_random_with_empty_classes():
    rng = np.random.default_rng(1)
    y = rng.random((1000, 152)) < 0.02
    y[:, :5] = False  # classes without positives must not break anything
    s = rng.random((1000, 152))
    out = compute_all(y, s, [f"sp{i}" for i in range(152)], threshold=0.3)
    assert set(out) == {"micro_f1", "macro_f1", "birdclef2022", "cmap_pad5", "macro_auc"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    with pytest.raises(ValueError):
        compute_all(y, s, ["too", "few"])


def test_thresholds_object_follows_given_class_order():
    from birdcore.evaluation.thresholds import Thresholds

    thr = Thresholds(classes=["b", "a"], global_threshold=0.5, per_class={"a": 0.1, "b": 0.9})
    y = np.array([[1, 1], [0, 0]])
    s = np.array([[0.2, 0.95], [0.05, 0.5]])  # columns a, b: both separable at their own threshold
    assert compute_all(y, s, ["a", "b"], threshold=thr)["micro_f1"] == pytest.approx(1.0)
    assert per_class_report(y, s, ["a", "b"], thr)["threshold"].tolist() == [0.1, 0.9]


def test_per_class_report_columns_and_nans():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.2], [0.4, 0.3]])
    rep = per_class_report(y, s, ["a", "b"], thresholds=[0.5, 0.5])
    assert list(rep.columns)[:8] == ["species", "support", "precision", "recall", "f1", "ap", "auc", "threshold"]
    a, b = rep.iloc[0], rep.iloc[1]
    assert (a.support, a.precision, a.recall, a.f1, a.ap, a.auc) == (2, 1.0, 0.5, pytest.approx(2 / 3), 1.0, 1.0)
    assert b.support == 0 and all(np.isnan([b.precision, b.recall, b.f1, b.ap, b.auc]))


def test_metric_registry():
    assert {"birdclef2022", "micro_f1", "macro_f1"} <= set(METRICS)
    rng = np.random.default_rng(2)
    y, s = rng.random((40, 3)) < 0.4, rng.random((40, 3))
    assert METRICS["birdclef2022"](y, s, 0.3) == pytest.approx(birdclef2022_score(y, s >= 0.3))
    assert get_metric("macro_f1")(y, s, 0.3) == pytest.approx(macro_f1(y, s, 0.3))
    with pytest.raises(ConfigError, match="birdclef2022.*macro_f1.*micro_f1"):
        METRICS["accuracy"]
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        get_metric("auc")
