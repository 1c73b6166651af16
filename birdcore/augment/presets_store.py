"""Named augmentation configs saved by the app: `$BIRDCORE_HOME/augment/<name>.json`.

The Preview page saves the augmentation it shows under a name; the Training page lists the same
files and uses one as a run's `augment` section. A file holds exactly
`birdcore.config.base.to_dict(AugmentConfig)` (pretty JSON), so it can also be passed as
`augment=<file contents>` or edited by hand.

How they relate to the other presets: a run preset (`birdcore.config.run.PRESETS`: demo-cpu,
birdclef2022, birdnet-head) is a whole `RunConfig`, and its `mel` section starts from a mel preset
(`birdcore.config.features.MEL_PRESETS`: hop512, hop320). A saved augmentation preset holds an
`AugmentConfig` only: it replaces a run's `augment` section on top of whichever run preset is
chosen, and carries no mel, model or training settings (the mel preset picked on the Preview page
is not saved with it).

- Names are file names without `.json`: letters, digits, space and `_ - . + ( )`, at most 100
  characters, not starting with a dot, never `/`, `\\` or `..` — a name cannot leave the folder.
  A trailing `.json` is accepted and dropped.
- Writes are atomic (temp file + rename): a reader never sees half a file.
- `load` validates strictly: truncated JSON, an unknown key or an out-of-range value raises
  ConfigError naming the file and the field (`.../strong.json: augment.gain.min_db: min 10.0 is
  greater than max 5.0`). A file holding `{"augment": {...}}` (fields under an "augment" key) is
  accepted too.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from birdcore.atomic_io import atomic_write_json
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import from_dict, to_dict
from birdcore.errors import ConfigError
from birdcore.settings import birdcore_home

__all__ = ["augment_dir", "augment_config_from_dict", "check_name", "preset_path", "save", "load",
           "list_presets", "delete", "MAX_NAME_LENGTH"]

MAX_NAME_LENGTH = 100
_NAME = re.compile(r"^[\w][\w .+()-]*$")  # \w: Unicode letters, digits and "_"


def augment_dir() -> Path:
    """The folder of saved augmentation configs: `$BIRDCORE_HOME/augment` (may not exist yet)."""
    return birdcore_home() / "augment"


def check_name(name: str) -> str:
    """The cleaned name (whitespace stripped, a trailing ".json" dropped); ConfigError when unusable."""
    if not isinstance(name, str):
        raise ConfigError(f"augmentation config name: expected a string, got {type(name).__name__}")
    clean = name.strip()
    if clean.lower().endswith(".json"):
        clean = clean[:-5].rstrip()
    if not clean:
        raise ConfigError("augmentation config name: empty — type a name such as 'strong-noise'")
    if "/" in clean or "\\" in clean or ".." in clean:
        raise ConfigError(f"augmentation config name {name!r}: must not contain '/', '\\' or '..'"
                          " (it names a file in the augment folder)")
    if len(clean) > MAX_NAME_LENGTH:
        raise ConfigError(f"augmentation config name: {len(clean)} characters, at most {MAX_NAME_LENGTH}")
    if not _NAME.match(clean):
        raise ConfigError(f"augmentation config name {name!r}: use letters, digits, spaces and _ - . + ( ),"
                          " starting with a letter or digit")
    return clean


def preset_path(name: str) -> Path:
    """Where config `name` lives: `augment_dir() / "<name>.json"` (name checked by `check_name`)."""
    return augment_dir() / f"{check_name(name)}.json"


def augment_config_from_dict(data: Any, where: str = "augment") -> AugmentConfig:
    """An AugmentConfig from a plain dict (fields at the top level, or under an "augment" key).

    Strict: unknown keys, wrong types and invalid values raise ConfigError naming the dotted field
    (`augment.gain.min_db: ...`). Missing keys take their defaults.
    """
    if isinstance(data, dict) and set(data) == {"augment"} and isinstance(data["augment"], dict):
        data = data["augment"]
    return from_dict(AugmentConfig, data, where)


def save(name: str, cfg: AugmentConfig) -> Path:
    """Write `cfg` as `<augment_dir>/<name>.json` atomically (replacing a file of that name); return the path."""
    if not isinstance(cfg, AugmentConfig):
        raise ConfigError(f"augmentation config {name!r}: expected an AugmentConfig, got {type(cfg).__name__}")
    data = to_dict(cfg)
    augment_config_from_dict(data)  # what cannot be loaded back must not be written
    return atomic_write_json(preset_path(name), data)


def load(name_or_path: str | os.PathLike) -> AugmentConfig:
    """The config saved as `name` (or the JSON file at a path); ConfigError naming the file and field.

    A string is always a name in `augment_dir()` (checked like `save` checks it, so "../x" is
    refused); pass a `Path` (any os.PathLike) to read a file elsewhere.
    """
    if not isinstance(name_or_path, str):
        p = Path(name_or_path).expanduser()
    else:
        p = preset_path(str(name_or_path))
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: augmentation config not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                          " (truncated or hand-edited file?)") from None
    try:
        return augment_config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def list_presets() -> list[str]:
    """Names of the saved configs (files `*.json` with a valid name), sorted case-insensitively.

    Files are not opened: a broken one is listed and fails in `load` with its message.
    """
    folder = augment_dir()
    if not folder.is_dir():
        return []
    names = []
    for p in folder.glob("*.json"):
        if not p.is_file():
            continue
        try:
            names.append(check_name(p.stem))
        except ConfigError:
            continue  # e.g. ".hidden.json" or a temp file: not something save() writes
    return sorted(names, key=lambda n: (n.lower(), n))


def delete(name: str) -> bool:
    """Remove config `name`; True when a file was removed."""
    try:
        preset_path(name).unlink()
    except FileNotFoundError:
        return False
    return True
