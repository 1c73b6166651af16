"""One writer per run folder: the training lock `<run>/train.lock`.

Whoever trains a run — `birdcore train`, `train --resume`, the background process `launch_run`
starts, the BirdNET-head trainer — holds an exclusive `flock` on `train.lock` for the whole of
`train()` (`atomic_io.file_lock`), with its pid, host and start time written in the file. A second
writer is refused with `RunError` before it touches the folder. The kernel drops the lock when its
holder exits, however it dies (SIGKILL, OOM killer), so the file may outlive its owner but the lock
never does: a lock file left by a dead process is simply taken over. Under torchrun only rank 0
takes it (the other ranks write nothing that rank 0 does not coordinate).

Readers — run status, `check_resumable`, `launch_run`, `stop_run` — probe the lock: held means a
live trainer, whatever status.json says.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from birdcore.atomic_io import LockHeld, file_lock, lock_holder
from birdcore.errors import RunError

LOCK_FILE = "train.lock"
# A status probe holds the lock for microseconds, and an owner writes its pid just after taking the
# lock: waiting this long tells those instants apart from a real owner.
_GRACE_S = 0.5


@dataclass(frozen=True)
class LockOwner:
    """Who holds a run's lock, as written in its lock file (pid None when the text is unreadable)."""

    pid: int | None
    host: str = ""
    started: str = ""

    @classmethod
    def parse(cls, text: str) -> LockOwner:
        """The owner described by a lock file's text; pid None for empty or foreign text."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            return cls(pid=None)
        if not isinstance(raw, dict):
            return cls(pid=None)
        pid = raw.get("pid")
        return cls(pid=pid if isinstance(pid, int) else None, host=str(raw.get("host", "")),
                   started=str(raw.get("started", "")))

    @property
    def here(self) -> bool:
        """Whether the owner runs on this machine (only then does its pid mean anything here)."""
        return not self.host or self.host == socket.gethostname()

    def describe(self) -> str:
        """"pid 123 (started 2025-…)", naming the host when it is another machine."""
        if self.pid is None:
            return "another process (pid unknown)"
        where = "" if self.here else f" on host {self.host}"
        return f"pid {self.pid}{where}" + (f" (started {self.started})" if self.started else "")

    def text(self) -> str:
        """The lock file's text for this owner."""
        return json.dumps({"pid": self.pid, "host": self.host, "started": self.started})


def lock_file(run_dir: str | os.PathLike) -> Path:
    """The lock file of run folder `run_dir` (it may not exist yet: the first trainer creates it)."""
    return Path(run_dir) / LOCK_FILE


def _target(run_dir: str | os.PathLike) -> Path:
    # file_lock(X) locks "X.lock"
    return Path(run_dir) / Path(LOCK_FILE).stem


def busy_error(run_dir: str | os.PathLike, owner: LockOwner) -> RunError:
    """The RunError a second writer gets: names the run folder and the owner."""
    return RunError(f"{run_dir}: the run is already being trained by {owner.describe()}; stop it first or wait")


def current_owner(run_dir: str | os.PathLike) -> LockOwner | None:
    """The process training `run_dir` now, or None when nobody holds its lock."""
    deadline = time.monotonic() + _GRACE_S
    while True:
        text = lock_holder(_target(run_dir))
        if text is None:
            return None
        owner = LockOwner.parse(text)
        # an owner that has just taken the lock may not have written its pid yet
        if owner.pid is not None or time.monotonic() >= deadline:
            return owner
        time.sleep(0.02)


def require_free(run_dir: str | os.PathLike) -> None:
    """RunError (naming the owner's pid) when a process is training `run_dir` now."""
    owner = current_owner(run_dir)
    if owner is not None:
        raise busy_error(run_dir, owner)


@contextmanager
def hold(run_dir: str | os.PathLike) -> Iterator[LockOwner]:
    """Hold `run_dir`'s training lock (yields this process as its owner), or raise RunError when
    another process holds it (after at most half a second) — before anything in the folder is written."""
    if not Path(run_dir).is_dir():  # file_lock would create the folder: never make a run out of a typo
        raise RunError(f"{run_dir}: no such run folder")
    me = LockOwner(pid=os.getpid(), host=socket.gethostname(), started=_now_iso())
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(_target(run_dir), timeout=_GRACE_S, owner=me.text()))
        except LockHeld as exc:
            raise busy_error(run_dir, _owner_after_refusal(run_dir, exc.holder)) from None
        yield me


def hold_for_rank(run_dir: str | os.PathLike) -> AbstractContextManager:
    """`hold(run_dir)` in the process that writes the run: rank 0 under torchrun (WORLD_SIZE > 1),
    else this process. Read from the environment, so it works before the process group exists."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) != 0:
        return nullcontext()
    return hold(run_dir)


def _owner_after_refusal(run_dir: str | os.PathLike, text: str) -> LockOwner:
    owner = LockOwner.parse(text)
    if owner.pid is None:  # read in the instant before the owner wrote its pid: look again
        owner = current_owner(run_dir) or owner
    return owner


def _now_iso() -> str:
    # runs.now_iso's format; not imported from there: runs imports this module
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
