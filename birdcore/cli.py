"""Command-line interface: `birdcore <command> ...` (also `python -m birdcore`).

User errors (`BirdcoreError`: bad files, configs, arguments) print one line `birdcore: error: ...`
and exit with code 2 — no traceback. Anything else is a bug and keeps its traceback. Heavy imports
(torch, timm) happen inside the command that needs them so `--help` and `info` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from birdcore.agile.commands import register as register_agile_commands
from birdcore.archive.commands import register as register_archive_commands
from birdcore.selftrain.commands import register as register_selftrain_commands
from birdcore.submission.budget_command import register_budget_commands
from birdcore.cli_options import (
    SAMPLE_RATE,
    SEED,
    THREADS,
    WORKERS,
    check_output_dir,
    check_output_file,
    device_name,
    number,
    number_list,
    progress_bar,
)
from birdcore.errors import BirdcoreError, ConfigError
from birdcore.inference.base import BACKENDS

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage + exits 2; keep it one line
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# ---- commands ------------------------------------------------------------------------------

def _cmd_demo_data(args: argparse.Namespace) -> int:
    from birdcore.demo import ensure_demo_dataset, generate_demo_dataset

    check_output_dir(args.out, "--out")
    if args.if_missing:
        path = ensure_demo_dataset(args.out, seed=args.seed)
    else:
        path = generate_demo_dataset(args.out, seed=args.seed, overwrite=args.overwrite)
    print(f"demo dataset ready at {path}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from birdcore.ingest.importer import import_recordings, parse_label_map

    check_output_dir(args.out, "--out")
    with progress_bar("import") as bar:
        result = import_recordings(args.sources, args.out, taxonomy=args.taxonomy, label_map=parse_label_map(args.map),
                                   mode=args.mode, label_column=args.label_column, audio_dirs=args.audio,
                                   window_s=args.window, progress=bar)
    for line in result.lines():
        print(line)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from birdcore.data.dataset import load_dataset

    if args.data.is_dir() and not (args.data / "train_metadata.csv").exists():
        return _info_folder(args)
    from birdcore.pretrained.embedding_cache import cache_size, default_cache_dir

    ds = load_dataset(args.data)
    summary = ds.summary()
    entries, size = cache_size()
    summary["embedding_cache"] = {"path": str(default_cache_dir()), "entries": entries, "bytes": size}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"dataset      {summary['root']}")
    print(f"recordings   {summary['recordings']}")
    print(f"species      {summary['species']} ({summary['scored_species']} scored)")
    print(f"secondary    {summary['with_secondary_labels']} recordings with secondary labels")
    if summary["negatives"]:
        print(f"negatives    {summary['negatives']} rows with no bird (nocall)")
    print("ratings      " + "  ".join(f"{k}:{v}" for k, v in summary["rating_histogram"].items()))
    print(f"train audio  {'present' if summary['train_audio'] else 'absent'}")
    print(f"soundscapes  {summary['soundscapes']}   test rows {summary['test_rows']}")
    print(f"emb. cache   {entries} recordings, {size / 2**20:.1f} MB in {default_cache_dir()} (shared by every dataset)")
    for note in summary["notes"]:
        print(f"note         {note}")
    if args.check_audio:
        ds.require_audio()
        print(f"audio        all {summary['recordings']} files present")
    return 0


def _info_folder(args: argparse.Namespace) -> int:
    """`info` on a folder without train_metadata.csv: a summary of the recordings in it (headers only)."""
    from birdcore.audio.inventory import summarise_folder, summary_lines
    from birdcore.audio.io import AUDIO_EXTENSIONS

    with progress_bar("info") as bar:
        summary = summarise_folder(args.data, progress=bar)
    if not summary["files"]:
        raise BirdcoreError(f"{args.data}: no train_metadata.csv and no audio files ({' '.join(AUDIO_EXTENSIONS)}) in"
                            " it or its sub-folders; point at a dataset folder or a folder of recordings")
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for line in summary_lines(summary):
        print(line)
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from birdcore.audio.cache import build_cache
    from birdcore.data.dataset import load_dataset

    if args.out is not None:
        check_output_dir(args.out, "--out")
    ds = load_dataset(args.data)
    with progress_bar("cache") as bar:
        out = build_cache(ds, out_dir=args.out, sr=args.sr, dtype=args.dtype, workers=args.workers,
                          progress=lambda done, total, _name: bar(done, total))
    print(f"cache ready at {out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    from birdcore.training.launcher import (
        check_resumable,
        launch_run,
        prepare_run,
        run_in_process,
    )
    from birdcore.training.runs import open_run

    resume = args.resume is not None
    created = False
    if resume or args.run:
        run = open_run(args.resume or args.run)
        if resume:
            check_resumable(run)
    else:
        if args.data is None:
            raise BirdcoreError("train: --data DIR is required (or --resume RUN)")
        from birdcore.config.run import load_run_config

        check_output_dir(args.runs, "--runs")
        cfg = load_run_config(args.config, args.set)
        if args.device:
            cfg.train.device = args.device  # spelling checked by argparse (device_name)
        from birdcore.models.device import resolve_device

        try:  # a device this machine lacks is refused before a run folder exists
            resolve_device(cfg.train.device)
        except ConfigError as exc:
            flag = "--device" if args.device else "train.device"
            raise ConfigError(f"{flag} {cfg.train.device}: {str(exc).split(': ', 1)[-1]}") from None
        run = _prepare_run_distributed(args.data, cfg, args.runs, prepare_run)
        created = True
    if args.detach:
        pid = launch_run(run, resume=resume)
        print(f"run {run.run_id} started in the background (pid {pid}); folder {run.path}")
        return 0
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run {run.run_id}: {run.path}", flush=True)

    def show(rec: dict) -> None:
        if rec.get("kind") == "epoch" and int(os.environ.get("RANK", "0")) == 0:
            metrics = {k: rec[k] for k in ("train_loss", "val_loss", "micro_f1", "macro_f1", "birdclef2022") if k in rec}
            print(f"epoch {rec['epoch']}: " + "  ".join(f"{k} {v}" for k, v in metrics.items())
                  + f"  eta {rec.get('eta_s', 0):.0f}s", flush=True)

    try:
        status = run_in_process(run, resume=resume, progress=show)
    except BirdcoreError as exc:
        if created and _discard_unstarted(run):
            raise type(exc)(f"{exc} (the new run folder {run.path} was removed: nothing had been trained)") from None
        raise
    if status.get("validation"):
        print(f"validation: {status['validation']}")
    if status.get("state") == "finished" and status.get("best_score") is None:
        print(f"finished: no validation score (train.fold=-1); the model of the last epoch is kept — {run.path}")
    elif status.get("state") == "finished":
        print(f"finished: best {status.get('best_score')} at epoch {status.get('best_epoch')} — {run.path}")
    else:
        print(f"run {status.get('state')}: {run.path}")
    return 0


def _discard_unstarted(run) -> bool:
    """Remove a run folder this command created when training failed before any epoch ran (a
    config or dataset problem): it holds nothing but the config, and a failed stub would clutter
    the run list and the app's model pickers. True when removed."""
    import shutil

    if run.last_checkpoint.exists() or run.best_checkpoint.exists() or run.epoch_records():
        return False
    shutil.rmtree(run.path, ignore_errors=True)
    return not run.path.exists()


_WINDOW_FLAGS = {"window_s": "--window", "hop_s": "--hop", "context_s": "--context", "smoothing": "--smoothing"}


def _predict_options(args: argparse.Namespace):
    """PredictOptions from the window flags; their cross-checks (hop <= window <= context) name the flags."""
    from birdcore.inference.predict import PredictOptions

    try:
        return PredictOptions(window_s=args.window, hop_s=args.hop, context_s=args.context, smoothing=args.smoothing)
    except ConfigError as exc:
        text = str(exc)
        for field, flag in _WINDOW_FLAGS.items():
            text = text.replace(field, flag)
        raise ConfigError(text) from None


def _cmd_predict(args: argparse.Namespace) -> int:
    from birdcore.audio.inventory import duplicate_names, find_audio_files
    from birdcore.inference.predict import (
        predict_files,
        prediction_paths,
        write_predictions,
    )

    birdnet = args.model == ["birdnet"]
    if not birdnet and (args.species is not None or args.taxonomy is not None):
        raise BirdcoreError("predict: --species and --taxonomy apply to --model birdnet only")
    options = _predict_options(args)
    for target in prediction_paths(args.out):
        check_output_file(target, "--out")
    files: list[Path] = []
    for item in args.inputs:
        p = Path(item)
        if p.is_dir():
            sub = p / "test_soundscapes"
            files += find_audio_files(sub if sub.is_dir() else p)  # sub-folders included
        elif p.exists():
            files.append(p)
        else:
            raise BirdcoreError(f"{p}: no such file or folder")
    if not files:
        raise BirdcoreError("predict: no audio files found in " + ", ".join(args.inputs))
    shared = duplicate_names(files)
    if shared:
        shown = "; ".join(f"{stem}: {', '.join(map(str, ps[:3]))}" for stem, ps in list(shared.items())[:3])
        _warn(f"{len(shared)} file name(s) occur more than once and their rows share a file_id (the name"
              f" without extension): {shown}")
    if birdnet:
        # BirdNET's own window scores, columns named by eBird code (--species; default: the
        # --data dataset's species, else every species BirdNET knows)
        from birdcore.inference.birdnet_baseline import (
            OUTSIDE_THRESHOLD,
            outside_message,
            predict_birdnet,
        )

        taxonomy, choice = _birdnet_species(args)
        _warn(choice.missing_message("NaN"))
        with progress_bar("birdnet") as bar:
            result = predict_birdnet(files, choice.codes, taxonomy, window_s=args.window, threads=args.threads,
                                     progress=bar, outside_threshold=OUTSIDE_THRESHOLD if choice.restricted else None)
        _warn(outside_message(result, choice))
    else:
        from birdcore.inference.scorers import load_scorer

        scorers = [load_scorer(m, backend=args.backend, threads=args.threads) for m in args.model]
        result = predict_files(files, scorers, options, show_bar=True)
    for path, err in result.skipped:
        sys.stderr.write(f"birdcore: skipped {err}\n")
    if len(result.table) == 0:  # never replace earlier results with an empty table
        raise BirdcoreError(f"predict: none of the {len(files)} input file(s) could be scored; nothing written"
                            f" ({args.out} left as it was)")
    written = write_predictions(result, args.out)
    print(f"{len(result.table)} windows from {len(files) - len(result.skipped)} file(s) → " + ", ".join(map(str, written)))
    return 0


def _birdnet_species(args: argparse.Namespace):
    """(taxonomy file, SpeciesChoice) from --species, --taxonomy and --data."""
    from birdcore.inference.birdnet_baseline import resolve_birdnet_run

    dataset_species = None
    if args.data is not None and args.species is None:
        from birdcore.data.dataset import load_dataset

        dataset_species = load_dataset(args.data).species
    return resolve_birdnet_run(args.species, args.taxonomy, dataset_dir=args.data, dataset_species=dataset_species)


def _warn(message: str | None) -> None:
    if message:
        sys.stderr.write(f"birdcore: warning: {message}\n")


def _cmd_tune(args: argparse.Namespace) -> int:
    from birdcore.evaluation.curves import tune_run_thresholds
    from birdcore.training.runs import open_run

    run = open_run(args.run)
    thr, summary = tune_run_thresholds(run, metric=args.metric, method=args.method, quantile=args.quantile,
                                       min_positives=args.min_positives, oof_from=args.oof_from)
    print(f"metric {thr.metric} ({thr.method}) on {summary.get('recordings', '?')} out-of-fold recordings")
    for key in ("at_0.5", "global", "per_class"):
        if key in thr.scores:
            print(f"  {key:<10} {thr.scores[key]:.4f}")
    print(f"  global threshold {thr.global_threshold:.4f}; per-class thresholds for {len(thr.per_class)} classes")
    print(f"wrote {run.thresholds_path}")
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from birdcore.submission.submit import make_submission

    check_output_file(args.out, "--out", example="submission.csv")
    options = _predict_options(args)
    with progress_bar("submit") as bar:
        sub, result = make_submission(args.model, args.data, args.out, args.thresholds, backend=args.backend,
                                      options=options, threads=args.threads, progress=bar,
                                      species=args.species, taxonomy=args.taxonomy, missing=args.missing)
    print(f"wrote {args.out}: {len(sub)} rows, {int(sub['target'].sum())} True"
          f" ({result.audio_seconds:.0f} s of audio)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from birdcore.data.dataset import load_dataset
    from birdcore.data.metadata import read_csv_checked
    from birdcore.submission.table import evaluate_submission

    ds = load_dataset(args.data)
    sub = read_csv_checked(args.submission, "submission", ["row_id", "target"])
    if args.labels is not None:
        # e.g. the app's annotation labels: they cover only the windows someone checked, so the
        # submission is scored on those rows alone
        labels = read_csv_checked(args.labels, "labels table", ["row_id", "target"])
        unknown = set(labels["row_id"]) - set(sub["row_id"])
        if unknown:
            raise BirdcoreError(f"{args.labels}: {len(unknown)} row_id(s) are not in the submission, e.g. {sorted(unknown)[0]}")
        sub = sub[sub["row_id"].isin(set(labels["row_id"]))]
    elif ds.test_labels is None:
        raise BirdcoreError(f"{ds.root / 'test_labels.csv'}: no ground truth in this dataset (the demo dataset has"
                            " one; or pass --labels FILE, e.g. the annotation page's row_id,target export)")
    else:
        labels = ds.test_labels
    scores = evaluate_submission(sub, labels, scored=ds.scored or None)
    for key in ("birdclef2022", "micro_f1", "macro_f1"):
        print(f"{key:<14} {scores[key]:.4f}")
    print(f"{'rows':<14} {scores['n_rows']}")
    if args.per_species:
        print(scores["per_species"].to_string(index=False))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from birdcore.inference.export import export_onnx_model

    if args.out is not None:
        check_output_dir(args.out, "--out")
    out = export_onnx_model(args.model, args.out)
    print(f"exported ONNX model to {out}")
    if args.kaggle:
        from birdcore.inference.base import read_bundle
        from birdcore.submission.kaggle_bundle import write_kaggle_bundle
        from birdcore.submission.submit import resolve_thresholds

        thr = resolve_thresholds(args.thresholds, [args.model], read_bundle(out)["classes"])
        kaggle = write_kaggle_bundle(out, Path(out) / "kaggle", thr)
        print(f"Kaggle bundle (infer.py + model + thresholds) in {kaggle}")
    return 0


def _add_birdnet_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--species", default=None, metavar="all|LIST|FILE",
                   help="BirdNET: the species columns: 'all' (every eBird code BirdNET maps to), codes"
                        f" 'amerob,houspa', or a file of codes (one a line, or a JSON list) ({default})")
    p.add_argument("--taxonomy", type=Path, default=None,
                   help="BirdNET: eBird_Taxonomy_v2021.csv mapping its labels to eBird codes"
                        " (default: $BIRDCORE_EBIRD_TAXONOMY, else the --data dataset's)")


def _add_window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="torch, onnx (ONNX Runtime) or openvino (optional extra); the last two run the exported"
                        " network")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for the model")
    p.add_argument("--window", type=number(float, 0, 60, lo_open=True, unit=" s"), default=5.0,
                   help="scored window length in seconds")
    p.add_argument("--hop", type=number(float, 0.25, 60, unit=" s"), default=None,
                   help="overlapping inputs every HOP seconds (at most --window)")
    p.add_argument("--context", type=number(float, 0, 60, lo_open=True, unit=" s"), default=None,
                   help="centred context length, at least --window (keep the centre frames)")
    p.add_argument("--smoothing", type=number_list, default=None, help="temporal kernel over windows, e.g. 0.1,0.8,0.1")


def _prepare_run_distributed(data, cfg, runs_dir, prepare_run):
    """Under torchrun, rank 0 creates the run folder and tells the other ranks its path."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return prepare_run(data, cfg, runs_dir)
    import torch
    import torch.distributed as dist

    from birdcore.training.runs import open_run

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    holder = [str(prepare_run(data, cfg, runs_dir).path) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(holder, src=0)
    return open_run(holder[0])


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; each subcommand sets `func`."""
    from birdcore.config.features import DEFAULT_SR

    parser = _Parser(prog="birdcore", description="BirdCLEF workbench engine")
    parser.add_argument("--version", action="version", version=f"birdcore {__import__('birdcore').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo-data", help="write the embedded demo dataset (BirdCLEF 2022 layout)")
    p.add_argument("--out", required=True, type=Path, help="folder to create")
    p.add_argument("--seed", type=SEED, default=0)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--overwrite", action="store_true",
                     help="replace an existing folder — deletes everything in it, your own files included")
    how.add_argument("--if-missing", action="store_true",
                     help="do nothing when a complete demo dataset is there; else complete or rebuild its own files,"
                          " keeping any file you added (annotations, runs, recordings)")
    p.set_defaults(func=_cmd_demo_data)

    p = sub.add_parser("import", help="labelled recordings (label folders, CSV, Raven/Audacity tables, app annotations)"
                                      " → a training dataset")
    p.add_argument("sources", nargs="+", type=Path,
                   help="ROOT/<label>/ folders, CSV tables of files and labels, Raven/Audacity .txt tables (or"
                        " folders of them beside their recordings), the app's annotations/labels.csv")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to create (must not exist or be empty)")
    p.add_argument("--taxonomy", type=Path, default=None,
                   help="eBird_Taxonomy_v2021.csv: labels may then be codes, scientific or common names"
                        " (default: $BIRDCORE_EBIRD_TAXONOMY)")
    p.add_argument("--map", action="append", default=[], metavar="NAME=CODE",
                   help="map a label to a code or to 'nocall' (repeatable), e.g. --map SP=nocall")
    p.add_argument("--label-column", default=None, help="the label column of CSV / Raven tables (default: guessed)")
    p.add_argument("--audio", action="append", type=Path, default=None,
                   help="folder holding the recordings of app annotations (repeatable)")
    p.add_argument("--window", type=number(float, 0, 600, lo_open=True, unit=" s"), default=5.0,
                   help="window length in seconds for selection tables")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--copy", dest="mode", action="store_const", const="copy",
                      help="copy the audio into the dataset (default: link to it)")
    mode.add_argument("--cut", dest="mode", action="store_const", const="cut",
                      help="write each window of a long recording as its own WAV file")
    p.set_defaults(func=_cmd_import, mode="link")

    p = sub.add_parser("info", help="summarise a dataset folder, or any folder of recordings")
    p.add_argument("data", type=Path, help="dataset folder (holding train_metadata.csv), or a folder of recordings"
                                           " (sub-folders included: counts, durations, rates, formats, unreadable files)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--check-audio", action="store_true", help="also check every listed audio file exists")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("cache", help="decode all training audio once into memory-mappable arrays")
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, default=None, help="cache folder (default DATA/.birdcore_cache/...)")
    p.add_argument("--sr", type=SAMPLE_RATE, default=DEFAULT_SR)
    p.add_argument("--dtype", choices=["int16", "float16"], default="int16")
    p.add_argument("--workers", type=WORKERS, default=2)
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("train", help="train a model (a run folder under --runs)")
    p.add_argument("--data", type=Path, help="dataset folder")
    p.add_argument("--config", default="demo-cpu", help="preset (demo-cpu, birdclef2022, birdnet-head) or JSON file")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where run folders go (default runs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field, e.g. train.epochs=3")
    p.add_argument("--device", type=device_name, default=None, help="auto (default: CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue the run folder RUN from its last checkpoint")
    p.add_argument("--run", default=None, help=argparse.SUPPRESS)  # train an already-created run folder (launcher)
    p.add_argument("--detach", action="store_true", help="start in the background and return")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="window probabilities for recordings (Parquet + CSV)")
    p.add_argument("--model", action="append", required=True,
                   help="run folder or exported model folder (repeat for an ensemble), or 'birdnet'")
    p.add_argument("inputs", nargs="+", help="audio files, folders (sub-folders included), or a dataset folder"
                                            " (its test_soundscapes/)")
    p.add_argument("--out", type=Path, default=Path("predictions"), help="output base name (default predictions)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder (BirdNET: restrict to its species)")
    _add_birdnet_args(p, "default: the --data dataset's species, else all")
    _add_window_args(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("tune-thresholds", help="tune global + per-class thresholds on a run's out-of-fold predictions")
    p.add_argument("run", help="run folder")
    p.add_argument("--metric", default="birdclef2022", choices=["birdclef2022", "micro_f1", "macro_f1"])
    p.add_argument("--method", default="grid", choices=["grid", "quantile"])
    p.add_argument("--quantile", type=number(float, 0, 1, lo_open=True), default=0.25,
                   help="quantile method: predict True for the top q")
    p.add_argument("--min-positives", type=number(int, 0), default=3, help="fewer positives → the class keeps the global threshold")
    p.add_argument("--from", dest="oof_from", action="append", default=[], metavar="RUN",
                   help="tune on these runs' pooled out-of-fold predictions (the folds of a cross-validation with"
                        " the same config; for a train.fold=-1 run, which has none) — repeatable")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("submit", help="predict test_soundscapes/ and write submission.csv (test.csv's rows)")
    p.add_argument("--model", action="append", required=True,
                   help="run or exported folder (repeat to ensemble), or 'birdnet'")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--thresholds", type=Path, default=None, help="thresholds.json (default: the run's)")
    p.add_argument("--out", type=Path, default=Path("submission.csv"))
    p.add_argument("--missing", choices=["error", "false"], default="error",
                   help="test rows with no prediction (a bird the model lacks): refuse (default) or mark False")
    _add_birdnet_args(p, "default: the dataset's species; test.csv's birds are always scored")
    _add_window_args(p)
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("evaluate", help="score a submission against the dataset's test_labels.csv")
    p.add_argument("submission", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--labels", type=Path, default=None, help="row_id,target ground truth (default: DATA/test_labels.csv)")
    p.add_argument("--per-species", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="export a run to ONNX (waveform in, logits out), verified against PyTorch")
    p.add_argument("--model", required=True, help="run folder")
    p.add_argument("--out", type=Path, default=None, help="output folder (default models/<run name>/)")
    p.add_argument("--thresholds", type=Path, default=None)
    p.add_argument("--kaggle", action="store_true", help="also write a self-contained Kaggle inference bundle")
    p.set_defaults(func=_cmd_export)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later modules register their subcommands here (train, predict, ...), keeping this file small.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_archive_commands,
                                                                       register_agile_commands,
                                                                       register_selftrain_commands,
                                                                       register_budget_commands]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not in the interpreter's exit
        return code
    except BirdcoreError as exc:
        sys.stderr.write(f"birdcore: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("birdcore: interrupted\n")
        return 130
    except BrokenPipeError:
        # `birdcore info DATA | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again, and exit like a process killed by SIGPIPE (128 + 13).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
