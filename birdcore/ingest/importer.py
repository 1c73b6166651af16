"""`birdcore import`: labelled recordings from anywhere → a training dataset in the BirdCLEF layout.

The output folder holds `train_metadata.csv` (one row per recording or window; windows of a long
recording are rows with `start_s`/`end_s`, see `data.metadata.SPAN_COLUMNS`), `train_audio/` with
*links* to the user's files (never modified; `--copy` copies them, `--cut` writes each window as
its own WAV) and a copy of the taxonomy used. Everything the rest of the engine reads unchanged:
`info`, `train`, the app. The folder is built beside its destination and renamed into place only
after it loads as a dataset, so a failed import leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from birdcore.atomic_io import atomic_write_text
from birdcore.audio.io import audio_info, load_audio, write_audio
from birdcore.audio.windows import WINDOW_S
from birdcore.data.dataset import load_dataset
from birdcore.data.metadata import NEGATIVE_LABEL, TRAIN_COLUMNS, read_taxonomy
from birdcore.errors import ConfigError, DatasetError
from birdcore.ingest.labels import LabelResolver
from birdcore.pretrained.label_map import find_taxonomy
from birdcore.ingest.sources import Entry, collect

MODES = ("link", "copy", "cut")
SPAN_FOLDER = "recordings"  # train_audio/recordings/: long files whose windows are rows


@dataclass
class ImportResult:
    """What an import wrote: the dataset folder, row counts per source kind, species, negatives."""

    out: Path
    rows: int
    negatives: int
    species: dict[str, int]
    sources: list[tuple[str, str, int]] = field(default_factory=list)  # (source, kind, rows)
    files: int = 0

    def lines(self) -> list[str]:
        """Human summary, one line each."""
        out = [f"{s}: {kind}, {n} row(s)" for s, kind, n in self.sources]
        top = ", ".join(f"{k} {v}" for k, v in sorted(self.species.items(), key=lambda kv: -kv[1])[:10])
        out.append(f"{self.rows} rows ({self.negatives} negatives) of {self.files} audio file(s), "
                   f"{len(self.species)} species: {top}{' …' if len(self.species) > 10 else ''}")
        out.append(f"dataset written to {self.out}")
        return out


def import_recordings(sources: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                      taxonomy: str | os.PathLike | None = None, label_map: dict[str, str] | None = None,
                      mode: str = "link", label_column: str | None = None,
                      audio_dirs: Sequence[str | os.PathLike] | None = None, window_s: float = WINDOW_S,
                      progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import `sources` (folders per label, CSV tables, selection tables, app annotations) into a
    new dataset folder `out` (which must not exist or be empty). DatasetError names the source,
    file and line of any bad input; all unknown labels are listed at once."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: already exists and is not an empty folder; choose a new --out"
                           " (an import never writes over existing files)")
    tax = find_taxonomy(taxonomy)
    resolver = LabelResolver(tax, dict(label_map or {}))
    entries: list[Entry] = []
    summary = []
    for s in sources:
        kind, got = collect(Path(s).expanduser(), label_column=label_column,
                            audio_dirs=[Path(d) for d in audio_dirs] if audio_dirs else None, window_s=window_s)
        summary.append((str(s), kind, len(got)))
        entries += got
    if not entries:
        raise DatasetError(f"{', '.join(map(str, sources))}: nothing to import")
    where = {}
    for e in entries:
        for lab in e.labels:
            where.setdefault(lab, e.where)
    codes = resolver.resolve([lab for e in entries for lab in e.labels], where)
    meta = _metadata(entries, codes, tax)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        meta = _place_audio(meta, entries, tmp / "train_audio", mode, progress)
        atomic_write_text(tmp / "train_metadata.csv", meta.to_csv(index=False, lineterminator="\n"))
        if tax is not None:
            shutil.copyfile(tax, tmp / "eBird_Taxonomy_v2021.csv")
        load_dataset(tmp)  # refuse to hand over a folder the engine cannot read
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prim = meta["primary_label"]
    species = prim[prim != NEGATIVE_LABEL].value_counts().to_dict()
    return ImportResult(out=out, rows=len(meta), negatives=int((prim == NEGATIVE_LABEL).sum()),
                        species={str(k): int(v) for k, v in species.items()}, sources=summary,
                        files=len({e.path.resolve() for e in entries}))


def _metadata(entries: list[Entry], codes: dict[str, str], tax: Path | None) -> pd.DataFrame:
    names = read_taxonomy(tax) if tax is not None else None
    rows = []
    for e in entries:
        labs = list(dict.fromkeys(codes[lab] for lab in e.labels))
        species = [c for c in labs if c != NEGATIVE_LABEL]
        primary = species[0] if species else NEGATIVE_LABEL
        extra = {k: v for k, v in e.extra.items() if k not in TRAIN_COLUMNS and k not in ("start_s", "end_s", "source")}
        x = e.extra
        lat, lon = x.get("latitude", x.get("lat", "")), x.get("longitude", x.get("lon", x.get("lng", "")))
        row = {
            "primary_label": primary, "secondary_labels": str(species[1:]), "type": "[]",
            "latitude": _number_or_blank(lat, -90, 90), "longitude": _number_or_blank(lon, -180, 180),
            "scientific_name": names.at[primary, "SCI_NAME"] if names is not None and primary in names.index else "",
            "common_name": names.at[primary, "PRIMARY_COM_NAME"] if names is not None and primary in names.index else "",
            "author": x.get("author", x.get("recordist", "")), "license": x.get("license", ""),
            "rating": _rating(x.get("rating", x.get("q", ""))), "time": x.get("time", ""), "url": x.get("url", ""),
            "filename": "", "start_s": "" if e.start is None else f"{e.start:g}",
            "end_s": "" if e.end is None else f"{e.end:g}", "source": str(e.path.resolve()), **extra,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _number_or_blank(value: str, lo: float, hi: float) -> str:
    """A coordinate as text when it is a number in range, else blank (the original stays in its own column)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{v:g}" if lo <= v <= hi else ""


XC_QUALITY = {"A": 5.0, "B": 4.0, "C": 3.0, "D": 2.0, "E": 1.0}  # xeno-canto's quality letters


def _rating(value: str) -> str:
    """A 0–5 rating: a number as is, xeno-canto's quality letter A–E as 5–1, anything else 0 (unrated)."""
    text = str(value or "").strip()
    if text.upper() in XC_QUALITY:
        return f"{XC_QUALITY[text.upper()]:g}"
    try:
        v = float(text)
    except ValueError:
        return "0"
    return f"{v:g}" if 0.0 <= v <= 5.0 else "0"


def _link_name(path: Path, taken: set[str], folder: str) -> str:
    name = f"{folder}/{path.name}"
    if name in taken:  # two sources with one file name: keep both, told apart by where they live
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        name = f"{folder}/{path.stem}-{digest}{path.suffix}"
    taken.add(name)
    return name


def _place_audio(meta: pd.DataFrame, entries: list[Entry], audio_root: Path, mode: str,
                 progress: Callable[[int, int], None] | None) -> pd.DataFrame:
    """Fill `filename` (relative to train_audio/) and put the audio there by `mode`."""
    placed: dict[Path, str] = {}
    taken: set[str] = set()
    names = []
    for i, e in enumerate(entries):
        src = e.path.resolve()
        if mode == "cut" and e.start is not None:
            name = _link_name(Path(f"{src.stem}_{e.start:g}-{e.end:g}.wav"), taken, meta.at[i, "primary_label"])
            target = audio_root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            y = load_audio(src, sr=None, offset=e.start, duration=e.end - e.start)
            write_audio(target, y, audio_info(src).samplerate)
            names.append(name)
        else:
            if src not in placed:
                folder = SPAN_FOLDER if e.start is not None else meta.at[i, "primary_label"]
                name = _link_name(src, taken, folder)
                target = audio_root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if mode == "copy":
                    shutil.copyfile(src, target)
                else:
                    os.symlink(src, target)
                placed[src] = name
            names.append(placed[src])
        if progress is not None:
            progress(i + 1, len(entries))
    meta = meta.copy()
    meta["filename"] = names
    if mode == "cut":
        meta[["start_s", "end_s"]] = ""
    if (meta["start_s"] == "").all():
        meta = meta.drop(columns=["start_s", "end_s"])
    return meta


def parse_label_map(items: Sequence[str]) -> dict[str, str]:
    """`NAME=CODE` pairs (from `--map`) → dict; ConfigError naming a malformed one."""
    out = {}
    for item in items:
        name, sep, code = item.partition("=")
        if not sep or not name.strip() or not code.strip():
            raise ConfigError(f"--map {item!r}: expected NAME=CODE (e.g. SP=nocall or CRER=refspi1)")
        out[name.strip()] = code.strip()
    return out
