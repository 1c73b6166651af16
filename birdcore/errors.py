"""Typed errors users can catch.

Every error raised for bad *user input* (a file, a config, a CLI argument) derives from
`BirdcoreError`; the CLI turns these into a one-line message and exit code 2, the app into a
message box. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class BirdcoreError(Exception):
    """Base class for errors caused by user input (files, configs, arguments)."""


class DatasetError(BirdcoreError):
    """A dataset folder or one of its files is missing, malformed or inconsistent.

    The message names the file, the row or column when known, and how to fix it.
    """


class AudioError(BirdcoreError):
    """An audio file cannot be decoded: empty, truncated, corrupt, or holds non-finite samples."""


class ConfigError(BirdcoreError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range; names the field."""


class RunError(BirdcoreError):
    """A run folder is missing, incomplete, or in a state that forbids the operation."""


class ModelError(BirdcoreError):
    """A model or its weights cannot be created or loaded (e.g. offline with no cached weights)."""


class SubmissionError(BirdcoreError):
    """A submission table does not match `test.csv` (missing, extra or duplicated rows, bad values)."""


class StorageError(BirdcoreError, OSError):
    """A file could not be written: disk full, quota, read-only file system or folder.

    Also an `OSError` whose `errno` is the original one, so `except OSError` keeps working.
    `reason` holds the plain words ("disk full (no space left on device)").
    """

    reason: str = ""


def not_found_message(path: str | os.PathLike, what: str) -> str:
    """`"<path>: <what> not found"`, or the real reason when the path exists in some broken form.

    `Path.exists()` is False for a symbolic link loop, a dangling link and a path running through
    a file, so a bare "not found" would send the user looking for a file that is right there.
    """
    p = Path(path)
    if p.is_symlink():
        try:
            target = os.readlink(p)
        except OSError:
            target = "?"
        try:
            p.resolve(strict=True)
        except FileNotFoundError:
            return f"{p}: {what} is a broken symbolic link (it points to {target}, which does not exist)"
        except (OSError, RuntimeError):  # ELOOP; Python < 3.13 raises RuntimeError("Symlink loop")
            return f"{p}: {what} is a symbolic link loop (it points back to itself through {target})"
    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{p}: {what} cannot be opened: a folder on its path is a symbolic link loop"
        if exc.errno == errno.ENOTDIR:
            return f"{p}: {what} not found: a part of its path is a file, not a folder"
        if exc.errno == errno.EACCES:
            return f"{p}: {what} cannot be opened: permission denied on a folder of its path"
    return f"{p}: {what} not found"


def brief(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, at most `limit` characters, cut at a word boundary.

    Library errors (torch, ONNX Runtime, pandas) can run to paragraphs; a fixed slice cut words and
    sentences in half. An empty text falls back to the exception's type name.
    """
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence = cut.rfind(". ")
    if sentence >= limit // 2:
        return cut[:sentence + 1]
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + " …"
