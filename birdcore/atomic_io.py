"""Crash-safe file writes: write to a temp file in the same folder, fsync, then rename.

A reader never sees a half-written file and a crash mid-write leaves the previous version intact,
because `os.replace` is atomic on POSIX within one filesystem.

A write that fails for lack of space or permission (disk full, quota, read-only file system or
folder) raises `StorageError` — a `BirdcoreError` *and* an `OSError` with the original errno —
naming the file and the reason, after removing the temp file: nothing half-written is left.
(A SIGKILL cannot run clean-up: it may leave a `.NAME.*.tmp` file beside the target, which no
reader ever takes for the target.)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from birdcore.errors import BirdcoreError, StorageError  # noqa: F401  (StorageError re-exported: callers import it from here)

# errno → words. The first four only ever come from writing, so they are mapped wherever they
# arise inside `atomic_path`; permission errors only where this module itself creates/renames.
_SPACE_ERRNOS = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for the file system",
}
_PERMISSION_ERRNOS = {
    errno.EACCES: "permission denied (read-only folder?)",
    errno.EPERM: "operation not permitted (read-only folder?)",
}


def write_failure_reason(exc: OSError) -> str:
    """Plain words for why a write failed ("disk full (no space left on device)", ...)."""
    if isinstance(exc, StorageError):
        return exc.reason
    return {**_SPACE_ERRNOS, **_PERMISSION_ERRNOS}.get(exc.errno, exc.strerror or str(exc))


def storage_error(exc: OSError, path: str | os.PathLike) -> StorageError:
    """A `StorageError` naming `path` and the reason for the failed write `exc`."""
    reason = write_failure_reason(exc)
    err = StorageError(f"{path}: cannot write: {reason}; the previous version (if any) is unchanged")
    err.errno = exc.errno  # not passed to the constructor: str(err) stays the message above
    err.reason = reason
    return err


def _is_write_failure(exc: BaseException, own_step: bool) -> bool:
    if not isinstance(exc, OSError) or isinstance(exc, StorageError):
        return False
    return exc.errno in _SPACE_ERRNOS or (own_step and exc.errno in _PERMISSION_ERRNOS)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on clean exit it replaces `path` atomically.

    The caller writes the temp file however it likes (numpy, torch, pandas ...). On an exception
    the temp file is removed and the original file is untouched; a failed write (disk full,
    read-only) becomes `StorageError`.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        if _is_write_failure(exc, own_step=True):
            raise storage_error(exc, target) from exc
        raise
    tmp = Path(tmp_name)
    own_step = False
    try:
        yield tmp
        own_step = True
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if _is_write_failure(exc, own_step):
            raise storage_error(exc, target) from exc
        raise


def stray_temp_files(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Temp files `atomic_path` left in `folder` (only a SIGKILL or power loss leaves one);
    those of target `name` only, when given. Never read as data: safe to delete once no
    process is writing that target."""
    prefix = f".{name}." if name else "."
    d = Path(folder)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and p.name.startswith(prefix) and p.name.endswith(".tmp"))


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as pretty JSON atomically (keys in insertion order, trailing newline)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (newline added) with a single write + fsync.

    Used for `metrics.jsonl`: one `write` of a short line under an exclusive lock means readers
    see whole lines only, and a crash can at worst leave one incomplete last line, which readers
    skip (see `read_jsonl`).
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        if _is_write_failure(exc, own_step=True):
            raise storage_error(exc, path) from exc
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:  # os.write may write part of the line (disk filling up)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            # Cut a partial line off again: the next append must not glue onto a torn record.
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            if _is_write_failure(exc, own_step=True):
                raise storage_error(exc, path) from exc
            raise
    finally:
        os.close(fd)  # closing releases the lock


def read_jsonl(path: str | os.PathLike, start: int = 0) -> tuple[list[dict], int]:
    """Read complete JSON lines from byte offset `start`; return (records, next_offset).

    An incomplete trailing line (a crash mid-append, or a writer still writing) is not consumed,
    so incremental readers (the app's live charts) can call again with the returned offset.
    """
    p = Path(path)
    if not p.exists():
        return [], start
    with open(p, "rb") as fh:
        fh.seek(start)
        data = fh.read()
    records: list[dict] = []
    consumed = 0
    for raw in data.split(b"\n")[:-1]:
        consumed += len(raw) + 1
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            continue  # a torn line left by a crash: skip it, never fail the reader
    return records, start + consumed


class LockHeld(BirdcoreError):
    """Another process holds a lock that `file_lock(..., timeout=...)` gave up waiting for.

    `lock_path` is the lock file; `holder` the text its owner wrote into it ("" when none).
    """

    def __init__(self, lock_path: Path, holder: str) -> None:
        super().__init__(f"{lock_path}: locked by another process" + (f" ({holder})" if holder else ""))
        self.lock_path = lock_path
        self.holder = holder


@contextmanager
def file_lock(path: str | os.PathLike, *, timeout: float | None = None, owner: str | None = None) -> Iterator[None]:
    """Exclusive advisory lock on `path + '.lock'` (for read-modify-write of shared files).

    `timeout`: None waits as long as it takes; a number of seconds gives up after that long (0: one
    try) with `LockHeld`. `owner`: text written into the lock file while held (a pid, say), so a
    refused process can tell who holds it; emptied again on release. The kernel drops an `flock`
    when its holder exits, however it dies (even SIGKILL): a lock file left behind is never stale.
    The lock file itself is never deleted nor replaced — a new inode would be a second lock.
    """
    lock_path = Path(str(path) + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a+")  # "+": a refused locker reads the owner text through it
    except OSError as exc:
        if _is_write_failure(exc, own_step=True):
            raise storage_error(exc, path) from exc
        raise
    with fh:
        _acquire(fh.fileno(), lock_path, timeout)
        try:
            if owner is not None:
                _write_owner(fh.fileno(), owner)
            yield
        finally:
            if owner is not None:
                _write_owner(fh.fileno(), "")
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def lock_holder(path: str | os.PathLike) -> str | None:
    """The owner text of `path`'s lock (see `file_lock`) while it is held — by another process or
    by another `file_lock` of this one — "" when its holder wrote none; None when it is free or
    its lock file does not exist.

    The probe takes a shared lock for an instant: a `file_lock` with `timeout=0` that lands in that
    instant is refused, so lockers racing with probes give themselves a short timeout.
    """
    try:
        fd = os.open(str(path) + ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_owner(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _acquire(fd: int, lock_path: Path, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(lock_path, _read_owner(fd)) from None
            time.sleep(min(0.02, left))


def _write_owner(fd: int, text: str) -> None:
    # One write after the truncate: a reader sees the old text, nothing, or the whole new text.
    try:
        os.ftruncate(fd, 0)
        if text:
            os.write(fd, text.encode("utf-8"))  # the file is opened for append: lands at offset 0
    except OSError:
        pass  # disk full: the lock holds all the same, only a refused process cannot name the owner


def _read_owner(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
