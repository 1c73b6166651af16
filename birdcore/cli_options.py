"""Command-line helpers: option checks done when the line is parsed (before any work starts), and
the progress bar. Low in the layers so every package that registers commands (`cli`, `archive`)
shares them.

Every numeric option gets a `type=` from here, so a bad value is refused by argparse with the flag's
name ("argument --window: 0 is not > 0") instead of a traceback minutes later. Output paths are
checked by `check_output_*` right after parsing: a folder where a file goes, a file where a folder
goes, a parent that is a file or read-only — found before a 20-minute prediction, not after it.
`tests/test_cli_options.py` refuses any numeric option declared with a bare `int` or `float`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

from birdcore.errors import ConfigError


def number(kind: type = float, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           unit: str = "") -> Callable[[str], float]:
    """An argparse `type` parsing a finite `kind` (int or float) within [lo, hi] (lo excluded when
    `lo_open`)."""
    what = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if lo_open else '>='} {_fmt(lo)}{unit}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} must be <= {_fmt(hi)}{unit}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def number_list(text: str) -> list[float]:
    """An argparse `type` for comma-separated finite numbers, e.g. a smoothing kernel `0.25,0.5,0.25`."""
    items = [t.strip() for t in text.split(",")]
    values = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{t!r} in {text!r} is not a number (expected e.g. 0.25,0.5,0.25)") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{t!r} in {text!r} must be a finite number")
        values.append(v)
    return values


def device_name(text: str) -> str:
    """An argparse `type` for --device: auto, cpu, cuda or cuda:N."""
    from birdcore.config.train import check_device_name

    try:
        return check_device_name(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto, cpu, cuda or cuda:N") from None


SEED = number(int, 0, 2**32 - 1)
THREADS = number(int, 1, 1024)
WORKERS = number(int, 1, 64)
SAMPLE_RATE = number(int, 1000, 384_000, unit=" Hz")


def check_output_file(path: Path, flag: str, example: str | None = None) -> None:
    """ConfigError unless `path` can become a file: not a folder, its folder creatable and writable.
    `example` is a file name suggested inside a folder given by mistake (e.g. submission.csv)."""
    if path.is_dir():
        hint = f" (e.g. {path / example})" if example else ""
        raise ConfigError(f"{flag} {path}: is a folder; give a file path{hint}")
    _check_parent(path, flag)


def check_output_dir(path: Path, flag: str) -> None:
    """ConfigError unless `path` can be (or is) a folder we may write into."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is a file, not a folder; choose a folder path")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {path}: the folder is not writable")
        return
    _check_parent(path, flag)


def _check_parent(path: Path, flag: str) -> None:
    """The nearest existing ancestor of `path` must be a writable folder (it or its sub-folders get made)."""
    parent = path.absolute().parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link or a loop: exists() is False, mkdir would fail
            raise ConfigError(f"{flag} {path}: {parent} is a broken symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent} (permission denied or read-only)")


@contextlib.contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr driven by `progress(done, total)` callbacks; nothing is drawn until the
    first call, so a command that fails early prints no empty bar."""
    from tqdm import tqdm

    holder: dict = {}

    def update(done: int, total: int) -> None:
        bar = holder.get("bar")
        if bar is None:
            bar = holder["bar"] = tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=False)
        bar.update(done - bar.n)  # tqdm throttles redraws (mininterval), also when stderr is a file

    try:
        yield update
    finally:
        if "bar" in holder:
            holder["bar"].close()
