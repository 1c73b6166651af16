"""Training runs side by side: the run list, metric curves as tidy tables, live readers.

Everything is read from the run folders (`birdcore.training.runs`), never from the process that
trains, so a page showing it survives browser refreshes and app restarts, and several viewers
can watch the same run.

* `runs_table(runs_dir)` — one row per run (state, progress, best score …) plus a message for
  every folder that is not a valid run (skipped, never fatal).
* `epoch_frame` / `step_frame` / `metric_curves` — metrics.jsonl records as DataFrames for charts.
* `MetricsTail` — an incremental reader of one run's metrics.jsonl (keeps its byte offset, reads
  only what was appended; starts over when the file was truncated by a resume).
* `log_tail`, `run_status`, `eta_seconds`, `format_duration`, `epoch_progress` — small helpers for
  live monitoring.
* `rank_runs` (best run first, the pickers' rule from `inference.catalog.run_standing`),
  `config_diff` (what differs between two runs' configs), `delete_run` (never a run in training).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from birdcore.atomic_io import read_jsonl
from birdcore.config.base import to_dict
from birdcore.errors import RunError
from birdcore.inference.catalog import run_label, run_standing
from birdcore.training.run_lock import current_owner
from birdcore.training.runs import RunFolder, pid_alive

__all__ = [
    "EPOCH_METRICS", "ACTIVE_STATES", "run_status", "runs_table", "epoch_frame", "step_frame", "metric_curves",
    "MetricsTail", "log_tail", "eta_seconds", "format_duration", "epoch_progress", "rank_runs", "config_diff",
    "delete_run",
]

EPOCH_METRICS = ("micro_f1", "macro_f1", "birdclef2022", "cmap_pad5", "macro_auc")
ACTIVE_STATES = ("queued", "running")
RUN_COLUMNS = ("run_id", "name", "state", "epoch", "epochs", "monitor", "best_score", "best_epoch", "created_at",
               "has_oof", "has_thresholds", "error", "data_dir")
# A self-training family folder (`birdcore self-train`) lives among the runs but is not one.
_FAMILY_FILE = "selftrain.json"


def run_status(run: RunFolder) -> dict[str, Any]:
    """`run.status()`, plus: a queued run whose launched process is gone counts as failed.

    (`RunFolder.status` already does this for "running"; a process that dies before it starts
    training — bad interpreter, import error — would otherwise stay "queued" forever.)
    """
    st = run.status()
    if st.get("state") == "queued" and isinstance(st.get("pid"), int) and not pid_alive(st["pid"]):
        st["state"] = "failed"
        st.setdefault("error", None)
        st["error"] = st["error"] or f"the training process exited before it started; see {run.log_path.name}"
        st["stale"] = True
    return st


def runs_table(runs_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """All runs under `runs_dir`, newest first, and one message per skipped folder.

    Columns: run_id, name, state, epoch (completed), epochs, monitor, best_score, best_epoch
    (0-based), created_at, has_oof, has_thresholds, error, data_dir (the dataset it trained on). A
    sub-folder without a readable config.json is skipped with a message; hidden folders, plain
    files and self-training family folders are ignored.
    """
    d = Path(runs_dir)
    rows, skipped = [], []
    if d.is_dir():
        for p in sorted(d.iterdir(), key=lambda q: q.name, reverse=True):
            if not p.is_dir() or p.name.startswith(".") or (p / _FAMILY_FILE).is_file():
                continue
            run = RunFolder(p)
            if not run.config_path.is_file():
                skipped.append(f"{p.name}: not a run folder (no config.json)")
                continue
            try:
                cfg, extra = run.read_config()
            except RunError as exc:
                skipped.append(f"{p.name}: {exc}")
                continue
            st = run_status(run)
            rows.append({
                "run_id": run.run_id, "name": cfg.name, "state": st.get("state", "unknown"),
                "epoch": st.get("epoch"), "epochs": st.get("epochs", cfg.train.epochs), "monitor": cfg.train.monitor,
                "best_score": st.get("best_score"), "best_epoch": st.get("best_epoch"),
                "created_at": st.get("created_at"), "has_oof": run.oof_path.is_file(),
                "has_thresholds": run.thresholds_path.is_file(), "error": st.get("error"),
                "data_dir": str(extra.get("data_dir") or ""),
            })
    table = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for col in ("best_score",):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    for col in ("epoch", "epochs", "best_epoch"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    return table, skipped


def epoch_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The `kind == "epoch"` records as a frame sorted by epoch (0-based, as logged); None → NaN."""
    rows = [r for r in records if r.get("kind") == "epoch"]
    df = pd.DataFrame(rows).drop(columns=["kind"], errors="ignore")
    if df.empty:
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss", *EPOCH_METRICS])
    for col in ("train_loss", "val_loss", *EPOCH_METRICS):
        if col not in df.columns:
            df[col] = float("nan")
    num = [c for c in df.columns if c != "improved"]
    df[num] = df[num].apply(pd.to_numeric, errors="coerce")
    return df.sort_values("epoch", kind="stable").reset_index(drop=True)


def step_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The `kind == "step"` records (epoch, step, loss, lr, samples_per_s) sorted by step."""
    rows = [r for r in records if r.get("kind") == "step"]
    if not rows:
        return pd.DataFrame(columns=["epoch", "step", "loss", "lr", "samples_per_s"])
    df = pd.DataFrame(rows).drop(columns=["kind"], errors="ignore")
    return df.sort_values("step", kind="stable").reset_index(drop=True)


def metric_curves(runs: Sequence[RunFolder], metrics: Sequence[str] = EPOCH_METRICS) -> pd.DataFrame:
    """Tidy per-epoch values of several runs: columns run_id, epoch (0-based), metric, value.

    Missing and undefined (null) values are left out, so every row is a point to draw.
    """
    parts = []
    for run in runs:
        ep = epoch_frame(run.metrics()[0])
        keep = [m for m in metrics if m in ep.columns]
        if ep.empty or not keep:
            continue
        long = ep.melt(id_vars=["epoch"], value_vars=keep, var_name="metric", value_name="value")
        long.insert(0, "run_id", run.run_id)
        parts.append(long.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame(columns=["run_id", "epoch", "metric", "value"])
    return pd.concat(parts, ignore_index=True)


_GUARD_BYTES = 64


@dataclass
class MetricsTail:
    """Incremental reader of one metrics.jsonl: `update()` reads only what was appended.

    Keep one per run (the app keeps it in the session state) and call `update()` on each
    refresh. Records are split by kind into `start`, `steps` and `epochs`. When the file shrank
    or the bytes before the offset changed (a resumed run truncates the records of the epoch it
    lost, then appends again), the reader starts over from byte 0.
    """

    path: Path
    offset: int = 0
    start: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    _guard: bytes = b""

    def reset(self) -> None:
        self.offset, self.start, self.steps, self.epochs, self._guard = 0, None, [], [], b""

    def _read_guard(self, end: int) -> bytes:
        if end <= 0:
            return b""
        begin = max(0, end - _GUARD_BYTES)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(begin)
                return fh.read(end - begin)
        except OSError:
            return b""

    def update(self) -> int:
        """Read new complete records; returns how many arrived (0 when nothing changed)."""
        self.path = Path(self.path)
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size < self.offset or (self.offset and self._read_guard(self.offset) != self._guard):
            self.reset()
        if size == self.offset:
            return 0
        records, self.offset = read_jsonl(self.path, self.offset)
        for r in records:
            kind = r.get("kind")
            if kind == "step":
                self.steps.append(r)
            elif kind == "epoch":
                self.epochs.append(r)
            elif kind == "start":
                self.start = r
        self._guard = self._read_guard(self.offset)
        return len(records)

    @property
    def records(self) -> list[dict[str, Any]]:
        """All records read so far (start, then steps, then epochs)."""
        return ([self.start] if self.start else []) + self.steps + self.epochs


def log_tail(path: str | Path, lines: int = 30, max_bytes: int = 64_000) -> str:
    """The last `lines` lines of a text log (reads at most `max_bytes` from its end); "" if absent."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    # A progress bar redraws one line with "\r": keep only what is on screen last.
    rows = [row.rsplit("\r", 1)[-1] for row in text.split("\n")]
    if size > max_bytes and rows:
        rows = rows[1:]  # the first line read is probably cut
    while rows and not rows[-1].strip():
        rows.pop()
    return "\n".join(rows[-lines:])


def eta_seconds(status: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds left for an active run: the ETA written at the last epoch end minus the time since.

    None when the run is not active or has no estimate yet (before its first epoch ends).
    """
    if status.get("state") not in ACTIVE_STATES:
        return None
    eta = status.get("eta_s")
    if not isinstance(eta, (int, float)) or not math.isfinite(eta):
        return None
    try:
        since = (now if now is not None else time.time()) - datetime.fromisoformat(status["updated_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        since = 0.0
    return max(float(eta) - max(since, 0.0), 0.0)


def format_duration(seconds: float | None) -> str:
    """"42 s", "3 min 05 s", "1 h 02 min"; "—" for None."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def epoch_progress(steps: pd.DataFrame, steps_per_epoch: int | None) -> tuple[int, float] | None:
    """(0-based epoch, share of it done) from the last logged step; None before the first step
    or when the steps per epoch are unknown. Gives a moving bar within an epoch (the status file
    only changes at epoch ends)."""
    if steps.empty or not steps_per_epoch:
        return None
    last = steps.iloc[-1]
    epoch, step = int(last["epoch"]), int(last["step"])  # `step` counts optimiser steps taken so far
    done_in_epoch = step - epoch * int(steps_per_epoch)
    return epoch, min(max(done_in_epoch / float(steps_per_epoch), 0.0), 1.0)


def rank_runs(table: pd.DataFrame) -> pd.DataFrame:
    """`runs_table` rows best first (the model pickers' rule, `catalog.run_standing`: finished runs
    by score, then running/stopped ones, then failed or scoreless ones; newest first among equals),
    with two more columns: `usable` (a sensible default) and `label` ("run-x · micro F1 0.912")."""
    if table.empty:
        return table.assign(usable=pd.Series(dtype=bool), label=pd.Series(dtype=object))
    rows = []
    for r in table.itertuples(index=False):
        score = None if pd.isna(r.best_score) else float(r.best_score)
        usable, key = run_standing(r.state, score)
        rows.append((key, usable, run_label(r.run_id, r.state, score, r.monitor)))
    out = table.assign(usable=[u for _, u, _ in rows], label=[lab for _, _, lab in rows],
                       _key=[k for k, _, _ in rows])
    out = out.sort_values("_key", kind="stable").drop(columns="_key")  # stable: newest first among equals
    return out.reset_index(drop=True)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    """The config fields that differ between two runs: columns field (dotted), <run a id>,
    <run b id>; values as text, "—" where a field is absent in one run. The run name and the
    dataset folder count as fields (a different dataset explains most differences)."""
    flat = []
    for run in (a, b):
        cfg, extra = run.read_config()  # RunError names the folder when config.json is broken
        flat.append({**_flatten(to_dict(cfg)), "data_dir": extra.get("data_dir")})
    keys = sorted(set(flat[0]) | set(flat[1]))
    missing = object()
    rows = [(k, flat[0].get(k, missing), flat[1].get(k, missing)) for k in keys]
    rows = [(k, "—" if x is missing else str(x), "—" if y is missing else str(y)) for k, x, y in rows if x != y]
    names = [a.run_id, b.run_id] if a.run_id != b.run_id else [f"{a.run_id} (a)", f"{b.run_id} (b)"]
    return pd.DataFrame(rows, columns=["field", *names])


def delete_run(run: RunFolder) -> None:
    """Delete a run folder. RunError while anything may still train it: its lock is held, or its
    status (checked against the process, `run_status`) is queued or running."""
    owner = current_owner(run.path)
    if owner is not None:
        raise RunError(f"{run.path}: the run is being trained ({owner.describe()}); stop it before deleting it")
    state = run_status(run).get("state")
    if state in ACTIVE_STATES:
        raise RunError(f"{run.path}: the run is {state}; stop it before deleting it")
    try:
        shutil.rmtree(run.path)
    except OSError as exc:
        raise RunError(f"{run.path}: cannot delete the run folder ({exc})") from exc
