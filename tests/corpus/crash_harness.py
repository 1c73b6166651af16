"""Crash and fault-injection harness: crashes, concurrent writers, disk full, read-only.

Each scenario returns a `Fault` (handled as specified?, what happened, how many saved records
were lost). The tests in `tests/test_crash_safety.py` assert on them;
`benchmarks/reliability_summary.py` tabulates them.

- `Child`: a `python -c CODE` child process whose stdout lines are collected (SIGKILL it at will);
- killed and concurrent writers of labels.csv, thresholds.json and checkpoints;
- simulated write failures (`failing_writes`: ENOSPC / EROFS / EACCES at write, fsync or create)
  and, as root, a real full or read-only tmpfs;
- tiny training runs SIGKILLed at random moments or at injected crash points, and
  `run_problems`, which lists everything wrong with a run folder that should be complete.

The bad-input corpus (bad audio, CSV and config files) is `tests/corpus/make_corpus.py`.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from unittest import mock

from birdcore.annotation.store import read_annotations
from birdcore.errors import ConfigError
from birdcore.evaluation.thresholds import Thresholds, load_thresholds

from .make_corpus import CLASSES

REPO = Path(__file__).resolve().parents[2]
TMP_PATTERN = re.compile(r"^\..+\.tmp$")  # what atomic_path names its temp files


@dataclass
class Fault:
    """Outcome of one fault scenario. `lost` counts saved records (rows, versions) that are gone."""

    name: str
    handled: bool
    detail: str
    lost: int
    data: dict


def stray_temps(folder: Path) -> list[Path]:
    """Temp files `atomic_path` left behind (only a SIGKILL can leave one)."""
    return sorted(p for p in folder.rglob(".*") if p.is_file() and TMP_PATTERN.match(p.name))


class Child:
    """A `python -c CODE ARGS` child whose stdout lines are collected by a thread."""

    def __init__(self, code: str, *args: Any, env: dict | None = None) -> None:
        import tempfile

        self._err = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty child never blocks
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, text=True,
                                     stdout=subprocess.PIPE, stderr=self._err,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_line(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.time() + timeout
        while text not in self.lines:
            if self.proc.poll() is not None and text not in self.lines:
                self._reader.join(1)
                if text in self.lines:
                    return
                raise RuntimeError(f"child exited {self.proc.returncode} before {text!r}: {self.stderr()[-2000:]}")
            if time.time() > deadline:
                raise TimeoutError(f"child did not print {text!r} within {timeout} s")
            time.sleep(0.002)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self, timeout: float = 120.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()


# ---- annotations: concurrent savers ---------------------------------------------------------
_ANN_WRITER = r"""
import sys, time
from pathlib import Path
import birdcore.annotation.store as ann
if sys.argv[5] == "nolock":  # the control: what the lock prevents
    from contextlib import nullcontext
    ann.file_lock = lambda path: nullcontext()
path, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
for i in range(n):
    ann.save_window(path, f"w{k}", i * 5, i * 5 + 5, ["aaa1", "bbb1", "ccc1"][: 1 + (i + k) % 3], annotator=f"writer{k}")
    print(i, flush=True)
"""


def concurrent_annotation_writers(folder: Path, writers: int = 4, saves: int = 8, lock: bool = True) -> Fault:
    """`writers` processes each save `saves` distinct windows into one labels.csv at the same time."""
    folder.mkdir(parents=True, exist_ok=True)
    path, go = folder / "labels.csv", folder / "go"
    children = [Child(_ANN_WRITER, path, k, saves, go, "lock" if lock else "nolock") for k in range(writers)]
    for c in children:
        c.wait_line("ready")
    go.touch()  # release them together, so their read-modify-write cycles overlap
    codes = [c.finish() for c in children]
    errors = [c.stderr()[-500:] for c, rc in zip(children, codes) if rc != 0]
    table = read_annotations(path, classes=CLASSES)
    from birdcore.annotation.store import window_species

    got = window_species(table)
    expected = {(f"w{k}", float(i * 5), float(i * 5 + 5)): set(CLASSES[: 1 + (i + k) % 3])
                for k in range(writers) for i in range(saves)}
    lost = sum(1 for key, species in expected.items() if got.get(key) != species)
    extra = len(set(got) - set(expected))
    handled = not errors and lost == 0 and extra == 0
    return Fault(f"annotations: {writers} concurrent writers × {saves} saves" + ("" if lock else " (control: no lock)"),
                 handled, f"{len(expected) - lost}/{len(expected)} windows kept" + (f"; errors: {errors}" if errors else ""),
                 lost, {"expected": len(expected), "found": len(got), "extra": extra})


# ---- annotations: a saver killed at a random moment / mid-write -----------------------------
_ANN_LOOP = r"""
import sys
from birdcore.annotation.store import save_window
path = sys.argv[1]
print("ready", flush=True)
i = 0
while True:
    save_window(path, "sc", i * 5, i * 5 + 5, ["aaa1"] if i % 2 else [], annotator="loop")
    print(i, flush=True)
    i += 1
"""


def killed_annotation_saver(folder: Path, seed: int) -> Fault:
    """A process saving window after window is SIGKILLed after a seeded random delay: every
    acknowledged save must be in the file, the file must parse, and the lock must be free."""
    from birdcore.annotation.store import save_window, window_species

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    child = Child(_ANN_LOOP, path)
    child.wait_line("0")  # at least one save acknowledged, then a random moment
    time.sleep(random.Random(seed).uniform(0.05, 0.8))
    child.kill()
    acked = [int(x) for x in child.lines if x.isdigit()]
    n_acked = (max(acked) + 1) if acked else 0
    got = window_species(read_annotations(path, classes=CLASSES))
    lost = sum(1 for i in range(n_acked)
               if got.get(("sc", float(i * 5), float(i * 5 + 5))) != ({"aaa1"} if i % 2 else set()))
    t0 = time.perf_counter()
    save_window(path, "after", 0, 5, ["bbb1"])  # would hang if the dead process still held the lock
    relock_s = time.perf_counter() - t0
    ok = lost == 0 and relock_s < 5 and ("after", 0.0, 5.0) in window_species(read_annotations(path))
    return Fault(f"annotations: saver SIGKILLed at a random moment (seed {seed})", ok,
                 f"{n_acked} saves acknowledged, {n_acked - lost} in the file; lock free again in {relock_s:.2f} s",
                 lost, {"acked": n_acked, "strays": len(stray_temps(folder))})


_ANN_DIE_MID = r"""
import os, signal, sys
import birdcore.annotation.store as ann
path = sys.argv[1]
# 400 windows: the table (~20 kB) is bigger than the 8-kB write buffer, so when the process dies
# at row 300 of the next save, a partial temp file really is on disk.
ann.save_windows(path, [("sc", i * 5, i * 5 + 5, ["aaa1"] if i % 2 else []) for i in range(400)], annotator="before")
print("saved", flush=True)
real, count = ann._format_row, [0]
def dying(row):
    count[0] += 1
    if count[0] == 300:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(row)
ann._format_row = dying
ann.save_window(path, "sc", 2000, 2005, ["ccc1"], annotator="crash")
"""


def annotation_save_dies_mid_write(folder: Path) -> Fault:
    """The saving process dies while writing the new table: the old file must be byte-identical."""
    from birdcore.annotation.store import save_window

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    child = Child(_ANN_DIE_MID, path)
    child.wait_line("saved")
    before = path.read_bytes()  # the table as the first save left it
    rc = child.finish()
    strays = stray_temps(folder)
    same = path.read_bytes() == before
    table = read_annotations(path, classes=CLASSES)
    save_window(path, "sc", 2000, 2005, ["ccc1"])  # the next save works and ignores the stray temp
    after = read_annotations(path, classes=CLASSES)
    ok = rc == -signal.SIGKILL and same and len(table) == 400 and len(after) == 401
    return Fault("annotations: process dies mid-write of labels.csv", ok,
                 f"previous file {'byte-identical' if same else 'CHANGED'}; {len(strays)} stray temp file(s)"
                 f" ({', '.join(f'{p.stat().st_size} B' for p in strays)}) ignored by readers",
                 0 if same else 1, {"strays": strays, "rc": rc})


# ---- thresholds -----------------------------------------------------------------------------
_THR_WRITER = r"""
import sys, time
from pathlib import Path
from birdcore.evaluation.thresholds import Thresholds, save_thresholds
path, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
classes = [f"sp{i}" for i in range(200)]  # ~7 kB of JSON: a torn read would show
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
for i in range(n):
    thr = Thresholds(classes=classes, global_threshold=0.1, per_class={c: 0.01 * ((i + k) % 90 + 1) for c in classes},
                     method="grid", source=f"w{k}-{i}")
    save_thresholds(path, thr)
    print(i, flush=True)
"""


def concurrent_threshold_writers(folder: Path, writers: int = 3, saves: int = 10) -> Fault:
    """Writers overwrite one thresholds.json while this process keeps reading it: no read may see
    a torn file, and the final file is one complete version some writer saved."""
    folder.mkdir(parents=True, exist_ok=True)
    path, go = folder / "thresholds.json", folder / "go"
    children = [Child(_THR_WRITER, path, k, saves, go) for k in range(writers)]
    for c in children:
        c.wait_line("ready")
    go.touch()
    reads, torn = 0, []
    while any(c.proc.poll() is None for c in children):
        if path.exists():
            try:
                thr = load_thresholds(path)
                k, i = map(int, thr.source[1:].split("-"))
                assert set(thr.per_class.values()) == {0.01 * ((i + k) % 90 + 1)}
                reads += 1
            except (ConfigError, AssertionError, ValueError) as exc:
                torn.append(str(exc)[:120])
        time.sleep(0.001)
    codes = [c.finish() for c in children]
    final = load_thresholds(path)
    written = {f"w{k}-{i}" for k in range(writers) for i in range(saves)}
    ok = not torn and all(rc == 0 for rc in codes) and final.source in written and not stray_temps(folder)
    return Fault(f"thresholds: {writers} concurrent writers, reader polling", ok,
                 f"{reads} reads during the writes, {len(torn)} torn; final = version {final.source}",
                 len(torn), {"reads": reads, "torn": torn})


_THR_DIE_MID = r"""
import os, pathlib, signal, sys
from birdcore.evaluation.thresholds import Thresholds, save_thresholds
path = sys.argv[1]
save_thresholds(path, Thresholds(classes=["aaa1", "bbb1"], global_threshold=0.1, method="grid", source="v1"))
print("saved", flush=True)
def dying_write_bytes(self, data):  # write half the bytes for real, then die
    with open(self, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path.write_bytes = dying_write_bytes
save_thresholds(path, Thresholds(classes=["aaa1", "bbb1"], global_threshold=0.9, method="grid", source="v2"))
"""


def threshold_save_dies_mid_write(folder: Path) -> Fault:
    """The process dies half-way through writing thresholds v2: v1 must load, byte-identical."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "thresholds.json"
    child = Child(_THR_DIE_MID, path)
    child.wait_line("saved")
    before = path.read_bytes()
    rc = child.finish()
    same = path.read_bytes() == before
    thr = load_thresholds(path)
    strays = stray_temps(folder)
    ok = rc == -signal.SIGKILL and same and thr.source == "v1" and len(strays) == 1
    return Fault("thresholds: process dies mid-write of thresholds.json", ok,
                 f"v1 {'intact' if same else 'CHANGED'} (source {thr.source!r}); stray temp: {len(strays)}",
                 0 if same else 1, {"strays": strays, "rc": rc})


# ---- checkpoints ----------------------------------------------------------------------------
_CKPT_LOOP = r"""
import sys, torch
from birdcore.training.checkpoint import save_checkpoint
path = sys.argv[1]
print("ready", flush=True)
v = 1
while True:
    save_checkpoint(path, {"version": v, "w": torch.full((6_000_000,), float(v))})  # 24 MB
    print(v, flush=True)
    v += 1
"""


def checkpoint_write_killed(folder: Path, seed: int) -> Fault:
    """A process saving a 24-MB checkpoint over and over is SIGKILLed while a save is in flight
    (the seed picks which save; the kill lands once its temp file has data). The file at the
    checkpoint's name must load with weights_only and be one whole version."""
    import torch

    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.pt"
    save_checkpoint(path, {"version": 0, "w": torch.zeros(6_000_000)})
    target_save = random.Random(seed).randint(1, 3)
    child = Child(_CKPT_LOOP, path)
    child.wait_line("ready")
    if target_save > 1:
        child.wait_line(str(target_save - 1))
    deadline, landed = time.time() + 30, "after a completed save"
    while time.time() < deadline and child.proc.poll() is None:
        temps = stray_temps(folder)
        if temps and any(t.exists() and t.stat().st_size > 0 for t in temps):
            landed = "mid-write (temp file had data)"
            break
        time.sleep(0.0005)
    child.kill()
    acked = max([int(x) for x in child.lines if x.isdigit()], default=0)
    try:
        ck = load_checkpoint(path)
        version = int(ck["version"])
        whole = bool(torch.all(ck["w"] == float(version))) and ck["w"].numel() == 6_000_000
    except RunError as exc:
        version, whole = -1, False
        landed += f"; load failed: {exc}"
    ok = whole and acked <= version <= acked + 1
    return Fault(f"checkpoint: writer SIGKILLed during save #{target_save} (seed {seed})", ok,
                 f"kill landed {landed}; last acknowledged v{acked}, file holds v{version} "
                 f"({'whole' if whole else 'BROKEN'}); {len(stray_temps(folder))} stray temp",
                 0 if ok else 1, {"landed": landed, "version": version, "acked": acked})


# ---- disk full and read-only (simulated: the OS call raises) ---------------------------------
def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@contextmanager
def failing_writes(code: int, where: str):
    """Make writes fail with errno `code` at `where`: "write" (half the bytes land, then the error),
    "fsync" (delayed allocation reports ENOSPC at fsync), "create" (no new file can be made)."""
    with ExitStack() as stack:
        if where == "write":
            real_write = os.write

            def half_write(fd, data):
                if len(data) > 1:
                    real_write(fd, bytes(data[: len(data) // 2]))
                raise _oserror(code)
            def half_write_bytes(self, data):
                with open(self, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                raise _oserror(code)
            stack.enter_context(mock.patch("os.write", half_write))
            stack.enter_context(mock.patch.object(Path, "write_bytes", half_write_bytes))
        elif where == "fsync":
            stack.enter_context(mock.patch("os.fsync", side_effect=_oserror(code)))
        elif where == "create":
            stack.enter_context(mock.patch("tempfile.mkstemp", side_effect=_oserror(code)))
            real_open = os.open

            def no_create(p, flags, *a, **k):
                if flags & (os.O_WRONLY | os.O_RDWR):
                    raise _oserror(code)
                return real_open(p, flags, *a, **k)
            stack.enter_context(mock.patch("os.open", no_create))
            real_mkdir = Path.mkdir

            def no_mkdir(self, *a, **k):
                if self.exists():
                    return real_mkdir(self, *a, **k)
                raise _oserror(code)
            stack.enter_context(mock.patch.object(Path, "mkdir", no_mkdir))
        else:
            raise ValueError(where)
        yield


def _writers(folder: Path) -> dict[str, tuple[Path, Callable[[], Any]]]:
    """name → (file it writes, a call that writes a new version). Each file already holds v1."""
    import torch

    from birdcore.annotation.store import save_window
    from birdcore.atomic_io import append_line
    from birdcore.evaluation.thresholds import save_thresholds
    from birdcore.training.checkpoint import save_checkpoint

    thr = folder / "thresholds.json"
    save_thresholds(thr, Thresholds(classes=CLASSES, global_threshold=0.1, method="grid", source="v1"))
    labels = folder / "labels.csv"
    save_window(labels, "sc", 0, 5, ["aaa1"])
    ckpt = folder / "last.pt"
    save_checkpoint(ckpt, {"epoch": 1, "w": torch.ones(1000)})
    metrics = folder / "metrics.jsonl"
    append_line(metrics, '{"kind": "epoch", "epoch": 0}')
    return {
        "thresholds.json": (thr, lambda: save_thresholds(thr, Thresholds(classes=CLASSES, global_threshold=0.5,
                                                                             method="grid", source="v2"))),
        "labels.csv": (labels, lambda: save_window(labels, "sc", 5, 10, ["bbb1"])),
        "checkpoint": (ckpt, lambda: save_checkpoint(ckpt, {"epoch": 2, "w": torch.ones(100_000)})),
        "metrics line": (metrics, lambda: append_line(metrics, '{"kind": "epoch", "epoch": 1, "pad": "' + "x" * 6000 + '"}')),
    }


WORDS = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


def failed_write(folder: Path, writer: str, code: int, where: str) -> Fault:
    """`writer` hits errno `code` at `where`: a BirdcoreError naming the file and the reason,
    the previous version byte-identical, no temp file left behind."""
    from birdcore.errors import BirdcoreError

    folder.mkdir(parents=True, exist_ok=True)
    target, call = _writers(folder)[writer]
    before = target.read_bytes()
    err: BaseException | None = None
    with failing_writes(code, where):
        try:
            call()
        except BaseException as exc:  # judged below
            err = exc
    msg = str(err)
    clear = (isinstance(err, BirdcoreError) and isinstance(err, OSError) and err.errno == code
             and str(target) in msg and WORDS[code] in msg)
    same = target.read_bytes() == before
    strays = stray_temps(folder)
    name = f"{WORDS[code]} ({where}): {writer}"
    detail = (f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised") + \
        (f"; {len(strays)} temp file(s) left" if strays else "")
    return Fault(name, clear and same and not strays, detail, 0 if same else 1,
                 {"error": err, "strays": strays})


def failed_run_creation(folder: Path, code: int, where: str) -> Fault:
    """`create_run` in a runs folder where writes fail: RunError naming the folder and the reason,
    and no half-made run folder left behind."""
    from birdcore.config.run import RunConfig
    from birdcore.errors import RunError
    from birdcore.training.runs import create_run, list_runs

    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    err: BaseException | None = None
    with failing_writes(code, where):
        try:
            create_run(runs, RunConfig(name="x"), folder, CLASSES)
        except BaseException as exc:
            err = exc
    left = sorted(p.name for p in runs.iterdir())
    clear = isinstance(err, RunError) and str(runs) in str(err) and WORDS[code] in str(err)
    return Fault(f"{WORDS[code]} ({where}): new run folder", clear and not left,
                 (f"{type(err).__name__}: {str(err).replace(str(folder), '<dir>')}" if err else "no error raised")
                 + (f"; left behind: {left}" if left else ""), len(left), {"error": err, "left": left, "runs": list_runs(runs)})


# ---- a real small file system (root only): the true ENOSPC / EROFS paths ---------------------
@contextmanager
def tmpfs(folder: Path, size: str = "2m"):
    """Mount a small tmpfs at `folder` (yields False when mounting is not possible here)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path) -> int:
    """Write a filler file until the file system is full; returns its size in bytes."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        block = b"\0" * 65536
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    # the last partial block may leave a few bytes; take them too
    try:
        with open(filler, "ab", buffering=0) as fh:
            while fh.write(b"\0"):
                pass
    except OSError:
        pass
    return filler.stat().st_size


def real_full_disk(folder: Path) -> list[Fault] | None:
    """Every writer on a truly full tmpfs (None when tmpfs cannot be mounted here)."""
    from birdcore.errors import BirdcoreError

    out: list[Fault] = []
    with tmpfs(folder) as mounted:
        if not mounted:
            return None
        writers = _writers(folder)
        fill_disk(folder)
        for name, (target, call) in writers.items():
            before = target.read_bytes()
            try:
                call()
                err = None
            except BaseException as exc:
                err = exc
            msg = str(err)
            same = target.read_bytes() == before
            strays = stray_temps(folder)
            clear = isinstance(err, BirdcoreError) and str(target) in msg and "disk full" in msg
            out.append(Fault(f"disk full (real tmpfs): {name}", clear and same and not strays,
                             (f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised")
                             + (f"; {len(strays)} temp file(s) left" if strays else ""),
                             0 if same else 1, {"error": err}))
    return out


def real_read_only(folder: Path) -> list[Fault] | None:
    """Every writer on a tmpfs remounted read-only (None when not possible here)."""
    from birdcore.errors import BirdcoreError

    out: list[Fault] = []
    with tmpfs(folder) as mounted:
        if not mounted:
            return None
        writers = _writers(folder)
        if subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode != 0:
            return None
        for name, (target, call) in writers.items():
            before = target.read_bytes()
            try:
                call()
                err = None
            except BaseException as exc:
                err = exc
            msg = str(err)
            clear = isinstance(err, BirdcoreError) and str(target) in msg and "read-only" in msg
            same = target.read_bytes() == before
            out.append(Fault(f"read-only file system (real): {name}", clear and same,
                             f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised",
                             0 if same else 1, {"error": err}))
    return out


# ---- training runs: SIGKILL at random moments and injected crash points, then resume --------
TRAIN_EPOCHS = 3
TRAIN_OVERRIDES = [  # tiny: 6 train recordings, 2 steps per epoch, resnet10t from scratch, 2-s clips
    "train.num_workers=0", "data.clip_seconds=2.0", "train.batch_size=3", "train.log_every_steps=1",
    f"train.epochs={TRAIN_EPOCHS}", "train.patience=10", "train.n_folds=2", "model.pretrained=false",
    'model.backbone="resnet10t"', "mel.n_mels=32",
]


def tiny_tone_data(root: Path) -> Path:
    """3 species × 4 recordings of 2–3 s of learnable tones (tests/helpers/synth.py)."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from helpers.synth import make_tone_dataset

    return make_tone_dataset(root, n_species=3, per_species=4, seconds=2.2)


def tiny_run(data_dir: Path, runs_dir: Path):
    from birdcore.config.run import load_run_config
    from birdcore.training.launcher import prepare_run

    return prepare_run(data_dir, load_run_config("demo-cpu", TRAIN_OVERRIDES), runs_dir)


def run_problems(run, epochs: int = TRAIN_EPOCHS) -> list[str]:
    """Everything wrong with a run that should be complete (empty list = complete and consistent).

    status finished and truthful; every metrics line whole JSON; one start line; epoch lines
    0..E-1 once each, in order; step numbers 1..N strictly increasing with the right epoch;
    last.pt at epoch E recording the final metrics size; best.pt loadable with weights_only and
    agreeing with status and the OOF table on the best epoch and score.
    """
    import pandas as pd

    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint

    problems: list[str] = []
    st = run.status()
    if st.get("state") != "finished" or st.get("stale") or st.get("error") or st.get("pid") is not None:
        problems.append(f"status not a clean finish: { {k: st.get(k) for k in ('state', 'stale', 'error', 'pid')} }")
    if st.get("epoch") != epochs:
        problems.append(f"status epoch {st.get('epoch')} != {epochs}")
    raw = run.metrics_path.read_bytes()
    lines = raw.split(b"\n")
    if lines[-1] != b"":
        problems.append("metrics.jsonl does not end with a newline (torn last line)")
    records = []
    for n, line in enumerate(lines[:-1], start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            problems.append(f"metrics.jsonl line {n} is not whole JSON: {line[:60]!r}")
    kinds = [r.get("kind") for r in records]
    if kinds.count("start") != 1 or kinds[:1] != ["start"]:
        problems.append(f"expected one start line first, got kinds {kinds[:3]}... ({kinds.count('start')} starts)")
    epoch_lines = [r["epoch"] for r in records if r.get("kind") == "epoch"]
    if epoch_lines != list(range(epochs)):
        problems.append(f"epoch lines {epoch_lines} != {list(range(epochs))}")
    steps = [(r["step"], r["epoch"]) for r in records if r.get("kind") == "step"]
    nums = [s for s, _ in steps]
    if nums != sorted(set(nums)) or not nums:
        problems.append(f"step numbers not strictly increasing: {nums}")
    start = next((r for r in records if r.get("kind") == "start"), {})
    spe = start.get("steps_per_epoch")
    if spe and nums != list(range(1, spe * epochs + 1)):
        problems.append(f"steps {nums} != 1..{spe * epochs}")
    if spe and any(e != (s - 1) // spe for s, e in steps):
        problems.append(f"a step line has the wrong epoch: {steps}")
    # order: every step of epoch e precedes epoch e's line, which precedes epoch e+1's steps
    seq = [(r["epoch"], 0 if r["kind"] == "step" else 1) for r in records if r.get("kind") in ("step", "epoch")]
    if seq != sorted(seq):
        problems.append("metrics lines are out of order")
    try:
        last = load_checkpoint(run.last_checkpoint)
        if last["epoch"] != epochs or last["metrics_size"] != len(raw):
            problems.append(f"last.pt epoch {last['epoch']} / metrics_size {last['metrics_size']} vs {epochs} / {len(raw)}")
        best = load_checkpoint(run.best_checkpoint)  # weights_only=True inside
        if best["epoch"] != st.get("best_epoch"):
            problems.append(f"best.pt is epoch {best['epoch']} but status says best_epoch {st.get('best_epoch')}")
        if best["classes"] != run.classes or not best["model"]:
            problems.append("best.pt lacks the classes or the weights")
        monitor = run.read_config()[0].train.monitor
        scores = {r["epoch"]: r.get(monitor) for r in records if r.get("kind") == "epoch"}
        if st.get("best_epoch") in scores and scores[st["best_epoch"]] != st.get("best_score"):
            problems.append(f"status best_score {st.get('best_score')} != epoch line {scores[st['best_epoch']]}")
        valid = [v for v in scores.values() if v is not None]
        if valid and st.get("best_score") != max(valid):
            problems.append(f"status best_score {st.get('best_score')} is not the best epoch score {max(valid)}")
    except RunError as exc:
        problems.append(str(exc))
    if run.oof_path.exists():
        oof_epochs = set(pd.read_parquet(run.oof_path, columns=["epoch"])["epoch"])
        if oof_epochs != {st.get("best_epoch")}:
            problems.append(f"oof_predictions are from epoch {oof_epochs}, best is {st.get('best_epoch')}")
    else:
        problems.append("oof_predictions.parquet missing")
    return problems


def _wait_for(pred: Callable[[], bool], timeout: float, what: str, proc_alive: Callable[[], bool]) -> None:
    deadline = time.time() + timeout
    while not pred():
        if not proc_alive():
            raise RuntimeError(f"the training process ended before {what}")
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.001)


def landed_phase(run) -> str:
    """Where a kill landed, read back from the run folder."""
    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint

    records = run.metrics()[0] if run.metrics_path.exists() else []
    if not records:
        return "start-up (nothing logged yet)"
    try:
        done = load_checkpoint(run.last_checkpoint)["epoch"] if run.last_checkpoint.exists() else 0
    except RunError:
        done = -1
    epoch_lines = sum(1 for r in records if r.get("kind") == "epoch")
    if epoch_lines > done:
        return f"end-of-epoch writes (epoch {epoch_lines - 1} logged, last.pt still at {done})"
    steps = [r for r in records if r.get("kind") == "step" and r["epoch"] == done]
    return f"mid-epoch {done} ({len(steps)} step(s) logged)" if steps else f"between epochs (after epoch {done - 1})"


def kill_training_at(run, phase: str, seed: int) -> dict:
    """Launch `run` the way the app does and SIGKILL it in `phase` after a seeded random delay:
    "start-up" (0.1–1.5 s after launch), "mid-epoch" (0–50 ms after the first step line of a random
    epoch) or "end-of-epoch" (0–30 ms after a random epoch's metrics line: best.pt / OOF /
    last.pt / status are being written). Returns what was seen."""
    from birdcore.training.launcher import launch_run

    rng = random.Random(f"{phase}-{seed}")
    pid = launch_run(run, extra_env={"OMP_NUM_THREADS": "1"})

    def alive() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def has(kind: str, epoch: int) -> Callable[[], bool]:
        return lambda: any(r.get("kind") == kind and r.get("epoch") == epoch for r in run.metrics()[0])

    if phase == "start-up":
        time.sleep(rng.uniform(0.1, 1.5))
    elif phase == "mid-epoch":
        epoch = rng.randrange(TRAIN_EPOCHS)
        _wait_for(has("step", epoch), 240, f"a step of epoch {epoch}", alive)
        time.sleep(rng.uniform(0.0, 0.05))  # the epoch's next step takes ~0.1–0.3 s
    elif phase == "end-of-epoch":
        epoch = rng.randrange(TRAIN_EPOCHS)
        _wait_for(has("epoch", epoch), 240, f"the metrics line of epoch {epoch}", alive)
        time.sleep(rng.uniform(0.0, 0.03))
    else:
        raise ValueError(phase)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    return {"pid": pid, "landed": landed_phase(run), "status_after_kill": run.status()}


# The same `birdcore train` process, with one crash point injected: it SIGKILLs itself right after
# the epoch line (before any checkpoint), right after last.pt (before best.pt and the OOF table),
# right after best.pt, or half-way through writing last.pt (a partial temp file is on disk).
_INJECTED = r"""
import io, os, signal, sys
import birdcore.training.loop as loop
run_dir, point, at_epoch, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if point == "after_epoch_line":
    real_log = loop.RunFolder.log
    def log(self, record):
        real_log(self, record)
        if record.get("kind") == "epoch" and record["epoch"] == at_epoch:
            die()
    loop.RunFolder.log = log
else:
    if point == "after_best_inflated":  # epoch `at_epoch` of this attempt scores best of all
        from birdcore.training.runs import open_run
        monitor = open_run(run_dir).read_config()[0].train.monitor
        # die between last.pt and best.pt (the engine writes last.pt first)
        point, real_metrics, calls = "after_last", loop.compute_all, [0]
        def compute_all(*a, **k):
            out = real_metrics(*a, **k)
            calls[0] += 1
            if calls[0] == at_epoch + 1:  # one validation per epoch
                out = {**out, monitor: 2.0}  # above any real score: this epoch becomes the best
            return out
        loop.compute_all = compute_all
    real_save = loop.save_checkpoint
    def save(path, payload):
        name = os.path.basename(str(path))
        if point == "mid_last_write" and name == "last.pt" and payload["epoch"] == at_epoch + 1:
            import torch
            from birdcore.atomic_io import atomic_path
            buf = io.BytesIO()
            torch.save(payload, buf)
            with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
                fh.write(buf.getbuffer()[: buf.tell() // 2])
                fh.flush()
                os.fsync(fh.fileno())
                die()
        real_save(path, payload)
        if point == "after_best" and name == "best.pt" and payload["epoch"] == at_epoch:
            die()
        if point == "after_last" and name == "last.pt" and payload["epoch"] == at_epoch + 1:
            die()
    loop.save_checkpoint = save
from birdcore.cli import main
sys.exit(main(["train", "--resume" if resume else "--run", run_dir]))
"""
INJECTION_POINTS = ("after_epoch_line", "after_best", "after_last", "mid_last_write", "after_best_inflated")


def crash_training_at(run, point: str, epoch: int, resume: bool) -> dict:
    """Run `birdcore train` on `run` with crash point `point` at epoch `epoch`; returns what was seen."""
    if point not in INJECTION_POINTS:
        raise ValueError(f"unknown crash point {point!r} (one of {INJECTION_POINTS})")
    child = Child(_INJECTED, run.path, point, epoch, "resume" if resume else "fresh", env={"OMP_NUM_THREADS": "1"})
    rc = child.finish(timeout=300)
    return {"rc": rc, "landed": landed_phase(run), "status_after_kill": run.status(),
            "strays": stray_temps(run.path), "stderr": child.stderr()[-2000:]}
