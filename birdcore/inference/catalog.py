"""Models a user can pick to score recordings, loaded with what goes with them.

`find_models` lists runs with `checkpoints/best.pt` (best finished run first, its score in the
label; `run_standing` is the ranking rule, `default_index` the picker's default), exported ONNX
folders and the optional BirdNET baseline; `load_model` loads one (+ its thresholds.json, mel settings, class checks);
`predict_table` / `recording_probs` give window probabilities (one model or an ensemble).
Plain functions of paths, so an app can cache them (keyed by model path, backend, recording
path and its mtime).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from birdcore.audio.windows import MIN_LAST_S, WINDOW_S
from birdcore.config.features import MelConfig
from birdcore.errors import AudioError, BirdcoreError, ModelError, brief
from birdcore.evaluation.thresholds import THRESHOLDS_FILE, Thresholds, load_thresholds
from birdcore.inference.base import BUNDLE_FILE, ONNX_FILE
from birdcore.inference.birdnet_baseline import predict_birdnet
from birdcore.inference.predict import PredictOptions, PredictResult, predict_files
from birdcore.inference.scorers import load_scorer
from birdcore.training.runs import RunFolder, list_runs

BIRDNET_KIND = "birdnet"


@dataclass(frozen=True)
class ModelRef:
    """A model the user can pick: kind "run" | "exported" | "birdnet", its folder ("" for BirdNET)."""

    kind: str
    path: str
    label: str
    # Whether a picker may choose it unprompted (a finished or still-improving run with a real score).
    # Not part of equality: a run whose score changes stays the same choice.
    usable: bool = field(default=True, compare=False)

    @property
    def key(self) -> str:
        """Stable id for caches and widget state."""
        return f"{self.kind}:{self.path}"


BIRDNET_REF = ModelRef(BIRDNET_KIND, "", "BirdNET baseline (V2.4, pretrained)")


# Display names of the monitored metrics in picker labels ("run-x · micro F1 0.912").
METRIC_NAMES = {"micro_f1": "micro F1", "macro_f1": "macro F1", "birdclef2022": "BirdCLEF 2022",
                "cmap_pad5": "padded cmAP", "macro_auc": "macro ROC-AUC", "val_loss": "val loss"}
# Finished runs rank before runs that are still training or were stopped, which rank before the rest.
_STATE_TIER = {"finished": 0, "running": 1, "queued": 1, "stopped": 1}


def run_standing(state: str | None, best_score: float | None, has_weights: bool = True) -> tuple[bool, tuple]:
    """(usable as a default, sort key — smaller first) of a run from its state and best score.

    A run is a sensible default only when it has weights, did not fail, and scored something: a
    run stopped after one epoch with F1 0 or a failed run is listed, never picked unprompted.
    Usable runs come first, finished ones before running/stopped ones, then by score (highest first).
    """
    score = float(best_score) if isinstance(best_score, (int, float)) and math.isfinite(best_score) else None
    tier = _STATE_TIER.get(state or "", 2)
    usable = has_weights and tier < 2 and score is not None and score > 0
    return usable, (0 if usable else 1, tier, -(score if score is not None else -math.inf))


def run_label(run_id: str, state: str | None, best_score: float | None, monitor: str | None) -> str:
    """"run-x · micro F1 0.912", plus the state when it is not finished ("… (running)")."""
    label = run_id
    if isinstance(best_score, (int, float)) and math.isfinite(best_score):
        label += f" · {METRIC_NAMES.get(monitor or '', monitor or 'score')} {best_score:.3f}"
    else:
        label += " · no score yet"
    return label if state == "finished" else f"{label} ({state or 'unknown'})"


def _monitor(run: RunFolder) -> str | None:
    try:
        return run.read_config()[0].train.monitor
    except Exception:  # noqa: BLE001 - a broken config only loses the metric's name in the label
        return None


def find_models(runs_dirs: Iterable[str | os.PathLike], models_dir: str | os.PathLike | None = None,
                birdnet: bool | None = None) -> list[ModelRef]:
    """Models to pick from, the sensible default first: runs holding `checkpoints/best.pt` that
    scored (`run_standing`: finished runs by score, then running/stopped ones), exported folders
    (`model.onnx` + `bundle.json`) directly under `models_dir`, then failed or scoreless runs
    (listed, labelled, never first), then BirdNET when `birdnet` (None = when the optional extra
    is installed). Each run's label carries its score. A run still training is listed: best.pt is
    written atomically.
    """
    ranked = []
    for d in runs_dirs:
        for run in list_runs(d):  # newest first: the stable sort keeps that order among equals
            if run.best_checkpoint.is_file():
                st = run.status()
                state, score = st.get("state"), st.get("best_score")
                usable, key = run_standing(state, score)
                ranked.append((key, ModelRef("run", str(run.path), run_label(run.run_id, state, score, _monitor(run)),
                                             usable=usable)))
    runs = [ref for _, ref in sorted(ranked, key=lambda kr: kr[0])]
    # Pages that take the first model as their default (Submission's ensemble picker) then never
    # start on a failed run while an exported model exists.
    out: list[ModelRef] = [r for r in runs if r.usable]
    if models_dir is not None and Path(models_dir).is_dir():
        for p in sorted(Path(models_dir).iterdir()):
            if (p / ONNX_FILE).is_file() and (p / BUNDLE_FILE).is_file():
                out.append(ModelRef("exported", str(p), f"exported {p.name} (ONNX)"))
    out.extend(r for r in runs if not r.usable)
    if birdnet is None:
        from birdcore.pretrained import is_available

        birdnet = is_available()
    if birdnet:
        out.append(BIRDNET_REF)
    return out


def default_index(refs: Sequence[ModelRef]) -> int | None:
    """Index of the model a picker starts on: the first usable run (`find_models` puts the best
    first), else the first exported model; None when there is neither — BirdNET, a failed or an
    empty run is never chosen for the user."""
    for i, ref in enumerate(refs):
        if (ref.kind == "run" and ref.usable) or ref.kind == "exported":
            return i
    return None


def model_stamp(ref: ModelRef) -> float:
    """mtime of the model's weights (0 for BirdNET): part of cache keys, so a run that keeps
    training (a new best.pt) is reloaded and re-scored."""
    for f in (Path(ref.path) / "checkpoints" / "best.pt", Path(ref.path) / ONNX_FILE) if ref.path else ():
        if f.is_file():
            return f.stat().st_mtime
    return 0.0


@dataclass
class LoadedModel:
    """A model ready to score: scorers (run/exported) or the BirdNET handle, and what goes with it."""

    ref: ModelRef
    classes: list[str]
    scorers: list = field(default_factory=list)
    birdnet: Any = None
    taxonomy_csv: str | None = None
    mel: MelConfig = field(default_factory=MelConfig)
    thresholds: Thresholds | None = None
    thresholds_path: str | None = None
    notes: list[str] = field(default_factory=list)


def check_classes(model_classes: Sequence[str], species: Sequence[str], *, need: Iterable[str] = (),
                  where: str = "model") -> list[str]:
    """The model classes that are dataset species; ModelError when there are none (a model of
    another dataset) or when a species in `need` (e.g. test.csv's birds) is not a model class."""
    known = set(species)
    shared = [c for c in model_classes if c in known]
    if not shared:
        shown = ", ".join(list(model_classes)[:5]) + (" …" if len(model_classes) > 5 else "")
        raise ModelError(f"{where}: none of its {len(model_classes)} classes ({shown}) is a species of this"
                         " dataset — it was trained on another dataset")
    lacking = sorted(set(need) - set(model_classes))
    if lacking:
        raise ModelError(f"{where}: {len(lacking)} species of test.csv are not model classes"
                         f" ({', '.join(lacking[:5])}); pick a model trained on this dataset's species")
    return shared


def load_model(ref: ModelRef, backend: str = "torch", *, species: Sequence[str] | None = None,
               taxonomy_csv: str | os.PathLike | None = None, threads: int | None = None) -> LoadedModel:
    """Load `ref` for `backend` ("torch" | "onnx"; exported folders always run ONNX).

    BirdNET needs `species` (its columns are restricted to them) and the dataset's eBird taxonomy
    (to map its labels); ModelError when it maps none of them (e.g. the fictional demo species).
    Thresholds: the folder's thresholds.json when present. Raises ModelError / RunError /
    ConfigError with the folder named (a broken run folder never raises anything else).
    """
    if ref.kind == BIRDNET_KIND:
        return _load_birdnet(ref, species, taxonomy_csv)
    folder = Path(ref.path)
    if ref.kind == "exported":
        backend = "onnx"
    try:
        cfg, _ = RunFolder(folder).read_config()
        mel = cfg.mel
    except Exception:  # noqa: BLE001 - an exported folder without its config still scores; mel is cosmetic
        mel = MelConfig()
    try:
        scorer = load_scorer(folder, backend=backend, threads=threads)
    except BirdcoreError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # weights that do not fit the config
        raise ModelError(f"{folder}: cannot load the model ({brief(exc)})") from None
    thr_path = folder / THRESHOLDS_FILE
    thresholds = load_thresholds(thr_path) if thr_path.is_file() else None
    return LoadedModel(ref, list(scorer.info.classes), [scorer], mel=mel, thresholds=thresholds,
                       thresholds_path=str(thr_path) if thresholds else None)


def _load_birdnet(ref: ModelRef, species: Sequence[str] | None, taxonomy_csv: Any) -> LoadedModel:
    from birdcore.pretrained import birdnet_to_ebird, coverage, load_birdnet

    if not species:
        raise ModelError("BirdNET baseline: no dataset species to restrict its 6,522 classes to")
    if taxonomy_csv is None or not Path(taxonomy_csv).is_file():
        raise ModelError("BirdNET baseline: eBird_Taxonomy_v2021.csv is missing from the dataset folder; it maps"
                         " BirdNET's scientific names to the dataset's species codes")
    model = load_birdnet()
    known, unknown = coverage(birdnet_to_ebird(model.labels, taxonomy_csv), species)
    if not known:
        raise ModelError(f"BirdNET baseline: it knows none of this dataset's {len(species)} species (no scientific"
                         " name in eBird_Taxonomy_v2021.csv matches a BirdNET label; fictional demo species?)")
    notes = [f"BirdNET has no class for {len(unknown)} of {len(species)} species (e.g. {', '.join(unknown[:5])});"
             " their cells stay empty"] if unknown else []
    return LoadedModel(ref, list(species), birdnet=model, taxonomy_csv=str(taxonomy_csv), notes=notes)


def predict_table(models: Sequence[LoadedModel], paths: Sequence[str | os.PathLike], *,
                  window_s: float = WINDOW_S, fill_missing: float = float("nan"),
                  progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """Window probabilities of `paths`: table file_id, end_time, <classes> (one row per window).

    Several run/exported models are averaged (one class list needed, else ModelError). BirdNET runs
    alone; species it lacks get `fill_missing` (NaN = no opinion; pass 0.0 for a submission).
    `progress(done, total)` is called per file. Unreadable files are listed in `.skipped`.
    """
    if not models:
        raise ModelError("no model chosen")
    if any(m.birdnet is not None for m in models):
        if len(models) > 1:
            raise ModelError("the BirdNET baseline cannot be ensembled with trained models (other classes);"
                             " pick it alone")
        m = models[0]
        return predict_birdnet(paths, m.classes, m.taxonomy_csv, window_s=window_s, fill_missing=fill_missing,
                               model=m.birdnet, progress=progress)
    scorers = [s for m in models for s in m.scorers]
    return predict_files(paths, scorers, PredictOptions(window_s=window_s, min_last_s=MIN_LAST_S), progress=progress)


def recording_probs(models: Sequence[LoadedModel], path: str | os.PathLike,
                    window_s: float = WINDOW_S) -> pd.DataFrame:
    """One recording's window probabilities: columns start, end (s), then one per class.

    Raises the file's AudioError when it cannot be decoded.
    """
    res = predict_table(models, [path], window_s=window_s)
    if res.skipped:
        raise AudioError(res.skipped[0][1])
    table = res.table.drop(columns=["file_id"]).reset_index(drop=True)
    end = table.pop("end_time").astype(float)
    table.insert(0, "end", end)
    table.insert(0, "start", end - window_s)
    return table
