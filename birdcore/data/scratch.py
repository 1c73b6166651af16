"""Throw-away copies of uploaded audio in the system temp folder, and their clean-up.

For a recording that is only looked at and then forgotten (the app's Preview page: one copy per
browser session, replaced by the next upload). Recordings to keep — predictions cached by path,
labels saved against them — go through `birdcore.data.uploads.store_upload` instead.

Each copy lives in its own folder `<tmp>/birdcore-upload-XXXXXXXX/upload<ext>` (the decoders read
paths, and the suffix tells them the format). Nothing says when a session ends, so `sweep_scratch`
removes folders that have not changed for a day; the temp folder is `tempfile.gettempdir()` at the
time of the call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from birdcore.audio.io import AUDIO_EXTENSIONS

UPLOAD_PREFIX = "birdcore-upload-"
STALE_AFTER_S = 86400.0  # a day: no session keeps a preview open that long without a new upload


def scratch_copy(data: bytes | bytearray | memoryview, name: str, prefix: str = UPLOAD_PREFIX) -> Path:
    """Write `data` (an uploaded file's bytes) into a new temp folder and return the file's path.

    The file is `upload<ext>` with the extension of `name` when it is an audio extension this
    package reads, else `upload.audio` (the decoder then goes by the content). `name` itself is
    not used in the path: an uploaded name may hold anything.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    suffix = Path(name).suffix.lower()
    path = folder / f"upload{suffix if suffix in AUDIO_EXTENSIONS else '.audio'}"
    path.write_bytes(data)
    return path


def remove_scratch(path: str | os.PathLike, prefix: str = UPLOAD_PREFIX) -> bool:
    """Delete the folder holding a copy made by `scratch_copy` (gone already: nothing to do).

    Only a folder named `<prefix>…` is removed: any other path is left alone and False returned.
    """
    folder = Path(path).parent
    if not folder.name.startswith(prefix):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def sweep_scratch(max_age_s: float = STALE_AFTER_S, prefix: str = UPLOAD_PREFIX, now: float | None = None) -> int:
    """Remove the scratch folders last changed more than `max_age_s` seconds ago; returns how many.

    Folders that vanish or cannot be read meanwhile (another process sweeping) are skipped.
    """
    now = time.time() if now is None else now
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            pass
    return removed
