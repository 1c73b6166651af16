"""Models: timm backbones with our heads; `build_model(cfg, num_classes)` builds the whole net."""

from .classifier import BirdModel, build_model

__all__ = ["BirdModel", "build_model"]
