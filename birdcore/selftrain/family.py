"""A self-training family: its folder, its state, and running (or resuming) its rounds.

    <runs>/selftrain-<stamp>-<name>-<token>/
        selftrain.json        what the family is (data, run config, SelfTrainConfig) and where each
                              round stands: its pseudo-label table, its run folder, its measurements
        labels/round-<r>.csv  the pseudo-label table round r trains on (round >= 1)
        labels/round-<r>-scores.csv   the teacher's raw window scores it was made from
        rounds.csv            the rounds table (rewritten after every round)
    <runs>/<stamp>-<name>-r<r>-<token>/   round r: an ordinary run folder

Resumable after a kill at any point: every file is written atomically and `selftrain.json` is
rewritten after each step (labels written, run created, run finished, round measured), so a
restart redoes at most the step that was cut off; a run folder that was created but not yet
recorded is found again by its config name; an unfinished round resumes its run from `last.pt`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from birdcore.atomic_io import atomic_path, atomic_write_json
from birdcore.config.base import from_dict, to_dict
from birdcore.config.pseudo import SelfTrainConfig
from birdcore.config.run import RunConfig, load_run_config
from birdcore.data.dataset import load_dataset
from birdcore.data.unlabeled import list_unlabeled, read_unlabeled_truth
from birdcore.errors import ConfigError, RunError, not_found_message
from birdcore.pretrained.teacher import passed_per_class, write_pseudo_labels
from birdcore.selftrain.measure import heldout_scores, label_quality, validation_scores
from birdcore.selftrain.teachers import label_windows, score_windows, teacher_name
from birdcore.training.launcher import prepare_run, run_in_process
from birdcore.training.runs import RunFolder, list_runs

FAMILY_FILE = "selftrain.json"
ROUNDS_TABLE = "rounds.csv"
Say = Callable[[str], None]


@dataclass
class Family:
    """A self-training family folder (`create_family` / `open_family`)."""

    path: Path

    @property
    def state_path(self) -> Path:
        return self.path / FAMILY_FILE

    def labels_path(self, r: int) -> Path:
        """Round r's pseudo-label table."""
        return self.path / "labels" / f"round-{r}.csv"

    def scores_path(self, r: int) -> Path:
        """The teacher's raw window scores behind round r's table."""
        return self.path / "labels" / f"round-{r}-scores.csv"

    def read(self) -> dict[str, Any]:
        """The family's state (`selftrain.json`); RunError naming the file when unreadable."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.state_path}: not found — is {self.path} a self-training folder?") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{self.state_path}: not valid JSON ({exc})") from None
        if not isinstance(state, dict) or not isinstance(state.get("rounds"), list):
            raise RunError(f"{self.state_path}: not a self-training state (no 'rounds' list)")
        return state

    def write(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.state_path, state)

    def config(self) -> SelfTrainConfig:
        """The family's SelfTrainConfig."""
        try:
            return from_dict(SelfTrainConfig, self.read().get("selftrain", {}))
        except ConfigError as exc:
            raise RunError(f"{self.state_path}: {exc}") from None

    def rounds(self) -> pd.DataFrame:
        """The rounds table: one row per round that has a run (measured columns once finished)."""
        return pd.DataFrame([_table_row(r) for r in self.read()["rounds"] if r.get("run")])


def create_family(data_dir: str | Path, config: str, overrides: list[str], st: SelfTrainConfig,
                  runs_dir: str | Path = "runs", device: str | None = None) -> Family:
    """Check everything a family needs before any work (dataset, run config, unlabeled audio, a
    teacher run's folder), then create its folder under `runs_dir` with its state."""
    ds = load_dataset(data_dir)
    ds.require_audio()
    cfg = _base_config(config, overrides, device)
    unlabeled = list_unlabeled(st.unlabeled or ds.root)
    for flag, t in [("--teacher", t) for t in st.teacher] + [("--round0", st.round0)] * bool(st.round0):
        if t not in ("previous", "birdnet") and not (Path(t) / "config.json").is_file():
            raise ConfigError(f"{flag} {t}: " + (not_found_message(Path(t), "run folder") if not Path(t).exists()
                                                  else "not a run folder (no config.json)"))
    if st.round0:
        from birdcore.training.data import select_run_data

        if RunFolder(Path(st.round0)).status().get("state") != "finished":
            raise ConfigError(f"--round0 {st.round0}: the run has not finished")
        if RunFolder(Path(st.round0)).classes != select_run_data(ds, cfg).classes:
            raise ConfigError(f"--round0 {st.round0}: its classes differ from those of --data with --config")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.name).strip("-") or "run"
    token = secrets.token_hex(2)
    path = Path(runs_dir) / f"selftrain-{stamp}-{safe}-{token}"
    path.mkdir(parents=True)
    fam = Family(path)
    fam.write({"data_dir": str(ds.root.resolve()), "config": str(config), "overrides": list(overrides),
               "device": device, "runs_dir": str(Path(runs_dir).resolve()), "name": f"{safe}-{token}",
               "selftrain": to_dict(st), "unlabeled": str(Path(unlabeled[0]).parent.resolve()),
               "n_unlabeled_files": len(unlabeled), "rounds": []})
    return fam


def open_family(path: str | Path) -> Family:
    """An existing family folder; RunError when `path` is not one."""
    p = Path(path)
    if not p.is_dir():
        raise RunError(not_found_message(p, "self-training folder") if not p.exists() else f"{p}: not a folder")
    fam = Family(p)
    fam.read()
    return fam


def list_families(runs_dir: str | Path) -> list[Family]:
    """Self-training families under `runs_dir`, newest first."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    return sorted((Family(p) for p in d.iterdir() if (p / FAMILY_FILE).is_file()), key=lambda f: f.path.name,
                  reverse=True)


def run_family(fam: Family, say: Say = print) -> pd.DataFrame:
    """Run every round not yet done (round 0, then 1..rounds) and return the rounds table.

    A round already measured is skipped; a round whose labels or run exist picks up from there.
    """
    state = fam.read()
    st = fam.config()
    ds = load_dataset(state["data_dir"])
    unlabeled = list_unlabeled(state["unlabeled"])
    truth = read_unlabeled_truth(Path(state["unlabeled"]).parent)  # measurement only
    for r in range(st.rounds + 1):
        rounds = state["rounds"]
        if len(rounds) <= r:
            rounds.append({"round": r})
            fam.write(state)
        rec = rounds[r]
        if rec.get("done"):
            continue
        t0 = time.time()
        if r >= 1 and not rec.get("labels"):
            _make_labels(fam, state, st, r, unlabeled, truth, say)
        if not rec.get("run"):
            rec["run"] = str(Path(st.round0).resolve()) if r == 0 and st.round0 else \
                str(_create_round_run(fam, state, r).path)
            fam.write(state)
        run = RunFolder(Path(rec["run"]))
        if run.status().get("state") != "finished":
            say(f"round {r}: training {run.path}" + (" (resumed)" if run.last_checkpoint.exists() else ""))
            t_train = time.time()
            status = run_in_process(run, resume=True)
            rec["train_s"] = round(rec.get("train_s", 0.0) + time.time() - t_train, 1)
            if status.get("state") != "finished":
                fam.write(state)
                raise RunError(f"round {r}: run {run.path} ended {status.get('state')}; resume the family to continue")
        rec.update(validation_scores(run))
        rec.update(heldout_scores(run, ds))
        rec["round_s"] = round(rec.get("label_s", 0.0) + rec.get("train_s", 0.0), 1)
        rec["done"] = True
        rec["elapsed_s"] = round(time.time() - t0, 1)
        fam.write(state)
        _write_table(fam)
        say(f"round {r}: " + ", ".join(f"{k} {rec[k]}" for k in ("val_score", "heldout_birdclef2022",
                                                                  "heldout_macro_auc") if rec.get(k) is not None))
    return fam.rounds()


def _base_config(config: str, overrides: list[str], device: str | None) -> RunConfig:
    cfg = load_run_config(config, overrides)
    if device:
        cfg.train.device = device
    if cfg.family != "cnn":
        raise ConfigError(f"--config {config}: self-training trains the cnn family, not {cfg.family!r}")
    if cfg.pseudo.enabled:
        raise ConfigError("pseudo.labels: self-training makes each round's table itself; leave it empty")
    return cfg


def teacher_of(state: dict, st: SelfTrainConfig, r: int) -> list[str]:
    """Round r's teacher: the configured one for round 1 (round 0's model for "previous"), else
    the round before, or with `later_teacher="rounds"` every earlier round's run plus the
    configured run folders (BirdNET and "previous" are not runs: they do not join)."""
    if r == 1 and st.teacher != ["previous"]:
        return list(st.teacher)
    if r >= 2 and st.later_teacher == "rounds":
        extra = [t for t in st.teacher if t not in ("previous", "birdnet")]
        return [*extra, *(state["rounds"][k]["run"] for k in range(r))]
    return [state["rounds"][r - 1]["run"]]


def _make_labels(fam: Family, state: dict, st: SelfTrainConfig, r: int, unlabeled: list[Path],
                 truth: pd.DataFrame | None, say: Say) -> None:
    rec = state["rounds"][r]
    teacher = teacher_of(state, st, r)
    name = teacher_name(teacher)
    classes = RunFolder(Path(state["rounds"][0]["run"])).classes
    say(f"round {r}: labelling {len(unlabeled)} unlabeled recording(s) with {name}")
    t0 = time.time()
    scores = score_windows(teacher, unlabeled, classes, taxonomy_csv=_taxonomy(state))
    table = label_windows(scores, unlabeled, classes, st.labels, name)
    with atomic_path(fam.scores_path(r), suffix=".csv") as tmp:
        scores.to_csv(tmp, index=False, float_format="%.6g")
    write_pseudo_labels(fam.labels_path(r), table)
    passed = passed_per_class(table, classes)
    rec.update({"labels": str(fam.labels_path(r).resolve()), "teacher": name, "windows": len(table),
                "passed": passed, "passed_windows": int((table[classes].to_numpy() > 0).any(axis=1).sum()),
                "label_s": round(time.time() - t0, 1)})
    rec.update(label_quality(scores, truth, classes, st.labels.floor))
    fam.write(state)


def _taxonomy(state: dict) -> str | None:
    p = Path(state["data_dir"]) / "eBird_Taxonomy_v2021.csv"
    return str(p) if p.is_file() else None


def _round_name(state: dict, r: int) -> str:
    return f"{state['name']}-r{r}"


def _create_round_run(fam: Family, state: dict, r: int) -> RunFolder:
    """Round r's run folder: found again when a kill landed right after creating it, else new."""
    name = _round_name(state, r)
    for run in list_runs(state["runs_dir"]):
        try:
            if run.read_config()[0].name == name:
                return run
        except RunError:
            continue
    cfg = _base_config(state["config"], state["overrides"], state.get("device"))
    cfg.name = name
    rec = state["rounds"][r]
    if r >= 1:
        cfg.pseudo.labels = rec["labels"]
        cfg.pseudo.teacher = rec["teacher"]
    return prepare_run(state["data_dir"], cfg, state["runs_dir"])


def _table_row(rec: dict) -> dict:
    cols = ("round", "run", "teacher", "windows", "passed_windows", "val_score", "val_birdclef2022", "val_macro_auc",
            "heldout_birdclef2022", "heldout_macro_auc", "teacher_unlabeled_macro_auc", "label_s", "train_s",
            "round_s", "done")
    row = {c: rec.get(c) for c in cols}
    row["run"] = Path(rec["run"]).name if rec.get("run") else None
    row["teacher"] = _short_teacher(rec.get("teacher"))
    return row


def _short_teacher(name: str | None) -> str | None:
    if not name:
        return None
    return "+".join(Path(t).name if "/" in t else t for t in name.split("+"))


def _write_table(fam: Family) -> None:
    with atomic_path(fam.path / ROUNDS_TABLE, suffix=".csv") as tmp:
        fam.rounds().to_csv(tmp, index=False)
