"""Checkpoints: atomic `torch.save` of state dicts and plain values; loaded with weights_only=True.

Only tensors, numbers, strings, lists and dicts are stored (RNG states of numpy and `random` as
JSON text), so `torch.load(..., weights_only=True)` — which refuses arbitrary pickled objects —
can read everything back.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from birdcore.atomic_io import atomic_path
from birdcore.errors import RunError


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` atomically: a crash mid-write leaves the previous checkpoint intact.

    Serialised in memory first: `torch.save` straight to a full disk fails with a cryptic
    "[enforce fail at inline_container.cc] unexpected pos" RuntimeError, while a plain write
    raises ENOSPC, which `atomic_path` turns into a `StorageError` naming the file ("disk full").
    """
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
        fh.write(buf.getbuffer())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only=True); RunError if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise RunError(f"{p}: checkpoint not found")
    if p.stat().st_size == 0:
        raise RunError(f"{p}: cannot load checkpoint (file is empty, 0 bytes)")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        # some torch errors have an empty message: fall back to the exception's type
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise RunError(f"{p}: cannot load checkpoint ({why})") from None


def rng_state() -> dict[str, Any]:
    """Snapshot of torch, numpy (legacy global) and `random` RNG states, weights_only-safe."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps([np_state[0], np_state[1].tolist(), *np_state[2:]]),
        "python": json.dumps(_to_lists(random.getstate())),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    np_state = json.loads(state["numpy"])
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    random.setstate(_to_tuples(json.loads(state["python"])))


def _to_lists(obj: Any) -> Any:
    return [_to_lists(x) for x in obj] if isinstance(obj, (list, tuple)) else obj


def _to_tuples(obj: Any) -> Any:
    return tuple(_to_tuples(x) for x in obj) if isinstance(obj, list) else obj
