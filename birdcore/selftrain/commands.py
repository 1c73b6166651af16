"""`birdcore self-train`: pseudo-label rounds on unlabeled soundscapes (`register(sub)`).

User errors raise `BirdcoreError` subclasses (one line, exit code 2); option types and the output
path check come from `birdcore.cli_options`, before any work starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from birdcore.cli_options import check_output_dir, device_name, number
from birdcore.errors import BirdcoreError

ROUNDS = number(int, 1, 50)
PROB = number(float, 0, 1)


def _cmd_self_train(args: argparse.Namespace) -> int:
    from birdcore.config.pseudo import PseudoLabelConfig, SelfTrainConfig
    from birdcore.selftrain.family import create_family, open_family, run_family

    if args.resume:
        fam = open_family(args.resume)
    else:
        if args.data is None:
            raise BirdcoreError("self-train: --data DIR is required (or --resume FAMILY)")
        check_output_dir(args.runs, "--runs")
        labels = PseudoLabelConfig(mode=args.labels, floor=args.floor, power=args.power, cap_per_class=args.cap)
        st = SelfTrainConfig(rounds=args.rounds, teacher=args.teacher or ["previous"], later_teacher=args.later_teacher,
                             unlabeled=str(args.unlabeled or ""), labels=labels, round0=str(args.round0 or ""))
        overrides = [*_pseudo_overrides(args), *args.set]
        fam = create_family(args.data, args.config, overrides, st, args.runs, args.device)
    print(f"self-training {fam.path}", flush=True)
    table = run_family(fam, say=lambda line: print(line, flush=True))
    print(table.drop(columns=["done"], errors="ignore").to_string(index=False))
    return 0


def _pseudo_overrides(args: argparse.Namespace) -> list[str]:
    """The trainer-side pseudo fields the flags set (`pseudo.*` of every round's config)."""
    values = {"pseudo.ratio": args.ratio, "pseudo.loss_weight": args.loss_weight,
              "pseudo.mix_labelled": args.mix_labelled}
    out = [f"{k}={json.dumps(v)}" for k, v in values.items() if v is not None]
    return out + (["pseudo.only=true"] if args.only else [])


def register(sub: argparse._SubParsersAction) -> None:
    """Add `self-train` to the CLI's subparsers."""
    p = sub.add_parser("self-train", help="self-training: round 0 on labelled data, then rounds that pseudo-label"
                                          " unlabeled soundscapes with a teacher and train on them")
    p.add_argument("--data", type=Path, help="dataset folder (its unlabeled_soundscapes/ are used unless --unlabeled)")
    p.add_argument("--config", default="demo-cpu", help="preset or JSON file of every round's run (default demo-cpu)")
    p.add_argument("--rounds", type=ROUNDS, default=2, help="rounds after round 0 (default 2)")
    p.add_argument("--teacher", action="append", default=None, metavar="previous|birdnet|RUN",
                   help="round 1's teacher: 'previous' (round 0's model, default), 'birdnet', or a run folder"
                        " (repeat for an ensemble); later rounds: see --later-teacher")
    p.add_argument("--later-teacher", choices=["previous", "rounds"], default="previous",
                   help="who teaches rounds >= 2: 'previous' (the round before: noisy student, default) or 'rounds'"
                        " (the ensemble of every earlier round, plus --teacher's run folders)")
    p.add_argument("--round0", type=Path, default=None, metavar="RUN",
                   help="a finished run to stand as round 0 instead of training one (same data and config)")
    p.add_argument("--unlabeled", type=Path, default=None, help="folder of unlabeled recordings (default"
                                                                " DATA/unlabeled_soundscapes)")
    p.add_argument("--labels", choices=["soft", "hard"], default="soft",
                   help="soft: the teacher's probability is the target; hard: 0/1 at --floor (default soft)")
    p.add_argument("--floor", type=PROB, default=0.1, help="scores below it become 0 (default 0.1)")
    p.add_argument("--power", type=number(float, 0, 10, lo_open=True), default=1.0,
                   help="soft targets become p^power (2025 1st place; default 1 = unchanged)")
    p.add_argument("--cap", type=number(int, 0), default=0, help="at most N windows per class keep a target (0 = no cap)")
    p.add_argument("--ratio", type=number(float, 0, 100), default=None,
                   help="pseudo-labelled windows per epoch, as a multiple of the labelled training rows (default 0.5)")
    p.add_argument("--loss-weight", type=number(float, 0, 10), default=None,
                   help="loss weight of a pseudo-labelled window (default 0.5)")
    p.add_argument("--mix-labelled", type=PROB, default=None,
                   help="probability of mixing a labelled clip into a pseudo-labelled window (default 0)")
    p.add_argument("--only", action="store_true", help="rounds >= 1 train on pseudo-labelled windows only (distillation)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where the family and its run folders go (default runs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a run config field")
    p.add_argument("--device", type=device_name, default=None, help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--resume", type=Path, default=None, metavar="FAMILY",
                   help="continue a self-training folder after a kill: the right round, from its last epoch")
    p.set_defaults(func=_cmd_self_train)
