"""Self-training: the trainer reads pseudo-labels, they never validate, rounds resume after a kill.

Small data the tests make: tone species (`helpers.synth`) for the labelled clips, and unlabeled
30-s soundscapes whose 5-s windows hold the same voices, with their truth.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.synth import make_tone_dataset, write_unlabeled_soundscapes
from helpers.waiting import wait_for

from birdcore.config.pseudo import PseudoLabelConfig, SelfTrainConfig
from birdcore.config.run import load_run_config
from birdcore.errors import ConfigError, DatasetError
from birdcore.pretrained.teacher import (
    passed_per_class,
    pseudo_labels,
    write_pseudo_labels,
)
from birdcore.selftrain import teacher_of
from birdcore.training.data import EpochSampler
from birdcore.training.launcher import prepare_run, run_in_process
from birdcore.training.pseudo import (
    MixedSampler,
    check_no_validation_audio,
    read_pseudo_windows,
)
from birdcore.training.runs import RunFolder, list_runs

N_SPECIES = 3
CODES = [f"t{i}sp1" for i in range(N_SPECIES)]
FAST = ["train.num_workers=0", "data.clip_seconds=2.0", "train.batch_size=12", "train.log_every_steps=1",
        "train.n_folds=4"]


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    data = make_tone_dataset(tmp_path_factory.mktemp("st") / "data", n_species=N_SPECIES, per_species=8, seconds=3.0)
    truth = write_unlabeled_soundscapes(data, N_SPECIES, count=8, seconds=30.0)
    return data, truth


def _table(truth: pd.DataFrame, path: Path, shuffle_seed: int | None = None) -> Path:
    """A pseudo-label table from the truth (an oracle teacher); shuffled: targets moved to other windows."""
    df = truth.copy()
    df["teacher"] = "oracle" if shuffle_seed is None else "shuffled-oracle"
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(df))
        df[CODES] = df[CODES].to_numpy()[order]
    write_pseudo_labels(path, df[["file_id", "end_time", "path", "teacher", *CODES]])
    return path


# ---- the table ---------------------------------------------------------------------------------

def test_pseudo_labels_floor_power_cap_and_teacher():
    scores = pd.DataFrame({"file_id": ["a", "a", "b", "b"], "end_time": [5, 10, 5, 10],
                           "x": [0.9, 0.5, 0.3, 0.05], "y": [0.2, 0.2, 0.2, 0.2]})
    soft = pseudo_labels(scores, ["x", "y", "z"], floor=0.1, power=2.0, teacher="runs/t",
                         paths={"a": "/a.ogg", "b": "/b.ogg"})
    assert soft["x"].tolist() == pytest.approx([0.81, 0.25, 0.09, 0.0])  # floor on p, then p^2
    assert set(soft["teacher"]) == {"runs/t"} and soft["path"].tolist() == ["/a.ogg"] * 2 + ["/b.ogg"] * 2
    capped = pseudo_labels(scores, ["x", "y"], floor=0.1, cap_per_class=1, soft=False)
    assert capped["x"].tolist() == [1, 0, 0, 0] and capped["y"].tolist() == [1, 0, 0, 0]  # tie: earliest kept
    assert passed_per_class(soft, ["x", "y", "z"]) == {"x": 3, "y": 4, "z": 0}
    # z: the teacher has no opinion, so the table says so (NaN) instead of "absent" (0)
    assert soft["z"].isna().all() and capped["x"].notna().all()
    with pytest.raises(ConfigError, match="power"):
        pseudo_labels(scores, ["x"], power=0)
    with pytest.raises(ConfigError, match="floor"):
        PseudoLabelConfig(floor=1.5)


def test_bad_tables_name_the_file_and_the_problem(tones, tmp_path):
    _, truth = tones
    good = _table(truth, tmp_path / "pl.csv")
    assert len(read_pseudo_windows(good, CODES)) == len(truth)
    bad = tmp_path / "bad.csv"
    pd.read_csv(good).assign(**{CODES[0]: 1.5}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"bad\.csv: line 2, column t0sp1: .* not a target in \[0, 1\]"):
        read_pseudo_windows(bad, CODES)
    with pytest.raises(DatasetError, match="no column for any of the run's"):
        read_pseudo_windows(good, ["other"])
    pd.read_csv(good).assign(**{CODES[1]: "yes"}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"bad\.csv: line 2, column t1sp1: 'yes' is not a target"):
        read_pseudo_windows(bad, CODES)
    # an empty cell and a class without a column are "no opinion" (NaN), not "absent"
    partial = pd.read_csv(good).drop(columns=[CODES[2]])
    partial.loc[0, CODES[0]] = np.nan
    partial.to_csv(tmp_path / "partial.csv", index=False)
    w = read_pseudo_windows(tmp_path / "partial.csv", CODES)
    assert np.isnan(w.targets[:, 2]).all() and np.isnan(w.targets[0, 0]) and w.missing_classes == [CODES[2]]
    assert np.isfinite(w.targets[1:, :2]).all()
    pd.read_csv(good).drop(columns=["path"]).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"bad\.csv: pseudo-label table lacks column\(s\) path"):
        read_pseudo_windows(bad, CODES)


def test_mixed_sampler_ratio_only_and_determinism():
    lab = EpochSampler(10, seed=1)
    s = MixedSampler(lab, 10, 40, 5, seed=1)
    s.set_epoch(3)
    first = list(s)
    assert len(first) == 15 and sorted(i for i in first if i < 10) == list(range(10))
    assert len({i for i in first if i >= 10}) == 5  # drawn without replacement while enough
    s.set_epoch(3)
    assert list(s) == first  # a resumed epoch draws the same order
    only = MixedSampler(EpochSampler(10, seed=1), 10, 40, 5, seed=1, only=True)
    assert sorted(only) == list(range(10, 50))  # every pseudo-labelled window once, no labelled row


# ---- the trainer reads them, and they never validate ---------------------------------------------

def _best(run: RunFolder, key: str = "macro_auc") -> float:
    return max(r[key] for r in run.epoch_records())


@pytest.mark.slow
def test_trainer_learns_the_teachers_classes_from_pseudo_labels_alone(tones, tmp_path):
    data, truth = tones
    base = FAST + ["train.epochs=6", "train.patience=6", "train.lr=0.002", "pseudo.only=true",
                   "augment.enabled=false"]
    real = load_run_config("demo-cpu", base + [f'pseudo.labels="{_table(truth, tmp_path / "pl.csv")}"'])
    run = prepare_run(data, real, tmp_path / "runs")
    assert run_in_process(run)["state"] == "finished"
    shuffled = load_run_config("demo-cpu", base + [f'pseudo.labels="{_table(truth, tmp_path / "sh.csv", 3)}"'])
    control = prepare_run(data, shuffled, tmp_path / "runs")
    run_in_process(control)
    # the run never saw a labelled clip: what it knows of the labelled validation clips came from the table
    start = next(r for r in run.metrics()[0] if r["kind"] == "start")
    assert start["pseudo_windows"] == len(truth) and start["pseudo_only"] is True
    steps = run.epoch_records()[0]
    assert steps["train_samples_per_s"] > 0
    learned, chance = _best(run), _best(control)
    assert learned >= 0.85, run.epoch_records()
    assert learned - chance >= 0.25, (learned, chance)


@pytest.mark.slow
def test_no_pseudo_labelled_window_enters_validation_or_oof(tones, tmp_path):
    data, truth = tones
    table = _table(truth, tmp_path / "pl.csv")
    cfg = load_run_config("demo-cpu", FAST + ["train.epochs=1", "model.pretrained=false", 'model.backbone="resnet10t"',
                                              f'pseudo.labels="{table}"', "pseudo.ratio=1.0"])
    run = prepare_run(data, cfg, tmp_path / "runs")
    st = run_in_process(run)
    oof = pd.read_parquet(run.oof_path)
    labelled = set(pd.read_csv(data / "train_metadata.csv")["filename"])
    assert len(oof) == st["val_size"] and set(oof["filename"]) <= labelled
    pseudo_files = {Path(p).name for p in truth["path"]} | set(truth["file_id"])
    assert not ({Path(f).name for f in oof["filename"]} & pseudo_files)
    assert st["pseudo_windows"] == len(truth) and st["train_size"] + st["val_size"] == len(labelled)
    # a table holding a window of a validation recording is refused before any training
    val_file = str((data / "train_audio" / oof["filename"].iloc[0]).resolve())
    leak = pd.read_csv(table)
    leak.loc[0, "path"] = val_file
    leak.to_csv(tmp_path / "leak.csv", index=False)
    with pytest.raises(ConfigError, match="validation recordings of this run"):
        check_no_validation_audio(read_pseudo_windows(tmp_path / "leak.csv", CODES), [val_file])
    bad = prepare_run(data, load_run_config("demo-cpu", FAST + [f'pseudo.labels="{tmp_path / "leak.csv"}"',
                                                                  "model.pretrained=false",
                                                                  'model.backbone="resnet10t"']), tmp_path / "runs")
    with pytest.raises(ConfigError, match="validation recordings"):
        run_in_process(bad)
    assert not bad.last_checkpoint.exists()


# ---- rounds: a killed family resumes at the right round and epoch --------------------------------

def _round_run(runs: Path, r: int) -> RunFolder | None:
    found = [run for run in list_runs(runs) if run.read_config()[0].name.endswith(f"-r{r}")]
    return found[0] if found else None


@pytest.mark.slow
def test_killed_self_training_resumes_at_the_right_round_and_epoch(tones, tmp_path):
    data, _ = tones
    runs = tmp_path / "runs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    sets = [a for s in FAST + ["train.epochs=3", "train.patience=5", "model.pretrained=false",
                               'model.backbone="resnet10t"'] for a in ("--set", s)]
    cmd = [sys.executable, "-m", "birdcore", "self-train", "--data", str(data), "--runs", str(runs),
           "--rounds", "2", "--labels", "soft", "--power", "2", *sets]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def in_round1_epoch1() -> bool:
        run = _round_run(runs, 1)
        return run is not None and any(r.get("kind") == "step" and r["epoch"] == 1 for r in run.metrics()[0])

    wait_for(in_round1_epoch1, 240, "round 1, epoch 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    round0 = _round_run(runs, 0)
    r0_metrics = round0.metrics_path.read_bytes()
    (family,) = [p for p in runs.iterdir() if p.name.startswith("selftrain-")]
    assert [r.get("done") for r in json.loads((family / "selftrain.json").read_text())["rounds"]] == [True, None]

    done = subprocess.run([sys.executable, "-m", "birdcore", "self-train", "--resume", str(family)], check=False, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert round0.metrics_path.read_bytes() == r0_metrics  # round 0 was not trained again
    r1, r2 = _round_run(runs, 1), _round_run(runs, 2)
    recs = r1.metrics()[0]
    assert [r["epoch"] for r in recs if r["kind"] == "epoch"] == [0, 1, 2]  # resumed at epoch 1, no duplicate
    assert len([r for r in recs if r["kind"] == "start"]) == 1
    assert len(list_runs(runs)) == 3  # no orphan run folder from the kill
    # each round is an ordinary run linked to its teacher: the round before
    assert r1.read_config()[0].pseudo.teacher == str(round0.path.resolve())
    assert r2.read_config()[0].pseudo.teacher == str(r1.path.resolve())
    table = pd.read_csv(family / "rounds.csv")
    assert table["round"].tolist() == [0, 1, 2] and table["done"].all()
    assert table["val_score"].notna().all() and (table.loc[1:, "passed_windows"] > 0).all()


def test_who_teaches_each_round():
    state = {"rounds": [{"run": "/r0"}, {"run": "/r1"}, {"run": "/r2"}]}
    noisy = SelfTrainConfig(rounds=3)
    assert [teacher_of(state, noisy, r) for r in (1, 2, 3)] == [["/r0"], ["/r1"], ["/r2"]]
    steady = SelfTrainConfig(rounds=3, teacher=["/t1", "/t2"], later_teacher="rounds")
    assert teacher_of(state, steady, 1) == ["/t1", "/t2"]
    assert teacher_of(state, steady, 3) == ["/t1", "/t2", "/r0", "/r1", "/r2"]
    distil = SelfTrainConfig(rounds=2, teacher=["birdnet"], later_teacher="rounds")
    assert teacher_of(state, distil, 1) == ["birdnet"] and teacher_of(state, distil, 2) == ["/r0", "/r1"]


def test_self_train_config_is_checked():
    with pytest.raises(ConfigError, match="later_teacher: 'all' is not one of previous, rounds"):
        SelfTrainConfig(later_teacher="all")
    with pytest.raises(ConfigError, match="stands alone"):
        SelfTrainConfig(teacher=["birdnet", "runs/x"])
    with pytest.raises(ConfigError, match="pseudo.labels: pseudo-labelled windows train the cnn family only"):
        load_run_config("birdnet-head", ['pseudo.labels="x.csv"'])
