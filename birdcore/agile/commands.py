"""`birdcore label`, `queue`, `retrain` and `export-labels`: the loop's command line (`register(sub)`).

User errors raise `BirdcoreError` subclasses (one line, exit code 2); option types and output-path
checks come from `birdcore.cli_options`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from birdcore.cli_options import (
    check_output_dir,
    check_output_file,
    number,
    progress_bar,
)
from birdcore.errors import ConfigError

QUEUE_N = number(int, 1, hi=10_000)
EPOCHS = number(int, 1, hi=10_000)


def window_ids(text: str) -> list[int]:
    """`12,13,40-45` → [12, 13, 40, …, 45] (window ids of the archive)."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo or hi - lo > 1_000_000:
                    raise ValueError
                out += list(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: not a window id or a range like 40-45") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give window ids >= 0 (e.g. 12,13,40-45)")
    return out


def _cmd_label(args: argparse.Namespace) -> int:
    from birdcore.agile.loop import label_windows

    if not (args.positive or args.negative or args.skip):
        raise ConfigError("give --positive, --negative or --skip window ids")
    done = []
    for ids, label in ((args.positive, "positive"), (args.negative, "negative"), (args.skip, "skip")):
        if ids:
            n = label_windows(args.archive, ids, args.species, label, annotator=args.annotator)
            done.append(f"{len(ids)} window(s) {label} for {args.species} ({n} row(s) written)")
    for line in done:
        print(line)
    return 0


def _cmd_queue(args: argparse.Namespace) -> int:
    from birdcore.agile.loop import review_queue

    q = review_queue(args.archive, args.species, n=args.n, seed=args.seed)
    print(f"scores  {q.attrs.get('source', '?')}")
    print(f"{'window':>8}  {'score':>7}  {'why':<6}  {'start_s':>8}  {'end_s':>8}  file")
    for r in q.itertuples(index=False):
        print(f"{r.window_id:>8}  {r.score:>7.4f}  {r.why:<6}  {r.start_s:>8g}  {r.end_s:>8g}  {r.path}")
    if q.empty:
        print("(every window is labelled or skipped for this species)")
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from birdcore.agile.loop import retrain

    check_output_dir(args.runs, "--runs")
    with progress_bar("retrain") as bar:
        rnd = retrain(args.archive, args.runs, species=args.species or None, progress=bar,
                      taxonomy=args.taxonomy, epochs=args.epochs)
    print(f"round   {rnd.round} ({rnd.seconds:.1f} s)")
    print(f"run     {rnd.run_dir}")
    print(rnd.per_species.to_string(index=False))
    return 0


def _cmd_export_labels(args: argparse.Namespace) -> int:
    from birdcore.agile import export

    if args.dataset is not None:
        check_output_dir(args.dataset, "--dataset")
        out = export.export_dataset(args.archive, args.dataset, taxonomy=args.taxonomy)
        print(f"dataset written to {out}")
    elif args.labels_table is not None:
        check_output_file(args.labels_table, "--labels-table", "labels.csv")
        out = export.export_labels_table(args.archive, args.labels_table)
        print(f"labels table written to {out}")
    elif args.raven is not None:
        check_output_dir(args.raven, "--raven")
        files = export.export_raven(args.archive, args.raven)
        print(f"{len(files)} selection table(s) written to {args.raven}")
    else:  # pragma: no cover - argparse requires one
        raise ConfigError("give --dataset, --labels-table or --raven")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `label`, `queue`, `retrain` and `export-labels` to the CLI's subparsers."""
    archive_help = "archive folder made by `birdcore embed` (labels live in ARCHIVE/labels.csv)"
    p = sub.add_parser("label", help="label archive windows for a species (the active-learning loop)")
    p.add_argument("--archive", required=True, type=Path, help=archive_help)
    p.add_argument("--species", required=True, help="species code (e.g. an eBird code)")
    g = p.add_argument_group("labels (at least one)")
    g.add_argument("--positive", type=window_ids, default=None, help="window ids where the species is present (12,13,40-45)")
    g.add_argument("--negative", type=window_ids, default=None, help="window ids where it is absent")
    g.add_argument("--skip", type=window_ids, default=None, help="window ids not to offer again for this species")
    p.add_argument("--annotator", default="cli", help="name saved with the labels (default cli)")
    p.set_defaults(func=_cmd_label)

    p = sub.add_parser("queue", help="the windows to label next for a species (top, margin, random)")
    p.add_argument("--archive", required=True, type=Path, help=archive_help)
    p.add_argument("--species", required=True, help="species code")
    p.add_argument("-n", type=QUEUE_N, default=12, help="how many windows (default 12)")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0, help="seed of the random slice (default 0)")
    p.set_defaults(func=_cmd_queue)

    p = sub.add_parser("retrain", help="train the BirdNET-started head on the archive's labels and re-score it")
    p.add_argument("--archive", required=True, type=Path, help=archive_help)
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder for the round's run (default runs)")
    p.add_argument("--species", nargs="+", default=None, help="species codes (default: every labelled species)")
    p.add_argument("--taxonomy", type=Path, default=None,
                   help="eBird_Taxonomy_v2021.csv (BirdNET's prior; default $BIRDCORE_EBIRD_TAXONOMY)")
    p.add_argument("--epochs", type=EPOCHS, default=40, help="head epochs per round (default 40)")
    p.set_defaults(func=_cmd_retrain)

    p = sub.add_parser("export-labels", help="the archive's labels as a dataset, a row_id,target table or Raven tables")
    p.add_argument("--archive", required=True, type=Path, help=archive_help)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--dataset", type=Path, default=None, help="new dataset folder (the import route; links to the audio)")
    g.add_argument("--labels-table", type=Path, default=None, help="row_id,target CSV for `birdcore evaluate --labels`")
    g.add_argument("--raven", type=Path, default=None, help="folder for <file>.Table.1.selections.txt")
    p.add_argument("--taxonomy", type=Path, default=None, help="eBird taxonomy for --dataset (names → codes)")
    p.set_defaults(func=_cmd_export_labels)
