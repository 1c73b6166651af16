"""Submission building, validation, writing and evaluation (synthetic tables + the real test.csv)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from birdcore.errors import DatasetError, SubmissionError
from birdcore.evaluation.thresholds import Thresholds
from birdcore.submission.table import (
    build_submission,
    evaluate_submission,
    read_test_table,
    validate_submission,
    write_submission,
)

FILES = ["soundscape_11", "soundscape_22"]
BIRDS = ["akiapo", "hawpet1", "skylar"]
CLASSES = ["akiapo", "hawpet1", "skylar", "iiwi"]  # the model knows one bird test.csv does not score


def _write_test_csv(path, files=FILES, birds=BIRDS):
    rows = [(f"{f}_{b}_{e}", f, b, e) for f in files for b in birds for e in range(5, 65, 5)]
    pd.DataFrame(rows, columns=["row_id", "file_id", "bird", "end_time"]).to_csv(path, index=False)
    return path


def _window_probs(rng, files=FILES, classes=CLASSES):
    keys = [(f, e) for f in files for e in range(5, 65, 5)]
    wp = pd.DataFrame(keys, columns=["file_id", "end_time"])
    for c in classes:
        wp[c] = rng.random(len(wp))
    return wp.sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter


@pytest.fixture()
def test_df(tmp_path):
    return read_test_table(_write_test_csv(tmp_path / "test.csv"))


def test_read_test_table(test_df):
    assert list(test_df.columns) == ["row_id", "file_id", "bird", "end_time"]
    assert test_df["end_time"].dtype == np.int64 and len(test_df) == 2 * 3 * 12


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda df: df.drop(columns="bird"), r"missing column\(s\) \['bird'\]"),
        (lambda df: df.assign(end_time=df["end_time"].astype(str).replace("10", "ten")), "end_time.*'ten'"),
        (lambda df: df.assign(row_id=df["row_id"].replace("soundscape_11_akiapo_5", "x")), "row_id.*'x'"),
        (lambda df: pd.concat([df, df.iloc[:1]]), "row_id.*duplicated"),
        (lambda df: df.assign(bird=df["bird"].replace("skylar", "")), "'bird' is empty"),
    ],
)
def test_read_test_table_errors(tmp_path, edit, pattern):
    good = pd.read_csv(_write_test_csv(tmp_path / "good.csv"))
    bad = tmp_path / "bad.csv"
    edit(good).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=pattern) as err:
        read_test_table(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(DatasetError, match="not found"):
        read_test_table(tmp_path / "absent.csv")


def test_build_submission_matches_manual_lookup(test_df):
    rng = np.random.default_rng(0)
    wp = _window_probs(rng)
    thr = Thresholds(classes=CLASSES, global_threshold=0.5, per_class={"akiapo": 0.2, "skylar": 0.8})
    sub = build_submission(wp, test_df, thr, CLASSES)
    assert list(sub.columns) == ["row_id", "target"]
    assert sub["row_id"].tolist() == test_df["row_id"].tolist()
    assert all(type(v) is bool for v in sub["target"].tolist())
    lookup = wp.set_index(["file_id", "end_time"])
    want = [lookup.loc[(r.file_id, r.end_time), r.bird] >= thr.for_classes([r.bird])[0] for r in test_df.itertuples()]
    assert sub["target"].tolist() == want
    validate_submission(sub, test_df)
    # a scalar threshold works too; end_time given as float seconds is accepted
    sub2 = build_submission(wp.assign(end_time=wp["end_time"].astype(float)), test_df, 0.5, CLASSES)
    assert sub2["target"].tolist() == [lookup.loc[(r.file_id, r.end_time), r.bird] >= 0.5 for r in test_df.itertuples()]


def test_build_submission_missing_predictions(test_df):
    rng = np.random.default_rng(1)
    wp = _window_probs(rng)
    wp = wp[~((wp["file_id"] == "soundscape_22") & (wp["end_time"] == 60))]
    with pytest.raises(SubmissionError, match=r"3 test row\(s\) have no prediction.*soundscape_22_akiapo_60"):
        build_submission(wp, test_df, 0.5, CLASSES)
    with pytest.raises(SubmissionError, match=r"not a model class \(\['skylar'\]\)"):
        build_submission(_window_probs(rng, classes=CLASSES[:2]), test_df, 0.5, CLASSES[:2])
    sub = build_submission(wp, test_df, 0.0, CLASSES, missing="false")  # threshold 0: every present row True
    assert sub.attrs["n_missing_windows"] == 3 and sub.attrs["n_unknown_birds"] == 0
    assert (~sub["target"]).sum() == 3
    assert not sub.set_index("row_id").loc["soundscape_22_hawpet1_60", "target"]


def test_build_submission_bad_window_probs(test_df):
    rng = np.random.default_rng(2)
    wp = _window_probs(rng)
    with pytest.raises(SubmissionError, match="duplicated"):
        build_submission(pd.concat([wp, wp.iloc[:1]]), test_df, 0.5, CLASSES)
    with pytest.raises(SubmissionError, match="NaN"):
        build_submission(wp.assign(akiapo=np.nan), test_df, 0.5, CLASSES)
    with pytest.raises(SubmissionError, match="lacks"):
        build_submission(wp.drop(columns="iiwi"), test_df, 0.5, CLASSES)
    with pytest.raises(SubmissionError, match="whole seconds"):
        build_submission(wp.assign(end_time=wp["end_time"] + 0.5), test_df, 0.5, CLASSES)


def test_real_test_csv_gives_valid_submission(real_data_dir, tmp_path):
    test_df = read_test_table(real_data_dir / "test.csv")
    sample = pd.read_csv(real_data_dir / "sample_submission.csv")
    scored = json.loads((real_data_dir / "scored_birds.json").read_text())
    wp = pd.DataFrame({"file_id": test_df["file_id"].iloc[0], "end_time": range(5, 65, 5)})
    for b in scored:
        wp[b] = 0.01  # below any sensible threshold -> all False, like the sample
    sub = build_submission(wp, test_df, Thresholds(classes=scored, global_threshold=0.045), scored)
    validate_submission(sub, test_df)
    assert sub["row_id"].tolist() == sample["row_id"].tolist()
    out = write_submission(tmp_path / "submission.csv", sub, test_df)
    assert out.read_bytes() == (real_data_dir / "sample_submission.csv").read_bytes()


def _valid(test_df):
    return pd.DataFrame({"row_id": test_df["row_id"], "target": np.arange(len(test_df)) % 3 == 0})


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda s: s.drop(index=5), r"1 test row\(s\) missing, e.g. \['soundscape_11_akiapo_30'\]"),
        (lambda s: pd.concat([s, pd.DataFrame({"row_id": ["zzz_akiapo_5"], "target": [False]})]), r"1 extra row.*zzz_akiapo_5"),
        (lambda s: pd.concat([s, s.iloc[[7]]]), r"2 rows share a row_id.*soundscape_11_akiapo_40"),
        (lambda s: s.iloc[[1, 0] + list(range(2, len(s)))], r"row order differs.*first at row 0"),
        (lambda s: s.assign(target=s["target"].map({True: "True", False: "False"})), r"not booleans"),
        (lambda s: s.assign(target=s["target"].astype(int)), r"72 target value\(s\) are not booleans"),
        (lambda s: s.assign(target=s["target"].astype(object).where(s.index != 3, None)), r"1 target.*soundscape_11_akiapo_20"),
        (lambda s: s.rename(columns={"target": "prediction"}), r"columns must be exactly"),
        (lambda s: s[["target", "row_id"]], r"columns must be exactly"),
    ],
)
def test_validate_failures(test_df, edit, pattern):
    with pytest.raises(SubmissionError, match=pattern):
        validate_submission(edit(_valid(test_df)), test_df)


def test_validate_accepts_python_bools_in_object_column(test_df):
    sub = _valid(test_df)
    validate_submission(sub.assign(target=sub["target"].astype(object)), test_df)


def test_write_refuses_invalid_and_keeps_existing_file(test_df, tmp_path):
    path = tmp_path / "submission.csv"
    sub = _valid(test_df)
    write_submission(path, sub, test_df)
    before = path.read_bytes()
    lines = before.decode().splitlines()
    assert lines[0] == "row_id,target" and lines[1] == "soundscape_11_akiapo_5,True" and lines[2].endswith(",False")
    with pytest.raises(SubmissionError):
        write_submission(path, sub.iloc[:-1], test_df)
    assert path.read_bytes() == before
    with pytest.raises(SubmissionError):
        write_submission(tmp_path / "new.csv", sub.iloc[:-1], test_df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv", "test.csv"]  # no temp files left


def test_evaluate_hand_case():
    # Same case as test_metrics: per-bird rows (A = akiapo, B = hawpet1) over 4 windows.
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], bool)
    p = np.array([[1, 1], [0, 0], [0, 1], [1, 0]], bool)
    ids = [f"soundscape_9_{b}_{e}" for e in (5, 10, 15, 20) for b in ("akiapo", "hawpet1")]
    labels = pd.DataFrame({"row_id": ids, "target": y.ravel()})
    sub = pd.DataFrame({"row_id": ids, "target": p.ravel()}).iloc[::-1]  # order may differ
    res = evaluate_submission(sub, labels)
    assert res["birdclef2022"] == pytest.approx(2 / 3)
    assert res["micro_f1"] == pytest.approx(4 / 7)  # pooled TP 2, FP 2, FN 1
    assert res["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)  # akiapo 1/2, hawpet1 2/3
    assert res["n_rows"] == 8 and res["n_species"] == 2
    per = res["per_species"].set_index("species")
    assert per.loc["hawpet1", ["support", "tp", "fp", "fn", "tn"]].tolist() == [1, 1, 1, 0, 2]
    assert per.loc["hawpet1", "balanced_acc"] == pytest.approx(5 / 6)
    only = evaluate_submission(sub, labels, scored=["akiapo"])
    assert only["birdclef2022"] == pytest.approx(0.5) and only["n_rows"] == 4
    with pytest.raises(SubmissionError, match="1 missing"):
        evaluate_submission(sub.iloc[1:], labels)
    with pytest.raises(SubmissionError, match="no rows left"):
        evaluate_submission(sub, labels, scored=["iiwi"])
