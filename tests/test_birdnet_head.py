"""The `birdnet-head` model family and the BirdNET baseline through the normal run/submit paths."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

pytest.importorskip("ai_edge_litert", reason="the optional BirdNET extra (requirements-birdnet.txt) is not installed")

from helpers.synth import make_tone_dataset, shuffled_label_copy  # noqa: E402

from birdcore.cli import main as cli  # noqa: E402
from birdcore.config.run import load_run_config  # noqa: E402
from birdcore.data.dataset import load_dataset  # noqa: E402
from birdcore.pretrained import is_available  # noqa: E402
from birdcore.submission.submit import make_submission  # noqa: E402
from birdcore.submission.table import validate_submission  # noqa: E402
from birdcore.training.launcher import prepare_run, run_in_process  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not is_available(), reason="BirdNET model files not installed")]


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("bn") / "data", n_species=4, per_species=12, seconds=5.0,
                             soundscapes=1)


def _best_f1(run) -> float:
    return max(r["micro_f1"] for r in run.epoch_records())


def test_head_learns_and_beats_shuffled_labels(tones, tmp_path):
    cfg = load_run_config("birdnet-head", ["train.epochs=30"])
    run = prepare_run(tones, cfg, tmp_path / "runs")
    assert run_in_process(run)["state"] == "finished"
    shuffled = shuffled_label_copy(tones, tmp_path / "shuffled", seed=3)
    control = prepare_run(shuffled, cfg, tmp_path / "runs")
    run_in_process(control)
    assert _best_f1(run) >= 0.8 and _best_f1(run) - _best_f1(control) >= 0.3
    # the same run folder contract as CNN runs: OOF table, thresholds, submission
    assert run.oof_path.exists() and run.best_checkpoint.exists()
    assert cli(["tune-thresholds", str(run.path)]) == 0
    sub, _ = make_submission([run.path], tones, tmp_path / "submission.csv")
    validate_submission(sub, load_dataset(tones).test)
    # embeddings are cached once for every dataset and run: asking again computes none
    from birdcore.pretrained import EmbeddingCache

    cache = EmbeddingCache()
    cache.get_or_compute([str(p) for p in load_dataset(tones).audio_paths()])
    assert cache.computed == 0 and cache.hits == 48


def test_birdnet_baseline_submission_is_valid(tones, tmp_path, real_data_dir):
    data = tmp_path / "data"
    real = _real_code_copy(tones, data, real_data_dir)  # so BirdNET's labels map onto the species
    sub, res = make_submission(["birdnet"], data, tmp_path / "sub.csv")
    validate_submission(sub, load_dataset(data).test)
    assert res.classes == sorted(real.values())
    assert cli(["predict", "--model", "birdnet", str(data), "--data", str(data), "--out", str(tmp_path / "bn")]) == 0
    table = pd.read_csv(tmp_path / "bn.csv")
    assert list(table.columns) == ["file_id", "end_time", *sorted(real.values())]


def _real_code_copy(tones, data, real_data_dir) -> dict[str, str]:
    """A copy of the tone dataset whose species carry real eBird codes (so BirdNET has a prior for them)."""
    shutil.copytree(tones, data)
    shutil.copy(real_data_dir / "eBird_Taxonomy_v2021.csv", data / "eBird_Taxonomy_v2021.csv")
    real = {f"t{i}sp1": code for i, code in enumerate(["akiapo", "apapan", "iiwi", "skylar"])}
    meta = pd.read_csv(data / "train_metadata.csv")
    meta["primary_label"] = meta["primary_label"].map(real)
    meta.to_csv(data / "train_metadata.csv", index=False)
    for f in ("test.csv", "sample_submission.csv", "test_labels.csv", "scored_birds.json"):
        text = (data / f).read_text()
        for old, new in real.items():
            text = text.replace(old, new)
        (data / f).write_text(text)
    return real


def test_head_exports_to_a_kaggle_bundle_that_scores_like_the_run(tones, tmp_path, real_data_dir):
    import json
    import os
    import subprocess
    import sys

    import numpy as np

    from birdcore.errors import ModelError
    from birdcore.inference.predict import predict_files
    from birdcore.inference.scorers import BirdnetHeadScorer, load_scorer
    from birdcore.submission.submit import resolve_thresholds
    from birdcore.submission.table import build_submission

    data = tmp_path / "data"
    _real_code_copy(tones, data, real_data_dir)
    run = prepare_run(data, load_run_config("birdnet-head", ["train.epochs=8"]), tmp_path / "runs")
    assert run_in_process(run)["state"] == "finished"
    assert cli(["tune-thresholds", str(run.path)]) == 0
    out = tmp_path / "export"
    assert cli(["export", "--model", str(run.path), "--out", str(out), "--kaggle"]) == 0
    bundle = json.loads((out / "kaggle" / "bundle.json").read_text())
    assert bundle["family"] == "birdnet_head" and bundle["prior"]  # the head starts from BirdNET
    assert all(bundle["prior_columns"]) and bundle["verification"]["max_abs_diff"] < 1e-4
    for f in ("infer.py", "head.onnx", "birdnet.tflite", "birdnet_prior.npz", "class_thresholds.json"):
        assert (out / "kaggle" / f).is_file(), f
    with pytest.raises(ModelError, match="infer.py"):
        load_scorer(out)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(out / "kaggle" / "infer.py"), "--data", str(data), "--out",
                           str(tmp_path / "kaggle.csv")], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    # The run scored by birdcore itself (BirdnetHeadScorer: BirdNET's front end in torch, the head in
    # torch) gives the same submission, except at most rows within 1e-3 of their threshold.
    ds = load_dataset(data)
    res = predict_files(ds.soundscapes, [BirdnetHeadScorer(run.path)])
    thr = resolve_thresholds(None, [run.path], res.classes)
    ours = build_submission(res.table, ds.test, thr, res.classes)
    theirs = pd.read_csv(tmp_path / "kaggle.csv")
    assert theirs["row_id"].tolist() == ds.test["row_id"].tolist()
    cut = dict(zip(res.classes, thr.for_classes(res.classes)))
    probs = res.table.set_index(["file_id", "end_time"])
    differ = ds.test[(theirs["target"].astype(str).to_numpy() != ours["target"].astype(str).to_numpy())]
    for row in differ.itertuples():
        assert abs(probs.loc[(row.file_id, row.end_time), row.bird] - cut[row.bird]) < 1e-3, row
    assert len(differ) <= 1 and np.isfinite(res.table[res.classes].to_numpy()).all()
    # the script's top-level imports are the Kaggle image's (the TFLite runtime is imported inside)
    src = (out / "kaggle" / "infer.py").read_text()
    imported = {line.split()[1].split(".")[0] for line in src.splitlines() if line.startswith(("import ", "from "))}
    assert imported <= {"argparse", "csv", "json", "os", "pathlib", "numpy", "onnxruntime", "soundfile"}
