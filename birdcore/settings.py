"""Settings the app remembers between sessions (last dataset folder, chart choices ...).

One small JSON object in `$BIRDCORE_HOME/app.json` (default `~/.birdcore/app.json`), written
atomically under a file lock so two browser tabs saving at once never leave a torn or mixed file.
Values are plain JSON (str, number, bool, list, dict); keys are free-form, so later pages add their
own without touching this module — prefix them with the page name (`"eda.log_scale"`).

A missing, unreadable or corrupt file reads as "no settings": remembering is a convenience and
must never stop the app from starting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from birdcore.atomic_io import atomic_write_json, file_lock

SETTINGS_FILE = "app.json"


def birdcore_home() -> Path:
    """The per-user state folder: `$BIRDCORE_HOME`, else `~/.birdcore` (not created here)."""
    env = os.environ.get("BIRDCORE_HOME", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".birdcore"


def settings_path() -> Path:
    """Where the app settings live: `birdcore_home() / "app.json"`."""
    return birdcore_home() / SETTINGS_FILE


def load_settings(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read the settings dict; `{}` when the file is missing, unreadable or not a JSON object."""
    p = Path(path) if path is not None else settings_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def get_setting(key: str, default: Any = None, path: str | os.PathLike | None = None) -> Any:
    """One remembered value, or `default` when absent."""
    return load_settings(path).get(key, default)


def update_settings(changes: dict[str, Any], path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Merge `changes` into the stored settings (a value of None deletes the key); return the result.

    Read-modify-write happens under an exclusive lock, so concurrent updates of different keys
    (two tabs, two pages) are both kept. The write is skipped when nothing changes, which keeps
    reruns that re-save the same value free of disk I/O.
    """
    p = Path(path) if path is not None else settings_path()
    with file_lock(p):
        current = load_settings(p)
        merged = dict(current)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if merged != current or not p.exists():
            json.dumps(merged)  # fail here, before touching the file, on a non-JSON value
            atomic_write_json(p, merged)
    return merged
