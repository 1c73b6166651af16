"""Pseudo-labels: how a teacher's window scores become targets, and how a run trains on them.

Sources for the defaults: BirdCLEF 2025 1st place (noisy-student rounds on unlabeled soundscapes,
a power transform p^k of the pseudo-labels, soundscape mixup), 2025 2nd (soft pseudo-labels),
2024 1st (distillation into small CNNs), 2026 entries (pseudo-labels capped per taxon); see
notes/birdclef-reference.md, "Training that helped".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from birdcore.config.base import check_range


@dataclass
class PseudoLabelConfig:
    """Teacher scores → pseudo-label targets, per 5-s window and class.

    - `mode`: "soft" keeps the probability as the target (distillation through BCE); "hard" gives 1
      where the probability passes `floor`, else 0.
    - `floor`: a score below it becomes 0 (the teacher is not confident enough to teach it).
    - `power`: soft targets become p^power (k > 1 pushes uncertain scores towards 0: 2025 1st
      place's transform); 1 = unchanged. Applied after the floor, so the floor reads the
      teacher's own probability.
    - `cap_per_class`: at most this many windows per class keep a non-zero target (the
      highest-scoring ones); 0 = no cap. Keeps one loud species from flooding the student.
    """

    mode: Literal["soft", "hard"] = "soft"
    floor: float = 0.1
    power: float = 1.0
    cap_per_class: int = 0

    def __post_init__(self) -> None:
        check_range("floor", self.floor, 0.0, 1.0)
        check_range("power", self.power, 0.0, 10.0, lo_open=True)
        check_range("cap_per_class", self.cap_per_class, 0)


@dataclass
class PseudoConfig:
    """A run's pseudo-labelled windows (off while `labels` is empty).

    - `labels`: a pseudo-label table (`birdcore.pretrained.teacher`: file_id, end_time, path,
      teacher, one column per class); its windows train, never validate.
    - `teacher`: who made the table (a run folder, several joined by "+", "birdnet"); recorded
      here so a run names its teacher. Filled by `birdcore self-train`.
    - `ratio`: pseudo-labelled windows drawn per epoch, as a multiple of the labelled training rows.
    - `loss_weight`: sample weight of a pseudo-labelled window (a labelled clip weighs its rating).
    - `only`: train on the pseudo-labelled windows alone (pure distillation); labelled rows still
      validate. An epoch then holds every pseudo-labelled window once.
    - `mix_labelled`: probability that a labelled training clip is mixed into a pseudo-labelled
      window (target: the union, elementwise max); 0 = off.
    """

    labels: str = ""
    teacher: str = ""
    ratio: float = 0.5
    loss_weight: float = 0.5
    only: bool = False
    mix_labelled: float = 0.0

    def __post_init__(self) -> None:
        check_range("ratio", self.ratio, 0.0, 100.0)
        check_range("loss_weight", self.loss_weight, 0.0, 10.0)
        check_range("mix_labelled", self.mix_labelled, 0.0, 1.0)

    @property
    def enabled(self) -> bool:
        """True when the run trains on a pseudo-label table."""
        return bool(self.labels)


LATER_TEACHERS = ("previous", "rounds")


@dataclass
class SelfTrainConfig:
    """A family of self-training rounds (`birdcore self-train`), saved in its `selftrain.json`.

    - `rounds`: rounds after round 0 (round 0 trains on labelled data only).
    - `teacher`: round 1's teacher: ["previous"] (round 0's model), ["birdnet"] (BirdNET's scores,
      for the species it knows), or run folders (several = their averaged ensemble).
    - `later_teacher`: who teaches round r >= 2: "previous" (the round before alone: noisy
      student, 2025 1st place) or "rounds" (the averaged ensemble of every earlier round's run,
      plus `teacher`'s run folders when round 1 had some: a steadier teacher, at the cost of one
      scoring pass per model).
    - `unlabeled`: the dataset's `unlabeled_soundscapes/` when empty, else a folder of recordings.
    - `labels`: how teacher scores become targets (`PseudoLabelConfig`).
    - `round0`: a finished run folder to stand as round 0 instead of training one (it must have
      the classes of the family's data and config), e.g. to compare label settings from one start.
    """

    rounds: int = 2
    teacher: list[str] = field(default_factory=lambda: ["previous"])
    later_teacher: str = "previous"
    unlabeled: str = ""
    round0: str = ""
    labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)

    def __post_init__(self) -> None:
        from birdcore.errors import ConfigError

        check_range("rounds", self.rounds, 1, 50)
        if not self.teacher or any(not isinstance(t, str) or not t.strip() for t in self.teacher):
            raise ConfigError("teacher: expected 'previous', 'birdnet' or one or more run folders")
        if self.later_teacher not in LATER_TEACHERS:
            raise ConfigError(f"later_teacher: {self.later_teacher!r} is not one of {', '.join(LATER_TEACHERS)}")
        special = [t for t in self.teacher if t in ("previous", "birdnet")]
        if special and len(self.teacher) > 1:
            raise ConfigError(f"teacher: {special[0]!r} stands alone; only run folders form an ensemble")
