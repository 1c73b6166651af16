"""Run folders: `runs/<run-id>/` holding everything about one training run.

    config.json            the resolved RunConfig (plus `data_dir`)
    status.json            state (queued/running/finished/failed/stopped), pid, timestamps, epoch,
                           best score, error + traceback — rewritten atomically
    metrics.jsonl          one JSON object per line, appended live: {"kind": "step", ...} and
                           {"kind": "epoch", ...}
    checkpoints/last.pt    model + optimiser + loop state (resume point), written atomically
    checkpoints/best.pt    model weights of the best epoch
    oof_predictions.parquet  the best epoch's validation predictions (recording × species
                           probabilities `p:<code>` and targets `t:<code>`) for the threshold tuner
    thresholds.json        written by `tune-thresholds` / the app
    train.log              stdout/stderr of a launched run
    train.lock             held (flock) by the one process training the run, which writes its pid
                           there; the kernel drops it when that process dies (see `run_lock`)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from birdcore.atomic_io import (
    append_line,
    atomic_write_json,
    file_lock,
    read_jsonl,
    stray_temp_files,
    write_failure_reason,
)
from birdcore.config.base import from_dict, to_dict
from birdcore.config.run import RunConfig
from birdcore.errors import ConfigError, RunError, not_found_message
from birdcore.evaluation.thresholds import THRESHOLDS_FILE
from birdcore.training.run_lock import current_owner, lock_file

STATES = ("queued", "running", "finished", "failed", "stopped")
_RUN_ID = re.compile(r"^[A-Za-z0-9._-]+$")


def now_iso() -> str:
    """UTC timestamp in ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunFolder:
    """Accessors for one run folder. Cheap to create; reads files on demand."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def oof_path(self) -> Path:
        return self.path / "oof_predictions.parquet"

    @property
    def thresholds_path(self) -> Path:
        return self.path / THRESHOLDS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    def remove_stray_temps(self) -> list[Path]:
        """Delete temp files a killed training process left (checkpoints, OOF table); returns them.

        Only the training process writes these targets, so call it when (re)starting training,
        before anything is written; other files of the folder (status, thresholds) are left alone.
        """
        strays = stray_temp_files(self.path / "checkpoints") + stray_temp_files(self.path, self.oof_path.name)
        for p in strays:
            p.unlink(missing_ok=True)
        return strays

    # ---- config ---------------------------------------------------------------------------
    def read_config(self) -> tuple[RunConfig, dict[str, Any]]:
        """(RunConfig, extra) where extra holds `data_dir` and `classes` saved beside it."""
        try:
            raw = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.config_path}: not found — is {self.path} a run folder?") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.config_path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        extra = {k: raw.pop(k) for k in ("data_dir", "classes") if k in raw}
        try:
            return from_dict(RunConfig, raw), extra
        except ConfigError as exc:
            raise RunError(f"{self.config_path}: {exc}") from None

    def write_config(self, cfg: RunConfig, data_dir: str | Path, classes: list[str]) -> None:
        payload = to_dict(cfg)
        payload["data_dir"] = str(data_dir)
        payload["classes"] = list(classes)
        atomic_write_json(self.config_path, payload)

    @property
    def classes(self) -> list[str]:
        """The class list the model was trained on (saved in config.json)."""
        return list(self.read_config()[1].get("classes", []))

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The status dict; `{"state": "unknown"}` when status.json is absent or unreadable.

        "running" / "queued" are checked against the truth: a run whose trainer is gone (SIGKILL,
        OOM, reboot) reads `failed` with `stale: True` and an error that says to resume. While the
        run's lock is held, `pid` is its owner's (see `run_lock`).
        """
        data = self._read_status()
        if data is None:
            return {"state": "unknown"}
        if data.get("state") not in ("running", "queued"):
            return data
        alive, owner_pid = self._trainer_alive(data)
        if alive:
            if owner_pid is not None:
                data["pid"] = owner_pid
            return data
        again = self._read_status()  # the trainer may have written its final state after our first read
        if again is not None and again.get("state") != data.get("state"):
            return again
        return _stale(data)

    def _read_status(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _trainer_alive(self, data: dict[str, Any]) -> tuple[bool, int | None]:
        """(whether the process a running / queued status speaks of lives, the lock owner's pid).

        The run lock is the truth: the kernel drops it when its holder dies, and pids get reused.
        Without a lock file (a run last trained before the lock existed) the status pid decides; a
        queued run's launched process takes the lock only once started, so its pid counts too.
        """
        try:
            owner = current_owner(self.path)
            has_lock_file = lock_file(self.path).exists()
        except OSError:  # lock file unreadable here: fall back on the pid
            owner, has_lock_file = None, False
        if owner is not None:
            return True, owner.pid if owner.here else None
        pid = data.get("pid")
        if data.get("state") == "running":
            return (not has_lock_file and pid_alive(pid)), None
        return (pid is None or pid_alive(pid)), None  # queued: prepared (no pid) or still starting

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomic rewrite) and return the new dict."""
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown run state {fields['state']!r}")
        with file_lock(self.status_path):  # the launcher and the run process both update it
            try:
                data = json.loads(self.status_path.read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                data = {}
            data.update(fields)
            data["updated_at"] = now_iso()
            atomic_write_json(self.status_path, data)
        return data

    # ---- metrics --------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics record (a line of JSON) with a wall-clock timestamp."""
        record = {"time": round(time.time(), 3), **record}
        append_line(self.metrics_path, json.dumps(record, default=_json_num))

    def metrics(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Records from byte `offset` on, and the next offset (for incremental readers)."""
        return read_jsonl(self.metrics_path, offset)

    def metrics_size(self) -> int:
        return self.metrics_path.stat().st_size if self.metrics_path.exists() else 0

    def truncate_metrics(self, size: int) -> None:
        """Drop metrics written after byte `size` (those of an epoch lost to a crash)."""
        if self.metrics_path.exists() and self.metrics_path.stat().st_size > size:
            with open(self.metrics_path, "r+b") as fh:
                fh.truncate(size)
                fh.flush()
                os.fsync(fh.fileno())

    def epoch_records(self) -> list[dict[str, Any]]:
        return [r for r in self.metrics()[0] if r.get("kind") == "epoch"]

    def summary(self) -> dict[str, Any]:
        """One row for run lists: id, name, state, epochs, best score and when."""
        st = self.status()
        try:
            cfg, _ = self.read_config()
            name, monitor = cfg.name, cfg.train.monitor
        except RunError:
            name, monitor = "?", "?"
        return {
            "run_id": self.run_id, "name": name, "state": st.get("state", "unknown"),
            "epoch": st.get("epoch"), "epochs": st.get("epochs"), "monitor": monitor,
            "best_score": st.get("best_score"), "best_epoch": st.get("best_epoch"),
            "created_at": st.get("created_at"), "path": str(self.path),
        }


def create_run(runs_dir: str | Path, cfg: RunConfig, data_dir: str | Path, classes: list[str]) -> RunFolder:
    """Create a new run folder (unique id; two runs started at once never clash)."""
    runs_dir = Path(runs_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.name).strip("-") or "run"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            path = runs_dir / f"{stamp}-{safe}-{secrets.token_hex(2)}"
            try:
                path.mkdir()  # exclusive: fails if another process took the name
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of a 16-bit token in one second
            raise RunError(f"{runs_dir}: could not create a unique run folder")
    except OSError as exc:  # read-only folder or file system, disk full
        raise RunError(f"{runs_dir}: cannot create a run folder: {write_failure_reason(exc)}") from exc
    run = RunFolder(path)
    try:
        (path / "checkpoints").mkdir()
        run.write_config(cfg, Path(data_dir).resolve(), classes)
        run.update_status(state="queued", created_at=now_iso(), epochs=cfg.train.epochs)
    except OSError as exc:
        # Leave no half-made run folder behind (it would list as a broken run).
        shutil.rmtree(path, ignore_errors=True)
        raise RunError(f"{path}: cannot create the run folder: {write_failure_reason(exc)}") from exc
    return run


def open_run(path: str | Path, runs_dir: str | Path | None = None) -> RunFolder:
    """Open an existing run folder, by path or by id under `runs_dir`; RunError when not a run.

    With `runs_dir`, `path` must be a plain run id (letters, digits, `.`, `_`, `-`; not `.`/`..`):
    ids typed in the app or a URL can never reach outside the runs folder. Without it, a path.
    """
    p = Path(path)
    if runs_dir is not None:
        # Only a plain name resolves under runs_dir; "../x", "a/b", "/abs" or "" never do.
        text = str(path)
        if not _RUN_ID.match(text) or text in (".", ".."):
            raise RunError(f"{text!r}: not a valid run id (letters, digits, '.', '_' and '-' only)")
        p = Path(runs_dir) / text
    if not p.exists():
        raise RunError(not_found_message(p, "run folder"))
    if not (p / "config.json").is_file():
        raise RunError(f"{p}: not a run folder (no config.json)")
    return RunFolder(p)


def list_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Run folders under `runs_dir`, newest first."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    runs = [RunFolder(p) for p in d.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)


def _stale(data: dict[str, Any]) -> dict[str, Any]:
    """A running / queued status whose process is gone, reported as `failed` (`stale: True`)."""
    # (a running run's status holds "error": null, so setdefault would keep the null)
    if data.get("state") == "running":  # died without a word (SIGKILL, OOM, reboot)
        error = "the training process is gone (killed?); resume with birdcore train --resume"
    else:  # launched, but the process died before it could say "running" (killed during start-up)
        error = "the training process exited during start-up (killed?); resume with birdcore train --resume"
    return {**data, "state": "failed", "error": data.get("error") or error, "stale": True}


def pid_alive(pid: Any) -> bool:
    """Whether a process with this pid exists (False for a missing or invalid pid)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _json_num(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(type(obj).__name__)
