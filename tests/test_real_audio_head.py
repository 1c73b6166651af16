"""Import + BirdNET head on 100 real xeno-canto clips (../shared/data/real-birds-wna10): the head
that starts from BirdNET learns, beats a shuffled-label control, and is not below BirdNET raw."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("ai_edge_litert", reason="the optional BirdNET extra (requirements-birdnet.txt) is not installed")

from birdcore.analysis.cross_validation import birdnet_scores, cross_validate  # noqa: E402
from birdcore.config.run import load_run_config  # noqa: E402
from birdcore.ingest.importer import import_recordings  # noqa: E402
from birdcore.pretrained import is_available  # noqa: E402
from tests.conftest import REAL_DATA, SHARED, require_shared  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not is_available(), reason="BirdNET model files not installed")]
WNA10 = SHARED / "data" / "real-birds-wna10" / "recordings.csv"
FOLDS = ["train.n_folds=2", "train.epochs=40", "train.patience=10"]


@pytest.fixture(scope="module")
def wna10(tmp_path_factory):
    out = tmp_path_factory.mktemp("wna10") / "data"
    import_recordings([require_shared(WNA10)], out, taxonomy=require_shared(REAL_DATA / "eBird_Taxonomy_v2021.csv"))
    return out


def test_birdnet_started_head_learns_and_is_not_below_birdnet(wna10, tmp_path):
    started = cross_validate(wna10, load_run_config("birdnet-head", FOLDS), tmp_path / "runs")
    raw = birdnet_scores(wna10, started.filenames, started.classes)
    plain = cross_validate(wna10, load_run_config("birdnet-head", FOLDS + ["model.birdnet_prior=false"]),
                           tmp_path / "runs").aligned(started.filenames)
    s, r, p = started.summary(), raw.summary(), plain.summary()
    assert s["rows"] == r["rows"] == 100
    assert r["macro_auc"] > 0.95  # BirdNET knows these ten species
    assert s["macro_auc"] >= r["macro_auc"] - 0.01, (s, r)
    assert p["macro_auc"] > 0.9 and s["top1"] >= 0.9, (p, s)  # both heads learn the real labels

    # control: the same clips with their labels shuffled between recordings
    meta = pd.read_csv(wna10 / "train_metadata.csv", dtype=str, keep_default_na=False)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "train_audio").symlink_to(wna10 / "train_audio")
    (shuffled / "eBird_Taxonomy_v2021.csv").symlink_to(wna10 / "eBird_Taxonomy_v2021.csv")
    meta.assign(primary_label=meta["primary_label"].sample(frac=1.0, random_state=3).to_numpy()).to_csv(
        shuffled / "train_metadata.csv", index=False)
    control = cross_validate(shuffled, load_run_config("birdnet-head", FOLDS), tmp_path / "runs").summary()
    assert s["macro_auc"] - control["macro_auc"] >= 0.3, (s, control)
