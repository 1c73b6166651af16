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
    shutil.copytree(tones, data)
    shutil.copy(real_data_dir / "eBird_Taxonomy_v2021.csv", data / "eBird_Taxonomy_v2021.csv")
    # give the tone species real codes so BirdNET's labels map onto them
    meta = pd.read_csv(data / "train_metadata.csv")
    real = {f"t{i}sp1": code for i, code in enumerate(["akiapo", "apapan", "iiwi", "skylar"])}
    for col in ("primary_label",):
        meta[col] = meta[col].map(real)
    meta.to_csv(data / "train_metadata.csv", index=False)
    for f in ("test.csv", "sample_submission.csv", "test_labels.csv", "scored_birds.json"):
        text = (data / f).read_text()
        for old, new in real.items():
            text = text.replace(old, new)
        (data / f).write_text(text)
    sub, res = make_submission(["birdnet"], data, tmp_path / "sub.csv")
    validate_submission(sub, load_dataset(data).test)
    assert res.classes == sorted(real.values())
    assert cli(["predict", "--model", "birdnet", str(data), "--data", str(data), "--out", str(tmp_path / "bn")]) == 0
    table = pd.read_csv(tmp_path / "bn.csv")
    assert list(table.columns) == ["file_id", "end_time", *sorted(real.values())]
