"""The Submission page thresholds an ensemble with thresholds made for its averaged probabilities and
says which (issue 16), under AppTest on the session's tiny trained model and a second member: a
copy of that run whose out-of-fold scores are shifted up, so the ensemble's average is its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.apptest import start_page, texts
from test_inspection import tiny_trained

from birdcore.data.dataset import load_dataset
from birdcore.evaluation.ensemble_thresholds import ensemble_thresholds
from birdcore.inference import catalog
from birdcore.submission.table import build_submission

pytestmark = [pytest.mark.app, pytest.mark.slow]

SUBMIT = Path(__file__).resolve().parents[1] / "app" / "pages" / "8_Submission.py"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    data, runs0 = tiny_trained(tmp_path_factory)
    runs = tmp_path_factory.mktemp("ens") / "runs"
    shutil.copytree(runs0, runs)
    (first,) = [p for p in runs.iterdir() if p.is_dir()]
    second = first.with_name(first.name + "-b")
    shutil.copytree(first, second)
    oof = pd.read_parquet(second / "oof_predictions.parquet")
    p_cols = [c for c in oof.columns if c.startswith("p:")]
    oof[p_cols] = np.clip(oof[p_cols] * 0.5 + 0.4, 0, 1)  # a member that scores high: its average shifts
    oof.to_parquet(second / "oof_predictions.parquet", index=False)
    return data, runs, [first, second]


def test_an_ensemble_gets_thresholds_tuned_on_its_own_oof_and_the_page_says_so(two_runs, tmp_path, monkeypatch):
    data, runs, members = two_runs
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(data))
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)
    at = start_page(SUBMIT, 120)
    refs = catalog.find_models([runs], None, birdnet=False)
    at.multiselect(key="sub_models").set_value(refs).run()
    at.button(key="sub_predict").click().run()
    assert not at.exception, [e.value for e in at.exception]
    mode = at.radio(key="sub_thr_mode")
    assert mode.value == "The ensemble's thresholds" and "The model's thresholds.json" not in mode.options
    assert "tuned (birdclef2022) on the ensemble's out-of-fold predictions" in texts(at.caption)
    # the submission is the engine's: averaged probabilities, thresholds made for the average
    ds = load_dataset(data)
    models = [catalog.load_model(r, "torch") for r in refs]
    table = catalog.predict_table(models, ds.soundscapes, fill_missing=0.0)
    made = ensemble_thresholds([r.path for r in refs], table.classes)
    want = build_submission(table.table, ds.test, made.thresholds, table.classes)
    got = next(d.value for d in at.dataframe if list(d.value.columns[:2]) == ["row_id", "target"])
    assert got["target"].tolist() == want["target"].tolist()


def test_one_model_keeps_its_own_thresholds_file_and_the_page_names_it(two_runs, tmp_path, monkeypatch):
    from birdcore.evaluation.curves import tune_run_thresholds

    data, _, members = two_runs
    runs = tmp_path / "runs"
    run = shutil.copytree(members[0], runs / members[0].name)  # a copy: the other test's runs stay untuned
    thr, _ = tune_run_thresholds(run)
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(data))
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)
    at = start_page(SUBMIT, 120)
    at.button(key="sub_predict").click().run()  # the default pick: the one run
    assert not at.exception, [e.value for e in at.exception]
    mode = at.radio(key="sub_thr_mode")
    assert mode.value == "The model's thresholds.json" and "The ensemble's thresholds" not in mode.options
    assert (f"Per-class thresholds from `{run / 'thresholds.json'}` (global {thr.global_threshold:.3f})."
            in texts(at.caption))
    assert "Ensemble" not in texts(at.caption)
