"""Crash-safe file writes: write to a temp file in the same folder, fsync, then rename.

A reader never sees a half-written file and a crash mid-write leaves the previous version intact,
because `os.replace` is atomic on POSIX within one filesystem.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import fcntl


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on clean exit it replaces `path` atomically.

    The caller writes the temp file however it likes (numpy, torch, pandas ...). On an exception
    the temp file is removed and the original file is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    with open(path, "ab") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on `path + '.lock'` (for read-modify-write of shared files)."""
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
