"""One writer per run folder: the training lock (`birdcore.training.run_lock`).

A second writer is refused naming the owner's pid, before it changes anything in the folder; the
lock goes with its holder (clean exit or SIGKILL) and a lock file left behind is taken over;
status, `check_resumable`, `launch_run` and `stop_run` believe the lock over status.json; and two
`birdcore train --resume` of one run started at once train it exactly once (the slow test).
The other writer is a child process (`run_lock_faults.LockHolder`): flock is per open file, so the
same process would do too, but a real second process is what the lock is for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from corpus import run_lock_faults as rlf

from birdcore.config.run import load_run_config
from birdcore.errors import RunError
from birdcore.training import run_lock
from birdcore.training.launcher import check_resumable, launch_run, stop_run
from birdcore.training.runs import RunFolder, create_run


def busy_message(run_dir: Path, pid: int) -> str:
    """The start of the refusal, up to the start time (which the test cannot know)."""
    return f"{run_dir}: the run is already being trained by pid {pid} (started "


@pytest.fixture
def run(tmp_path) -> RunFolder:
    """A run folder (config + queued status) for a dataset that need not exist: nothing here trains."""
    return create_run(tmp_path / "runs", load_run_config("demo-cpu"), tmp_path / "data", ["aaa1", "bbb1"])


def folder_snapshot(run: RunFolder) -> dict[str, bytes]:
    """Every file of the run folder but the lock file, with its bytes."""
    return {str(p.relative_to(run.path)): p.read_bytes() for p in sorted(run.path.rglob("*"))
            if p.is_file() and p.name != run_lock.LOCK_FILE}


# ---- the lock itself ----------------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_owner_pid(run):
    with rlf.LockHolder(run.path) as holder:
        with pytest.raises(RunError) as err, run_lock.hold(run.path):
            pytest.fail("took a lock another process holds")
        msg = str(err.value)
        assert msg.startswith(busy_message(run.path, holder.pid)), msg
        assert msg.endswith("); stop it first or wait")
        assert run_lock.current_owner(run.path).pid == holder.pid


def test_a_second_lock_in_the_same_process_is_refused_too(run):
    with run_lock.hold(run.path):
        with pytest.raises(RunError, match=f"by pid {os.getpid()} "), run_lock.hold(run.path):
            pytest.fail("nested hold succeeded")


def test_lock_file_names_the_owner_while_held_and_is_emptied_on_release(run):
    with run_lock.hold(run.path) as me:
        raw = json.loads(run_lock.lock_file(run.path).read_text())
        assert raw["pid"] == os.getpid() == me.pid
        assert raw["host"] and raw["started"].startswith("20")
    assert run_lock.lock_file(run.path).read_text() == ""
    assert run_lock.current_owner(run.path) is None


def test_lock_is_released_when_the_holder_exits(run):
    with run_lock.hold(run.path):
        pass
    with run_lock.hold(run.path):  # released by leaving the block
        pass
    holder = rlf.LockHolder(run.path)
    assert holder.kill(signal.SIGTERM) == -signal.SIGTERM  # the process ends (no clean-up code runs)
    with run_lock.hold(run.path) as me:  # released by the kernel with its holder
        assert run_lock.current_owner(run.path).pid == me.pid


def test_lock_file_left_by_a_sigkilled_holder_is_taken_over(run):
    holder = rlf.LockHolder(run.path)
    dead_pid = holder.pid
    holder.kill(signal.SIGKILL)
    left = json.loads(run_lock.lock_file(run.path).read_text())
    assert left["pid"] == dead_pid  # the file outlives its owner, naming the dead pid ...
    assert run_lock.current_owner(run.path) is None  # ... but the lock does not
    with run_lock.hold(run.path):
        assert json.loads(run_lock.lock_file(run.path).read_text())["pid"] == os.getpid()


def test_status_probes_never_make_a_trainer_refused(run):
    # a probe holds the lock for an instant; the app polls status all the time while users train
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            run_lock.current_owner(run.path)

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for t in pollers:
        t.start()
    try:
        for _ in range(200):
            with run_lock.hold(run.path):
                pass
    finally:
        stop.set()
        for t in pollers:
            t.join()


def test_under_torchrun_only_rank_0_takes_the_lock(run, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with run_lock.hold_for_rank(run.path):
        assert run_lock.current_owner(run.path) is None
    monkeypatch.setenv("RANK", "0")
    with run_lock.hold_for_rank(run.path):
        assert run_lock.current_owner(run.path).pid == os.getpid()


def test_missing_run_folder_is_an_error_not_a_new_folder(tmp_path):
    with pytest.raises(RunError, match="no such run folder"), run_lock.hold(tmp_path / "typo"):
        pass
    assert not (tmp_path / "typo").exists()


# ---- training and the launcher believe the lock --------------------------------------------------
@pytest.mark.slow  # imports torch (the loop)
def test_train_is_refused_before_it_touches_the_run_folder(run):
    from birdcore.training.loop import train

    run.update_status(state="stopped", epoch=1)
    before = folder_snapshot(run)
    with rlf.LockHolder(run.path) as holder:
        for resume in (True, False):
            with pytest.raises(RunError) as err:
                train(run, resume=resume, install_signals=False)
            assert str(err.value).startswith(busy_message(run.path, holder.pid)), err.value
    assert folder_snapshot(run) == before  # no status change, no metrics line, no checkpoint


def test_check_resumable_follows_the_lock_not_status_json(run):
    run.update_status(state="stopped", epoch=1)
    with rlf.LockHolder(run.path) as holder:
        with pytest.raises(RunError) as err:
            check_resumable(run)  # status says stopped, but someone trains it
        assert str(err.value).startswith(busy_message(run.path, holder.pid))
        assert run.status()["state"] == "stopped"
    # "running" with a live pid (this process: pids get reused) but a free lock: the owner died
    run.update_status(state="running", pid=os.getpid())
    check_resumable(run)
    st = run.status()
    assert st["state"] == "failed" and st["stale"] and "resume" in st["error"]


def test_status_is_running_while_the_lock_is_held_and_names_its_owner(run):
    with rlf.LockHolder(run.path) as holder:
        run.update_status(state="running", pid=999_999_999)  # a stale pid in the file
        st = run.status()
        assert st["state"] == "running" and st["pid"] == holder.pid
    st = run.status()
    assert st["state"] == "failed" and st["stale"]


def test_run_without_a_lock_file_falls_back_on_its_pid(run):
    # last trained before the lock existed: status.json's pid is all there is
    assert not run_lock.lock_file(run.path).exists()
    run.update_status(state="running", pid=os.getpid())
    assert run.status()["state"] == "running"
    with pytest.raises(RunError, match="still running"):
        check_resumable(run)
    run.update_status(pid=999_999_999)
    assert run.status()["state"] == "failed"


def test_launch_run_refuses_early_while_the_lock_is_held(run):
    with rlf.LockHolder(run.path) as holder:
        with pytest.raises(RunError) as err:
            launch_run(run)
        assert str(err.value).startswith(busy_message(run.path, holder.pid))
    st = run.status()
    assert st["state"] == "queued" and "launched_at" not in st and st.get("pid") is None
    assert not run.log_path.exists()  # no process was started


def test_stop_run_signals_the_lock_owner_not_a_stale_status_pid(run):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with rlf.LockHolder(run.path) as holder:
            run.update_status(state="running", pid=bystander.pid)  # status.json names the wrong process
            assert stop_run(run)
            assert holder.proc.wait(30) == -signal.SIGTERM
        assert bystander.poll() is None  # untouched
        assert not stop_run(run)  # lock free, status stale: nothing to stop
    finally:
        bystander.kill()
        bystander.wait()


# ---- acceptance: two resumes of one run at the same moment ---------------------------------------
@pytest.mark.slow
def test_two_simultaneous_resumes_train_the_run_exactly_once(tmp_path):
    t0 = time.time()
    data = rlf.tiny_tone_data(tmp_path / "data")
    run = rlf.stopped_run(data, tmp_path / "runs")
    assert run.status()["state"] == "stopped" and run.status()["epoch"] == 1
    attempts = rlf.race_resumes(run)
    print(f"race of {len(attempts)} resumes: exit codes {[a.rc for a in attempts]}, {time.time() - t0:.1f} s in all")

    assert sorted(a.rc for a in attempts) == [0, 2], [(a.rc, a.stderr[-1000:]) for a in attempts]
    winner = next(a for a in attempts if a.rc == 0)
    loser = next(a for a in attempts if a.rc == 2)
    refusal = rlf.refusal_line(loser)
    assert refusal is not None, loser.stderr  # one line: birdcore: error: <run>: ... by pid N (started ...) ...
    assert refusal["run"] == str(run.path) and int(refusal["pid"]) == winner.pid

    records = run.metrics()[0]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == list(range(rlf.RACE_EPOCHS))
    steps = [r["step"] for r in records if r["kind"] == "step"]
    assert len(steps) == len(set(steps)) and steps == sorted(steps)
    assert rlf.record_damage(run, rlf.RACE_EPOCHS) == 0
    assert rlf.run_problems(run, rlf.RACE_EPOCHS) == []
    assert rlf.race_verdict(run, attempts)[:2] == (True, 0)
