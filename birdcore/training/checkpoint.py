"""Checkpoints: atomic `torch.save` of state dicts and plain values; loaded with weights_only=True.

Only tensors, numbers, strings, lists and dicts are stored (RNG states of numpy and `random` as
JSON text), so `torch.load(..., weights_only=True)` — which refuses arbitrary pickled objects —
can read everything back.
"""

from __future__ import annotations

import io
import json
import random
import warnings
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
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise RunError(f"{p}: cannot load checkpoint: {checkpoint_problem(exc)}") from None


def checkpoint_problem(exc: BaseException) -> str:
    """A whole-sentence reason for a failed `torch.load`.

    Torch's own texts run to several paragraphs (the weights_only one explains pickling); cutting
    them at a fixed length left half a sentence. Known failures get plain words; anything else
    keeps torch's first sentence, cut at a word boundary.
    """
    text = str(exc).strip()
    low = text.lower()
    if "unsupported global" in low:
        import re

        name = re.search(r"GLOBAL ([\w.]+)", text)
        return (f"it holds a Python object{' (' + name.group(1) + ')' if name else ''} that a safe load"
                " (weights_only=True) refuses to run — it was not written by birdcore, or comes from an untrusted source")
    if "weights only load failed" in low:  # "Unsupported operand N": bytes that are no torch pickle
        return "the file is not a PyTorch checkpoint (a safe load found no tensors and state in it)"
    if "central directory" in low or "zip archive" in low or "invalid header" in low or "truncated" in low:
        return "the file is cut off or not a PyTorch checkpoint (its zip structure is broken)"
    if "invalid load key" in low or "unpickling" in low:
        return "the file is not a PyTorch checkpoint"
    if isinstance(exc, (KeyError, EOFError, UnicodeDecodeError)) or " " not in text:
        # a text file or random bytes: the unpickler trips on its first byte with a bare key/EOF
        return f"the file is not a PyTorch checkpoint ({type(exc).__name__}: {text[:40] or 'no detail'})"
    first = (text.splitlines() or [type(exc).__name__])[0]
    first = first.split(". ")[0].rstrip(".") or type(exc).__name__
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0] + " …"
    return first


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
