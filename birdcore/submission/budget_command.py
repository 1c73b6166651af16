"""`birdcore budget`: does an ensemble fit the competition's CPU limit on this machine (`register(sub)`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from birdcore.cli_options import THREADS, number
from birdcore.inference.base import BACKENDS

MINUTES = number(float, 0, 1e6, lo_open=True, unit=" min")


def _cmd_budget(args: argparse.Namespace) -> int:
    from birdcore.inference.predict import PredictOptions
    from birdcore.submission.budget import plan_budget

    probe = None
    if args.data is not None:
        from birdcore.data.dataset import load_dataset

        probe = load_dataset(args.data).soundscapes[:args.probe_files]
        if not probe:
            print(f"{args.data}: no test soundscapes; timing on {args.probe_seconds:g} s of synthetic audio")
            probe = None
    plan = plan_budget(args.model, args.audio_minutes, args.limit_minutes, backend=args.backend,
                       threads=args.threads, probe=probe, probe_seconds=args.probe_seconds,
                       options=PredictOptions(hop_s=args.hop), progress=lambda msg: print(msg, flush=True))
    print("\n".join(plan.lines()))
    return 0 if plan.fits else 1


def register_budget_commands(sub: argparse._SubParsersAction) -> None:
    """Add `budget` to the CLI's subcommands."""
    p = sub.add_parser("budget", help="time an ensemble on this machine: does it fit the notebook's CPU limit?"
                                      " (exit 0 fits, 1 does not)")
    p.add_argument("--model", action="append", required=True, help="run or exported folder (repeat for an ensemble)")
    p.add_argument("--audio-minutes", type=MINUTES, default=700.0, help="test audio to score (default 700)")
    p.add_argument("--limit-minutes", type=MINUTES, default=90.0, help="the notebook's CPU limit (default 90)")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for the models")
    p.add_argument("--hop", type=number(float, 0.25, 60, unit=" s"), default=None,
                   help="overlapping inputs every HOP seconds, as in predict/submit")
    p.add_argument("--data", type=Path, default=None, help="time on this dataset's test soundscapes (default: synthetic)")
    p.add_argument("--probe-files", type=number(int, 1, hi=1000), default=2, help="soundscapes timed with --data (default 2)")
    p.add_argument("--probe-seconds", type=number(float, 5, 3600, unit=" s"), default=120.0,
                   help="synthetic audio timed without --data (default 120)")
    p.set_defaults(func=_cmd_budget)
