"""Reliability summary: run the bad-input corpus and the fault scenarios, print one table.

Columns: the case, whether it was handled as specified (a bad input → its typed error naming the
file and the problem; an odd but valid input → loaded correctly; a fault → a clear error or a
clean recovery), and how much saved data was lost (must be 0). The same cases and scenarios are
asserted by tests/test_corpus_*.py and tests/test_crash_safety.py (tests/corpus/make_corpus.py and
tests/corpus/crash_harness.py).

Usage:
    python benchmarks/reliability_summary.py              # corpus + file-level faults (~1 min)
    python benchmarks/reliability_summary.py --training   # + SIGKILLed and raced training runs (+3–5 min)
    python benchmarks/reliability_summary.py --markdown   # a Markdown table for notes

Exit code 1 when any row is not handled or lost data (the no-lock control row excepted).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from corpus import cli_cases as cc  # noqa: E402
from corpus import crash_harness as ch  # noqa: E402
from corpus import make_corpus as mc  # noqa: E402
from corpus import run_lock_faults as rl  # noqa: E402


def corpus_rows(root: Path) -> list[tuple[str, bool, int, str]]:
    rows = []
    for case in mc.make_corpus(root / "corpus"):
        out = mc.verify(case)
        kind = "valid: " if case.valid else ""
        rows.append((f"{case.name} ({kind}{case.what})", out.handled, out.lost, out.detail))
    return rows


def fault_rows(root: Path) -> tuple[list[tuple[str, bool, int, str]], list[tuple[str, bool, int, str]]]:
    """(rows, controls): controls are shown but do not decide the exit code."""
    n = iter(range(10_000))

    def d() -> Path:
        return root / f"fault{next(n)}"

    faults = [
        ch.concurrent_annotation_writers(d(), writers=4, saves=8),
        ch.killed_annotation_saver(d(), seed=0),
        ch.killed_annotation_saver(d(), seed=1),
        ch.annotation_save_dies_mid_write(d()),
        ch.concurrent_threshold_writers(d(), writers=3, saves=10),
        ch.threshold_save_dies_mid_write(d()),
        ch.checkpoint_write_killed(d(), seed=0),
        ch.checkpoint_write_killed(d(), seed=1),
    ]
    for writer, code, where in [
        ("thresholds.json", errno.ENOSPC, "write"), ("labels.csv", errno.ENOSPC, "fsync"),
        ("checkpoint", errno.ENOSPC, "fsync"), ("metrics line", errno.ENOSPC, "write"),
        ("thresholds.json", errno.EROFS, "create"), ("labels.csv", errno.EROFS, "create"),
        ("checkpoint", errno.EROFS, "create"), ("metrics line", errno.EROFS, "create"),
        ("thresholds.json", errno.EACCES, "create"),
    ]:
        faults.append(ch.failed_write(d(), writer, code, where))
    faults.append(ch.failed_run_creation(d(), errno.EROFS, "create"))
    faults.append(ch.failed_run_creation(d(), errno.ENOSPC, "fsync"))
    real = (ch.real_full_disk(d()) or []) + (ch.real_read_only(d()) or [])
    rows = [(f.name, f.handled, f.lost, f.detail) for f in faults + real]
    if not real:
        rows.append(("disk full / read-only on a real tmpfs", True, 0, "skipped: cannot mount a tmpfs here"))
    control = ch.concurrent_annotation_writers(d(), writers=4, saves=8, lock=False)
    controls = [(control.name, None, control.lost,
                 f"{control.detail} — shows the scenario detects lost rows" if control.lost else
                 f"{control.detail} — no race happened this time")]
    return rows, controls


def training_rows(root: Path) -> list[tuple[str, bool, int, str]]:
    from birdcore.training.launcher import check_resumable, run_in_process

    data = ch.tiny_tone_data(root / "tones")
    rows = []
    for phase, seed in [("start-up", 0), ("mid-epoch", 1), ("end-of-epoch", 2)]:
        run = ch.tiny_run(data, root / "runs")
        seen = ch.kill_training_at(run, phase, seed)
        truthful = seen["status_after_kill"]["state"] == "failed"
        check_resumable(run)
        run_in_process(run, resume=True)
        problems = ch.run_problems(run)
        rows.append((f"training: SIGKILL in {phase} (seed {seed}), resume", truthful and not problems,
                     len(problems), f"landed: {seen['landed']}; " + ("; ".join(problems) or "run complete and consistent")))
    run = ch.tiny_run(data, root / "runs")
    notes = []
    for point, epoch, resume in [("after_best", 0, False), ("after_epoch_line", 1, True), ("mid_last_write", 2, True)]:
        seen = ch.crash_training_at(run, point, epoch, resume)
        notes.append(f"{point}@{epoch}: {seen['landed']}")
    check_resumable(run)
    run_in_process(run, resume=True)
    problems = ch.run_problems(run)
    rows.append(("training: 3 injected crashes (after epoch line / after best.pt / mid last.pt), resume",
                 not problems, len(problems), "; ".join(problems) or "run complete and consistent"))
    return rows


def cli_rows(root: Path) -> tuple[list[tuple[str, bool, int, str]], int, int]:
    """One row per class of generated command lines (tests/corpus/cli_cases.py); also returns the
    number of cases and of tracebacks."""
    outcomes = [cc.run_case(c) for c in cc.make_cli_cases(root / "cli")]
    rows = []
    for group in dict.fromkeys(o.case.group for o in outcomes):
        mine = [o for o in outcomes if o.case.group == group]
        bad = [o for o in mine if not o.handled]
        detail = ("; ".join(f"{o.case.name}: {o.detail}" for o in bad[:2]) if bad else
                  f"e.g. {mine[0].detail}")
        rows.append((f"cli: {group} ({len(mine)} generated command lines)", not bad, sum(o.lost for o in mine), detail))
    tracebacks = sum(1 for o in outcomes if "traceback" in o.detail)
    return rows, len(outcomes), tracebacks


def demo_rows(root: Path) -> list[tuple[str, bool, int, str]]:
    """`demo-data --if-missing` (every `make app` start) repairing a demo folder that holds user files."""
    from birdcore.demo import ensure_demo_dataset, generate_demo_dataset
    from birdcore.errors import BirdcoreError

    small = {"recordings_scale": 0.1, "n_soundscapes": 1}
    rows = []
    for what in ("a demo recording deleted", "another seed asked for",
                 "a demo recording deleted and train_metadata.csv edited by the user"):
        demo = generate_demo_dataset(root / f"demo-{len(rows)}" / "demo", seed=1, **small)
        user = {"annotations/labels.csv": b"file_id,start,end,label\nsoundscape_1,0,5,zzasc1\n",
                "runs/r1/config.json": b"{}\n", "notes.txt": b"mine\n"}
        for rel, data in user.items():
            (demo / rel).parent.mkdir(parents=True, exist_ok=True)
            (demo / rel).write_bytes(data)
        seed, refused = 1, False
        if what.startswith("a demo recording"):
            next((demo / "train_audio").glob("*/*.ogg")).unlink()
        if what.startswith("another seed"):
            seed = 2
        if what.endswith("by the user"):  # the repair must not overwrite it: refused, nothing changed
            user["train_metadata.csv"] = (demo / "train_metadata.csv").read_bytes() + b"my,own,row\n"
            (demo / "train_metadata.csv").write_bytes(user["train_metadata.csv"])
        try:
            ensure_demo_dataset(demo, seed=seed, **small)
        except BirdcoreError as exc:
            refused, detail = True, str(exc)
        lost = sum(1 for rel, data in user.items() if not (demo / rel).is_file() or (demo / rel).read_bytes() != data)
        expect_refusal = what.endswith("by the user")
        if not refused:
            detail = "repaired; user files untouched" if not lost else f"{lost} user file(s) lost"
        rows.append((f"demo-data --if-missing: {what}, user files in the folder", refused == expect_refusal and not lost,
                     lost, detail))
    return rows


def print_table(rows, markdown: bool) -> None:
    if markdown:
        print("| case | handled with a clear error | lost data | detail |")
        print("|---|---|---|---|")
        for name, ok, lost, detail in rows:
            shown = "control" if ok is None else "yes" if ok else "**NO**"
            print(f"| {name} | {shown} | {lost} | {detail.replace('|', '/')[:160]} |")
        return
    w = max(len(r[0]) for r in rows)
    print(f"{'case':{w}}  handled  lost  detail")
    for name, ok, lost, detail in rows:
        shown = "control" if ok is None else "yes" if ok else "NO"
        print(f"{name:{w}}  {shown:7}  {lost:4d}  {detail[:110]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--training", action="store_true", help="also SIGKILL tiny training runs and resume them")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="birdcore-reliability-") as tmp:
        root = Path(tmp)
        rows = corpus_rows(root)
        faults, controls = fault_rows(root)
        rows += faults
        rows += demo_rows(root)
        cli, n_cli, tracebacks = cli_rows(root)
        rows += cli
        if args.training:
            rows += training_rows(root)
            handled, lost, detail = rl.concurrent_resumes(root / "race")
            rows.append(("training: two `train --resume` of one run at once", handled, lost, detail))
    print_table(rows + controls, args.markdown)
    bad = [r for r in rows if not r[1] or r[2]]
    valid = sum(1 for r in rows if "(valid:" in r[0])
    cases = len(rows) - len(cli) + n_cli
    print(f"\n{cases} cases ({len(rows) - len(cli)} rows above + {n_cli} generated command lines in {len(cli)} rows):"
          f" {cases - valid} bad inputs / faults, {valid} odd-but-valid inputs;"
          f" not handled: {sum(1 for r in rows if not r[1])} row(s); command-line tracebacks: {tracebacks};"
          f" lost data: {sum(r[2] for r in rows)} ({time.perf_counter() - t0:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
