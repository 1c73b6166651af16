"""Thresholds for an ensemble's averaged probabilities (issue 16: "an ensemble uses only the first
model's thresholds"): tuned on the ensemble's out-of-fold predictions, else the members' mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from birdcore.evaluation.ensemble_thresholds import ensemble_oof, ensemble_thresholds
from birdcore.evaluation.metrics import METRICS
from birdcore.evaluation.thresholds import apply_thresholds, load_thresholds, save_thresholds, tune_thresholds
from birdcore.inference import catalog
from birdcore.submission.submit import model_thresholds, resolve_thresholds

CLASSES = ["aaa", "bbb"]


def member(root: Path, name: str, files: list[str], truth: np.ndarray, probs: np.ndarray,
           tune: bool = True, oof: bool = True) -> Path:
    """A run folder as far as thresholds go: oof_predictions.parquet (as the loop writes it) and,
    with `tune`, the thresholds tuned on it."""
    folder = root / name
    folder.mkdir(parents=True)
    df = pd.DataFrame({"filename": files, "epoch": 3})
    for k, c in enumerate(CLASSES):
        df[f"p:{c}"] = probs[:, k]
    for k, c in enumerate(CLASSES):
        df[f"t:{c}"] = truth[:, k].astype(np.int8)
    if oof:
        df.to_parquet(folder / "oof_predictions.parquet", index=False)
    if tune:
        save_thresholds(folder / "thresholds.json", tune_thresholds(truth, probs, CLASSES, source=name))
    return folder


@pytest.fixture
def truth() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(60, 2))


def test_same_fold_members_are_averaged_and_tuned_on_the_average(tmp_path, truth):
    rng = np.random.default_rng(1)
    files = [f"sp/XC{i}.ogg" for i in range(60)]
    # a low-scoring member (positives ~0.2, negatives ~0.05) and a high-scoring one (0.9 / 0.5):
    # each one's own thresholds are wrong for their mean
    low = np.where(truth, 0.2, 0.05) + rng.uniform(-0.03, 0.03, truth.shape)
    high = np.where(truth, 0.9, 0.5) + rng.uniform(-0.05, 0.05, truth.shape)
    a = member(tmp_path, "a", files, truth, low)
    b = member(tmp_path, "b", files, truth, high)
    y, s, k = ensemble_oof([a, b], CLASSES)
    assert k == 2 and len(y) == 60
    order = np.argsort(files)  # the table comes back by filename
    np.testing.assert_allclose(s, ((low + high) / 2)[order])
    made = ensemble_thresholds([a, b], CLASSES)
    assert "out-of-fold" in made.how and "60 recordings" in made.how
    score = METRICS["birdclef2022"]
    with_own = score(y, apply_thresholds(s, load_thresholds(a / "thresholds.json"), CLASSES))
    with_ensemble = score(y, apply_thresholds(s, made.thresholds, CLASSES))
    assert with_ensemble == pytest.approx(1.0) and with_own < 0.75, (with_ensemble, with_own)


def test_fold_members_pool_their_disjoint_validation_recordings(tmp_path, truth):
    probs = np.where(truth, 0.7, 0.2).astype(float)
    a = member(tmp_path, "fold0", [f"x/{i}.ogg" for i in range(30)], truth[:30], probs[:30])
    b = member(tmp_path, "fold1", [f"x/{i}.ogg" for i in range(30, 60)], truth[30:], probs[30:])
    y, s, _ = ensemble_oof([a, b], CLASSES)
    assert len(y) == 60 and sorted(s[:, 0].round(3).tolist()) == sorted(probs[:, 0].round(3).tolist())
    assert "60 recordings" in ensemble_thresholds([a, b], CLASSES).how


def test_without_oof_the_members_thresholds_are_averaged_per_class(tmp_path, truth):
    files = [f"f{i}" for i in range(60)]
    a = member(tmp_path, "a", files, truth, np.where(truth, 0.3, 0.1) + 0.0, oof=False)
    b = member(tmp_path, "b", files, truth, np.where(truth, 0.9, 0.5) + 0.0)
    ta = load_thresholds(a / "thresholds.json")
    tb = load_thresholds(b / "thresholds.json")
    made = ensemble_thresholds([a, b], CLASSES)
    assert made.thresholds.method == "mean" and "mean of the 2 members' own thresholds" in made.how
    np.testing.assert_allclose(made.thresholds.for_classes(CLASSES),
                               (ta.for_classes(CLASSES) + tb.for_classes(CLASSES)) / 2)
    # one member without anything: the other's thresholds, and the line says so
    c = tmp_path / "c"
    c.mkdir()
    only = ensemble_thresholds([a, c], CLASSES)
    assert only.thresholds.for_classes(CLASSES).tolist() == ta.for_classes(CLASSES).tolist()
    assert "the only member that has one" in only.how
    assert ensemble_thresholds([c, tmp_path / "d"], CLASSES).thresholds is None


def test_submit_thresholds_an_ensemble_with_its_own_and_says_which(tmp_path, truth, capsys):
    files = [f"f{i}" for i in range(60)]
    a = member(tmp_path, "a", files, truth, np.where(truth, 0.2, 0.05) + 0.0)
    b = member(tmp_path, "b", files, truth, np.where(truth, 0.9, 0.5) + 0.0)
    thr = resolve_thresholds(None, [a, b], CLASSES)
    assert "ensemble OOF of a, b" in thr.source
    assert "birdcore: ensemble thresholds: tuned (birdclef2022) on the ensemble's out-of-fold" in capsys.readouterr().err
    single = resolve_thresholds(None, [a], CLASSES)  # one model: its own file, as before
    assert single.source == "a"



def test_model_thresholds_one_model_is_its_own_file_and_birdnet_is_left_out(tmp_path, truth):
    a = member(tmp_path, "a", [f"f{i}" for i in range(60)], truth, np.where(truth, 0.3, 0.1) + 0.0)
    made = model_thresholds([a], CLASSES)
    assert made.how is None and made.where == str(a / "thresholds.json")
    assert made.thresholds.for_classes(CLASSES).tolist() == load_thresholds(a / "thresholds.json").for_classes(
        CLASSES).tolist()
    # BirdNET's own scores, by the CLI's name or the app's picker entry, are no ensemble member
    assert model_thresholds(["birdnet", a], CLASSES) == made
    assert model_thresholds([catalog.BIRDNET_REF, catalog.ModelRef("run", str(a), "a")], CLASSES) == made
    assert model_thresholds([catalog.BIRDNET_REF], CLASSES) == (None, None, None)
    empty = tmp_path / "untuned"
    empty.mkdir()
    assert model_thresholds([empty], CLASSES) == (None, None, None)


def test_model_thresholds_an_ensemble_is_tuned_on_its_oof_or_gets_the_members_mean(tmp_path, truth):
    files = [f"f{i}" for i in range(60)]
    a = member(tmp_path, "a", files, truth, np.where(truth, 0.2, 0.05) + 0.0)
    b = member(tmp_path, "b", files, truth, np.where(truth, 0.9, 0.5) + 0.0)
    made = model_thresholds([a, b, "birdnet"], CLASSES)
    want = ensemble_thresholds([a, b], CLASSES)
    assert made.how == want.how and made.how.startswith("tuned (birdclef2022) on the ensemble's out-of-fold")
    assert made.where == made.thresholds.source == "ensemble OOF of a, b"
    assert made.thresholds.for_classes(CLASSES).tolist() == want.thresholds.for_classes(CLASSES).tolist()
    refs = [catalog.ModelRef("run", str(a), "a"), catalog.ModelRef("run", str(b), "b"), catalog.BIRDNET_REF]
    assert model_thresholds(refs, CLASSES).how == made.how  # the app's picker entries: the same choice
    (b / "oof_predictions.parquet").unlink()  # not every member has OOF predictions: the per-class mean
    mean = model_thresholds([a, b], CLASSES)
    assert mean.thresholds.method == "mean" and mean.where == "mean of the thresholds of a, b"
    assert mean.how.startswith("the mean of the 2 members' own thresholds, per class")
    # no member has anything: no thresholds, but the line says why (the page shows it)
    c, d = tmp_path / "c", tmp_path / "d"
    c.mkdir(), d.mkdir()
    none = model_thresholds([c, d], CLASSES)
    assert none.thresholds is None and none.where is None and "no member has thresholds.json" in none.how


def test_submit_without_any_thresholds_uses_half_and_says_so(tmp_path, capsys):
    c, d = tmp_path / "c", tmp_path / "d"
    c.mkdir(), d.mkdir()
    thr = resolve_thresholds(None, [c, d], CLASSES)
    assert thr.method == "fixed" and thr.global_threshold == 0.5
    err = capsys.readouterr().err
    assert "no thresholds.json found; using 0.5" in err and "ensemble thresholds" not in err

def test_a_torn_oof_table_falls_back_to_the_members_mean_and_says_why(tmp_path, truth):
    files = [f"f{i}" for i in range(60)]
    a = member(tmp_path, "a", files, truth, np.where(truth, 0.3, 0.1) + 0.0)
    b = member(tmp_path, "b", files, truth, np.where(truth, 0.9, 0.5) + 0.0)
    (b / "oof_predictions.parquet").write_bytes(b"PAR1 torn")
    made = ensemble_thresholds([a, b], CLASSES)
    assert made.thresholds.method == "mean"
    assert "out-of-fold predictions are unusable" in made.how and "oof_predictions.parquet" in made.how
