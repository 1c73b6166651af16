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

from .errors import BirdcoreError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage + exits 2; keep it one line
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# ---- commands ------------------------------------------------------------------------------

def _cmd_demo_data(args: argparse.Namespace) -> int:
    from .demo import ensure_demo_dataset, generate_demo_dataset

    if args.if_missing:
        path = ensure_demo_dataset(args.out, seed=args.seed)
    else:
        path = generate_demo_dataset(args.out, seed=args.seed, overwrite=args.overwrite)
    print(f"demo dataset ready at {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .dataset import load_dataset

    ds = load_dataset(args.data)
    summary = ds.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"dataset      {summary['root']}")
    print(f"recordings   {summary['recordings']}")
    print(f"species      {summary['species']} ({summary['scored_species']} scored)")
    print(f"secondary    {summary['with_secondary_labels']} recordings with secondary labels")
    print("ratings      " + "  ".join(f"{k}:{v}" for k, v in summary["rating_histogram"].items()))
    print(f"train audio  {'present' if summary['train_audio'] else 'absent'}")
    print(f"soundscapes  {summary['soundscapes']}   test rows {summary['test_rows']}")
    for note in summary["notes"]:
        print(f"note         {note}")
    if args.check_audio:
        ds.require_audio()
        print(f"audio        all {summary['recordings']} files present")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from .cache import build_cache
    from .dataset import load_dataset

    ds = load_dataset(args.data)
    out = build_cache(ds, out_dir=args.out, sr=args.sr, dtype=args.dtype, workers=args.workers)
    print(f"cache ready at {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; each subcommand sets `func`."""
    parser = _Parser(prog="birdcore", description="BirdCLEF workbench engine")
    parser.add_argument("--version", action="version", version=f"birdcore {__import__('birdcore').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo-data", help="write the embedded demo dataset (BirdCLEF 2022 layout)")
    p.add_argument("--out", required=True, type=Path, help="folder to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.add_argument("--if-missing", action="store_true", help="do nothing when a complete demo dataset is there")
    p.set_defaults(func=_cmd_demo_data)

    p = sub.add_parser("info", help="summarise a dataset folder")
    p.add_argument("data", type=Path, help="dataset folder (holding train_metadata.csv)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--check-audio", action="store_true", help="also check every listed audio file exists")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("cache", help="decode all training audio once into memory-mappable arrays")
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, default=None, help="cache folder (default DATA/.birdcore_cache/...)")
    p.add_argument("--sr", type=int, default=32000)
    p.add_argument("--dtype", choices=["int16", "float16"], default="int16")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_cmd_cache)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later modules register their subcommands here (train, predict, ...), keeping this file small.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BirdcoreError as exc:
        sys.stderr.write(f"birdcore: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("birdcore: interrupted\n")
        return 130
