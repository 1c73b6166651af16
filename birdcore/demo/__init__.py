"""Embedded demo dataset: a small synthetic BirdCLEF-2022-layout dataset of fictional species.

`ensure_demo_dataset()` gives every workflow (tests, app, CLI) real files to run on without the
Kaggle download; `generate_demo_dataset()` writes one anywhere, deterministically from a seed.
"""

from birdcore.demo.generator import (
    DEMO_VERSION,
    MARKER_NAME,
    SCORED_BIRDS,
    default_demo_dir,
    ensure_demo_dataset,
    generate_demo_dataset,
    is_complete_demo,
)
from birdcore.demo.voices import SPECIES, SPECIES_BY_CODE

__all__ = [
    "DEMO_VERSION",
    "MARKER_NAME",
    "SCORED_BIRDS",
    "SPECIES",
    "SPECIES_BY_CODE",
    "default_demo_dir",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "is_complete_demo",
]
