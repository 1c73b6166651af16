"""Teachers: score the unlabeled windows and turn the scores into a pseudo-label table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from birdcore.config.pseudo import PseudoLabelConfig
from birdcore.errors import ModelError
from birdcore.inference.catalog import BIRDNET_REF, ModelRef, load_model, predict_table
from birdcore.pretrained.teacher import pseudo_labels


def teacher_name(teacher: list[str]) -> str:
    """The identity recorded with the labels and in the student's config: "birdnet", or the run
    folders (absolute) joined by "+"."""
    if teacher == ["birdnet"]:
        return "birdnet"
    return "+".join(str(Path(t).resolve()) for t in teacher)


def score_windows(teacher: list[str], paths: list[Path], classes: list[str],
                  taxonomy_csv: str | os.PathLike | None = None, progress=None) -> pd.DataFrame:
    """The teacher's probabilities per 5-s window of `paths`: file_id, end_time, <its classes>.

    `teacher` is ["birdnet"] (its scores for the species of `classes` it knows; NaN for the others)
    or run folders (averaged). ModelError when the teacher shares no class with `classes`.
    """
    if teacher == ["birdnet"]:
        models = [load_model(BIRDNET_REF, species=classes, taxonomy_csv=taxonomy_csv)]
    else:
        models = [load_model(ModelRef("run", str(t), str(t))) for t in teacher]
    shared = [c for c in classes if any(c in m.classes for m in models)]
    if not shared:
        raise ModelError(f"teacher {teacher_name(teacher)}: shares no class with the student's {len(classes)}")
    result = predict_table(models, paths, progress=progress)
    if result.skipped:
        raise ModelError(f"{result.skipped[0][0]}: the teacher could not read it ({result.skipped[0][1]})")
    return result.table


def label_windows(scores: pd.DataFrame, paths: list[Path], classes: list[str], cfg: PseudoLabelConfig,
                  teacher: str) -> pd.DataFrame:
    """The pseudo-label table of `scores` (see `birdcore.pretrained.teacher.pseudo_labels`)."""
    by_id = {p.stem: str(Path(p).resolve()) for p in paths}
    return pseudo_labels(scores, classes, floor=cfg.floor, soft=cfg.mode == "soft", power=cfg.power,
                         cap_per_class=cfg.cap_per_class, teacher=teacher, paths=by_id)
