"""Reliability summary: run the bad-input corpus and the fault scenarios, print one table.

Columns: the case, whether it was handled as specified (a bad input → its typed error naming the
file and the problem; an odd but valid input → loaded correctly; a fault → a clear error or a
clean recovery), and how much saved data was lost (must be 0). The same cases and scenarios are
asserted by tests/test_corpus_*.py and tests/test_crash_safety.py (tests/corpus/make_corpus.py and
tests/corpus/crash_harness.py).

Usage:
    python benchmarks/reliability_summary.py              # corpus + file-level faults (~1 min)
    python benchmarks/reliability_summary.py --training   # + SIGKILLed training runs (+2–4 min)
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

from corpus import crash_harness as ch  # noqa: E402
from corpus import make_corpus as mc  # noqa: E402


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
        if args.training:
            rows += training_rows(root)
    print_table(rows + controls, args.markdown)
    bad = [r for r in rows if not r[1] or r[2]]
    valid = sum(1 for r in rows if "(valid:" in r[0])
    print(f"\n{len(rows)} cases: {len(rows) - valid} bad inputs / faults, {valid} odd-but-valid inputs;"
          f" not handled: {sum(1 for r in rows if not r[1])}; lost data: {sum(r[2] for r in rows)}"
          f" ({time.perf_counter() - t0:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
