"""From models + a dataset folder to a validated `submission.csv` (and scoring it on the demo data)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import pandas as pd

from birdcore.audio.windows import WINDOW_S
from birdcore.data.dataset import load_dataset
from birdcore.errors import ConfigError, DatasetError, ModelError
from birdcore.evaluation.ensemble_thresholds import ensemble_thresholds
from birdcore.evaluation.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    check_thresholds_cover,
    load_thresholds,
)
from birdcore.inference.base import BIRDNET_SOURCE
from birdcore.inference.birdnet_baseline import (
    OUTSIDE_THRESHOLD,
    outside_message,
    predict_birdnet,
    resolve_birdnet_run,
)
from birdcore.inference.predict import PredictOptions, PredictResult, predict_files
from birdcore.inference.scorers import load_scorer
from birdcore.submission.report import check_predictions
from birdcore.submission.table import build_submission, write_submission


def soundscapes_for_test(ds) -> list[Path]:
    """The soundscape file of every `file_id` in test.csv; DatasetError listing all missing ones."""
    if ds.test is None:
        raise DatasetError(f"{ds.root / 'test.csv'}: not found — needed to know which rows to submit")
    by_stem = {p.stem: p for p in ds.soundscapes}
    ids = list(dict.fromkeys(ds.test["file_id"]))
    missing = [f for f in ids if f not in by_stem]
    if missing:
        raise DatasetError(f"{ds.root / 'test_soundscapes'}: no audio for {len(missing)} file_id(s) of test.csv:"
                           f" {', '.join(missing[:5])}")
    return [by_stem[f] for f in ids]


class ModelThresholds(NamedTuple):
    """The thresholds a pick of models comes with, before any user choice (`model_thresholds`)."""

    thresholds: Thresholds | None  # None: no member has any (the CLI uses 0.5; the page offers a value or a file)
    how: str | None  # an ensemble's: the line saying where its thresholds came from; None for one model
    where: str | None  # what messages name: the model's thresholds.json, or the ensemble thresholds' source


def model_thresholds(sources: Sequence[Any], classes: Sequence[str]) -> ModelThresholds:
    """The thresholds made for what `sources` score, and where they came from.

    `sources`: model folders, "birdnet" or catalog `ModelRef`s (the app's picker). BirdNET's own
    scores are left out: they have no thresholds.json and are never ensembled. Several models get
    the thresholds made for their averaged probabilities (`ensemble_thresholds`: tuned on the
    ensemble's OOF predictions, else the members' mean), `how` saying which, even when there are
    none; one model gets its own thresholds.json (`how` None). The CLI prints `how` to stderr, the
    Submission page shows it as a caption.
    """
    members = [f for f in map(_model_folder, sources) if f is not None]
    if len(members) > 1:  # averaged probabilities need thresholds made for the average
        made = ensemble_thresholds(members, classes)
        where = (made.thresholds.source or "ensemble thresholds") if made.thresholds is not None else None
        return ModelThresholds(made.thresholds, made.how, where)
    own = [f / THRESHOLDS_FILE for f in members if (f / THRESHOLDS_FILE).is_file()]
    if own:
        return ModelThresholds(load_thresholds(own[0]), None, str(own[0]))
    return ModelThresholds(None, None, None)


def _model_folder(source: Any) -> Path | None:
    """The folder of a model source; None for BirdNET's own scores (no folder, no thresholds)."""
    if hasattr(source, "kind"):  # a catalog ModelRef: duck-typed, as importing catalog pulls in training
        source = BIRDNET_SOURCE if source.kind == BIRDNET_SOURCE else source.path
    return None if str(source) == BIRDNET_SOURCE else Path(source)


def resolve_thresholds(thresholds_file: str | Path | None, sources: list[str | Path], classes: list[str]) -> Thresholds:
    """--thresholds FILE; else the thresholds made for the models (`model_thresholds`: for an
    ensemble those made for its averaged probabilities, tuned on its OOF predictions or the members'
    mean, stderr says which; for one model its thresholds.json); else a fixed 0.5 (with a warning).

    The file must have been made for `classes` (the model's): ConfigError when it shares none of
    them, a warning on stderr when it covers only some (the others use its global threshold).
    """
    if thresholds_file:
        return _checked(load_thresholds(thresholds_file), classes, thresholds_file)
    made = model_thresholds(sources, classes)
    if made.thresholds is None:
        sys.stderr.write("birdcore: warning: no thresholds.json found; using 0.5 for every class"
                         " (run `birdcore tune-thresholds RUN` first: low thresholds score much better)\n")
        return Thresholds(classes=list(classes), global_threshold=0.5, method="fixed")
    if made.how is not None:
        sys.stderr.write(f"birdcore: ensemble thresholds: {made.how}\n")
    return _checked(made.thresholds, classes, made.where)


def _checked(thr: Thresholds, classes: list[str], path: str | Path) -> Thresholds:
    """`thr` once it is known to cover `classes`; a partial cover is warned about, not refused."""
    _warn(check_thresholds_cover(thr, classes, str(path)))
    return thr


def make_submission(sources: list[str | Path], data_dir: str | Path, out: str | Path | None = None,
                    thresholds_file: str | Path | None = None, backend: str = "torch",
                    options: PredictOptions | None = None, threads: int | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    show_bar: bool = False, species: str | None = None,
                    taxonomy: str | Path | None = None, missing: str = "error") -> tuple[pd.DataFrame, PredictResult]:
    """Predict the dataset's test soundscapes and build (and, with `out`, write) the submission.

    Refuses to write when a soundscape cannot be decoded, when a row is missing, or when the
    table fails `validate_submission` — an invalid submission is never written. BirdNET only:
    `species` ("all", codes "a,b", a file of codes; default the dataset's species; test.csv's birds
    are always scored, 0 where BirdNET lacks them) and `taxonomy` (else $BIRDCORE_EBIRD_TAXONOMY,
    else the dataset's eBird_Taxonomy_v2021.csv); warnings go to stderr. `missing` ("error" or
    "false"): what to do with test rows the model has no prediction for (`build_submission`).
    """
    ds = load_dataset(data_dir)
    files = soundscapes_for_test(ds)
    if BIRDNET_SOURCE in map(str, sources):
        if len(sources) > 1:
            raise ModelError("BirdNET's own scores cannot be ensembled with trained models (other classes);"
                             " submit it alone")
        taxonomy_csv, choice = resolve_birdnet_run(species, taxonomy, dataset_dir=ds.root,
                                                   dataset_species=ds.species, include=ds.test["bird"])
        _warn(choice.missing_message("0 in the submission"))
        window_s = options.window_s if options else WINDOW_S
        result = predict_birdnet(files, choice.codes, taxonomy_csv, window_s=window_s, fill_missing=0.0,
                                 threads=threads, progress=progress,
                                 outside_threshold=OUTSIDE_THRESHOLD if choice.restricted else None)
        _warn(outside_message(result, choice))
    elif species is not None or taxonomy is not None:
        raise ConfigError("species and taxonomy apply to BirdNET only (--model birdnet)")
    else:
        scorers = [load_scorer(s, backend=backend, threads=threads) for s in sources]
        result = predict_files(files, scorers, options, progress=progress, show_bar=show_bar)
    check_predictions(result)
    thr = resolve_thresholds(thresholds_file, sources, result.classes)
    sub = build_submission(result.table, ds.test, thr, result.classes, missing=missing)
    if out is not None:
        write_submission(out, sub, ds.test)
    return sub, result


def _warn(message: str | None) -> None:
    if message:
        sys.stderr.write(f"birdcore: warning: {message}\n")
