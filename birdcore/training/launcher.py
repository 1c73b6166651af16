"""Start, resume and stop training runs — in this process or as background processes.

The app uses `launch_run` (a separate `python -m birdcore train --run DIR` process, argument list,
no shell, own session so the app's restarts do not kill it) and `stop_run` (SIGTERM → the loop
stops between steps with state `stopped`). State lives in the run folders, not in the caller.
Its Training form passes plain values: `run_config(preset, {dotted field: value}, augment, extra)`
builds the `--set` overrides (`run_overrides`) and the validated RunConfig.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from birdcore.config.base import to_dict
from birdcore.config.run import RunConfig, load_run_config, preset
from birdcore.data.dataset import load_dataset
from birdcore.errors import RunError
from birdcore.training.run_lock import current_owner, require_free
from birdcore.training.runs import RunFolder, create_run, now_iso


def config_values(cfg: Any, fields: Iterable[str]) -> dict[str, Any]:
    """`{dotted field: value}` of `cfg` for each name in `fields` (e.g. "train.epochs" → 12): the
    starting values of a form that edits those fields of a preset."""
    out = {}
    for dotted in fields:
        node = cfg
        for part in dotted.split("."):
            node = getattr(node, part)
        out[dotted] = node
    return out


def run_overrides(preset_name: str, values: Mapping[str, Any], augment: Any = None,
                  extra: str | Iterable[str] = ()) -> list[str]:
    """The `key=value` overrides (as `birdcore train --set`) that turn preset `preset_name` into a run
    with `values` (`{dotted field: value}`), in this order:

    - one `field=<JSON of the value>` per entry of `values`;
    - `model.pretrained_path=null` when `values` names another `model.backbone` than the preset's: a
      preset's local weights file belongs to its own backbone, another backbone must not load it;
    - `augment=<JSON>` when `augment` (an `AugmentConfig`, or its dict) is given: the whole section;
    - then `extra`: more `key=value` overrides, as lines of text or a list; blank lines and lines
      starting with `#` are skipped, the rest taken as they are (they come last, so they win).

    Nothing is validated here: `load_run_config(preset_name, overrides)` does that and its
    ConfigError names the field.
    """
    out = [f"{dotted}={json.dumps(value)}" for dotted, value in values.items()]
    if "model.backbone" in values and values["model.backbone"] != preset(preset_name).model.backbone:
        out.append("model.pretrained_path=null")
    if augment is not None:
        out.append(f"augment={json.dumps(augment if isinstance(augment, dict) else to_dict(augment))}")
    lines = extra.splitlines() if isinstance(extra, str) else extra
    out += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return out


def run_config(preset_name: str, values: Mapping[str, Any], augment: Any = None,
               extra: str | Iterable[str] = ()) -> RunConfig:
    """The validated RunConfig of preset `preset_name` with `run_overrides(...)` applied (ConfigError
    naming the field when a value does not fit)."""
    return load_run_config(preset_name, run_overrides(preset_name, values, augment, extra))


def prepare_run(data_dir: str | Path, cfg: RunConfig, runs_dir: str | Path = "runs") -> RunFolder:
    """Validate the dataset (audio present) and config, then create the run folder (state queued)."""
    from birdcore.training.data import (
        select_run_data,  # imports torch: keep it off the app's Training page start-up
    )

    ds = load_dataset(data_dir)
    ds.require_audio()
    data = select_run_data(ds, cfg)
    return create_run(runs_dir, cfg, ds.root, data.classes)


def run_in_process(run: RunFolder, resume: bool = False, progress=None) -> dict:
    """Train `run` here (blocking) and return its final status."""
    from birdcore.training.loop import train

    return train(run, resume=resume, progress=progress)


def launch_run(run: RunFolder, resume: bool = False, extra_env: dict[str, str] | None = None) -> int:
    """Start `python -m birdcore train --run DIR [--resume]` in the background; returns its pid.

    RunError, and no process started, while another process trains `run` (its lock is held): the
    app shows the message. The child takes the lock itself; should another writer win the race in
    between, the child is refused and says so in train.log.
    """
    require_free(run.path)
    args = [sys.executable, "-m", "birdcore", "train", "--run", str(run.path)]
    if resume:
        args.append("--resume")
    env = {**os.environ, **(extra_env or {})}
    env.setdefault("HF_HUB_OFFLINE", "1")
    with open(run.log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, close_fds=True)
    # State stays as it is (queued / stopped / failed): only the child process says "running".
    run.update_status(pid=proc.pid, launched_at=now_iso())
    return proc.pid


def stop_run(run: RunFolder, timeout: float = 0.0) -> bool:
    """Ask a running run to stop (SIGTERM); with `timeout`, wait up to that long for it to end.
    Returns False when it is not running."""
    pid = _trainer_pid(run)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if timeout > 0:
        import time

        deadline = time.time() + timeout
        while time.time() < deadline and run.status().get("state") in ("running", "queued"):
            time.sleep(0.1)
    return True


def _trainer_pid(run: RunFolder) -> int | None:
    """The pid training `run`: the lock owner's while the lock is held (status.json may name an
    earlier process), else that of a launched run still starting up (it takes the lock only then)."""
    owner = current_owner(run.path)
    if owner is not None and owner.pid is not None:
        return owner.pid if owner.here else None  # another machine's pid means nothing here
    st = run.status()
    pid = st.get("pid")
    return pid if st.get("state") in ("running", "queued") and isinstance(pid, int) else None


def check_resumable(run: RunFolder) -> None:
    """RunError unless `run` can be resumed: nobody trains it now — its lock is free, whatever
    status.json says (a "running" status whose lock is free is a trainer that died) — and it has
    not finished."""
    require_free(run.path)
    st = run.status()
    if st.get("state") == "running":  # no lock file: last trained before the lock existed, pid alive
        raise RunError(f"{run.path}: the run is still running (pid {st.get('pid')}); stop it first")
    if st.get("state") == "finished":
        raise RunError(f"{run.path}: the run already finished")
