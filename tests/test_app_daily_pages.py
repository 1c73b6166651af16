"""The Training and Thresholds pages as a daily tool, under AppTest, on fake run folders (no
training: config, status and metrics written as the trainer writes them), so each test takes
seconds: the run actions (resume / stop / delete with confirmation), live progress within an epoch,
the loss placeholder, the config diff, the self-training rounds view, a disabled Launch, the
Thresholds page's row selection and run default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.apptest import app_on, charts_with_key, start_page, texts, vega
from helpers.synth import make_tone_dataset
from streamlit.testing.v1 import AppTest
from test_run_ranking import fake_run

from birdcore.training import run_lock
from birdcore.training.runs import RunFolder

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
TRAINING = REPO / "app" / "pages" / "4_Training.py"
THRESHOLDS = REPO / "app" / "pages" / "5_Thresholds.py"
HOME = REPO / "app" / "Home.py"
TIMEOUT = 60


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    return make_tone_dataset(tmp_path_factory.mktemp("tones") / "data", n_species=2, per_species=2, seconds=1.0)


@pytest.fixture()
def runs(tmp_path, tones, monkeypatch) -> Path:
    return app_on(tones, tmp_path, monkeypatch)


def with_metrics(run: RunFolder, steps: list[tuple[int, int, float]], epochs: int = 0) -> RunFolder:
    """Metrics records as the loop writes them: start (10 steps per epoch), steps, epochs."""
    run.log({"kind": "start", "steps_per_epoch": 10, "train_size": 40, "val_size": 8})
    for epoch, step, loss in steps:
        run.log({"kind": "step", "epoch": epoch, "step": step, "loss": loss, "lr": 1e-3, "samples_per_s": 5.0})
    for e in range(epochs):
        run.log({"kind": "epoch", "epoch": e, "train_loss": 1.0, "val_loss": 0.9, "micro_f1": 0.5})
    return run


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def test_running_run_shows_progress_within_the_epoch_and_cannot_be_deleted(runs):
    run = with_metrics(fake_run(runs, "live", "running", 0.4), [(0, 1, 1.2), (1, 13, 0.8)], epochs=1)
    run.update_status(epochs=3, epoch=1)
    with run_lock.hold(run.path):  # as the trainer holds it while training
        at = start_page(TRAINING, TIMEOUT)
        bars = [p.proto.text for p in at.get("progress")]
        assert any("epoch 2 of 3: 30% of its 10 steps" in t for t in bars), bars
        assert button(at, "tr_delete").disabled and button(at, "tr_stop")
        loss = vega(at, "tr_loss_chart").series("step", "loss")["train (step)"]
        assert loss["x"] == [1, 13] and loss["y"] == [1.2, 0.8]  # per-step loss from the first step
    assert run.path.is_dir()


def test_queued_run_shows_a_placeholder_not_empty_axes(runs):
    fake_run(runs, "new", "queued", None)
    at = start_page(TRAINING, TIMEOUT)
    assert "The loss appears here after the first training step" in texts(at.info)
    assert not charts_with_key(at, "tr_loss_chart")
    shown = at.dataframe[0].value
    assert shown["best_score"].tolist() == ["—"] and shown["best_epoch"].tolist() == ["—"]


def test_delete_asks_first_then_removes_the_folder(runs):
    keep = fake_run(runs, "keep", "finished", 0.6)
    gone = fake_run(runs, "gone", "stopped", 0.3)  # newest: watched first
    at = start_page(TRAINING, TIMEOUT)
    at.selectbox(key="tr_run").set_value(gone.run_id).run()
    button(at, "tr_delete").click().run()
    assert gone.path.is_dir() and "cannot be undone" in texts(at.warning)
    button(at, "tr_delete_no").click().run()
    assert gone.path.is_dir() and "cannot be undone" not in texts(at.warning)
    button(at, "tr_delete").click().run()
    button(at, "tr_delete_yes").click().run()
    assert not at.exception and not gone.path.exists() and keep.path.is_dir()
    assert at.selectbox(key="tr_run").options == [keep.run_id]


def test_resume_is_offered_for_a_stopped_run_with_a_checkpoint(runs):
    run = fake_run(runs, "halted", "stopped", 0.3)
    at = start_page(TRAINING, TIMEOUT)
    assert not [b for b in at.button if b.key == "tr_resume"]  # no last.pt: nothing to resume from
    run.last_checkpoint.write_bytes(b"")
    at.run()
    assert button(at, "tr_resume").label == "Resume"


def test_config_diff_of_two_runs(runs):
    a = fake_run(runs, "a", "finished", 0.5, overrides=("train.lr=0.001",))
    b = fake_run(runs, "b", "finished", 0.6, overrides=("train.lr=0.003",))
    at = start_page(TRAINING, TIMEOUT)
    at.selectbox(key="tr_diff_a").set_value(a.run_id)
    at.selectbox(key="tr_diff_b").set_value(b.run_id).run()
    diff = next(d.value for d in at.dataframe if "field" in d.value.columns)
    assert set(diff["field"]) == {"name", "train.lr"}


def test_launch_is_disabled_with_the_reason_when_the_dataset_has_no_audio(runs, tones, tmp_path, monkeypatch):
    meta_only = tmp_path / "meta-only"
    shutil.copytree(tones, meta_only, ignore=shutil.ignore_patterns("train_audio"))
    monkeypatch.setenv("BIRDCORE_DATA", str(meta_only))
    at = start_page(TRAINING, TIMEOUT)
    launch = next(b for b in at.get("button") if "Launch" in b.proto.label)
    assert launch.proto.disabled and "no train_audio/ folder" in texts(at.caption)


def test_self_training_rounds_render_from_a_family_folder(runs):
    """The family view from a selftrain.json as `birdcore self-train` writes it (no training)."""
    fam = runs / "selftrain-20260101-000000-fam-ab12"
    fam.mkdir()
    rounds = [{"round": 0, "run": str(runs / "r0"), "teacher": None, "val_score": 0.41, "passed": {}},
              {"round": 1, "run": str(runs / "r1"), "teacher": "birdnet", "windows": 30, "passed_windows": 12,
               "val_score": 0.52, "passed": {"t0sp1": 8, "t1sp1": 4}}]
    (fam / "selftrain.json").write_text(json.dumps({"rounds": rounds}))
    fake_run(runs, "r1", "finished", 0.52)
    at = start_page(TRAINING, TIMEOUT)
    assert "Self-training rounds" in texts(at.subheader) and not at.error
    assert not at.warning  # the family folder is not reported as a broken run
    table = next(d.value for d in at.dataframe if "teacher" in d.value.columns)
    assert table["round"].tolist() == [0, 1] and table["val_score"].tolist() == [0.41, 0.52]
    passed = next(d.value for d in at.dataframe if d.value.index.name == "species")
    assert passed.loc["t0sp1", 1] == 8


# ---- Thresholds ------------------------------------------------------------------------------------
def fake_oof(run: RunFolder, seed: int = 0) -> None:
    """oof_predictions.parquet as the loop writes it: p:<class> scores and t:<class> targets."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, size=(30, 2))
    p = np.clip(t * 0.6 + rng.random((30, 2)) * 0.5, 0, 1)
    pd.DataFrame({**{f"p:{c}": p[:, i] for i, c in enumerate(["a", "b"])},
                  **{f"t:{c}": t[:, i] for i, c in enumerate(["a", "b"])}}).to_parquet(run.oof_path)


def test_thresholds_defaults_to_the_best_run_and_a_table_click_picks_the_class(runs):
    best = fake_run(runs, "best", "finished", 0.9)
    newer_failed = fake_run(runs, "failed", "failed", 0.95)
    for r in (best, newer_failed):
        fake_oof(r)
    at = start_page(THRESHOLDS, TIMEOUT)
    assert at.selectbox(key="th_run").value == best.run_id
    cls_key = f"th_class::{best.run_id}"
    assert at.selectbox(key=cls_key).value == "a"
    at.session_state["th_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception and at.selectbox(key=cls_key).value == "b"
    assert len(vega(at, "th_hist").rows("bins"))


def test_home_names_the_best_model(runs):
    at = start_page(HOME, TIMEOUT)
    assert "best model: none yet" in texts(at.markdown)
    fake_run(runs, "failed", "failed", 0.99)
    best = fake_run(runs, "best", "finished", 0.8)
    at.run()
    assert f"best model: `{best.run_id} · micro F1 0.800`" in texts(at.markdown)


def test_thresholds_dataset_picker_keeps_the_runs_of_one_dataset(runs, tmp_path):
    mine = fake_run(runs, "mine", "finished", 0.5, data_dir=tmp_path / "birds-a")
    other = fake_run(runs, "other", "finished", 0.9, data_dir=tmp_path / "birds-b")
    for r in (mine, other):
        fake_oof(r)
    at = start_page(THRESHOLDS, TIMEOUT)
    assert at.selectbox(key="th_run").value == other.run_id  # the best of all
    at.selectbox(key="th_dataset").set_value(str((tmp_path / "birds-a").resolve())).run()
    assert at.selectbox(key="th_run").options == [f"{mine.run_id} · micro F1 0.500"]
    assert at.selectbox(key="th_run").value == mine.run_id
