"""What the app shows of self-training (`analysis.selftrain_view`), on a family folder the test writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from birdcore.analysis import selftrain_view as view
from birdcore.errors import RunError
from birdcore.selftrain import Family


@pytest.fixture
def family(tmp_path):
    fam = Family(tmp_path / "runs" / "selftrain-20261203-000000-demo-ab12")
    (fam.path / "labels").mkdir(parents=True)
    pd.DataFrame({"file_id": ["sc1", "sc1", "sc1", "sc2"], "end_time": [5, 10, 15, 5],
                  "path": ["/a/sc1.ogg"] * 3 + ["/a/sc2.ogg"], "teacher": ["runs/r0"] * 4,
                  "aaa": [0.9, 0.0, 0.4, 1.0], "bbb": [0.0, 0.0, 0.0, 0.7]}).to_csv(fam.labels_path(1), index=False)
    fam.write({"rounds": [
        {"round": 0, "run": "runs/r0", "teacher": None, "val_score": 0.8, "done": True},
        {"round": 1, "run": "runs/r1", "teacher": "runs/r0", "labels": str(fam.labels_path(1)),
         "passed": {"aaa": 3, "bbb": 1}, "windows": 4, "passed_windows": 3, "val_score": 0.85, "done": True}]})
    return fam


def test_rounds_and_passed_windows_per_species(family):
    table = view.rounds_table(family)
    assert table["round"].tolist() == [0, 1] and table["run"].tolist() == ["r0", "r1"]
    assert table.loc[1, "teacher"] == "r0" and table.loc[1, "val_score"] == 0.85
    passed = view.passed_per_species(family)
    assert passed.to_dict("records") == [{"round": 1, "species": "aaa", "windows": 3},
                                         {"round": 1, "species": "bbb", "windows": 1}]
    assert view.labelled_rounds(family) == [1] and view.round_teacher(family, 1) == "runs/r0"
    assert [f.path for f in view.families(family.path.parent)] == [family.path]


def test_a_recordings_labels_beside_a_models_scores(family):
    probs = pd.DataFrame({"start": [0.0, 5.0, 10.0], "end": [5.0, 10.0, 15.0], "aaa": [0.7, 0.1, 0.35],
                          "bbb": [0.2, 0.1, 0.0]})
    side = view.labels_beside_scores(family, 1, "sc1", probs)
    # only classes with a target somewhere in this recording; each beside the model's score
    assert list(side.columns) == ["start", "end", "aaa", "p:aaa"]
    assert side["aaa"].tolist() == [0.9, 0.0, 0.4] and side["p:aaa"].tolist() == [0.7, 0.1, 0.35]
    assert side["start"].tolist() == [0.0, 5.0, 10.0]
    assert view.labels_beside_scores(family, 1, "nowhere", probs).empty
    assert view.labels_beside_scores(family, 2, "sc1", probs).empty  # a round without a table


def test_a_broken_state_file_is_named(family):
    family.state_path.write_text("{not json")
    with pytest.raises(RunError, match="selftrain.json: not valid JSON"):
        view.rounds_table(family)
    family.state_path.write_text(json.dumps({"rounds": "x"}))
    with pytest.raises(RunError, match="no 'rounds' list"):
        view.labelled_rounds(family)
