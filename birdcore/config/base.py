"""Strict conversion between typed dataclass configs and plain dicts / JSON files.

Every config section is a frozen-free `@dataclass` whose field defaults are the single source of
truth. `from_dict` rejects unknown keys and wrong types with a `ConfigError` naming the dotted
field (`train.epochs: expected int, got 'ten'`); each section's `validate()` checks ranges and is
called from `__post_init__`, so an invalid config cannot be constructed at all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from birdcore.errors import ConfigError, not_found_message

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "apply_overrides",
    "load_json_config",
    "check_range",
    "check_prob",
    "check_min_max",
    "check_choice",
]


def to_dict(obj: Any) -> Any:
    """Convert a (nested) dataclass into JSON-ready dicts/lists; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from `data`, strictly.

    Missing keys take the dataclass default; unknown keys, wrong types and values that fail the
    section's `validate()` raise `ConfigError` naming the dotted path of the field.

    A class may define a classmethod `upgrade(data) -> data` that maps the fields of older saved
    files onto the current ones (e.g. `RunConfig` and the retired `data.sample_rate`); it runs
    first, on the plain dict, and raises ConfigError when an old file cannot be mapped.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of fields, got {type(data).__name__}")
    upgrade = getattr(cls, "upgrade", None)
    if callable(upgrade):
        try:
            data = upgrade(data)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_join(where, unknown[0])}: unknown field"
            f" (known fields of {where or cls.__name__}: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _convert(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        if where and not msg.startswith(where):
            msg = f"{where}.{msg}"
        raise ConfigError(msg) from None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        _, vt = get_args(tp) or (Any, Any)
        return {str(k): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # JSON's NaN/Infinity extensions slip past range checks
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of `cfg` with `key.sub=value` overrides applied (CLI `--set`).

    Values are parsed as JSON when they parse (`3`, `0.5`, `true`, `[1,2]`, `"x"`), else taken as
    plain strings, then the whole config is re-validated.
    """
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. train.epochs=3)")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{key}: unknown field {part!r}")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(f"{key}: unknown field")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def load_json_config(cls: type[T], path: str | Path) -> T:
    """Load a dataclass config from a JSON file with errors naming the file."""
    p = Path(path)
    if not p.exists():  # also a link loop or a dangling link, which read_text reports less clearly
        raise ConfigError(not_found_message(p, "config file"))
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(not_found_message(p, "config file")) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except OSError as exc:  # a folder, no permission, I/O error
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror or exc})") from None
    if not text.strip():
        raise ConfigError(f"{p}: config file is empty (expected a JSON object of fields)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# ---- validation helpers used by sections' validate() -------------------------------------------

def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ConfigError unless lo <= value <= hi (open ends when *_open)."""
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(f"{name}: {value!r} must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ConfigError(f"{name}: {value!r} must be {'<' if hi_open else '<='} {hi}")


def check_prob(name: str, value: float) -> None:
    """Raise ConfigError unless 0 <= value <= 1."""
    check_range(name, value, 0.0, 1.0)


def check_min_max(name: str, lo: float, hi: float) -> None:
    """Raise ConfigError when a (min, max) pair is reversed."""
    if lo > hi:
        raise ConfigError(f"{name}: min {lo!r} is greater than max {hi!r}")


def check_choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    """Raise ConfigError unless value is one of choices."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(repr, choices))}")
