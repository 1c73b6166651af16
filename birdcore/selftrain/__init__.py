"""Self-training: pseudo-label rounds on unlabeled soundscapes (`birdcore self-train`).

Round 0 trains on labelled data only; each later round has a teacher (the round before, a run or
an ensemble of runs, BirdNET, or the ensemble of all earlier rounds) label the unlabeled soundscapes' 5-s windows, and trains a
student on the labelled clips plus those windows. Every round is an ordinary run folder whose
config names its teacher (`pseudo.teacher`) and its pseudo-label table (`pseudo.labels`).
"""

from birdcore.selftrain.family import (
    FAMILY_FILE,
    ROUNDS_TABLE,
    Family,
    create_family,
    list_families,
    open_family,
    run_family,
    teacher_of,
)

__all__ = ["FAMILY_FILE", "ROUNDS_TABLE", "Family", "create_family", "list_families", "open_family", "run_family",
           "teacher_of"]
