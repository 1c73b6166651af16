"""Augmentation configuration (placeholder; the augmentation work fills it in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AugmentConfig:
    """The whole augmentation chain."""

    enabled: bool = True
