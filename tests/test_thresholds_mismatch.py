"""A thresholds file made for other classes than the model's is refused or warned about, never applied silently."""

from __future__ import annotations

import numpy as np
import pytest

from birdcore.errors import BirdcoreError
from birdcore.evaluation.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    check_thresholds_cover,
    save_thresholds,
    tune_thresholds,
    uncovered_classes,
)
from birdcore.submission.submit import resolve_thresholds

MODEL = ["amerob", "houspa", "norcar", "blujay", "comrav"]


def _file(tmp_path, classes, per_class=None, name="thr.json", global_threshold=0.07):
    path = tmp_path / name
    save_thresholds(path, Thresholds(classes=classes, global_threshold=global_threshold, per_class=per_class or {}))
    return path


def test_file_for_other_classes_is_refused_naming_both_sides(tmp_path, capsys):
    path = _file(tmp_path, ["zzasc1", "zzcro1", "zzhar1"], {"zzasc1": 0.2})
    with pytest.raises(BirdcoreError) as info:
        resolve_thresholds(path, [], MODEL)
    msg = str(info.value)
    assert str(path) in msg
    assert "amerob" in msg and "houspa" in msg, "a few model classes missing from the file"
    assert "zzasc1" in msg and "zzcro1" in msg, "a few file classes unknown to the model"
    assert capsys.readouterr().err == ""


def test_long_class_lists_are_shortened(tmp_path):
    model = [f"m{i:02d}" for i in range(40)]
    path = _file(tmp_path, [f"f{i:02d}" for i in range(30)])
    with pytest.raises(BirdcoreError) as info:
        resolve_thresholds(path, [], model)
    msg = str(info.value)
    assert "m00" in msg and "f00" in msg and "…" in msg
    assert "m39" not in msg and "f29" not in msg


def test_partly_covering_file_warns_with_counts_names_and_global(tmp_path, capsys):
    path = _file(tmp_path, ["amerob", "houspa", "zzasc1"], {"amerob": 0.3, "houspa": 0.4, "zzasc1": 0.5})
    thr = resolve_thresholds(path, [], MODEL)
    err = capsys.readouterr().err
    assert err.startswith("birdcore: warning: ") and err.count("\n") == 1
    assert f"{path} has no threshold for 3 of 5 classes (norcar, blujay, comrav)" in err
    assert "global threshold 0.07" in err
    np.testing.assert_allclose(thr.for_classes(MODEL), [0.3, 0.4, 0.07, 0.07, 0.07])


def test_tuned_file_leaving_rare_classes_at_the_global_does_not_warn(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y_true = np.zeros((200, len(MODEL)), dtype=bool)
    y_true[:40, 0] = y_true[40:80, 1] = True
    y_true[80, 2] = True  # one positive: below min_positives, so it keeps the global threshold
    y_score = np.clip(y_true * 0.4 + rng.uniform(0, 0.5, y_true.shape), 0, 1)
    tuned = tune_thresholds(y_true, y_score, MODEL, min_positives=3)
    # As a hand-edited or older tuned file may hold it: only the tuned classes in per_class.
    kept = {c: v for c, v in tuned.per_class.items() if c in MODEL[:2]}
    for name, per_class in (("tuned.json", tuned.per_class), ("sparse.json", kept)):
        path = _file(tmp_path, MODEL, per_class, name=name, global_threshold=tuned.global_threshold)
        assert uncovered_classes(resolve_thresholds(path, [], MODEL), MODEL) == []
    assert capsys.readouterr().err == ""


def test_global_only_file_applies_to_every_class(tmp_path, capsys):
    path = _file(tmp_path, [], global_threshold=0.12)
    thr = resolve_thresholds(path, [], MODEL)
    assert capsys.readouterr().err == ""
    np.testing.assert_allclose(thr.for_classes(MODEL), 0.12)


def test_model_folder_thresholds_are_checked_too(tmp_path, capsys):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _file(model_dir, ["zzasc1"], name=THRESHOLDS_FILE)
    with pytest.raises(BirdcoreError, match=str(model_dir / THRESHOLDS_FILE)):
        resolve_thresholds(None, [model_dir], MODEL)
    _file(model_dir, MODEL, name=THRESHOLDS_FILE)
    resolve_thresholds(None, [model_dir], MODEL)
    assert capsys.readouterr().err == ""


def test_check_for_an_uploaded_file(tmp_path):
    # The app reads uploads with Thresholds.from_bytes and checks them the same way.
    data = _file(tmp_path, ["amerob", "zzasc1"]).read_bytes()
    thr = Thresholds.from_bytes(data, "upload.json")
    warning = check_thresholds_cover(thr, MODEL, "upload.json")
    assert warning is not None and warning.startswith("upload.json has no threshold for 4 of 5 classes")
    assert check_thresholds_cover(thr, ["amerob"], "upload.json") is None
    with pytest.raises(BirdcoreError, match="upload.json"):
        check_thresholds_cover(thr, ["houspa"], "upload.json")
