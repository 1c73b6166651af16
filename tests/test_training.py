"""Training runs for real on small generated data: learning, resume after SIGKILL, SIGTERM, DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.synth import make_tone_dataset, shuffled_label_copy
from helpers.waiting import wait_for

from birdcore.config.run import load_run_config
from birdcore.errors import DatasetError
from birdcore.training.checkpoint import load_checkpoint
from birdcore.training.folds import assign_folds
from birdcore.training.launcher import launch_run, prepare_run, run_in_process, stop_run
from birdcore.training.runs import list_runs

pytestmark = pytest.mark.slow

FAST = ["train.num_workers=0", "data.clip_seconds=2.0", "train.batch_size=12", "train.log_every_steps=1"]


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory) -> Path:
    return make_tone_dataset(tmp_path_factory.mktemp("tones") / "data", n_species=4, per_species=12, seconds=3.0)


def _best(run, key="micro_f1") -> float:
    return max(r[key] for r in run.epoch_records())


def test_demo_cpu_preset_learns_and_beats_shuffled_control(tone_data, tmp_path):
    # 8 epochs: with 5 the best epoch reached 0.77 on this machine's CPU kernels (0.8+ elsewhere) —
    # too close to the bar for a test that must hold on every machine
    overrides = FAST + ["train.epochs=8", "train.patience=8", "train.lr=0.002"]
    cfg = load_run_config("demo-cpu", overrides)
    run = prepare_run(tone_data, cfg, tmp_path / "runs")
    status = run_in_process(run)
    assert status["state"] == "finished"

    shuffled = shuffled_label_copy(tone_data, tmp_path / "shuffled", seed=1)
    control = prepare_run(shuffled, cfg, tmp_path / "runs")
    run_in_process(control)

    learned, chance = _best(run), _best(control)
    assert learned >= 0.8, run.epoch_records()
    assert learned - chance >= 0.3, (learned, chance)
    # the run folder is complete
    assert run.best_checkpoint.exists() and run.last_checkpoint.exists()
    oof = pd.read_parquet(run.oof_path)
    assert len(oof) == run.status()["val_size"]
    assert {f"p:{c}" for c in run.classes} <= set(oof.columns) and {f"t:{c}" for c in run.classes} <= set(oof.columns)
    saved = json.loads(run.config_path.read_text())
    assert saved["train"]["epochs"] == 8 and saved["model"]["backbone"] == "tf_efficientnet_lite0"
    steps = [r for r in run.metrics()[0] if r["kind"] == "step"]
    assert steps and all({"loss", "lr", "samples_per_s"} <= set(r) for r in steps)
    ck = load_checkpoint(run.best_checkpoint)  # weights_only load
    assert ck["classes"] == run.classes


def test_resume_after_sigkill_is_complete_and_has_no_duplicates(tone_data, tmp_path):
    cfg = load_run_config("demo-cpu", FAST + ["train.epochs=4", "train.patience=10", "model.pretrained=false",
                                               'model.backbone="resnet10t"'])
    run = prepare_run(tone_data, cfg, tmp_path / "runs")
    pid = launch_run(run)
    # kill mid-way through the second epoch: one epoch done, steps of the next already logged
    wait_for(lambda: any(r.get("kind") == "step" and r["epoch"] == 1 for r in run.metrics()[0]), 120, "epoch 1 steps")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert run.status()["state"] == "failed"  # a dead pid is never reported as running
    assert run.status().get("stale")

    proc = subprocess.run([sys.executable, "-m", "birdcore", "train", "--resume", str(run.path)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    st = run.status()
    assert st["state"] == "finished" and st["epoch"] == 4
    records = run.metrics()[0]
    epochs = [r["epoch"] for r in records if r["kind"] == "epoch"]
    assert epochs == [0, 1, 2, 3]
    steps = [r["step"] for r in records if r["kind"] == "step"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    assert len([r for r in records if r["kind"] == "start"]) == 1
    load_checkpoint(run.best_checkpoint)


def test_sigterm_stops_cleanly(tone_data, tmp_path):
    cfg = load_run_config("demo-cpu", FAST + ["train.epochs=50", "model.pretrained=false", 'model.backbone="resnet10t"'])
    run = prepare_run(tone_data, cfg, tmp_path / "runs")
    pid = launch_run(run)
    wait_for(lambda: run.status().get("state") == "running" and run.metrics_size() > 0, 120, "running")
    assert stop_run(run, timeout=60)
    os.waitpid(pid, 0)
    st = run.status()
    assert st["state"] == "stopped" and st["epoch"] < 50
    assert not stop_run(run)  # nothing left to stop
    assert [r.summary()["state"] for r in list_runs(tmp_path / "runs")] == ["stopped"]


def test_bad_audio_is_skipped_and_reported(tone_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tone_data, data)
    cfg = load_run_config("demo-cpu", FAST + ["train.epochs=1", "model.pretrained=false", 'model.backbone="resnet10t"'])
    run = prepare_run(data, cfg, tmp_path / "runs")
    files = sorted((data / "train_audio").rglob("*.ogg"))
    files[0].write_bytes(b"not audio at all")             # header unreadable: found by the scan
    raw = files[5].read_bytes()
    files[5].write_bytes(raw[: len(raw) // 3])             # truncated: found when decoded
    assert run_in_process(run)["state"] == "finished"
    from birdcore.training.audio_check import read_skipped

    skipped = read_skipped(run.path)
    names = {r["filename"] for r in skipped}
    assert files[0].relative_to(data / "train_audio").as_posix() in names
    assert any(r["phase"] == "scan" and "cannot read audio header" in r["error"] for r in skipped)
    assert run.status()["skipped"] == len(skipped) >= 1


def test_mostly_broken_dataset_fails_with_summary_and_traceback(tone_data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tone_data, broken)
    cfg = load_run_config("demo-cpu", FAST + ["train.epochs=1", "model.pretrained=false", 'model.backbone="resnet10t"'])
    run = prepare_run(broken, cfg, tmp_path / "runs")
    for f in sorted((broken / "train_audio").rglob("*.ogg"))[:40]:
        f.write_bytes(b"junk")
    with pytest.raises(DatasetError, match=r"40 of 48 training audio files cannot be read"):
        run_in_process(run)
    st = run.status()
    assert st["state"] == "failed" and "DatasetError" in st["error"]
    assert "Traceback" in st["traceback"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_gloo(tone_data, tmp_path):
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port()), "-m", "birdcore", "train", "--data", str(tone_data),
            "--runs", str(runs), "--config", "demo-cpu", "--device", "cpu"]
    for o in FAST + ["train.epochs=2", "model.pretrained=false", 'model.backbone="resnet10t"']:
        args += ["--set", o]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list_runs(runs)  # rank 0 alone created the folder
    st = run.status()
    assert st["state"] == "finished" and st["world_size"] == 2
    assert [r["epoch"] for r in run.epoch_records()] == [0, 1]


def test_folds_stratified_and_rare_classes_kept():
    labels = np.array(["a"] * 20 + ["b"] * 10 + ["c"] * 3 + ["d"])
    folds = assign_folds(labels, n_folds=5, seed=0)
    assert (folds[labels == "a"] >= 0).all() and np.bincount(folds[labels == "a"]).tolist() == [4] * 5
    assert (folds[labels == "d"] == -1).all()  # a class of one always trains
    assert (folds[labels == "c"] == -1).sum() == 1
    np.testing.assert_array_equal(folds, assign_folds(labels, 5, 0))
    assert not np.array_equal(folds, assign_folds(labels, 5, 1))


def test_two_runs_started_at_once_do_not_clash(tone_data, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    cfg = load_run_config("demo-cpu", ["model.pretrained=false"])
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: prepare_run(tone_data, cfg, tmp_path / "runs"), range(8)))
    assert len({r.path for r in runs}) == 8
    assert all(r.status()["state"] == "queued" for r in runs)


def test_scored_only_selection(tone_data):
    from birdcore.data.dataset import load_dataset
    from birdcore.training.data import select_run_data

    ds = load_dataset(tone_data)
    data = select_run_data(ds, load_run_config("demo-cpu", ['data.classes="scored"']))
    assert data.classes == ds.scored
    assert all(p.split("/")[0] in ds.scored for p in data.filenames)  # no secondary labels in this data
    assert data.targets.shape == (len(data.filenames), len(ds.scored))


def test_denoise_applies_to_training_reads():
    from birdcore.augment.window import as_source
    from birdcore.config.features import DenoiseConfig
    from birdcore.training.clips import DenoisedSource

    class Noise:
        name, sample_rate, duration = "noise", 32000, 5.0

        def read(self, offset_s, duration_s):
            rng = np.random.default_rng(0)
            t = np.arange(int(duration_s * 32000)) / 32000
            tone = 0.5 * np.sin(2 * np.pi * 3000 * t) * (t > 2.0) * (t < 3.0)
            return (tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32)

    raw = Noise().read(0, 5.0)
    clean = DenoisedSource(as_source(Noise()), DenoiseConfig(enabled=True)).read(0, 5.0)
    quiet = slice(0, 32000)  # the first second holds noise only
    assert np.std(clean[quiet]) < 0.5 * np.std(raw[quiet])
    np.testing.assert_array_equal(clean, DenoisedSource(Noise(), DenoiseConfig(enabled=True)).read(0, 5.0))
