"""The Training and Thresholds pages under Streamlit's AppTest, on a real (tiny) finished run.

A module fixture trains one run in-process on generated tone data (~15–40 s on 2 shared cores);
each test copies it into its own runs folder, so what one test adds (a launched run, a broken
folder, thresholds.json) never shows up in another. The engine helpers of the training page
(birdcore.analysis.run_compare) are tested at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.apptest import app_on, charts_with_key, texts, vega  # noqa: F401
from helpers.synth import make_tone_dataset
from streamlit.testing.v1 import AppTest

from birdcore.analysis import run_compare
from birdcore.augment import presets_store
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import from_dict, to_dict
from birdcore.config.run import load_run_config
from birdcore.errors import DatasetError
from birdcore.evaluation import curves as tc
from birdcore.evaluation.metrics import METRICS
from birdcore.evaluation.thresholds import load_thresholds
from birdcore.training.launcher import prepare_run, run_in_process, stop_run
from birdcore.training.runs import RunFolder, list_runs

pytestmark = [pytest.mark.app, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TRAINING = REPO / "app" / "pages" / "4_Training.py"
THRESHOLDS = REPO / "app" / "pages" / "5_Thresholds.py"
TIMEOUT = 60  # generous: the 2 CPU cores are shared with other test runs
TINY = ["train.epochs=2", "train.num_workers=0", "data.clip_seconds=2.0", "train.batch_size=12",
        "model.pretrained=false", 'model.backbone="resnet10t"']


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tone_data(tmp_path_factory) -> Path:
    return make_tone_dataset(tmp_path_factory.mktemp("tones") / "data", n_species=4, per_species=12, seconds=3.0)


@pytest.fixture(scope="module")
def trained(tone_data, tmp_path_factory) -> RunFolder:
    """One real finished run (2 epochs of a small CNN, log every step)."""
    cfg = load_run_config("demo-cpu", TINY + ["train.log_every_steps=1"])
    run = prepare_run(tone_data, cfg, tmp_path_factory.mktemp("trained") / "runs")
    assert run_in_process(run)["state"] == "finished"
    return run


@pytest.fixture()
def runs(tmp_path, tone_data, monkeypatch) -> Path:
    """An empty runs folder for this test, with the app pointed at it and at the tone data."""
    return app_on(tone_data, tmp_path, monkeypatch)


@pytest.fixture()
def finished(trained, runs) -> RunFolder:
    """A copy of the trained run in this test's runs folder."""
    return RunFolder(Path(shutil.copytree(trained.path, runs / trained.run_id)))


def page(script: Path, **query) -> AppTest:
    at = AppTest.from_file(str(script), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at




def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---- Training page -------------------------------------------------------------------------------
def test_training_lists_the_run_and_draws_its_metrics(finished):
    at = page(TRAINING)
    status = finished.status()
    table = at.dataframe[0].value
    row = table.set_index("run_id")
    assert list(row.index) == [finished.run_id]
    assert "finished" in row.loc[finished.run_id, "state"]
    # shown as text ("—" while a run has none), rounded to 4 decimals
    assert float(row.loc[finished.run_id, "best_score"]) == pytest.approx(status["best_score"], abs=5e-5)
    assert row.loc[finished.run_id, "progress"] == "2/2"
    shown = metrics(at)
    assert shown["Epoch"] == "2/2" and shown["Best micro F1"] == f"{status['best_score']:.4f}"

    records = finished.metrics()[0]
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    loss = vega(at, "tr_loss_chart").series("step", "loss")
    assert loss["train (step)"]["x"] == [r["step"] for r in steps] and len(steps) >= 4
    assert loss["train (step)"]["y"] == [r["loss"] for r in steps]
    assert loss["validation (epoch)"]["y"] == pytest.approx([r["val_loss"] for r in epochs])
    curves = vega(at, "tr_metric_chart").series("epoch", "value")
    for name, key in (("micro F1", "micro_f1"), ("macro F1", "macro_f1"), ("macro ROC-AUC", "macro_auc")):
        assert curves[name]["x"] == [r["epoch"] + 1 for r in epochs]
        assert curves[name]["y"] == pytest.approx([r[key] for r in epochs])
    compare = vega(at, "tr_compare_chart").series("epoch", "value")  # the finished run is compared by default
    assert compare[finished.run_id]["y"] == pytest.approx([r["micro_f1"] for r in epochs])
    assert not at.error


def test_the_default_model_is_loaded_before_a_page_asks_for_it(finished, tone_data, monkeypatch):
    """What app/serve.py does before it listens: the scoring pages' default model, loaded into the same
    cache the pages read, so Inspection's first visit on a new server does not wait for it."""
    import sys

    sys.path.insert(0, str(REPO / "app"))
    from ui import models

    from birdcore.data.dataset import load_dataset
    from birdcore.inference import catalog

    models.load_model.clear()
    label = models.warm_default_model()
    assert label is not None and finished.run_id in label  # the finished run, the pages' default
    refs = catalog.find_models([finished.path.parent], REPO / "models", birdnet=False)

    def no_second_load(*args, **kwargs):
        raise AssertionError("the page loaded the model again")

    monkeypatch.setattr(catalog, "load_model", no_second_load)
    model = models.load_ref(refs[catalog.default_index(refs)], "torch", load_dataset(tone_data))
    assert model.classes == finished.classes  # the warmed model, from the cache
    models.load_model.clear()


def test_training_invalid_values_show_the_config_error(runs):
    at = page(TRAINING)
    assert "No runs yet" in texts(at.info)
    at.number_input(key="tr_epochs").set_value(0)
    at.button(key="tr_launch").click()
    rerun(at)
    assert "train.epochs: 0 must be >= 1" in texts(at.error)
    at.number_input(key="tr_epochs").set_value(2)
    at.text_area(key="tr_extra").set_value("train.epoch=3")
    at.button(key="tr_launch").click()
    rerun(at)
    assert "train.epoch: unknown field" in texts(at.error)
    # A saved augmentation config that no longer validates: the message names the file and the field.
    presets_store.augment_dir().mkdir(parents=True)
    (presets_store.augment_dir() / "broken.json").write_text('{"gain": {"p": 2.0}}', encoding="utf-8")
    at = page(TRAINING)
    at.selectbox(key="tr_augment").set_value("broken")
    at.button(key="tr_launch").click()
    rerun(at)
    assert "broken.json: augment.gain.p" in texts(at.error)
    assert list(runs.iterdir()) == []  # nothing was created


def test_training_skips_folders_that_are_not_runs(finished, runs):
    (runs / "notes").mkdir()
    (runs / "broken").mkdir()
    (runs / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    (runs / "stray.txt").write_text("hello", encoding="utf-8")
    at = page(TRAINING)
    warning = texts(at.warning)
    assert "Skipped 2 folders" in warning and "notes: not a run folder" in warning and "invalid JSON" in warning
    assert at.dataframe[0].value["run_id"].tolist() == [finished.run_id]


def test_training_launch_then_stop_from_the_page(runs):
    strong = from_dict(AugmentConfig, {"gain": {"p": 1.0, "min_db": -3.0, "max_db": 3.0}}, "augment")
    presets_store.save("strong gain", strong)  # as the Preview page saves it
    at = page(TRAINING)
    at.selectbox(key="tr_augment").set_value("strong gain")
    at.number_input(key="tr_epochs").set_value(50)  # far more than it will get: the test stops it
    at.text_input(key="tr_backbone").set_value("resnet10t")
    at.checkbox(key="tr_pretrained").uncheck()
    at.text_area(key="tr_extra").set_value("train.num_workers=0\ndata.clip_seconds=2.0\ntrain.batch_size=12")
    at.button(key="tr_launch").click()
    rerun(at)
    assert "Started run" in texts(at.success), texts(at.error)
    (run,) = list_runs(runs)
    saved = json.loads(run.config_path.read_text())
    assert saved["train"]["epochs"] == 50 and saved["model"]["backbone"] == "resnet10t"
    assert saved["model"]["pretrained_path"] is None  # the preset's weights file is for another backbone
    assert saved["augment"] == to_dict(strong)
    pid = run.status()["pid"]
    try:
        wait_for(lambda: run.status()["state"] in ("running", "finished", "failed"), 120, "the run to start")
        assert run.status()["state"] == "running", run.status()
        rerun(at)  # the page now shows it as running, with a stop button
        assert at.selectbox(key="tr_run").value == run.run_id
        at.button(key="tr_stop").click()
        rerun(at)
        wait_for(lambda: run.status()["state"] != "running", 60, "the run to stop")
        assert run.status()["state"] == "stopped"
    finally:
        stop_run(run)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # already reaped by subprocess' own bookkeeping
            pass
    rerun(at)
    assert "Stopped after" in texts(at.info)
    assert "stopped" in at.dataframe[0].value.set_index("run_id").loc[run.run_id, "state"]


def test_training_failed_run_shows_its_error(tone_data, runs, tmp_path):
    broken = Path(shutil.copytree(tone_data, tmp_path / "broken-data"))
    run = prepare_run(broken, load_run_config("demo-cpu", TINY), runs)
    for f in sorted((broken / "train_audio").rglob("*.ogg"))[:40]:  # a few bad files are skipped; most fail it
        f.write_bytes(b"junk")
    with pytest.raises(DatasetError):
        run_in_process(run)
    at = page(TRAINING)
    errors = texts(at.error)
    assert "Run failed: DatasetError" in errors and "40 of 48 training audio files cannot be read" in errors
    assert any("Traceback (most recent call last)" in c.value for c in at.code)
    assert "failed" in at.dataframe[0].value.set_index("run_id").loc[run.run_id, "state"]


# ---- Thresholds page -----------------------------------------------------------------------------
def separable_oof(run: RunFolder, rows: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Replace the run's OOF table with one where thresholds matter (positives score higher)."""
    rng = np.random.default_rng(seed)
    classes = run.classes
    y_true = np.zeros((rows, len(classes)), dtype=int)
    y_true[np.arange(rows), rng.integers(0, len(classes), rows)] = 1
    y_score = np.clip(0.3 * y_true + rng.uniform(0.0, 0.5, y_true.shape), 0, 1).round(4)
    cols = {"filename": [f"f{i}.ogg" for i in range(rows)], "epoch": 1}
    cols.update({f"p:{c}": y_score[:, k] for k, c in enumerate(classes)})
    cols.update({f"t:{c}": y_true[:, k].astype(np.int8) for k, c in enumerate(classes)})
    pd.DataFrame(cols).to_parquet(run.oof_path, index=False)
    return y_true, y_score


def scores_shown(at: AppTest) -> tuple[float, float, float]:
    m = metrics(at)
    glob = next(v for k, v in m.items() if k.startswith("At the global threshold"))
    return float(m["At 0.5"]), float(glob), float(m["With per-class thresholds"])


def test_thresholds_real_run_shows_scores_and_class_charts(finished):
    at = page(THRESHOLDS)
    y_true, y_score, classes = tc.read_oof(finished.oof_path)
    at_05, glob, per = scores_shown(at)
    assert at_05 == round(METRICS["birdclef2022"](y_true, y_score, 0.5), 4) == glob == per
    # The first class of the picker; its histogram holds every OOF row once.
    cls = at.selectbox(key=f"th_class::{finished.run_id}").value
    k = classes.index(cls)
    hist = vega(at, "th_hist").rows("bins").groupby("group")["rows"].sum()
    assert hist["positives"] == int(y_true[:, k].sum())
    assert hist["negatives"] == int((~y_true[:, k]).sum())
    curve = vega(at, "th_curve").series("threshold", "value", by="metric")
    assert set(curve) >= {"F1", "½(TPR+TNR)", "precision", "recall"}
    table = at.dataframe[0].value
    assert table["species"].tolist()[:2] == tc.order_classes(classes, ["t0sp1", "t1sp1"])[:2]  # scored first
    assert table["scored"].tolist()[:2] == [True, True]
    assert not at.error


def test_thresholds_sliders_move_the_scores_like_birdcore_metrics(finished):
    y_true, y_score = separable_oof(finished)
    rid = finished.run_id
    at = page(THRESHOLDS)
    at.slider(key=f"th_global::{rid}").set_value(0.3)
    rerun(at)
    birdclef = METRICS["birdclef2022"]
    assert scores_shown(at) == (round(birdclef(y_true, y_score, 0.5), 4), round(birdclef(y_true, y_score, 0.3), 4),
                                round(birdclef(y_true, y_score, 0.3), 4))
    assert scores_shown(at)[1] != scores_shown(at)[0]  # this data rewards a lower threshold

    cls = at.selectbox(key=f"th_class::{rid}").value
    at.slider(key=f"th_cls::{rid}::{cls}").set_value(0.6)
    rerun(at)
    vec = np.full(len(finished.classes), 0.3)
    vec[finished.classes.index(cls)] = 0.6
    assert scores_shown(at)[2] == round(birdclef(y_true, y_score, vec), 4)
    assert vega(at, "th_hist").rule_x() == [0.6]  # the threshold line follows the slider

    at.selectbox(key=f"th_metric::{rid}").set_value("micro_f1")
    rerun(at)
    micro = METRICS["micro_f1"]
    assert scores_shown(at) == (round(micro(y_true, y_score, 0.5), 4), round(micro(y_true, y_score, 0.3), 4),
                                round(micro(y_true, y_score, vec), 4))


def test_thresholds_optimise_save_and_reload(finished):
    y_true, y_score = separable_oof(finished)
    rid = finished.run_id
    at = page(THRESHOLDS)
    at.button(key="th_optimise").click()
    rerun(at)
    at_05, glob, per = scores_shown(at)
    assert per >= at_05 and per > 0.5 and "Optimised for" in texts(at.success)
    expected, _ = tc.tune_run_thresholds(finished, "birdclef2022", save=False)
    assert at.slider(key=f"th_global::{rid}").value == pytest.approx(expected.global_threshold)
    assert per == round(expected.scores["per_class"], 4)

    at.button(key="th_save").click()
    rerun(at)
    assert "Saved" in texts(at.success)
    saved = load_thresholds(finished.thresholds_path)
    assert saved.global_threshold == pytest.approx(expected.global_threshold)
    assert saved.per_class == pytest.approx(expected.per_class) and saved.metric == "birdclef2022"
    assert saved.method == "grid" and saved.scores["per_class"] == pytest.approx(expected.scores["per_class"])

    again = page(THRESHOLDS)  # a new session starts from the saved file
    assert "Started from the run's thresholds.json" in texts(again.info)
    assert scores_shown(again) == (at_05, glob, per)


def test_thresholds_lists_runs_without_oof_as_not_ready(finished, runs):
    waiting = Path(shutil.copytree(finished.path, runs / "20000101-000000-waiting-0000"))
    (waiting / "oof_predictions.parquet").unlink()
    at = page(THRESHOLDS)
    assert at.selectbox(key="th_run").value == finished.run_id  # options show "<id> · <metric> <score>"
    assert [o.split(" · ")[0] for o in at.selectbox(key="th_run").options] == [finished.run_id]
    assert "Not ready (no OOF predictions yet): 20000101-000000-waiting-0000" in texts(at.caption)
    finished.oof_path.unlink()
    empty = page(THRESHOLDS)
    assert "No run in" in texts(empty.info)


# ---- birdcore.analysis.run_compare ------------------------------------------------------------------------
def test_metrics_tail_reads_incrementally_and_restarts_after_truncation(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"kind": "start", "steps_per_epoch": 2}, {"kind": "step", "step": 1, "loss": 0.9},
             {"kind": "step", "step": 2, "loss": 0.8}, {"kind": "epoch", "epoch": 0, "micro_f1": 0.5}]
    tail = run_compare.MetricsTail(path)
    assert tail.update() == 0 and tail.records == []
    path.write_text("".join(json.dumps(r) + "\n" for r in lines[:2]) + '{"kind": "st', encoding="utf-8")
    assert tail.update() == 2 and tail.start["steps_per_epoch"] == 2 and len(tail.steps) == 1
    offset = tail.offset
    with open(path, "a", encoding="utf-8") as fh:  # the torn line completes, one more arrives
        fh.write('ep", "step": 2, "loss": 0.8}\n' + json.dumps(lines[3]) + "\n")
    assert tail.update() == 2 and tail.offset > offset
    assert [r["loss"] for r in tail.steps] == [0.9, 0.8] and tail.epochs[0]["micro_f1"] == 0.5
    assert tail.update() == 0
    # A resume truncates to an earlier size and appends different records: start over, no duplicates.
    data = path.read_bytes()
    path.write_bytes(data[: len(json.dumps(lines[0])) + 1] + (json.dumps({"kind": "step", "step": 7, "loss": 0.1})
                                                             + "\n").encode() * 5)
    tail.update()
    assert [r["step"] for r in tail.steps] == [7] * 5 and tail.epochs == [] and tail.start is not None


def test_runs_table_log_tail_and_formatting(finished, runs):
    (runs / "junk").mkdir()
    table, skipped = run_compare.runs_table(runs)
    assert table["run_id"].tolist() == [finished.run_id] and skipped == ["junk: not a run folder (no config.json)"]
    row = table.iloc[0]
    assert row["state"] == "finished" and row["epoch"] == 2 and bool(row["has_oof"]) and not row["has_thresholds"]
    assert run_compare.runs_table(runs / "nowhere")[0].empty

    curves = run_compare.metric_curves([finished], ["micro_f1", "val_loss"])
    epochs = finished.epoch_records()
    assert curves[curves["metric"] == "val_loss"]["value"].tolist() == [r["val_loss"] for r in epochs]

    log = runs / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "progress 10%\rprogress 100%\n\n", encoding="utf-8")
    tail = run_compare.log_tail(log, lines=3)
    assert tail.splitlines() == ["line 98", "line 99", "progress 100%"]
    assert run_compare.log_tail(runs / "none.log") == ""
    assert [run_compare.format_duration(s) for s in (None, 42.4, 185, 3720)] == ["—", "42 s", "3 min 05 s",
                                                                                "1 h 02 min"]
    status = {"state": "running", "eta_s": 100.0, "updated_at": "2030-01-01T00:00:00+00:00"}
    start = pd.Timestamp("2030-01-01T00:00:30+00:00").timestamp()
    assert run_compare.eta_seconds(status, now=start) == pytest.approx(70.0)
    assert run_compare.eta_seconds({**status, "state": "finished"}) is None
