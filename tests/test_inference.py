"""Inference: windowing rules, predictions, ONNX agreement, submission, Kaggle bundle, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers.synth import make_tone_dataset

from birdcore.audio.windows import cut_windows, pool_owners, smooth, window_count
from birdcore.cli import main as cli
from birdcore.config.run import load_run_config
from birdcore.data.dataset import load_dataset
from birdcore.errors import ModelError, SubmissionError
from birdcore.inference.predict import PredictOptions, predict_files, write_predictions
from birdcore.inference.scorers import load_scorer
from birdcore.submission.submit import make_submission
from birdcore.submission.table import validate_submission
from birdcore.training.launcher import prepare_run, run_in_process

SR = 32000


@pytest.mark.parametrize("seconds, n", [(60.0, 12), (59.99, 12), (60.004, 12), (3.0, 1), (0.2, 1), (6.0, 1),
                                        (6.6, 2), (61.4, 12), (62.0, 13)])
def test_window_count_rule(seconds, n):
    assert window_count(int(seconds * SR), SR) == n


def test_cut_windows_plain_hop_and_context():
    y = np.arange(12 * SR, dtype=np.float32)
    x, owners = cut_windows(y, SR, 5.0)
    assert x.shape == (3, 5 * SR) and list(owners) == [0, 1, 2]  # the 2-s tail (≥ 1.5 s) is a window
    np.testing.assert_array_equal(x[1], y[5 * SR: 10 * SR])
    x, owners = cut_windows(np.zeros(13 * SR, np.float32), SR, 5.0)
    assert x.shape[0] == 3 and x[2, 3 * SR:].sum() == 0
    x, owners = cut_windows(y[: 10 * SR], SR, 5.0, hop_s=2.5)
    assert len(x) == len(owners) and set(owners) == {0, 1}
    np.testing.assert_array_equal(x[0], y[: 5 * SR])
    x, owners = cut_windows(y[: 10 * SR], SR, 5.0, context_s=10.0)
    assert x.shape == (2, 10 * SR)
    np.testing.assert_array_equal(x[0][int(2.5 * SR): int(7.5 * SR)], y[: 5 * SR])  # centred on window 0


def test_pool_and_smooth():
    p = np.array([[1.0], [0.0], [0.5]], dtype=np.float32)
    np.testing.assert_allclose(pool_owners(p, np.array([0, 0, 1]), 2), [[0.5], [0.5]])
    s = smooth(np.array([[0.0], [1.0], [0.0], [0.0]], np.float32), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(s[:, 0], [0.25 / 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    np.testing.assert_array_equal(smooth(p, None), p)
    with pytest.raises(ValueError):
        smooth(p, [0.5, 0.5])


# Every test that uses `trained` is marked slow: the fixture trains a model.
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tone dataset with 2 soundscapes and a model that learnt it (demo-cpu preset, small)."""
    root = make_tone_dataset(tmp_path_factory.mktemp("inf") / "data", n_species=4, per_species=12, seconds=3.0,
                             soundscapes=2)
    cfg = load_run_config("demo-cpu", ["train.epochs=4", "train.num_workers=0", "data.clip_seconds=5.0",
                                       "train.batch_size=12", "train.patience=10"])
    run = prepare_run(root, cfg, tmp_path_factory.mktemp("runs"))
    assert run_in_process(run)["state"] == "finished"
    return root, run


@pytest.mark.slow
def test_predict_table_and_bad_files(trained, tmp_path):
    root, run = trained
    ds = load_dataset(root)
    odd = tmp_path / "odd"
    odd.mkdir()
    y = sf.read(ds.soundscapes[0])[0].astype(np.float32)
    sf.write(odd / "stereo44k.wav", np.stack([y[: 44100 * 7], y[: 44100 * 7]], axis=1), 44100)  # stereo, 44.1 kHz
    sf.write(odd / "short.wav", y[: SR // 5], SR)  # 0.2 s
    (odd / "corrupt.ogg").write_bytes(b"OggS" + os.urandom(300))
    scorer = load_scorer(run.path)
    files = [*ds.soundscapes, odd / "corrupt.ogg", odd / "short.wav", odd / "stereo44k.wav"]
    res = predict_files(files, [scorer])
    assert [Path(p).name for p, _ in res.skipped] == ["corrupt.ogg"] and "corrupt.ogg" in res.skipped[0][1]
    counts = res.table.groupby("file_id").size().to_dict()
    assert counts == {ds.soundscapes[0].stem: 12, ds.soundscapes[1].stem: 12, "short": 1, "stereo44k": 2}
    assert list(res.table.columns[:2]) == ["file_id", "end_time"] and list(res.table.columns[2:]) == run.classes
    assert res.table[run.classes].to_numpy().min() >= 0 and res.table[run.classes].to_numpy().max() <= 1
    written = write_predictions(res, tmp_path / "out" / "pred")
    assert {p.name for p in written} == {"pred.parquet", "pred.csv", "skipped.csv"}
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "pred.parquet"), res.table)
    # an ensemble of the same model twice equals the model; smoothing keeps the shape
    twice = predict_files(ds.soundscapes, [scorer, scorer]).table
    single = predict_files(ds.soundscapes, [scorer]).table
    np.testing.assert_allclose(twice[run.classes], single[run.classes], atol=1e-6)
    smoothed = predict_files(ds.soundscapes, [scorer], PredictOptions(smoothing=[0.1, 0.8, 0.1])).table
    assert smoothed.shape == single.shape and not np.allclose(smoothed[run.classes], single[run.classes])


@pytest.mark.slow
def test_model_detects_the_calls_it_learnt(trained):
    root, run = trained
    ds = load_dataset(root)
    res = predict_files(ds.soundscapes, [load_scorer(run.path)])
    labels = ds.test_labels.set_index("row_id")["target"]
    rows = ds.test.assign(prob=[float(res.table.loc[(res.table.file_id == f) & (res.table.end_time == e), b].iloc[0])
                                for f, e, b in zip(ds.test.file_id, ds.test.end_time, ds.test.bird)])
    rows["truth"] = rows["row_id"].map(labels)
    assert rows.loc[rows.truth, "prob"].mean() > rows.loc[~rows.truth, "prob"].mean() + 0.3


@pytest.mark.slow
def test_onnx_matches_torch(trained):
    _, run = trained
    torch_s, onnx_s = load_scorer(run.path, "torch"), load_scorer(run.path, "onnx")
    x = (0.1 * np.random.default_rng(0).standard_normal((3, 5 * SR))).astype(np.float32)
    np.testing.assert_allclose(onnx_s(x)[0], torch_s(x)[0], atol=1e-3)
    assert onnx_s.frontend is not None  # torch front end + network.onnx in ONNX Runtime
    from birdcore.inference.scorers import OnnxScorer

    whole = OnnxScorer(run.path / "onnx", prefer_network=False)  # waveform-in model.onnx
    assert whole.frontend is None
    np.testing.assert_allclose(whole(x)[0], torch_s(x)[0], atol=1e-3)
    assert (run.path / "onnx" / "model.onnx").exists() and (run.path / "onnx" / "network.onnx").exists()
    meta = json.loads((run.path / "onnx" / "bundle.json").read_text())
    assert meta["classes"] == run.classes and meta["verification"]["max_abs_diff"] < 1e-3


@pytest.mark.slow
def test_submission_rows_equal_test_csv_and_tuning_helps(trained, tmp_path):
    root, run = trained
    assert cli(["tune-thresholds", str(run.path)]) == 0
    out = tmp_path / "submission.csv"
    sub, _ = make_submission([run.path], root, out)
    test = pd.read_csv(root / "test.csv")
    written = pd.read_csv(out, dtype=str)
    assert written["row_id"].tolist() == test["row_id"].tolist()
    assert set(written["target"]) <= {"True", "False"}
    validate_submission(sub, load_dataset(root).test)
    assert cli(["evaluate", str(out), "--data", str(root)]) == 0
    # a partial ground truth (e.g. the annotation page's export) scores only its rows
    labels = pd.read_csv(root / "test_labels.csv").head(30)
    labels.to_csv(tmp_path / "partial.csv", index=False)
    assert cli(["evaluate", str(out), "--data", str(root), "--labels", str(tmp_path / "partial.csv")]) == 0
    labels.assign(row_id="nope_" + labels["row_id"]).to_csv(tmp_path / "bad.csv", index=False)
    assert cli(["evaluate", str(out), "--data", str(root), "--labels", str(tmp_path / "bad.csv")]) == 2


@pytest.fixture(scope="module")
def kaggle_export(trained, tmp_path_factory):
    """The trained run exported with `--kaggle` (tuned thresholds): (data root, export folder)."""
    root, run = trained
    assert cli(["tune-thresholds", str(run.path)]) == 0
    out = tmp_path_factory.mktemp("kaggle") / "export"
    assert cli(["export", "--model", str(run.path), "--out", str(out), "--kaggle"]) == 0
    return root, out


_OPENVINO = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                               reason="the optional OpenVINO extra (requirements-openvino.txt) is not installed")


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", pytest.param("openvino", marks=_OPENVINO)])
def test_kaggle_bundle_round_trip(kaggle_export, tmp_path, runtime):
    """The bundle's infer.py (numpy mel + network.onnx in `runtime`) writes birdcore's submission."""
    root, out = kaggle_export
    bundle = out / "kaggle"
    assert (out / "thresholds.json").exists()
    assert {f.name for f in bundle.iterdir()} >= {"infer.py", "network.onnx", "frontend.npz", "bundle.json",
                                                  "class_thresholds.json"}
    assert not (bundle / "model.onnx").exists()  # the slow waveform-in graph is no longer shipped
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(bundle / "infer.py"), "--data", str(root), "--out",
                           str(tmp_path / "kaggle.csv"), "--runtime", runtime, "--save-probs", str(tmp_path / "p.npz")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("network runtime: " + {"onnxruntime": "onnxruntime", "openvino": "OpenVINO"}[runtime]), first
    # birdcore's own scoring of the exported model on the same runtime (torch mel front end):
    # the same window probabilities to float rounding, and the same submission rows.
    from birdcore.inference.scorers import OnnxScorer
    from birdcore.submission.submit import resolve_thresholds
    from birdcore.submission.table import build_submission, write_submission

    ds = load_dataset(root)
    ours = predict_files(ds.soundscapes, [OnnxScorer(out, runtime="onnx" if runtime == "onnxruntime" else "openvino")])
    with np.load(tmp_path / "p.npz") as saved:
        theirs = {k: saved[k] for k in saved.files}
    assert sorted(theirs) == sorted(ours.table["file_id"].unique())
    worst = max(float(np.abs(theirs[f] - g[ours.classes].to_numpy()).max()) for f, g in ours.table.groupby("file_id"))
    assert worst < 1e-4, worst
    thr = resolve_thresholds(None, [out], ours.classes)
    write_submission(tmp_path / "ours.csv", build_submission(ours.table, ds.test, thr, ours.classes), ds.test)
    a, b = pd.read_csv(tmp_path / "kaggle.csv"), pd.read_csv(tmp_path / "ours.csv")
    assert a["row_id"].tolist() == b["row_id"].tolist() and a["target"].nunique() == 2
    # a row may differ only where its probability sits within float rounding of the threshold
    cut = dict(zip(ours.classes, thr.for_classes(ours.classes)))
    probs = ours.table.set_index(["file_id", "end_time"])
    for row in ds.test[(a["target"] != b["target"]).to_numpy()].itertuples():
        assert abs(probs.loc[(row.file_id, row.end_time), row.bird] - cut[row.bird]) < 1e-4, row
    # the bundle script's top-level imports are the Kaggle image's (openvino is tried inside)
    src = (bundle / "infer.py").read_text()
    imported = {line.split()[1].split(".")[0] for line in src.splitlines() if line.startswith(("import ", "from "))}
    assert imported <= {"argparse", "csv", "json", "os", "time", "pathlib", "numpy", "soundfile"}


@pytest.mark.slow
def test_ensemble_class_mismatch_and_bad_sources(trained, tmp_path):
    _, run = trained
    with pytest.raises(ModelError, match="neither a run folder"):
        load_scorer(tmp_path)
    with pytest.raises(ModelError, match="unknown backend"):
        load_scorer(run.path, backend="tflite")


@pytest.mark.slow
def test_submit_refuses_missing_soundscape(trained, tmp_path):
    root, run = trained
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = sorted((copy / "test_soundscapes").iterdir())[0]
    victim.write_bytes(b"garbage")
    out = tmp_path / "sub.csv"
    with pytest.raises(SubmissionError, match="could not be read"):
        make_submission([run.path], copy, out)
    assert not out.exists()


@pytest.mark.slow
def test_end_to_end_on_demo_dataset(tmp_path):
    """train demo-cpu → tune thresholds → submit → evaluate: well above the all-False 0.5."""
    from birdcore.demo import default_demo_dir, ensure_demo_dataset
    from birdcore.evaluation.metrics import birdclef2022_score_table

    data = ensure_demo_dataset(default_demo_dir())
    runs = tmp_path / "runs"
    assert cli(["train", "--data", str(data), "--runs", str(runs), "--config", "demo-cpu",
                "--set", "train.epochs=4", "--set", "train.num_workers=0"]) == 0
    (run_dir,) = list(runs.iterdir())
    assert cli(["tune-thresholds", str(run_dir)]) == 0
    sub_path = tmp_path / "submission.csv"
    assert cli(["submit", "--model", str(run_dir), "--data", str(data), "--out", str(sub_path)]) == 0
    sub = pd.read_csv(sub_path, dtype=str)
    labels = pd.read_csv(data / "test_labels.csv", dtype=str)
    score = birdclef2022_score_table(labels, sub)
    all_false = birdclef2022_score_table(labels, sub.assign(target="False"))
    assert all_false == pytest.approx(0.5)
    assert score >= 0.7, score


@pytest.mark.slow
def test_openvino_backend_scores_like_onnx_runtime(trained, tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="the optional OpenVINO extra (requirements-openvino.txt) is not installed")
    root, run = trained
    files = load_dataset(root).soundscapes
    onnx = predict_files(files, [load_scorer(run.path, backend="onnx")])
    names = onnx.classes
    ov32 = predict_files(files, [load_scorer(run.path, backend="openvino")])
    a, b = (r.table[names].to_numpy() for r in (onnx, ov32))
    assert a.shape == b.shape and a.std() > 0.01  # a trained model, not a constant
    assert np.abs(a - b).max() < 1e-4  # the same graph, f32 both
    assert ov32.table[["file_id", "end_time"]].equals(onnx.table[["file_id", "end_time"]])
    # the command line and the budget planner take it like any backend
    out = tmp_path / "ov"
    assert cli(["predict", "--model", str(run.path), str(root), "--backend", "openvino", "--out", str(out)]) == 0
    written = pd.read_csv(tmp_path / "ov.csv")
    assert np.abs(written[names].to_numpy() - b).max() < 1e-5
    # without the extra: a message naming the install command, not an ImportError
    monkeypatch.setattr("birdcore.inference.openvino_runtime.is_available", lambda: False)
    with pytest.raises(ModelError, match="requirements-openvino.txt"):
        load_scorer(run.path, backend="openvino")


@pytest.mark.slow
def test_an_ensemble_computes_a_shared_mel_front_end_once(trained, tmp_path, monkeypatch):
    import shutil

    from birdcore.features.mel_frontend import MelFrontend

    root, run = trained
    twin = tmp_path / "twin"
    shutil.copytree(run.path, twin)  # another fold of the same config: equal front ends
    files = load_dataset(root).soundscapes[:1]
    scorers = [load_scorer(run.path), load_scorer(twin), load_scorer(run.path, backend="onnx")]
    assert len({s.frontend_key for s in scorers}) == 1  # torch on CPU and ONNX share the torch front end
    alone = [predict_files(files, [s]).table for s in scorers]
    calls = []
    original = MelFrontend.forward
    monkeypatch.setattr(MelFrontend, "forward", lambda self, w: calls.append(len(w)) or original(self, w))
    both = predict_files(files, scorers, PredictOptions(batch_windows=5))
    n_windows = len(both.table)
    assert sum(calls) == n_windows and len(calls) == -(-n_windows // 5)  # once per batch, not once per model
    classes = both.classes
    mean = sum(t[classes].to_numpy() for t in alone) / 3
    np.testing.assert_allclose(both.table[classes].to_numpy(), mean, atol=1e-5)
