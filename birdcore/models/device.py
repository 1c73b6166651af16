"""Which torch device a command runs on (`--device auto|cpu|cuda`)."""

from __future__ import annotations


def resolve_device(name: str, local_rank: int | None = None):
    """"auto" → CUDA when present, else CPU; "cuda" under DDP → the local rank's GPU.

    ConfigError when CUDA is asked for on a machine without it (instead of torch's error deep
    inside the first `.to(device)`).
    """
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name.startswith("cuda") and not torch.cuda.is_available():
        from birdcore.errors import ConfigError

        raise ConfigError(f"device {name!r}: CUDA is not available on this machine; use --device auto or cpu")
    if name == "cuda" and local_rank is not None:
        name = f"cuda:{local_rank}"
    return torch.device(name)
