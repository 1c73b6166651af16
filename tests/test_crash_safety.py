"""Crash safety by fault injection: SIGKILLed training runs resume to a complete, consistent run
folder; killed or concurrent writers of checkpoints, thresholds and labels never leave a torn
file or lose saved rows; disk-full and read-only failures give a clear error and leave no
half-written file; user-typed run ids cannot leave the runs folder; checkpoints never unpickle
arbitrary objects.

The scenarios live in `tests/corpus/crash_harness.py` (shared with
`benchmarks/reliability_summary.py`); each test states what it checks. Training runs are tiny
(resnet10t from scratch, 2-s clips, 3 epochs of 2 steps) so the whole file stays within minutes.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from corpus import crash_harness as ch

from birdcore.atomic_io import StorageError, atomic_write_json
from birdcore.errors import BirdcoreError, RunError
from birdcore.training.checkpoint import load_checkpoint, save_checkpoint
from birdcore.training.launcher import check_resumable, run_in_process
from birdcore.training.runs import open_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory) -> Path:
    return ch.tiny_tone_data(tmp_path_factory.mktemp("tones") / "data")


def _assert_truthful_after_kill(run, seen: dict) -> None:
    st = seen["status_after_kill"]
    # a dead process is never shown as running or queued
    assert st["state"] == "failed" and st.get("stale"), (seen["landed"], st)
    assert "resume" in st["error"]


# ---- training: SIGKILL at seeded random moments ------------------------------------------------
@pytest.mark.parametrize("phase, seed", [("start-up", 0), ("mid-epoch", 1), ("end-of-epoch", 2)])
def test_sigkill_at_random_moment_then_resume_gives_a_complete_run(tone_data, tmp_path, phase, seed, record_property):
    run = ch.tiny_run(tone_data, tmp_path / "runs")
    seen = ch.kill_training_at(run, phase, seed)
    record_property("landed", seen["landed"])
    print(f"{phase} seed {seed}: kill landed {seen['landed']}")
    _assert_truthful_after_kill(run, seen)
    check_resumable(run)
    status = run_in_process(run, resume=True)
    assert status["state"] == "finished"
    assert ch.run_problems(run) == [], seen["landed"]


# ---- training: injected crash points, three crashes in a row on one run -------------------------
def test_injected_crashes_at_each_end_of_epoch_write_then_resume(tone_data, tmp_path):
    run = ch.tiny_run(tone_data, tmp_path / "runs")
    expected = {
        # (point, epoch, resume?): where the run folder must be left
        ("after_last", 0, False): "between epochs (after epoch 0)",  # last.pt written, best.pt/OOF not yet
        ("after_epoch_line", 1, True): "end-of-epoch writes (epoch 1 logged, last.pt still at 1)",
        ("mid_last_write", 2, True): "end-of-epoch writes (epoch 2 logged, last.pt still at 2)",
    }
    for (point, epoch, resume), landed in expected.items():
        seen = ch.crash_training_at(run, point, epoch, resume)
        assert seen["rc"] == -9, f"{point}: the process did not die at the crash point: {seen['stderr']}"
        assert seen["landed"] == landed, point
        _assert_truthful_after_kill(run, seen)
    # The crash half-way through last.pt left its temp file; last.pt itself is the epoch-2 one.
    (stray,) = seen["strays"]
    assert stray.name.startswith(".last.pt.") and stray.stat().st_size > 0
    assert load_checkpoint(run.last_checkpoint)["epoch"] == 2
    with pytest.raises(RunError):
        load_checkpoint(stray)  # it really is a torn checkpoint, and nothing loads it as last.pt
    # what training should do when it restarts (see the report): remove its own leftovers, and
    # only those (the app may be writing thresholds.json into the same folder right now)
    foreign = run.path / ".thresholds.json.x1.tmp"
    foreign.write_text("{}")
    assert run.remove_stray_temps() == [stray] and not stray.exists() and foreign.exists()

    check_resumable(run)
    assert run_in_process(run, resume=True)["state"] == "finished"
    assert ch.run_problems(run) == []


class RunInconsistent(Exception):
    """The run folder disagrees with itself (best.pt / OOF table vs status)."""


def test_best_checkpoint_matches_status_after_a_crash_between_best_and_last(tone_data, tmp_path, monkeypatch):
    """Epoch 1 scores best and writes last.pt, then dies before best.pt and the OOF table. Resume
    must rebuild them from last.pt; later epochs score lower, so best.pt must hold epoch 1 —
    the epoch status calls best."""
    from birdcore.training import loop

    run = ch.tiny_run(tone_data, tmp_path / "runs")
    seen = ch.crash_training_at(run, "after_best_inflated", 1, resume=False)
    assert seen["rc"] == -9 and seen["landed"] == "between epochs (after epoch 1)"  # last.pt written, best.pt not
    real = loop.compute_all

    def low_scores(*a, **k):  # the re-run: no epoch beats the real epoch 0
        return {**real(*a, **k), run.read_config()[0].train.monitor: 0.0}

    monkeypatch.setattr(loop, "compute_all", low_scores)
    assert run_in_process(run, resume=True)["state"] == "finished"
    problems = ch.run_problems(run)
    if problems:
        raise RunInconsistent(problems)


# ---- checkpoints -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_checkpoint_writer_killed_mid_save_leaves_a_whole_checkpoint(tmp_path, seed):
    res = ch.checkpoint_write_killed(tmp_path, seed)
    assert res.handled, res.detail
    assert res.lost == 0


class _Payload:
    """Unpickling this would create `marker` (an arbitrary call, as a malicious file would make)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    bad = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(2)}, "extra": _Payload(marker)}, bad)
    with pytest.raises(RunError, match=r"evil\.pt: cannot load checkpoint"):
        load_checkpoint(bad)
    assert not marker.exists()  # weights_only: the object was never built
    # control: the same file loaded without weights_only does run the call
    torch.load(bad, weights_only=False)
    assert marker.exists()


def test_truncated_or_empty_checkpoint_is_refused(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"epoch": 1, "w": torch.ones(10_000)})
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "empty.pt"):
        with pytest.raises(RunError, match=rf"{name}: cannot load checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(RunError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    assert load_checkpoint(good)["epoch"] == 1


# ---- annotations and thresholds: concurrency and crashes -----------------------------------------
def test_concurrent_annotation_writers_lose_no_rows(tmp_path):
    res = ch.concurrent_annotation_writers(tmp_path, writers=4, saves=8)
    assert res.data["expected"] == 32
    assert res.lost == 0 and res.data["extra"] == 0, res.detail
    assert res.handled, res.detail


@pytest.mark.parametrize("seed", [0, 1])
def test_annotation_saver_killed_at_random_keeps_every_acknowledged_row(tmp_path, seed):
    res = ch.killed_annotation_saver(tmp_path, seed)
    assert res.data["acked"] > 0, "the kill came before any save; the test proved nothing"
    assert res.lost == 0, res.detail
    assert res.handled, res.detail


def test_annotation_save_dying_mid_write_leaves_the_previous_file(tmp_path):
    res = ch.annotation_save_dies_mid_write(tmp_path)
    assert res.data["rc"] == -9
    (stray,) = res.data["strays"]  # proves the process died while the new table was being written
    assert stray.stat().st_size > 0
    assert res.lost == 0 and res.handled, res.detail


def test_concurrent_threshold_writers_never_show_a_torn_file(tmp_path):
    res = ch.concurrent_threshold_writers(tmp_path, writers=3, saves=10)
    assert res.data["reads"] > 0, "the reader never overlapped the writers"
    assert res.data["torn"] == [] and res.handled, res.detail


def test_threshold_save_dying_mid_write_leaves_the_previous_file(tmp_path):
    res = ch.threshold_save_dies_mid_write(tmp_path)
    assert res.data["rc"] == -9
    assert res.lost == 0 and res.handled, res.detail


# ---- disk full / read-only ---------------------------------------------------------------------
FAILED_WRITES = [
    ("thresholds.json", errno.ENOSPC, "write"), ("thresholds.json", errno.ENOSPC, "fsync"),
    ("labels.csv", errno.ENOSPC, "fsync"), ("checkpoint", errno.ENOSPC, "fsync"),
    ("metrics line", errno.ENOSPC, "write"),
    ("thresholds.json", errno.EROFS, "create"), ("labels.csv", errno.EROFS, "create"),
    ("checkpoint", errno.EROFS, "create"), ("metrics line", errno.EROFS, "create"),
    ("thresholds.json", errno.EACCES, "create"),
]


@pytest.mark.parametrize("writer, code, where", FAILED_WRITES)
def test_failed_write_is_a_clear_error_and_changes_nothing(tmp_path, writer, code, where):
    res = ch.failed_write(tmp_path, writer, code, where)
    err = res.data["error"]
    assert isinstance(err, StorageError) and isinstance(err, BirdcoreError), res.detail
    assert isinstance(err, OSError) and err.errno == code  # `except OSError` callers still work
    assert res.lost == 0, "the previous version changed"
    assert res.data["strays"] == [], "a temp file was left behind"
    assert res.handled, res.detail


@pytest.mark.parametrize("code, where", [(errno.EROFS, "create"), (errno.ENOSPC, "fsync")])
def test_run_folder_creation_failure_is_clear_and_leaves_nothing(tmp_path, code, where):
    res = ch.failed_run_creation(tmp_path, code, where)
    assert isinstance(res.data["error"], RunError), res.detail
    assert res.data["left"] == [] and res.data["runs"] == []
    assert res.handled, res.detail


def test_real_full_disk(tmp_path):
    faults = ch.real_full_disk(tmp_path / "small")
    if faults is None:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights); simulated in the tests above")
    assert len(faults) == 4
    for f in faults:
        assert f.handled and f.lost == 0, f"{f.name}: {f.detail}"


def test_real_read_only_file_system(tmp_path):
    faults = ch.real_read_only(tmp_path / "ro")
    if faults is None:
        pytest.skip("cannot mount/remount a tmpfs here (needs root and mount rights); simulated above")
    for f in faults:
        assert f.handled and f.lost == 0, f"{f.name}: {f.detail}"


def test_read_only_folder_by_permissions(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 0o555 does not stop root from writing (EROFS/EACCES are"
                    " simulated in test_failed_write_is_a_clear_error_and_changes_nothing)")
    folder = tmp_path / "locked"
    folder.mkdir()
    atomic_write_json(folder / "a.json", {"v": 1})
    folder.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=r"a\.json: cannot write: permission denied"):
            atomic_write_json(folder / "a.json", {"v": 2})
    finally:
        folder.chmod(0o755)
    assert json.loads((folder / "a.json").read_text()) == {"v": 1}
    assert ch.stray_temps(folder) == []


def test_training_with_a_full_disk_fails_clearly(tone_data, tmp_path, monkeypatch):
    """last.pt cannot be written: the run stops with a StorageError naming last.pt and "disk
    full", status says failed with that message, and no temp file is left in checkpoints/."""
    run = ch.tiny_run(tone_data, tmp_path / "runs")
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == "last.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StorageError, match=r"last\.pt: cannot write: disk full"):
        run_in_process(run)
    st = run.status()
    assert st["state"] == "failed" and "disk full" in st["error"] and "last.pt" in st["error"]
    assert ch.stray_temps(run.path) == []
    assert [r["epoch"] for r in run.epoch_records()] == [0]  # the epoch line itself is whole
    assert not run.best_checkpoint.exists()  # best.pt is written after last.pt: never half of a pair


# ---- run status and path safety ------------------------------------------------------------------
def test_launched_run_that_died_in_start_up_is_not_shown_queued(tone_data, tmp_path):
    run = ch.tiny_run(tone_data, tmp_path / "runs")
    assert run.status()["state"] == "queued"  # prepared, never launched: queued is the truth
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_status(pid=dead.pid)  # what launch_run records before the child says "running"
    st = run.status()
    assert st["state"] == "failed" and st["stale"] and "start-up" in st["error"]


@pytest.mark.parametrize("run_id", ["..", ".", "../other", "a/b", "/etc", "runs/../../x", "", "x\x00y", "~",
                                    "run id with spaces"])
def test_run_ids_that_could_leave_the_runs_folder_are_rejected(tmp_path, run_id):
    runs = tmp_path / "runs"
    runs.mkdir()
    # a real run folder outside runs/: reachable as "../other" if ids were joined blindly
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text("{}")
    with pytest.raises(RunError, match="not a valid run id"):
        open_run(run_id, runs_dir=runs)


def test_plain_run_id_opens_and_paths_still_work_without_runs_dir(tone_data, tmp_path):
    run = ch.tiny_run(tone_data, tmp_path / "runs")
    assert open_run(run.run_id, runs_dir=tmp_path / "runs").path == run.path
    assert open_run(run.path).path == run.path  # CLI: a path, no runs_dir
    with pytest.raises(RunError, match="no-such-run: run folder not found"):
        open_run("no-such-run", runs_dir=tmp_path / "runs")
