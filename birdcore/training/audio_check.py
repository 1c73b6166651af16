"""Bad training audio: found before training (header scan) or while decoding, reported, skipped.

One unreadable recording in 15,000 must not kill an overnight run: it is listed in the run's
`skipped.csv` and `status.json`, and training goes on without it. A dataset where most files fail
is a different problem (wrong folder, broken download) and stops with a summary error.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from birdcore.atomic_io import append_line
from birdcore.audio.io import check_audio
from birdcore.errors import AudioError, DatasetError

MAX_BAD_FRACTION = 0.5
SKIPPED_FILE = "skipped.csv"


def scan_audio(paths: list[str], filenames: list[str], workers: int = 8) -> list[tuple[str, str]]:
    """(filename, error) for every file that is unreadable, empty or cut off (no decoding needed).

    Each distinct file is checked and reported once, however many rows (windows of one long
    recording) stand for it.
    """
    first: dict[str, int] = {}
    for i, p in enumerate(paths):
        first.setdefault(p, i)

    def check(i: int):
        try:
            check_audio(paths[i])
        except AudioError as exc:
            return filenames[i], str(exc)
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [r for r in pool.map(check, first.values()) if r is not None]


def check_bad_fraction(bad: list[tuple[str, str]], total: int, where: Path) -> None:
    """DatasetError summarising the failures when more than half of the recordings are bad."""
    if total and len(bad) > MAX_BAD_FRACTION * total:
        raise DatasetError(f"{where}: {len(bad)} of {total} training audio files cannot be read (e.g. {bad[0][1]});"
                           " check that the folder is the complete, unzipped dataset")


def check_lost_classes(bad: list[tuple[str, str]], filenames: list[str], primary, classes: list[str],
                       where: Path) -> None:
    """DatasetError when every recording of a class (as primary label) is unreadable.

    Skipping those files would leave the class with no audio at all: it would still be trained (as
    an always-absent label) and submitted, silently. Classes that only ever occur as secondary
    labels have no primary recordings to lose and are not affected.
    """
    if not bad:
        return
    errors = dict(bad)
    lost = []
    for k, cls in enumerate(classes):
        rows = [i for i, c in enumerate(primary) if c == k]
        if rows and all(filenames[i] in errors for i in rows):
            lost.append((cls, [filenames[i] for i in rows]))
    if lost:
        shown = "; ".join(f"{cls} ({len(files)} file(s), e.g. {errors[files[0]]})" for cls, files in lost[:5])
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        raise DatasetError(f"{where}: every recording of {len(lost)} class(es) cannot be read: {shown}{more}; the model"
                           " would learn these classes from no audio — fix those files or remove their rows from"
                           " train_metadata.csv")


def record_skipped(run_path: Path, filename: str, error: str, phase: str) -> None:
    """Append one row to the run's skipped.csv (safe from DataLoader worker processes)."""
    path = Path(run_path) / SKIPPED_FILE
    if not path.exists():
        append_line(path, "filename,phase,error")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([filename, phase, error.replace("\n", " ")])
    append_line(path, buf.getvalue())


def read_skipped(run_path: Path) -> list[dict[str, str]]:
    """Rows of skipped.csv (empty when nothing was skipped)."""
    path = Path(run_path) / SKIPPED_FILE
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
