"""Two writers of one run folder: the run lock (`birdcore.training.run_lock`) lets exactly one train.

- `LockHolder`: a child process holding a run folder's lock until killed (the tests' other writer);
- `stopped_run`: a tiny run trained for one epoch, then stopped as Ctrl-C would (resumable);
- `race_resumes`: `python -m birdcore train --resume RUN` started twice at the same moment;
- `record_damage`: duplicated or missing metrics records of a run;
- `concurrent_resumes`: the whole scenario as one (handled, lost_records, detail) row for
  `benchmarks/reliability_summary.py`; `tests/test_run_lock.py` asserts on the same pieces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .crash_harness import REPO, TRAIN_OVERRIDES, run_problems, tiny_tone_data

RACE_EPOCHS = 4  # the winner trains 3 epochs after the stop: long enough that the loser, however
#                  late its start-up, arrives while the winner still holds the lock
BUSY = re.compile(r"^birdcore: error: (?P<run>.+): the run is already being trained by pid (?P<pid>\d+)"
                  r" \(started [^)]+\); stop it first or wait$")

_HOLD = r"""
import sys, time
from birdcore.training.run_lock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


class LockHolder:
    """A child process that holds `run_dir`'s training lock until it is killed (a context manager)."""

    def __init__(self, run_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)], cwd=REPO, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().strip()
        if line != "held":
            self.proc.kill()
            raise RuntimeError(f"the lock holder did not start: {line!r} {self.proc.stderr.read()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self, sig: int = 9) -> int:
        """Send `sig` (SIGKILL by default) and reap the child; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def stopped_run(data_dir: Path, runs_dir: Path, epochs: int = RACE_EPOCHS):
    """A tiny run of `epochs` epochs trained in this process for one epoch, then stopped the way
    Ctrl-C stops a foreground `birdcore train` (status `stopped`, last.pt at epoch 1)."""
    from birdcore.config.run import load_run_config
    from birdcore.training.launcher import prepare_run
    from birdcore.training.loop import train

    run = prepare_run(data_dir, load_run_config("demo-cpu", TRAIN_OVERRIDES + [f"train.epochs={epochs}"]), runs_dir)

    def interrupt_after_first_epoch(record: dict) -> None:
        if record.get("kind") == "epoch":  # its files are written before progress hears of it
            raise KeyboardInterrupt

    try:
        train(run, progress=interrupt_after_first_epoch, install_signals=False)
    except KeyboardInterrupt:
        pass
    return run


@dataclass
class Attempt:
    """One `birdcore train --resume` process of a race: pid, exit code, output."""

    pid: int
    rc: int
    stdout: str
    stderr: str


def race_resumes(run, n: int = 2, timeout: float = 300.0) -> list[Attempt]:
    """Start `python -m birdcore train --resume RUN` `n` times at the same moment (argument lists,
    no shell) and wait for all; returns the attempts in start order."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "birdcore", "train", "--resume", str(run.path)]
    outs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(n)]
    procs = [subprocess.Popen(args, cwd=REPO, env=env, text=True, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
             for out, err in outs]
    deadline = time.time() + timeout
    attempts = []
    for proc, (out, err) in zip(procs, outs):
        try:
            rc = proc.wait(max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        out.seek(0)
        err.seek(0)
        attempts.append(Attempt(proc.pid, rc, out.read(), err.read()))
        out.close()
        err.close()
    return attempts


def refusal_line(attempt: Attempt) -> re.Match | None:
    """The "already being trained by pid N" line of a refused attempt's stderr, if any."""
    for line in attempt.stderr.splitlines():
        match = BUSY.match(line.strip())
        if match:
            return match
    return None


def record_damage(run, epochs: int) -> int:
    """Metrics records that are duplicated (epoch, step or start lines written twice) or missing
    (epoch lines of 0..epochs-1 absent): 0 for a run written by one process at a time."""
    records = run.metrics()[0]
    epochs_seen = Counter(r["epoch"] for r in records if r.get("kind") == "epoch")
    steps = Counter(r["step"] for r in records if r.get("kind") == "step")
    starts = sum(1 for r in records if r.get("kind") == "start")
    duplicated = sum(c - 1 for c in epochs_seen.values()) + sum(c - 1 for c in steps.values()) + max(0, starts - 1)
    missing = sum(1 for e in range(epochs) if e not in epochs_seen)
    return duplicated + missing


def race_verdict(run, attempts: list[Attempt], epochs: int = RACE_EPOCHS) -> tuple[bool, int, str]:
    """(handled, lost_records, detail) of a finished race: handled when exactly one attempt exited
    0, every other exited 2 naming the run and the winner's pid, and the run folder is complete
    with each metrics record once."""
    winners = [a for a in attempts if a.rc == 0]
    losers = [a for a in attempts if a.rc != 0]
    refusals = [refusal_line(a) for a in losers]
    lost = record_damage(run, epochs)
    problems = run_problems(run, epochs)
    refused_right = len(winners) == 1 and all(
        a.rc == 2 and m is not None and m["run"] == str(run.path) and int(m["pid"]) == winners[0].pid
        for a, m in zip(losers, refusals))
    handled = refused_right and not problems and lost == 0
    said = "; ".join(m.group(0).replace(str(run.path), "<run>") if m else f"rc {a.rc}: {a.stderr.strip()[-200:]!r}"
                     for a, m in zip(losers, refusals))
    detail = f"exit codes {'/'.join(str(a.rc) for a in attempts)}; refused: {said or 'none'}"
    return handled, lost, detail + (f"; problems: {problems}" if problems else "")


def concurrent_resumes(root: Path) -> tuple[bool, int, str]:
    """Two `birdcore train --resume RUN` of one stopped run started at the same moment.

    Handled when exactly one trains the run to the end (exit 0) and the other is refused before it
    writes anything (exit 2, "<run>: the run is already being trained by pid N …" on stderr), and
    the run folder is complete: one start line, each epoch line once, no step twice
    (`crash_harness.run_problems`). `lost_records` counts duplicated or missing metrics records;
    `detail` gives the exit codes and the refusal. Builds a tiny dataset under `root`; ~30–60 s on 2
    CPU cores.
    """
    data = tiny_tone_data(root / "data")
    run = stopped_run(data, root / "runs")
    return race_verdict(run, race_resumes(run))
