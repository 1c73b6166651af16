"""Models: timm backbones with our heads.

Public API: `build_model(cfg, num_classes)` → `BirdModel` (waveform → mel → backbone → head),
`resolve_device` (`birdcore.models.device`), `clip_probability` (`birdcore.models.outputs`).
`BirdModel` and `build_model` load lazily, so importing this package does not import torch.
"""

from birdcore.models.device import resolve_device
from birdcore.models.outputs import clip_probability

__all__ = ["BirdModel", "build_model", "clip_probability", "resolve_device"]


def __getattr__(name: str):
    if name in ("BirdModel", "build_model"):
        from birdcore.models import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'birdcore.models' has no attribute {name!r}")
