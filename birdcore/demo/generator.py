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
      .birdcore-demo.json         marker, written last: {"version", "seed", ...}

Everything is synthesised from `seed` (same seed -> same CSV bytes and same decoded audio; the Ogg
container bytes differ because libsndfile picks a random stream serial number). The dataset is
built in a hidden temp folder beside `out_dir` and renamed into place, so `out_dir` never holds a
half-written dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import pandas as pd
import soundfile as sf

from birdcore.atomic_io import file_lock
from birdcore.demo import scenes
from birdcore.demo.voices import SAMPLE_RATE, SPECIES, SPECIES_BY_CODE, Species
from birdcore.errors import BirdcoreError

DEMO_VERSION = 1  # bump whenever the generated files change, so ensure_demo_dataset rebuilds old copies
MARKER_NAME = ".birdcore-demo.json"
DEFAULT_N_SOUNDSCAPES = 8
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


def _marker(seed: int, scale: float, n_soundscapes: int) -> dict:
    return {"version": DEMO_VERSION, "seed": seed, "recordings_scale": scale, "n_soundscapes": n_soundscapes}


def _build(out: Path, seed: int, scale: float, n_soundscapes: int) -> None:
    """Write a full dataset into a fresh temp folder beside `out`, then swap it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset should be readable like any folder
        n_train = _write_training(tmp, seed, scale)
        _write_taxonomy(tmp)
        _write_soundscapes(tmp, seed, n_soundscapes)
        marker = _marker(seed, scale, n_soundscapes) | {"n_train_audio": n_train}
        (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)  # put the previous dataset back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BirdcoreError(f"demo dataset target {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BirdcoreError(f"demo dataset folder {out} exists and is not empty; pass overwrite=True "
                            "to replace it, or choose an empty folder")


def generate_demo_dataset(out_dir: str | os.PathLike, seed: int = 0, overwrite: bool = False, *,
                          recordings_scale: float = 1.0,
                          n_soundscapes: int = DEFAULT_N_SOUNDSCAPES) -> Path:
    """Synthesise the demo dataset into `out_dir` (created if needed) and return its path.

    Raises BirdcoreError if `out_dir` is a non-empty folder and `overwrite` is False. The result is
    fully determined by `seed`. `recordings_scale` multiplies the per-species recording counts (at
    least 2 each) and `n_soundscapes` sets the number of 60-s soundscapes; both exist so tests can
    build a small dataset quickly; the defaults give the documented 10-25 recordings per species.
    """
    out = Path(out_dir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}")):
        _check_target(out, overwrite)
        _build(out, int(seed), float(recordings_scale), int(n_soundscapes))
    return out


def is_complete_demo(out_dir: str | os.PathLike, seed: int = 0) -> bool:
    """True when `out_dir` holds a complete default-size demo dataset of this version and seed."""
    out = Path(out_dir)
    try:
        marker = json.loads((out / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or {k: marker.get(k) for k in ("version", "seed", "recordings_scale",
                                                                   "n_soundscapes")} != _marker(
            int(seed), 1.0, DEFAULT_N_SOUNDSCAPES):
        return False
    names = ("train_metadata.csv", "eBird_Taxonomy_v2021.csv", "scored_birds.json", "test.csv",
             "sample_submission.csv", "test_labels.csv", "test_events.csv")
    if not all((out / n).is_file() for n in names):
        return False
    n_audio = sum(1 for _ in (out / "train_audio").glob("*/*.ogg"))
    n_scapes = sum(1 for _ in (out / "test_soundscapes").glob("soundscape_*.ogg"))
    return n_audio == marker.get("n_train_audio") and n_scapes == DEFAULT_N_SOUNDSCAPES


def ensure_demo_dataset(out_dir: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Return `out_dir` (default: `default_demo_dir()`), generating the demo dataset if needed.

    A complete dataset of the current DEMO_VERSION and `seed` is left untouched (a marker read and
    a few file checks, milliseconds). One with another version or seed, or an incomplete one, is
    regenerated in place. A non-empty folder without the demo marker is not ours: BirdcoreError.
    """
    out = Path(out_dir if out_dir is not None else default_demo_dir()).absolute()
    if is_complete_demo(out, seed):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(f".{out.name}")):
        if is_complete_demo(out, seed):  # another process finished it while we waited for the lock
            return out
        _check_target(out, overwrite=(out / MARKER_NAME).exists())
        _build(out, int(seed), 1.0, DEFAULT_N_SOUNDSCAPES)
    return out
