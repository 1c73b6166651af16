"""Write the embedded demo dataset in the exact BirdCLEF 2022 Kaggle layout.

    out_dir/
      train_metadata.csv          13 columns, same order and quoting as Kaggle's
      train_audio/<code>/XC<id>.ogg   mono 32 kHz Ogg Vorbis, 3-30 s
      eBird_Taxonomy_v2021.csv    UTF-8 BOM, CRLF, Kaggle header; the demo species only
      scored_birds.json           the scored subset
      test_soundscapes/soundscape_<digits>.ogg   60-s soundscapes
      test.csv, sample_submission.csv           as on Kaggle
      test_labels.csv             ground truth (row_id,target) for test.csv
      test_events.csv             every placed call: file_id,species,start,end (seconds)
      unlabeled_soundscapes/soundscape_<digits>.ogg   60-s soundscapes with no labels (BirdCLEF 2024-2025
                                  name), for self-training; any of the 14 species may call in them
      unlabeled_truth.csv         their truth per 5-s window (file_id,end_time,<every species> 0/1), kept
                                  aside for measurement only: no training code reads it
      .birdcore-demo.json         marker, written last: {"version", "seed", ..., "files": {path: sha256}}

Everything is synthesised from `seed` (same seed -> same CSV bytes and same decoded audio; the Ogg
container bytes differ only in the stream serial number libsndfile picks at random, which the
marker's checksums leave out, so the marker is the same too). The dataset is built in a hidden
temp folder beside `out_dir`, then `birdcore.demo.install` brings it in: a new folder is renamed
into place whole; an existing demo folder (a repair: a file missing, another seed or version) only
gets the demo's own files, one rename each, the marker last, and every other file in it (the app's
annotations/, runs, notes, extra recordings) is left alone; a user's file where a demo file goes
stops the repair before it changes anything. Only `overwrite=True` (`--overwrite`) replaces the
folder, and says so. See `birdcore.demo.install` for what it guarantees.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import pandas as pd
import soundfile as sf

from birdcore.atomic_io import file_lock
from birdcore.demo import scenes
from birdcore.demo.install import (
    MARKER_NAME,
    OWN_NAME,
    check_ensure_target,
    check_target,
    merge_into,
    read_marker,
    replace_folder,
    written_files,
)
from birdcore.demo.voices import SAMPLE_RATE, SPECIES, SPECIES_BY_CODE, Species

DEMO_VERSION = 2  # bump whenever the generated files change, so ensure_demo_dataset rebuilds old copies
DEFAULT_N_SOUNDSCAPES = 8
DEFAULT_N_UNLABELED = 12
UNLABELED_DIR = "unlabeled_soundscapes"
UNLABELED_TRUTH = "unlabeled_truth.csv"
_MAX_WORKERS = 2
T = TypeVar("T")
R = TypeVar("R")

METADATA_COLUMNS = ["primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
                    "common_name", "author", "license", "rating", "time", "url", "filename"]
TAXONOMY_COLUMNS = ["TAXON_ORDER", "CATEGORY", "SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME", "ORDER1",
                    "FAMILY", "SPECIES_GROUP", "REPORT_AS"]
# Scored subset: common and rare species alike, as in the real competition.
SCORED_BIRDS = ("zzasc1", "zzcro1", "zzhar1", "zzrat1", "zzsti1", "zztri1", "zztwo1")

# (latitude, longitude, spread in degrees) of the few regions the demo species live in.
REGIONS = {"cloudforest": (10.30, -84.80, 0.25), "temperate": (47.10, 8.30, 0.6), "savanna": (-1.45, 35.10, 0.5),
           "coast": (-33.90, 18.45, 0.3), "island": (19.60, -155.50, 0.2)}
AUTHORS = ("Mara Lindqvist", "Tobias Okonkwo", "Ines Varga-Holm", "Rafael Quintana Ruiz", "Yuki Tanabe-Moreau",
           "Eleanor Pryce", "Kofi Mensah-Bauer", "Sanne de Wilde", "Arjun Kaleb", "Lucía Ferreyra",
           "Henrik Aalto", "Priya Ramaswamy", "Duncan MacAllister", "Noor El-Sayed")
# A few prolific recordists and a long tail, as on xeno-canto.
_AUTHOR_WEIGHTS = 1.0 / np.arange(1, len(AUTHORS) + 1) ** 1.1
_AUTHOR_WEIGHTS /= _AUTHOR_WEIGHTS.sum()
# Licence strings as they appear in the real file, with roughly the real proportions.
LICENSES = (("Creative Commons Attribution-NonCommercial-ShareAlike 4.0", 0.80),
            ("Creative Commons Attribution-NonCommercial-ShareAlike 3.0", 0.14),
            ("Creative Commons Attribution-ShareAlike 4.0", 0.04),
            ("Creative Commons Attribution-ShareAlike 3.0", 0.02))
# Kaggle's rating histogram (0.0 = not rated), steps of 0.5 from 0.0 to 5.0.
_RATING_WEIGHTS = np.array([570, 30, 155, 152, 575, 724, 1957, 1765, 3974, 1632, 3318], dtype=float)


def default_demo_dir() -> Path:
    """Return `<repo>/data/demo`, where the repo root is the folder holding the `birdcore` package."""
    return Path(__file__).resolve().parents[2] / "data" / "demo"


def _rng(seed: int, *key: int) -> np.random.Generator:
    # One independent stream per item, so an item's content does not depend on what came before.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _snr_for_rating(rating: float, rng: np.random.Generator) -> float:
    """Clean recordings get high ratings: about 4 dB at rating 0.5 up to 26 dB at 5.0."""
    if rating == 0.0:  # not rated: any quality
        return float(rng.uniform(6.0, 20.0))
    return float(2.0 + 4.8 * rating + rng.normal(0.0, 1.5))


def _plan_recordings(seed: int, scale: float) -> list[dict]:
    """Draw every training recording's metadata (one dict per row, plus private `_` keys)."""
    rng = _rng(seed, 0)
    counts = [max(2, int(round(s.n_train * scale))) for s in SPECIES]
    ids = rng.choice(np.arange(900000, 1000000), size=sum(counts), replace=False)
    rows: list[dict] = []
    for si, (species, count) in enumerate(zip(SPECIES, counts)):
        for j in range(count):
            xc = f"XC{int(ids[len(rows)])}"
            region = REGIONS[species.regions[int(rng.integers(len(species.regions)))]]
            secondary = _pick_secondary(species, rng) if rng.random() < 0.1 else None
            types = species.types[int(rng.integers(len(species.types)))]
            rows.append({
                "primary_label": species.code,
                "secondary_labels": str([secondary.code] if secondary else []),
                "type": str(sorted(types)),
                "latitude": round(float(region[0] + rng.normal(0.0, region[2])), 4),
                "longitude": round(float(region[1] + rng.normal(0.0, region[2])), 4),
                "scientific_name": species.scientific_name,
                "common_name": species.common_name,
                "author": AUTHORS[int(rng.choice(len(AUTHORS), p=_AUTHOR_WEIGHTS))],
                "license": LICENSES[int(rng.choice(len(LICENSES), p=[w for _, w in LICENSES]))][0],
                "rating": float(rng.choice(11, p=_RATING_WEIGHTS / _RATING_WEIGHTS.sum())) / 2,
                "time": f"{int(rng.integers(4, 20)):02d}:{int(rng.integers(0, 60)):02d}",
                "url": f"https://example.org/demo/{xc}",
                "filename": f"{species.code}/{xc}.ogg",
                "_key": (si, j),
                "_secondary": secondary,
                "_duration": round(float(np.clip(rng.lognormal(np.log(6.5), 0.55), 3.0, 30.0)), 3),
            })
    # Like the real data: a few recordings are unrated and a couple have an unknown time.
    picks = rng.choice(len(rows), size=5, replace=False)
    for i in picks[:3]:
        rows[i]["rating"] = 0.0
    rows[picks[3]]["time"] = "?"
    rows[picks[4]]["time"] = "?:?"
    rows.sort(key=lambda r: (r["primary_label"], r["filename"]))
    return rows


def _pick_secondary(species: Species, rng: np.random.Generator) -> Species:
    """A background species, preferably one sharing a region with the primary."""
    others = [s for s in SPECIES if s.code != species.code]
    near = [s for s in others if set(s.regions) & set(species.regions)]
    choices = near or others
    return choices[int(rng.integers(len(choices)))]


def _write_ogg(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # In blocks: libsndfile 1.2 segfaults when one write hands the Vorbis encoder >= 2**21 frames
    # (65.5 s at 32 kHz); the 60-s soundscapes are just under that (see birdcore.audio.io.write_audio).
    with sf.SoundFile(str(path), "w", samplerate=SAMPLE_RATE, channels=1, format="OGG", subtype="VORBIS") as fh:
        for start in range(0, len(audio), 1 << 18):
            fh.write(audio[start:start + (1 << 18)])


def _parallel_map(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """Map in a few threads: Vorbis encoding and most numpy work release the GIL. Each item has
    its own random stream, so the output does not depend on scheduling."""
    workers = min(_MAX_WORKERS, os.cpu_count() or 1)
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def _write_training(root: Path, seed: int, scale: float) -> int:
    rows = _plan_recordings(seed, scale)

    def job(row: dict) -> None:
        rng = _rng(seed, 1, *row["_key"])
        snr = _snr_for_rating(row["rating"], rng)
        audio = scenes.focal_recording(SPECIES_BY_CODE[row["primary_label"]], rng, row["_duration"], snr,
                                       row["_secondary"])
        _write_ogg(root / "train_audio" / row["filename"], audio)

    _parallel_map(job, rows)
    table = pd.DataFrame([{c: r[c] for c in METADATA_COLUMNS} for r in rows], columns=METADATA_COLUMNS)
    table.to_csv(root / "train_metadata.csv", index=False)
    return len(rows)


def _write_taxonomy(root: Path) -> None:
    rows = [{"TAXON_ORDER": 90001 + 7 * i, "CATEGORY": "species", "SPECIES_CODE": s.code,
             "PRIMARY_COM_NAME": s.common_name, "SCI_NAME": s.scientific_name, "ORDER1": s.order,
             "FAMILY": s.family, "SPECIES_GROUP": s.family.split("(")[1].rstrip(")") if i == 0 or
             s.family != SPECIES[i - 1].family else "", "REPORT_AS": ""} for i, s in enumerate(SPECIES)]
    # The real file starts with a UTF-8 BOM and uses CRLF line ends; readers must cope, so do we.
    pd.DataFrame(rows, columns=TAXONOMY_COLUMNS).to_csv(
        root / "eBird_Taxonomy_v2021.csv", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    (root / "scored_birds.json").write_text(json.dumps(list(SCORED_BIRDS)), encoding="utf-8")


def _soundscape_ids(seed: int, n: int) -> list[str]:
    rng = _rng(seed, 2)
    ids = rng.choice(np.arange(1_000_000_000, 2_000_000_000, 7919), size=n, replace=False)
    return sorted(f"soundscape_{int(i)}" for i in ids)


def _soundscape_pool(k: int, rng: np.random.Generator) -> list[Species]:
    """2-3 scored species (round-robin, so each appears somewhere) plus 2-3 unscored distractors."""
    scored = [SPECIES_BY_CODE[SCORED_BIRDS[(2 * k + i) % len(SCORED_BIRDS)]] for i in range(int(rng.integers(2, 4)))]
    unscored = [s for s in SPECIES if s.code not in SCORED_BIRDS]
    extra = rng.choice(len(unscored), size=int(rng.integers(2, 4)), replace=False)
    return scored + [unscored[int(i)] for i in extra]


def _write_soundscapes(root: Path, seed: int, n_soundscapes: int) -> None:
    def job(item: tuple[int, str]) -> list[scenes.Event]:
        k, file_id = item
        rng = _rng(seed, 3, k)
        audio, events = scenes.compose_soundscape(file_id, _soundscape_pool(k, rng), rng)
        _write_ogg(root / "test_soundscapes" / f"{file_id}.ogg", audio)
        return events

    file_ids = _soundscape_ids(seed, n_soundscapes)
    test_rows, label_rows, event_rows = [], [], []
    for file_id, events in zip(file_ids, _parallel_map(job, list(enumerate(file_ids)))):
        event_rows += [vars(e) for e in events]
        for bird in SCORED_BIRDS:
            for w in range(1, scenes.N_WINDOWS + 1):
                end_time = int(w * scenes.WINDOW_S)
                row_id = f"{file_id}_{bird}_{end_time}"
                test_rows.append({"row_id": row_id, "file_id": file_id, "bird": bird, "end_time": end_time})
                hit = any(e.species == bird and scenes.present(e, end_time) for e in events)
                label_rows.append({"row_id": row_id, "target": hit})
    test = pd.DataFrame(test_rows, columns=["row_id", "file_id", "bird", "end_time"])
    test.to_csv(root / "test.csv", index=False)
    pd.DataFrame({"row_id": test["row_id"], "target": False}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame(label_rows, columns=["row_id", "target"]).to_csv(root / "test_labels.csv", index=False)
    pd.DataFrame(event_rows, columns=["file_id", "species", "start", "end"]).to_csv(
        root / "test_events.csv", index=False)


def _unlabeled_pool(rng: np.random.Generator) -> list[Species]:
    """3-5 species drawn from all 14: unlabeled audio does not know which species are scored."""
    picks = rng.choice(len(SPECIES), size=int(rng.integers(3, 6)), replace=False)
    return [SPECIES[int(i)] for i in picks]


def _write_unlabeled(root: Path, seed: int, n_unlabeled: int) -> None:
    """`n_unlabeled` soundscapes in `unlabeled_soundscapes/` and their per-window truth beside the
    folder (`unlabeled_truth.csv`), where a training run pointed at the folder never finds it."""
    if n_unlabeled <= 0:
        return
    # ids from another range than the test soundscapes': a file id never names both
    ids = _rng(seed, 4).choice(np.arange(2_000_000_000, 3_000_000_000, 7919), size=n_unlabeled, replace=False)
    file_ids = sorted(f"soundscape_{int(i)}" for i in ids)

    def job(item: tuple[int, str]) -> list[scenes.Event]:
        k, file_id = item
        rng = _rng(seed, 5, k)
        audio, events = scenes.compose_soundscape(file_id, _unlabeled_pool(rng), rng)
        _write_ogg(root / UNLABELED_DIR / f"{file_id}.ogg", audio)
        return events

    rows = []
    for file_id, events in zip(file_ids, _parallel_map(job, list(enumerate(file_ids)))):
        for w in range(1, scenes.N_WINDOWS + 1):
            end_time = int(w * scenes.WINDOW_S)
            row = {"file_id": file_id, "end_time": end_time}
            row.update({s.code: int(any(e.species == s.code and scenes.present(e, end_time) for e in events))
                        for s in SPECIES})
            rows.append(row)
    pd.DataFrame(rows, columns=["file_id", "end_time", *[s.code for s in SPECIES]]).to_csv(
        root / UNLABELED_TRUTH, index=False)


# ------------------------------------------------------------------- marker and build
def _marker(seed: int, scale: float, n_soundscapes: int, n_unlabeled: int = DEFAULT_N_UNLABELED) -> dict:
    return {"version": DEMO_VERSION, "seed": seed, "recordings_scale": scale, "n_soundscapes": n_soundscapes,
            "n_unlabeled": n_unlabeled}




def _build(out: Path, seed: int, scale: float, n_soundscapes: int, n_unlabeled: int,
           replace: bool = False) -> None:
    """Write a full dataset into a fresh temp folder beside `out`, then bring it into `out`: a new
    folder is renamed into place; an existing one gets the demo's own files (`merge_into`), unless
    `replace` swaps the whole folder."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset should be readable like any folder
        n_train = _write_training(tmp, seed, scale)
        _write_taxonomy(tmp)
        _write_soundscapes(tmp, seed, n_soundscapes)
        _write_unlabeled(tmp, seed, n_unlabeled)
        marker = _marker(seed, scale, n_soundscapes, n_unlabeled) | {"n_train_audio": n_train, "files": written_files(tmp)}
        if out.exists() and not replace:
            merge_into(tmp, out, marker)
        else:
            (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was renamed into place



# ----------------------------------------------------------------------- public API
def generate_demo_dataset(out_dir: str | os.PathLike, seed: int = 0, overwrite: bool = False, *,
                          recordings_scale: float = 1.0,
                          n_soundscapes: int = DEFAULT_N_SOUNDSCAPES,
                          n_unlabeled: int = DEFAULT_N_UNLABELED) -> Path:
    """Synthesise the demo dataset into `out_dir` (created if needed) and return its path.

    Raises BirdcoreError if `out_dir` is a non-empty folder and `overwrite` is False. With
    `overwrite` the whole folder is replaced: every file in it is deleted, the user's own ones too
    (a warning on the `birdcore.demo.generator` logger says how many). The result is fully
    determined by `seed`. `recordings_scale` multiplies the per-species recording counts (at least
    2 each) and `n_soundscapes` sets the number of 60-s soundscapes; both exist so tests can build
    a small dataset quickly; the defaults give the documented 10-25 recordings per species.
    `n_unlabeled` sets the number of unlabeled 60-s soundscapes (`unlabeled_soundscapes/`, 0 = none).
    """
    out = Path(out_dir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}")):
        check_target(out, overwrite)
        _build(out, int(seed), float(recordings_scale), int(n_soundscapes), int(n_unlabeled), bool(overwrite))
    return out


def _legacy_complete(out: Path, marker: dict, n_soundscapes: int) -> bool:
    """Completeness of a folder marked before the marker listed its files: by file counts."""
    names = ("train_metadata.csv", "eBird_Taxonomy_v2021.csv", "scored_birds.json", "test.csv",
             "sample_submission.csv", "test_labels.csv", "test_events.csv")
    if not all((out / n).is_file() for n in names):
        return False
    n_audio = sum(1 for _ in (out / "train_audio").glob("*/*.ogg"))
    n_scapes = sum(1 for _ in (out / "test_soundscapes").glob("soundscape_*.ogg"))
    return n_audio == marker.get("n_train_audio") and n_scapes == n_soundscapes


def is_complete_demo(out_dir: str | os.PathLike, seed: int = 0, *, recordings_scale: float = 1.0,
                     n_soundscapes: int = DEFAULT_N_SOUNDSCAPES, n_unlabeled: int = DEFAULT_N_UNLABELED) -> bool:
    """True when `out_dir` holds a complete demo dataset of this version, seed and size (default size
    unless given): its marker says so and every file it lists is there. Files are not re-hashed: a
    demo file the user edited still counts (it is theirs now, and a repair will not overwrite it);
    files the user added count for nothing."""
    out = Path(out_dir)
    marker = read_marker(out)
    if marker is None or marker.get("complete", True) is not True:
        return False
    params = {k: marker.get(k) for k in ("version", "seed", "recordings_scale", "n_soundscapes", "n_unlabeled")}
    if params != _marker(int(seed), float(recordings_scale), int(n_soundscapes), int(n_unlabeled)):
        return False
    files = marker.get("files")
    if files is None:
        return _legacy_complete(out, marker, int(n_soundscapes))
    return isinstance(files, dict) and bool(files) and all(
        isinstance(rel, str) and OWN_NAME.fullmatch(rel) and (out / rel).is_file() for rel in files)


def ensure_demo_dataset(out_dir: str | os.PathLike | None = None, seed: int = 0, *, recordings_scale: float = 1.0,
                        n_soundscapes: int = DEFAULT_N_SOUNDSCAPES, n_unlabeled: int = DEFAULT_N_UNLABELED) -> Path:
    """Return `out_dir` (default: `default_demo_dir()`), generating the demo dataset if needed.

    A complete dataset of the current DEMO_VERSION, `seed` and size is left untouched (a marker
    read and a file check each, milliseconds). Otherwise a new one is built in a temp folder and
    only the demo's own files are moved in, one rename each, the marker last: files the user added
    (annotations, runs, notes, extra recordings) stay as they are, and a crash midway leaves a
    folder the next call completes. BirdcoreError, with nothing changed, when a non-empty folder
    has no demo marker (not ours) or a user's file sits where a demo file goes (an edited demo
    CSV, a folder). Safe to call from several processes at once (a file lock).
    """
    out = Path(out_dir if out_dir is not None else default_demo_dir()).absolute()
    size = {"recordings_scale": float(recordings_scale), "n_soundscapes": int(n_soundscapes),
            "n_unlabeled": int(n_unlabeled)}
    if is_complete_demo(out, seed, **size):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}")):
        if is_complete_demo(out, seed, **size):  # another process finished it while we waited for the lock
            return out
        check_ensure_target(out)
        _build(out, int(seed), size["recordings_scale"], size["n_soundscapes"], size["n_unlabeled"])
    return out
