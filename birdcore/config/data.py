"""What part of a dataset a run uses and how clips are cut from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from birdcore.config.base import check_range


@dataclass
class DataConfig:
    """Dataset selection and clip geometry for training and validation.

    - `clip_seconds`: training crop length (5 s = one scored window; top teams used 10–30 s crops
      and kept the centre 5 s at inference).
    - `classes`: "all" = every species with a primary recording; "scored" = only the scored
      species (recordings whose primary or secondary labels contain a scored bird are kept).
    - `secondary_weight`: target value for species in `secondary_labels` (primary = 1.0).
    - `rating_weight`: per-sample loss weight from `rating` — "none" (all 1), or "linear" =
      rating / 5, where unrated rows (rating 0.0) get `unrated_weight` instead of 0.
    - `min_rating`: drop rated recordings below this rating (unrated ones are kept).
    - `group_by`: what validation folds keep together — "recording" (default: rows of one audio file,
      e.g. windows of one soundscape, never sit on both sides), "site" (lat/lon rounded to 0.1°),
      "recordist" (`author`), or the name of a train_metadata.csv column (`training.folds`).

    The sample rate is not here: a run has one, `mel.sample_rate` (`RunConfig.sample_rate`). Old
    `config.json` files that still hold `data.sample_rate` load when it equals `mel.sample_rate`
    (see `RunConfig.upgrade`).
    """

    clip_seconds: float = 5.0
    classes: Literal["all", "scored"] = "all"
    secondary_weight: float = 0.5
    rating_weight: Literal["none", "linear"] = "linear"
    unrated_weight: float = 0.6
    min_rating: float = 0.0
    use_cache: bool = True
    group_by: str = "recording"

    def __post_init__(self) -> None:
        check_range("clip_seconds", self.clip_seconds, 0.5, 120.0)
        check_range("secondary_weight", self.secondary_weight, 0.0, 1.0)
        check_range("unrated_weight", self.unrated_weight, 0.0, 1.0)
        check_range("min_rating", self.min_rating, 0.0, 5.0)
        if not isinstance(self.group_by, str) or not self.group_by.strip():
            from birdcore.errors import ConfigError

            raise ConfigError("group_by: expected recording, site, recordist or a train_metadata.csv column name")
