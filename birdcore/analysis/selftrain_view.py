"""What the app shows of self-training: families as a table of rounds, labels per species, and a
soundscape's pseudo-labels beside a model's scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from birdcore.selftrain import Family, list_families


def families(runs_dir: str | Path) -> list[Family]:
    """Self-training families under `runs_dir`, newest first."""
    return list_families(runs_dir)


def rounds_table(fam: Family) -> pd.DataFrame:
    """One row per round: run, teacher, windows that passed, validation and held-out scores, seconds."""
    return fam.rounds()


def passed_per_species(fam: Family) -> pd.DataFrame:
    """Long table round, species, windows: pseudo-labelled windows that passed the floor (and cap)."""
    rows = [{"round": rec["round"], "species": sp, "windows": n}
            for rec in fam.read()["rounds"] for sp, n in (rec.get("passed") or {}).items()]
    return pd.DataFrame(rows, columns=["round", "species", "windows"])


def window_labels(fam: Family, r: int, file_id: str) -> pd.DataFrame:
    """Round r's pseudo-labels of one recording: start, end (s), then one column per class (empty
    when the round has no table or the recording is not in it)."""
    path = fam.labels_path(r)
    if not path.is_file():
        return pd.DataFrame()
    df = pd.read_csv(path)
    df = df[df["file_id"].astype(str) == str(file_id)].drop(columns=["file_id", "path", "teacher"], errors="ignore")
    end = df.pop("end_time").astype(float)
    df.insert(0, "end", end)
    df.insert(0, "start", end - 5.0)
    return df.reset_index(drop=True)


def unlabeled_soundscapes(root: str | Path) -> list[Path]:
    """The dataset's `unlabeled_soundscapes/` recordings (empty when it has none)."""
    from birdcore.data.unlabeled import UNLABELED_DIR, list_unlabeled
    from birdcore.errors import DatasetError

    if not (Path(root) / UNLABELED_DIR).is_dir():
        return []
    try:
        return list_unlabeled(Path(root) / UNLABELED_DIR)
    except DatasetError:
        return []


def labelled_rounds(fam: Family) -> list[int]:
    """Rounds of `fam` that have a pseudo-label table."""
    return [rec["round"] for rec in fam.read()["rounds"] if rec.get("labels")]


def round_teacher(fam: Family, r: int) -> str:
    """Who labelled round r's windows."""
    rec = next((x for x in fam.read()["rounds"] if x.get("round") == r), {})
    return str(rec.get("teacher") or "—")


def labels_beside_scores(fam: Family, r: int, file_id: str, probs: pd.DataFrame | None) -> pd.DataFrame:
    """Per window of one recording: start, end, then for each class with a target somewhere in it,
    its pseudo-label and (when `probs`, a `recording_probs` table, is given) the model's score `p:<class>`."""
    labels = window_labels(fam, r, file_id)
    if labels.empty:
        return labels
    classes = [c for c in labels.columns[2:] if (labels[c] > 0).any()]
    out = labels[["start", "end", *classes]].copy()
    if probs is not None:
        p = probs.set_index(probs["end"].astype(float))
        for c in classes:
            if c in p.columns:
                out[f"p:{c}"] = out["end"].map(p[c]).round(3)
    return out[["start", "end", *[x for c in classes for x in (c, f"p:{c}") if x in out.columns]]]
