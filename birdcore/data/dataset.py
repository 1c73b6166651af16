"""The typed BirdCLEF 2022 dataset object (`load_dataset`).

Reads the Kaggle layout:

    DATA/train_metadata.csv            required
    DATA/train_audio/<code>/XC*.ogg    optional (metadata-only folders work for EDA / info)
    DATA/eBird_Taxonomy_v2021.csv      optional (names; validates species codes when present)
    DATA/scored_birds.json             optional (no scored subset when absent)
    DATA/test.csv, sample_submission.csv, test_soundscapes/*.ogg   optional
    DATA/test_labels.csv               optional ground truth (the demo dataset ships one)

Class ids are the positions in the sorted list of species named as a primary or a secondary label
(a species heard only in the background still gets a class), so the same folder always gives the
same ids. Rows labelled `nocall` (`NEGATIVE_LABEL`) are negatives: all-zero targets, never a class.
Rows may stand for a span of their file (`start_s`, `end_s`; see `metadata.SPAN_COLUMNS`). Operations that need audio call `require_audio()`, which lists every missing file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.audio.io import AUDIO_EXTENSIONS
from birdcore.data.metadata import (  # noqa: F401
    NEGATIVE_LABEL,
    TEST_COLUMNS,
    read_csv_checked,
    read_taxonomy,
    read_test_table,
    read_train_metadata,
)
from birdcore.errors import DatasetError, not_found_message


@dataclass
class BirdDataset:
    """A loaded dataset folder. Build it with `load_dataset(root)`."""

    root: Path
    metadata: pd.DataFrame
    species: list[str]
    scored: list[str]
    taxonomy: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    sample_submission: pd.DataFrame | None = None
    test_labels: pd.DataFrame | None = None
    soundscapes: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # ---- classes ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes (species named as a primary or secondary label; not `nocall`)."""
        return len(self.species)

    @property
    def species_index(self) -> dict[str, int]:
        """Species code → class id."""
        return {s: i for i, s in enumerate(self.species)}

    def species_table(self) -> pd.DataFrame:
        """One row per class: code, common and scientific name, recording count, scored flag."""
        counts = self.metadata["primary_label"].value_counts()
        names = self.metadata.drop_duplicates("primary_label").set_index("primary_label")
        rows = []
        for code in self.species:
            common = names.at[code, "common_name"] if code in names.index else ""
            sci = names.at[code, "scientific_name"] if code in names.index else ""
            if self.taxonomy is not None and code in self.taxonomy.index:
                common = common or self.taxonomy.at[code, "PRIMARY_COM_NAME"]
                sci = sci or self.taxonomy.at[code, "SCI_NAME"]
            rows.append({"species": code, "common_name": common, "scientific_name": sci,
                         "recordings": int(counts.get(code, 0)), "scored": code in self.scored})
        return pd.DataFrame(rows)

    def common_name(self, code: str) -> str:
        """Common name of a species code (taxonomy first, then metadata; the code when unknown)."""
        if self.taxonomy is not None and code in self.taxonomy.index:
            return str(self.taxonomy.at[code, "PRIMARY_COM_NAME"])
        hit = self.metadata.loc[self.metadata["primary_label"] == code, "common_name"]
        return str(hit.iloc[0]) if len(hit) and hit.iloc[0] else code

    def targets(self, secondary_weight: float = 1.0, rows: np.ndarray | None = None) -> np.ndarray:
        """Multi-hot targets (N, C) float32: primary = 1, secondary = `secondary_weight`."""
        meta = self.metadata if rows is None else self.metadata.iloc[rows]
        idx = self.species_index
        y = np.zeros((len(meta), self.num_classes), dtype=np.float32)
        for r, (prim, secs) in enumerate(zip(meta["primary_label"], meta["secondary_labels"])):
            for s in secs:
                y[r, idx[s]] = max(y[r, idx[s]], secondary_weight)
            if prim != NEGATIVE_LABEL:  # a negative keeps an all-zero row
                y[r, idx[prim]] = 1.0
        return y

    def spans(self, rows: np.ndarray | None = None) -> list[tuple[float, float] | None]:
        """Per row, the (start_s, end_s) span of its file it stands for, or None for the whole file."""
        meta = self.metadata if rows is None else self.metadata.iloc[rows]
        return [None if np.isnan(a) else (float(a), float(b)) for a, b in zip(meta["start_s"], meta["end_s"])]

    # ---- audio -----------------------------------------------------------------------------
    @property
    def train_audio_dir(self) -> Path:
        return self.root / "train_audio"

    @property
    def has_train_audio(self) -> bool:
        """True when the `train_audio/` folder exists (files may still be missing)."""
        return self.train_audio_dir.is_dir()

    def audio_paths(self) -> list[Path]:
        """Absolute path of every recording, in metadata order."""
        base = self.train_audio_dir
        return [base / f for f in self.metadata["filename"]]

    def missing_audio(self) -> list[str]:
        """Filenames listed in the metadata whose audio file does not exist."""
        return [f for f, p in zip(self.metadata["filename"], self.audio_paths()) if not p.is_file()]

    def require_audio(self) -> None:
        """Raise DatasetError listing *all* missing training audio files (first 10 named)."""
        if not self.has_train_audio:
            raise DatasetError(
                f"{self.train_audio_dir}: folder not found — this dataset has metadata only. Download"
                " the BirdCLEF audio from Kaggle and unzip it so train_audio/<species>/*.ogg exists"
            )
        missing = self.missing_audio()
        if missing:
            shown = ", ".join(missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise DatasetError(
                f"{self.train_audio_dir}: {len(missing)} of {len(self.metadata)} audio files listed in"
                f" train_metadata.csv are missing: {shown}{more}"
            )

    def require_soundscapes(self) -> list[Path]:
        """The test soundscapes, or DatasetError when there are none."""
        if not self.soundscapes:
            raise DatasetError(f"{self.root / 'test_soundscapes'}: no soundscape audio files found")
        return self.soundscapes

    # ---- summary ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """Counts for `birdcore info` and the app's home page."""
        m = self.metadata
        return {
            "root": str(self.root),
            "recordings": int(len(m)),
            "species": self.num_classes,
            "scored_species": len(self.scored),
            "with_secondary_labels": int((m["secondary_labels"].map(len) > 0).sum()),
            "negatives": int((m["primary_label"] == NEGATIVE_LABEL).sum()),
            "rating_histogram": {f"{k:.1f}": int(v) for k, v in m["rating"].value_counts().sort_index().items()},
            "train_audio": self.has_train_audio,
            "soundscapes": len(self.soundscapes),
            "test_rows": 0 if self.test is None else int(len(self.test)),
            "has_test_labels": self.test_labels is not None,
            "notes": list(self.notes),
        }


def load_dataset(root: str | os.PathLike) -> BirdDataset:
    """Load and validate a BirdCLEF-layout folder; raises DatasetError naming file, row and fix."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(not_found_message(root, "dataset folder"))
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (point at the folder holding train_metadata.csv)")
    root = root.resolve()
    meta_path = root / "train_metadata.csv"
    if not meta_path.exists():
        raise DatasetError(
            f"{meta_path}: train_metadata.csv not found — point at the unzipped BirdCLEF folder"
            " (the one holding train_metadata.csv and train_audio/)"
        )
    metadata = read_train_metadata(meta_path)
    notes: list[str] = []

    named = set(metadata["primary_label"]) | {s for secs in metadata["secondary_labels"] for s in secs}
    if NEGATIVE_LABEL in {s for secs in metadata["secondary_labels"] for s in secs}:
        row = next(i for i, secs in enumerate(metadata["secondary_labels"]) if NEGATIVE_LABEL in secs)
        raise DatasetError(f"{meta_path}: line {row + 2}, column secondary_labels: {NEGATIVE_LABEL!r} is not a species"
                           " (it marks a row with no bird: use it as the primary_label of such a row)")
    species = sorted(named - {NEGATIVE_LABEL})
    known = set(species)

    taxonomy = None
    tax_path = root / "eBird_Taxonomy_v2021.csv"
    if tax_path.exists():
        taxonomy = read_taxonomy(tax_path)
        not_in_tax = [s for s in species if s not in taxonomy.index]
        if not_in_tax:
            bad = set(not_in_tax)
            prim = np.flatnonzero(metadata["primary_label"].isin(bad).to_numpy())
            if len(prim):
                where = f"line {int(prim[0]) + 2}, column primary_label"
            else:
                row = next(i for i, secs in enumerate(metadata["secondary_labels"]) if set(secs) & bad)
                where = f"line {row + 2}, column secondary_labels"
            raise DatasetError(
                f"{meta_path}: {where}: unknown species code"
                f" {', '.join(not_in_tax[:5])} (not in {tax_path.name}); check the spelling"
            )
    else:
        notes.append("eBird_Taxonomy_v2021.csv not found: names come from train_metadata.csv")

    scored = _read_scored(root / "scored_birds.json", known, notes)
    test, sample = _read_test_tables(root, notes)
    labels = None
    labels_path = root / "test_labels.csv"
    if labels_path.exists():
        labels = read_csv_checked(labels_path, "test_labels.csv", ["row_id", "target"])
        labels["target"] = _parse_bool_column(labels["target"], labels_path)

    sc_dir = root / "test_soundscapes"
    # is_file: a folder named `x.ogg` is no soundscape (pages would open on it by default)
    soundscapes = sorted(p for p in sc_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()) \
        if sc_dir.is_dir() else []
    if not (root / "train_audio").is_dir():
        notes.append("train_audio/ not found: metadata only (EDA and info work; training needs the audio)")
    return BirdDataset(root=root, metadata=metadata, species=species, scored=scored, taxonomy=taxonomy,
                       test=test, sample_submission=sample, test_labels=labels, soundscapes=soundscapes,
                       notes=notes)


def _read_scored(path: Path, known: set[str], notes: list[str]) -> list[str]:
    if not path.exists():
        notes.append("scored_birds.json not found: no scored subset (all species count)")
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); expected a list of species codes") from None
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise DatasetError(f"{path}: expected a JSON list of species codes like [\"akiapo\", \"aniani\"]")
    unknown = [s for s in data if s not in known]
    if unknown:
        raise DatasetError(
            f"{path}: scored species {', '.join(unknown[:5])} have no recordings in train_metadata.csv"
        )
    return list(dict.fromkeys(data))


def _read_test_tables(root: Path, notes: list[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    test = None
    test_path = root / "test.csv"
    if test_path.exists():
        test = read_test_table(test_path)
    else:
        notes.append("test.csv not found: submission export is unavailable")
    sample = None
    sample_path = root / "sample_submission.csv"
    if sample_path.exists():
        sample = read_csv_checked(sample_path, "sample_submission.csv", ["row_id", "target"])
    return test, sample


def _parse_bool_column(values: pd.Series, path: Path) -> pd.Series:
    mapping = {"true": True, "false": False, "1": True, "0": False}
    low = values.str.strip().str.lower()
    bad = ~low.isin(list(mapping))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path}: line {i + 2}, column target: {values.iloc[i]!r} is not True/False")
    return low.map(mapping).astype(bool)
