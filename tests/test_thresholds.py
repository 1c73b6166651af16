"""Threshold tuning on constructed cases with known optima; strict JSON round-trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from birdcore.errors import ConfigError
from birdcore.evaluation.metrics import birdclef2022_score, macro_f1, micro_f1
from birdcore.evaluation.thresholds import (
    Thresholds,
    apply_thresholds,
    default_grid,
    load_thresholds,
    save_thresholds,
    tune_thresholds,
)


def _separable(rng, n, pos_range, neg_range, n_pos):
    """One column: n_pos positives scored uniformly in pos_range, the rest in neg_range."""
    y = np.zeros(n, bool)
    y[:n_pos] = True
    s = np.where(y, rng.uniform(*pos_range, n), rng.uniform(*neg_range, n))
    return y, s


def test_default_grid_covers_low_values_densely():
    g = default_grid()
    assert g[0] == pytest.approx(0.005) and g[-1] == pytest.approx(0.95)
    assert np.any(np.isclose(g, 0.045)) and np.any(np.isclose(g, 0.5))
    assert np.all(np.diff(g) > 0) and np.diff(g)[:10].max() < np.diff(g)[-10:].min()


def test_known_global_threshold():
    rng = np.random.default_rng(0)
    cols = [_separable(rng, 200, (0.3, 0.4), (0.0, 0.1), 20) for _ in range(3)]
    y = np.column_stack([c[0] for c in cols])
    s = np.column_stack([c[1] for c in cols])
    thr = tune_thresholds(y, s, ["a", "b", "c"])
    assert 0.1 < thr.global_threshold <= 0.3
    assert thr.scores["global"] == pytest.approx(1.0)
    assert thr.scores["at_0.5"] == pytest.approx(0.5)  # nothing detected: TPR 0, TNR 1
    assert thr.scores["per_class"] == pytest.approx(1.0)
    assert thr.method == "grid" and thr.metric == "birdclef2022"


def test_per_class_beats_global_when_optima_differ():
    rng = np.random.default_rng(1)
    ya, sa = _separable(rng, 300, (0.3, 0.4), (0.0, 0.1), 30)  # needs a threshold in (0.1, 0.3]
    yb, sb = _separable(rng, 300, (0.8, 0.9), (0.5, 0.7), 30)  # needs a threshold in (0.7, 0.8]
    y, s = np.column_stack([ya, yb]), np.column_stack([sa, sb])
    for metric in ("birdclef2022", "macro_f1", "micro_f1"):
        thr = tune_thresholds(y, s, ["a", "b"], metric=metric)
        assert 0.1 < thr.per_class["a"] <= 0.3, metric
        assert 0.7 < thr.per_class["b"] <= 0.8, metric
        assert thr.scores["per_class"] == pytest.approx(1.0), metric
        assert thr.scores["per_class"] > thr.scores["global"], metric
    # .scores are the real metric values at the stored thresholds
    assert thr.scores["global"] == pytest.approx(micro_f1(y, s, thr.global_threshold))


def test_rare_class_falls_back_to_global():
    rng = np.random.default_rng(2)
    ya, sa = _separable(rng, 200, (0.3, 0.4), (0.0, 0.1), 40)
    yr, sr = _separable(rng, 200, (0.8, 0.9), (0.5, 0.7), 2)  # only 2 positives
    ye = np.zeros(200, bool)  # no positives at all
    y, s = np.column_stack([ya, yr, ye]), np.column_stack([sa, sr, rng.random(200)])
    thr = tune_thresholds(y, s, ["a", "rare", "empty"], min_positives=3)
    assert thr.per_class["rare"] == thr.global_threshold
    assert thr.per_class["empty"] == thr.global_threshold
    thr1 = tune_thresholds(y, s, ["a", "rare", "empty"], min_positives=1)
    assert 0.7 < thr1.per_class["rare"] <= 0.8


def test_quantile_method_marks_top_q():
    rng = np.random.default_rng(3)
    s = rng.random((100, 4))  # distinct scores
    y = rng.random((100, 4)) < 0.2
    thr = tune_thresholds(y, s, list("wxyz"), method="quantile", quantile=0.25)
    assert thr.method == "quantile" and thr.quantile == 0.25
    pred = apply_thresholds(s, thr, list("wxyz"))
    assert pred.sum(0).tolist() == [25, 25, 25, 25]
    for c in range(4):  # exactly the 25 highest scores of each column
        assert set(np.flatnonzero(pred[:, c])) == set(np.argsort(s[:, c])[-25:])


def test_fixed_method_and_metric_errors():
    y, s = np.array([[1], [0]]), np.array([[0.7], [0.2]])
    thr = tune_thresholds(y, s, ["a"], method="fixed", fixed_value=0.6)
    assert thr.global_threshold == 0.6 and thr.per_class == {"a": 0.6}
    assert thr.scores["at_0.5"] == thr.scores["per_class"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="unknown metric"):
        tune_thresholds(y, s, ["a"], metric="accuracy")
    with pytest.raises(ConfigError, match="method"):
        tune_thresholds(y, s, ["a"], method="magic")
    with pytest.raises(ConfigError, match="grid"):
        tune_thresholds(y, s, ["a"], grid=[0.1, 1.5])


def test_for_classes_order_and_fallback():
    thr = Thresholds(classes=["a", "b"], global_threshold=0.2, per_class={"a": 0.1, "b": 0.3})
    assert thr.for_classes(["b", "zzz", "a"]).tolist() == [0.3, 0.2, 0.1]
    s = np.array([[0.15, 0.25, 0.15], [0.05, 0.35, 0.25]])
    assert apply_thresholds(s, thr, ["a", "b", "zzz"]).tolist() == [[True, False, False], [False, True, True]]
    assert apply_thresholds(s, 0.2, ["a", "b", "zzz"]).tolist() == [[False, True, False], [False, True, True]]
    with pytest.raises(ConfigError, match="global_threshold"):
        Thresholds(classes=["a"], global_threshold=1.5)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    y, s = rng.random((100, 3)) < 0.3, rng.random((100, 3))
    thr = tune_thresholds(y, s, ["a", "b", "c"], source="run-42")
    thr.scores["nan_score"] = float("nan")
    path = save_thresholds(tmp_path / "thr.json", thr)
    assert json.loads(path.read_text())["scores"]["nan_score"] is None
    back = load_thresholds(path)
    assert back.to_dict() == thr.to_dict() and back.source == "run-42"
    assert math.isnan(back.scores["nan_score"])


def _valid_dict():
    return Thresholds(classes=["a", "b"], global_threshold=0.1, per_class={"a": 0.2}, method="grid").to_dict()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d.update(global_threshold="0.5"), "global_threshold"),
        (lambda d: d.update(global_threshold=True), "global_threshold"),
        (lambda d: d["per_class"].update(a=1.5), "per_class.a"),
        (lambda d: d["per_class"].update(zzz=0.1), "per_class"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d.pop("classes"), "classes"),
        (lambda d: d.update(classes="ab"), "classes"),
        (lambda d: d.update(method="magic"), "method"),
        (lambda d: d.update(metric="accuracy"), "metric"),
        (lambda d: d["scores"].update(x=-0.1), "scores.x"),
        (lambda d: d.update(source=3), "source"),
    ],
)
def test_load_rejects_invalid_fields(tmp_path, mutate, field):
    d = _valid_dict()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError) as err:
        load_thresholds(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_load_rejects_broken_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_valid_dict()))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:40])
    not_obj = tmp_path / "list.json"
    not_obj.write_text("[0.1, 0.2]")
    for path, pattern in [(truncated, "not valid JSON"), (not_obj, "JSON object"), (tmp_path / "nope.json", "not found")]:
        with pytest.raises(ConfigError, match=pattern) as err:
            load_thresholds(path)
        assert str(path) in str(err.value)
    assert load_thresholds(good).per_class == {"a": 0.2}


def test_tuning_large_random_runs():
    rng = np.random.default_rng(5)
    y = rng.random((2000, 152)) < 0.03
    s = np.clip(rng.random((2000, 152)) * 0.5 + y * 0.3, 0, 1)
    classes = [f"sp{i}" for i in range(152)]
    for metric in ("birdclef2022", "macro_f1", "micro_f1"):
        thr = tune_thresholds(y, s, classes, metric=metric)
        vec = thr.for_classes(classes)
        assert vec.shape == (152,) and np.all((vec >= 0) & (vec <= 1))
        # per-class tuning never loses to the global threshold on the tuning data
        assert thr.scores["per_class"] >= thr.scores["global"] - 1e-9, metric
    assert thr.scores["per_class"] == pytest.approx(micro_f1(y, s, vec))
    bc = tune_thresholds(y, s, classes)
    assert bc.scores["global"] == pytest.approx(birdclef2022_score(y, s >= bc.global_threshold))
    assert tune_thresholds(y, s, classes, metric="macro_f1").scores["at_0.5"] == pytest.approx(macro_f1(y, s, 0.5))
