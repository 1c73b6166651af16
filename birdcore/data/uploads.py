"""Recordings uploaded through the app, stored content-addressed beside the user's data."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from birdcore.atomic_io import atomic_write_bytes
from birdcore.audio.io import AUDIO_EXTENSIONS
from birdcore.errors import ConfigError


def store_upload(data: bytes, name: str, folder: str | os.PathLike, max_mb: float) -> Path:
    """Save an uploaded recording as `<folder>/<name>-<sha1 of content><ext>` and return the path.

    Content-addressed, so re-uploading the same file reuses it (and cached predictions keyed by
    path stay valid). ConfigError when it exceeds `max_mb` MB or its extension is not audio.
    """
    ext = Path(name).suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        raise ConfigError(f"{name}: not an audio file this app reads ({', '.join(AUDIO_EXTENSIONS)})")
    if len(data) > max_mb * 1024 * 1024:
        raise ConfigError(f"{name}: {len(data) / 2**20:.1f} MB is over the {max_mb:g} MB upload limit"
                          " (server.maxUploadSize in .streamlit/config.toml)")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem)[:40].strip("-.") or "upload"
    out = Path(folder) / f"{stem}-{hashlib.sha1(data).hexdigest()[:10]}{ext}"  # the name keeps file_id readable
    if not out.is_file():
        atomic_write_bytes(out, data)
    return out
