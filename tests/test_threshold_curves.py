"""birdcore.evaluation.curves on small cases whose numbers are worked out by hand below."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve

from birdcore.errors import ConfigError, RunError
from birdcore.evaluation import curves as tc
from birdcore.evaluation.metrics import METRICS
from birdcore.evaluation.thresholds import Thresholds, class_thresholds, load_thresholds

# One class, five rows: positives score 0.9 and 0.4, negatives 0.6, 0.2 and 0.4 (a tie at 0.4).
T1 = np.array([1, 1, 0, 0, 0])
S1 = np.array([0.9, 0.4, 0.6, 0.2, 0.4])

# Two classes, four rows (used for the overall scores).
T2 = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
S2 = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.1], [0.2, 0.3]])


def write_oof(folder, y_true, y_score, classes, epoch=3):
    """An oof_predictions.parquet as the training loop writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = {"filename": [f"x/XC{i}.ogg" for i in range(len(y_true))], "epoch": epoch}
    cols.update({f"p:{c}": np.asarray(y_score)[:, k] for k, c in enumerate(classes)})
    cols.update({f"t:{c}": np.asarray(y_true)[:, k].astype(np.int8) for k, c in enumerate(classes)})
    pd.DataFrame(cols).to_parquet(folder / "oof_predictions.parquet", index=False)
    return folder


def test_threshold_curve_by_hand():
    df = tc.threshold_curve(T1, S1, [0.0, 0.4, 0.5, 0.95]).set_index("threshold")
    # t = 0: everything detected → TP 2, FP 3; precision 2/5, F1 = 4 / (4 + 3) = 4/7, ½(1 + 0).
    assert df.loc[0.0, ["tp", "fp", "fn", "tn"]].tolist() == [2, 3, 0, 0]
    assert df.loc[0.0, "precision"] == pytest.approx(0.4) and df.loc[0.0, "f1"] == pytest.approx(4 / 7)
    assert df.loc[0.0, "birdclef2022"] == pytest.approx(0.5)
    # t = 0.4 (>=: both tied rows count): TP 2, FP 2, TN 1 → precision 1/2, F1 4/6, ½(1 + 1/3) = 2/3.
    assert df.loc[0.4, ["tp", "fp", "fn", "tn"]].tolist() == [2, 2, 0, 1]
    assert df.loc[0.4, "f1"] == pytest.approx(2 / 3) and df.loc[0.4, "birdclef2022"] == pytest.approx(2 / 3)
    assert df.loc[0.4, "tnr"] == pytest.approx(1 / 3)
    # t = 0.5: 0.9 (pos) and 0.6 (neg) → TP 1, FP 1, FN 1, TN 2; ½(1/2 + 2/3) = 7/12.
    assert df.loc[0.5, ["tp", "fp", "fn", "tn"]].tolist() == [1, 1, 1, 2]
    assert df.loc[0.5, "precision"] == 0.5 and df.loc[0.5, "recall"] == 0.5 and df.loc[0.5, "f1"] == 0.5
    assert df.loc[0.5, "birdclef2022"] == pytest.approx(7 / 12)
    # t = 0.95: nothing detected → precision undefined, recall 0, F1 0, ½(0 + 1).
    assert math.isnan(df.loc[0.95, "precision"]) and df.loc[0.95, "recall"] == 0 and df.loc[0.95, "f1"] == 0
    assert df.loc[0.95, "birdclef2022"] == 0.5


def test_threshold_curve_default_grid_and_one_sided_class():
    df = tc.threshold_curve(T1, S1)
    assert len(df) == 201 and df["threshold"].iloc[0] == 0.0 and df["threshold"].iloc[-1] == 1.0
    assert 0.3 in set(df["threshold"])  # rounded grid: 0.3 is exactly representable for sliders
    assert (np.diff(df["tp"]) <= 0).all() and (np.diff(df["fp"]) <= 0).all()
    none = tc.threshold_curve([0, 0, 0], [0.1, 0.5, 0.7], [0.3])
    assert math.isnan(none["recall"][0]) and math.isnan(none["birdclef2022"][0])
    assert none["tnr"][0] == pytest.approx(1 / 3)


def test_operating_point_matches_the_curve():
    p = tc.operating_point(T1, S1, 0.5)
    assert (p["tp"], p["fp"], p["fn"], p["tn"]) == (1, 1, 1, 2) and p["birdclef2022"] == pytest.approx(7 / 12)
    assert isinstance(p["tp"], int) and p["threshold"] == 0.5


def test_pr_curve_by_hand_and_against_sklearn():
    pr = tc.pr_curve(T1, S1)
    # Distinct scores high → low: 0.9 (P) → 1/1, recall 1/2; 0.6 (N) → 1/2; 0.4 (P and N tie, taken together)
    # → 2/4, recall 1; 0.2 (N) → 2/5.
    assert pr["threshold"].tolist() == [0.9, 0.6, 0.4, 0.2]
    assert pr["precision"].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.4])
    assert pr["recall"].tolist() == pytest.approx([0.5, 0.5, 1.0, 1.0])
    assert pr["tp"].tolist() == [1, 1, 2, 2] and pr["fp"].tolist() == [0, 1, 2, 3]
    precision, recall, thresholds = precision_recall_curve(T1, S1)
    assert pr["threshold"].tolist() == thresholds[::-1].tolist()
    assert pr["precision"].tolist() == pytest.approx(precision[:-1][::-1].tolist())
    assert pr["recall"].tolist() == pytest.approx(recall[:-1][::-1].tolist())
    assert tc.pr_curve([0, 0], [0.2, 0.3]).empty  # no positives: recall undefined


def test_score_histograms_by_hand():
    h = tc.score_histograms(T1, S1, bins=4)  # edges 0, .25, .5, .75, 1
    assert h["bin_start"].tolist() == [0.0, 0.25, 0.5, 0.75] and h["bin_end"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert h["positives"].tolist() == [0, 1, 0, 1]      # 0.4, 0.9
    assert h["negatives"].tolist() == [1, 1, 1, 0]      # 0.2, 0.4, 0.6
    assert h["pos_share"].tolist() == [0, 0.5, 0, 0.5] and h["neg_share"].sum() == pytest.approx(1.0)
    edges = tc.score_histograms([1, 1, 0], [0.25, 1.0, 0.0], bins=4)  # [start, end), the last bin closed
    assert edges["positives"].tolist() == [0, 1, 0, 1] and edges["negatives"].tolist() == [1, 0, 0, 0]
    assert edges["neg_share"].tolist() == [1.0, 0, 0, 0]
    assert tc.score_histograms([0, 0], [0.1, 0.2], bins=2)["pos_share"].isna().all()


def test_overall_scores_by_hand():
    classes = ["a", "b"]
    # BirdCLEF 2022 at 0.5: a → TP1 FN1 FP1 TN1 = ½(½ + ½) = .5; b → TP1 FN1 TN2 = ½(½ + 1) = .75 → .625.
    # Global 0.3: a → TPR 1, TNR ½ = .75; b → TPR 1, TNR 1 = 1 → .875.
    # Per class a = 0.95 (nothing detected: .5), b at the global 0.3 (1) → .75.
    got = tc.overall_scores(T2, S2, classes, 0.3, {"a": 0.95}, "birdclef2022")
    assert got == pytest.approx({"at_0.5": 0.625, "global": 0.875, "per_class": 0.75})
    # micro F1 at 0.5: TP 2, FP 1, FN 2 → 4 / 7.
    assert tc.overall_scores(T2, S2, classes, 0.5, None, "micro_f1")["at_0.5"] == pytest.approx(4 / 7)
    for metric in tc.TUNE_METRICS:  # the same numbers as birdcore.evaluation.metrics
        got = tc.overall_scores(T2, S2, classes, 0.3, {"b": 0.65}, metric)
        assert got["global"] == pytest.approx(METRICS[metric](T2, S2, 0.3))
        assert got["per_class"] == pytest.approx(METRICS[metric](T2, S2, np.array([0.3, 0.65])))
    with pytest.raises(ConfigError, match="unknown metric"):
        tc.overall_scores(T2, S2, classes, 0.3, None, "accuracy")


def test_threshold_vector_and_order():
    assert class_thresholds(["a", "b", "c"], 0.2, {"b": 0.7}).tolist() == [0.2, 0.7, 0.2]
    assert tc.order_classes(["c", "a", "b", "d"], {"d", "b"}) == ["b", "d", "a", "c"]
    assert tc.order_classes(["c", "a"]) == ["a", "c"]


def test_make_thresholds_is_explicit_for_every_class():
    thr = tc.make_thresholds(T2, S2, ["a", "b"], 0.3, {"a": 0.95}, "birdclef2022", source="test")
    assert isinstance(thr, Thresholds) and thr.per_class == {"a": 0.95, "b": 0.3} and thr.method == "fixed"
    assert thr.scores == pytest.approx({"at_0.5": 0.625, "global": 0.875, "per_class": 0.75})


def test_read_oof_round_trip_and_errors(tmp_path):
    folder = write_oof(tmp_path / "run", T2, S2, ["a", "b"])
    y_true, y_score, classes = tc.read_oof(folder)  # a run folder or the file itself
    assert classes == ["a", "b"] and y_true.dtype == bool and y_true.astype(int).tolist() == T2.tolist()
    assert y_score.tolist() == S2.tolist()
    assert tc.read_oof(folder / "oof_predictions.parquet").classes == ["a", "b"]
    assert tc.oof_epoch(folder) == 3

    with pytest.raises(RunError, match="no out-of-fold predictions"):
        tc.read_oof(tmp_path / "nothing")
    df = pd.read_parquet(folder / "oof_predictions.parquet")
    df.drop(columns=["t:b"]).to_parquet(tmp_path / "no_t.parquet")
    with pytest.raises(RunError, match="t:b"):
        tc.read_oof(tmp_path / "no_t.parquet")
    df.assign(**{"p:a": [0.1, np.nan, 0.2, 0.3]}).to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(RunError, match="1 probabilities are NaN"):
        tc.read_oof(tmp_path / "nan.parquet")
    (tmp_path / "torn.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(RunError, match="cannot read"):
        tc.read_oof(tmp_path / "torn.parquet")



def test_read_oof_rows_adds_each_rows_filename_from_the_same_read(tmp_path):
    folder = write_oof(tmp_path / "run", T2, S2, ["a", "b"])
    oof, files = tc.read_oof_rows(folder)
    table = pd.read_parquet(folder / "oof_predictions.parquet")
    assert files == table["filename"].tolist() == [f"x/XC{i}.ogg" for i in range(4)]
    plain = tc.read_oof(folder)
    assert oof.classes == plain.classes and oof.y_score.tolist() == plain.y_score.tolist()
    assert oof.y_true.tolist() == plain.y_true.tolist()
    # read_oof's checks still apply, the file named; a table without filenames cannot be matched by row
    table.drop(columns=["filename"]).to_parquet(tmp_path / "no_names.parquet")
    with pytest.raises(RunError, match="no_names.parquet: no `filename` column"):
        tc.read_oof_rows(tmp_path / "no_names.parquet")
    assert tc.read_oof(tmp_path / "no_names.parquet").classes == ["a", "b"]  # read_oof never needed them
    table.drop(columns=["t:a"]).to_parquet(tmp_path / "no_t.parquet")
    with pytest.raises(RunError, match="no_t.parquet: probability columns without targets: t:a"):
        tc.read_oof_rows(tmp_path / "no_t.parquet")
    with pytest.raises(RunError, match="no out-of-fold predictions"):
        tc.read_oof_rows(tmp_path / "nothing")

def test_tune_run_thresholds_saves_and_summarises(tmp_path):
    # Class a: positives at .30/.35/.40, negatives ≤ .20 → any threshold in (.20, .30] separates them
    # perfectly; the tuner takes the middle of that plateau on its grid. Class b: 2 positives, fewer
    # than min_positives = 3, so it keeps the global threshold.
    a_pos, a_neg = [0.30, 0.35, 0.40], [0.05, 0.10, 0.15, 0.20, 0.12, 0.08, 0.18]
    y_true = np.array([[1, 0]] * 3 + [[0, 0]] * 5 + [[0, 1]] * 2)
    y_score = np.column_stack([a_pos + a_neg, [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.8]])
    run = write_oof(tmp_path / "run-1", y_true, y_score, ["a", "b"], epoch=7)

    thr, summary = tc.tune_run_thresholds(run, "birdclef2022")
    assert 0.20 < thr.per_class["a"] <= 0.30 and thr.per_class["b"] == thr.global_threshold
    assert summary["per_class"] == pytest.approx(METRICS["birdclef2022"](y_true, y_score, thr.for_classes(["a", "b"])))
    assert summary["per_class"] >= summary["global"] >= summary["at_0.5"]
    assert summary["at_0.5"] == pytest.approx(METRICS["birdclef2022"](y_true, y_score, 0.5))
    assert summary["epoch"] == 7 and summary["recordings"] == 10 and summary["classes"] == 2
    assert summary["tuned_classes"] == sum(v != thr.global_threshold for v in thr.per_class.values())
    assert summary["run"] == "run-1" and summary["global_threshold"] == thr.global_threshold
    saved = load_thresholds(run / "thresholds.json")
    assert saved.to_dict() == thr.to_dict() and saved.source == "run-1/oof_predictions.parquet (epoch 7)"
    assert json.loads((run / "thresholds.json").read_text())["metric"] == "birdclef2022"
    assert tc.load_run_thresholds(run).per_class == thr.per_class
    assert tc.load_run_thresholds(tmp_path) is None

    (run / "thresholds.json").unlink()
    thr2, summary2 = tc.tune_run_thresholds(run, "micro_f1", save=False)
    assert summary2["path"] is None and not (run / "thresholds.json").exists() and thr2.metric == "micro_f1"
    with pytest.raises(ConfigError, match="metric"):
        tc.tune_run_thresholds(run, "macro_auc")
