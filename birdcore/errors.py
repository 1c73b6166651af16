"""Typed errors users can catch.

Every error raised for bad *user input* (a file, a config, a CLI argument) derives from
`BirdcoreError`; the CLI turns these into a one-line message and exit code 2, the app into a
message box. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


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
