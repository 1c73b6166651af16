"""Which torch device a command runs on (`--device auto|cpu|cuda`)."""

from __future__ import annotations


def resolve_device(name: str, local_rank: int | None = None):
    """"auto" → CUDA when present, else CPU; "cuda" under DDP → the local rank's GPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and local_rank is not None:
        name = f"cuda:{local_rank}"
    return torch.device(name)
