"""The Inspection page shows a self-training round's pseudo-labels of an unlabeled soundscape beside
a model's scores (issue 15), under AppTest: the session's tiny trained model (`tiny_trained`) and a
family folder whose label table the test writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.apptest import start_page, texts
from helpers.synth import write_unlabeled_soundscapes
from test_inspection import tiny_trained

from birdcore.inference import catalog
from birdcore.selftrain import Family

pytestmark = [pytest.mark.app, pytest.mark.slow]

INSPECT = Path(__file__).resolve().parents[1] / "app" / "pages" / "6_Inspection.py"
CODES = [f"t{i}sp1" for i in range(4)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data0, runs0 = tiny_trained(tmp_path_factory)
    base = tmp_path_factory.mktemp("insp-selftrain")
    data, runs = base / "data", base / "runs"
    shutil.copytree(data0, data)
    shutil.copytree(runs0, runs)
    truth = write_unlabeled_soundscapes(data, len(CODES), count=2, seconds=20.0)
    fam = Family(runs / "selftrain-20261203-000000-demo-ab12")
    (fam.path / "labels").mkdir(parents=True)
    table = truth.assign(teacher="birdnet")[["file_id", "end_time", "path", "teacher", *CODES]].astype({c: float for c in CODES})
    table[CODES[3]] = np.nan  # a species the teacher does not know
    table.loc[table["file_id"] == "scape_0", CODES[0]] = [0.9, 0.0, 0.35, 0.0]
    table.to_csv(fam.labels_path(1), index=False)
    fam.write({"rounds": [
        {"round": 0, "run": str(next(p for p in runs.iterdir() if p.name != fam.path.name)), "teacher": None,
         "done": True},
        {"round": 1, "run": str(runs / "r1"), "teacher": "birdnet", "labels": str(fam.labels_path(1)),
         "passed": {CODES[0]: 2}, "windows": len(table), "passed_windows": 2}]})
    return data, runs, table


@pytest.fixture(autouse=True)
def app_env(setup, tmp_path, monkeypatch):
    data, runs, _ = setup
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(data))
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)  # the BirdNET extra is optional


def test_pseudo_labels_of_an_unlabeled_soundscape_beside_the_models_scores(setup):
    data, runs, table = setup
    at = start_page(INSPECT, 120)
    source = next(r for r in at.radio if r.key == "insp_source")
    assert "Unlabeled soundscape" in source.options
    source.set_value("Unlabeled soundscape").run()
    assert not at.exception, [e.value for e in at.exception]
    next(s for s in at.selectbox if s.key == "insp_unlabeled").set_value(data / "unlabeled_soundscapes" / "scape_0.ogg")
    at.run()
    assert not at.exception and "Pseudo-labels" in texts(at.subheader)
    assert "teacher: birdnet" in texts(at.caption)
    side = next(d.value for d in at.dataframe if "start" in d.value.columns and "end" in d.value.columns)
    # round 1's targets of this recording, window by window, as the table holds them
    mine = table[table["file_id"] == "scape_0"].reset_index(drop=True)
    assert side["end"].tolist() == mine["end_time"].astype(float).tolist()
    assert side[CODES[0]].tolist() == pytest.approx([0.9, 0.0, 0.35, 0.0])
    assert CODES[3] not in side.columns  # no opinion anywhere: not shown as a column of zeros
    # beside them, the picked model's score of each window: the page's numbers are the engine's
    ref = catalog.find_models([runs], None, birdnet=False)[0]
    probs = catalog.recording_probs([catalog.load_model(ref, "torch")], data / "unlabeled_soundscapes" / "scape_0.ogg")
    want = pd.Series(probs[CODES[0]].to_numpy(), index=probs["end"].astype(float)).round(3)
    assert side[f"p:{CODES[0]}"].tolist() == pytest.approx(want.loc[side["end"]].tolist(), abs=1e-3)
