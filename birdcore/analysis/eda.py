"""Exploratory statistics of a BirdCLEF dataset: everything behind the app's EDA charts.

Every function takes the (filtered) metadata table of a `BirdDataset` and returns a small pandas
DataFrame ready to plot, so the app only lays out widgets and draws. Nothing here imports
streamlit or plotly. Counts are numbers of *recordings* (rows of train_metadata.csv): a recording
tagged `['call', 'call']` counts once for "call".

All table work is vectorised or done once per distinct value, so the full 14,852-row BirdCLEF 2022
metadata takes a few milliseconds per function — fast enough to recompute on every filter change.
Audio durations are the exception (one header read per file), hence `read_durations` with an
on-disk cache and `cached_durations`, which never opens an audio file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_write_json
from birdcore.audio.io import audio_duration
from birdcore.data.dataset import BirdDataset
from birdcore.errors import BirdcoreError
from birdcore.settings import birdcore_home

RATINGS = tuple(float(r) for r in np.round(np.arange(0.0, 5.01, 0.5), 1))  # 0.0 (unrated), 0.5 … 5.0
TABLE_COLUMNS = ["filename", "primary_label", "common_name", "secondary_labels", "type", "rating",
                 "time", "latitude", "longitude", "author", "license"]


# ---- filtering ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EdaFilter:
    """Which recordings the EDA charts show.

    - `species`: primary labels to keep; empty = all species.
    - `scored_only`: keep only recordings whose primary label is a scored species.
    - `rating_range`: inclusive (min, max) rating; 0.0 means "not rated" in BirdCLEF metadata.
    """

    species: tuple[str, ...] = ()
    scored_only: bool = False
    rating_range: tuple[float, float] = (0.0, 5.0)

    @property
    def is_default(self) -> bool:
        """True when the filter keeps every recording."""
        return not self.species and not self.scored_only and tuple(self.rating_range) == (0.0, 5.0)


def filter_recordings(ds: BirdDataset, flt: EdaFilter) -> pd.DataFrame:
    """Rows of `ds.metadata` that pass `flt` (original index kept; no copy when nothing is filtered)."""
    m = ds.metadata
    if flt.is_default:
        return m
    mask = np.ones(len(m), dtype=bool)
    if flt.species:
        mask &= m["primary_label"].isin(flt.species).to_numpy()
    if flt.scored_only:
        mask &= m["primary_label"].isin(ds.scored).to_numpy()
    lo, hi = flt.rating_range
    mask &= ((m["rating"] >= lo) & (m["rating"] <= hi)).to_numpy()
    return m[mask]


# ---- per-species counts and ratings ----------------------------------------------------------
def species_counts(meta: pd.DataFrame, scored: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Recordings per primary label, most first (ties by code).

    Columns: species, common_name, recordings, scored (bool). Species without recordings in
    `meta` are absent.
    """
    counts = meta["primary_label"].value_counts()
    names = meta.drop_duplicates("primary_label").set_index("primary_label")["common_name"]
    out = pd.DataFrame({"species": counts.index.astype(str), "recordings": counts.to_numpy(dtype=int)})
    out["common_name"] = out["species"].map(names).fillna("")
    out["scored"] = out["species"].isin(set(scored))
    out = out.sort_values(["recordings", "species"], ascending=[False, True], kind="stable")
    return out[["species", "common_name", "recordings", "scored"]].reset_index(drop=True)


def rating_histogram(meta: pd.DataFrame) -> pd.DataFrame:
    """Recordings per rating on the full 0.0–5.0 scale in 0.5 steps (zeros kept). Columns: rating, recordings."""
    counts = meta["rating"].round(1).value_counts()
    return pd.DataFrame({"rating": list(RATINGS),
                         "recordings": [int(counts.get(r, 0)) for r in RATINGS]})


def rating_by_species(meta: pd.DataFrame, top_n: int = 30, include_unrated: bool = False) -> pd.DataFrame:
    """Rating summary of the `top_n` species with most recordings (box-plot statistics).

    Unrated recordings (rating 0.0) are left out unless `include_unrated`, because 0.0 means
    "no rating given", not "worst quality". Columns: species, recordings (rated ones counted),
    mean, min, q1, median, q3, max; ordered like `species_counts`.
    """
    r = meta if include_unrated else meta[meta["rating"] > 0]
    if r.empty:
        return pd.DataFrame(columns=["species", "recordings", "mean", "min", "q1", "median", "q3", "max"])
    g = r.groupby("primary_label")["rating"]
    stats = pd.DataFrame({
        "recordings": g.size(), "mean": g.mean(), "min": g.min(), "q1": g.quantile(0.25),
        "median": g.median(), "q3": g.quantile(0.75), "max": g.max(),
    })
    stats = stats.rename_axis("species").reset_index()
    stats = stats.sort_values(["recordings", "species"], ascending=[False, True], kind="stable")
    return stats.head(top_n).reset_index(drop=True)


# ---- secondary-label co-occurrence -----------------------------------------------------------
def _label_sets(meta: pd.DataFrame) -> list[tuple[str, ...]]:
    """Sorted label sets {primary} ∪ secondary of recordings with at least one secondary label."""
    has_sec = meta["secondary_labels"].map(len) > 0
    sub = meta.loc[has_sec, ["primary_label", "secondary_labels"]]
    return [tuple(sorted({p, *s})) for p, s in zip(sub["primary_label"], sub["secondary_labels"])]


def cooccurrence_pairs(meta: pd.DataFrame, top_n: int | None = 20) -> pd.DataFrame:
    """Unordered species pairs heard in the same recording, most frequent first.

    A recording's species are its primary label plus its secondary labels; every pair among them
    counts once per recording. Columns: species_a, species_b (a < b), recordings.
    """
    counts: dict[tuple[str, str], int] = {}
    for labels in _label_sets(meta):
        for pair in combinations(labels, 2):
            counts[pair] = counts.get(pair, 0) + 1
    out = pd.DataFrame([(a, b, n) for (a, b), n in counts.items()],
                       columns=["species_a", "species_b", "recordings"])
    out = out.sort_values(["recordings", "species_a", "species_b"], ascending=[False, True, True], kind="stable")
    out = out.reset_index(drop=True)
    return out if top_n is None else out.head(top_n)


def cooccurrence_matrix(meta: pd.DataFrame, top_n: int = 15) -> pd.DataFrame:
    """Symmetric species × species co-occurrence counts for the `top_n` most co-occurring species.

    Species are ranked by the number of recordings in which they co-occur with any other species;
    the diagonal is 0. Index and columns are the same species codes, in rank order.
    """
    pairs = cooccurrence_pairs(meta, top_n=None)
    if pairs.empty:
        return pd.DataFrame(dtype=int)
    involvement: dict[str, int] = {}
    for labels in _label_sets(meta):
        for s in labels:
            involvement[s] = involvement.get(s, 0) + 1
    top = sorted(involvement, key=lambda s: (-involvement[s], s))[:top_n]
    mat = pd.DataFrame(0, index=top, columns=top, dtype=int)
    keep = pairs["species_a"].isin(top) & pairs["species_b"].isin(top)
    for a, b, n in pairs.loc[keep].itertuples(index=False):
        mat.at[a, b] = n
        mat.at[b, a] = n
    return mat


# ---- call types, time, place, people ----------------------------------------------------------
def type_counts(meta: pd.DataFrame, top_n: int | None = 15) -> pd.DataFrame:
    """Recordings per call `type` tag (lower-cased, trimmed; a tag repeated in one row counts once).

    Columns: type, recordings; most frequent first.
    """
    tags = meta["type"].explode().dropna().astype(str).str.strip().str.lower()
    tags = tags[tags != ""]
    pairs = pd.DataFrame({"row": tags.index, "type": tags.to_numpy()}).drop_duplicates()
    counts = pairs["type"].value_counts()
    out = pd.DataFrame({"type": counts.index.astype(str), "recordings": counts.to_numpy(dtype=int)})
    out = out.sort_values(["recordings", "type"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return out if top_n is None else out.head(top_n)


def time_of_day_histogram(meta: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Recordings per hour of day (0–23, zeros kept) from `time_minutes`, and the count of rows
    whose time is missing or unparseable ('?', 'xx:xx' ...). Columns: hour, recordings."""
    minutes = meta["time_minutes"]
    missing = int(minutes.isna().sum())
    hours = (minutes.dropna() // 60).astype(int).value_counts()
    hist = pd.DataFrame({"hour": range(24), "recordings": [int(hours.get(h, 0)) for h in range(24)]})
    return hist, missing


def locations(meta: pd.DataFrame, scored: list[str] | tuple[str, ...] = ()) -> tuple[pd.DataFrame, int]:
    """Recording coordinates for a map, and the count of rows without coordinates.

    Columns: latitude, longitude, species, common_name, scored (bool), filename.
    """
    has = meta["latitude"].notna() & meta["longitude"].notna()
    sub = meta.loc[has]
    out = pd.DataFrame({
        "latitude": sub["latitude"].to_numpy(), "longitude": sub["longitude"].to_numpy(),
        "species": sub["primary_label"].to_numpy(), "common_name": sub["common_name"].to_numpy(),
        "scored": sub["primary_label"].isin(set(scored)).to_numpy(), "filename": sub["filename"].to_numpy(),
    })
    return out, int((~has).sum())


def top_values(meta: pd.DataFrame, column: str, top_n: int | None = 15) -> pd.DataFrame:
    """Most frequent values of a text column (e.g. "author", "license"); blanks become "(blank)".

    Columns: <column>, recordings.
    """
    values = meta[column].astype(str).str.strip().replace("", "(blank)")
    counts = values.value_counts()
    out = pd.DataFrame({column: counts.index.astype(str), "recordings": counts.to_numpy(dtype=int)})
    out = out.sort_values(["recordings", column], ascending=[False, True], kind="stable").reset_index(drop=True)
    return out if top_n is None else out.head(top_n)


_CC_PARTS = (("Attribution", "BY"), ("NonCommercial", "NC"), ("NoDerivatives", "ND"), ("NoDerivs", "ND"),
             ("ShareAlike", "SA"))


def short_license(name: str) -> str:
    """"Creative Commons Attribution-NonCommercial-ShareAlike 4.0" → "CC BY-NC-SA 4.0"; others unchanged."""
    text = str(name).strip()
    if not text.startswith("Creative Commons "):
        return text
    words = text[len("Creative Commons "):].split()
    version = words[-1] if words and words[-1][:1].isdigit() else ""
    terms = (" ".join(words[:-1]) if version else " ".join(words)).split("-")
    codes = [dict(_CC_PARTS).get(t.strip(), t.strip()) for t in terms]
    return " ".join(["CC", "-".join(codes)] + ([version] if version else []))


def license_counts(meta: pd.DataFrame, top_n: int | None = 10) -> pd.DataFrame:
    """Recordings per licence, most first. Columns: license (full text), short ("CC BY-NC-SA 4.0"), recordings."""
    out = top_values(meta, "license", top_n)
    out.insert(1, "short", out["license"].map(short_license))
    return out


def recordings_table(meta: pd.DataFrame) -> pd.DataFrame:
    """The recordings as a display table: list columns joined with ", ", original row order."""
    out = meta[TABLE_COLUMNS].copy()
    for col in ("secondary_labels", "type"):
        out[col] = out[col].map(", ".join)
    return out.reset_index(drop=True)


TABLE_PAGE_ROWS = 100  # rows of the recordings table sent to the browser at a time


def table_page(table: pd.DataFrame, page: int, rows: int = TABLE_PAGE_ROWS) -> tuple[pd.DataFrame, int, int]:
    """One page of a display table: (its rows, reindexed from 0; the page actually shown, 1-based and
    clamped to what exists; the number of pages, at least 1).

    A browser grid fed all 14,852 recordings re-ships and re-parses every row on each rerun; a page
    of `rows` keeps a filter change light while every row stays reachable by paging.
    """
    rows = max(int(rows), 1)
    pages = max((len(table) + rows - 1) // rows, 1)
    page = min(max(int(page), 1), pages)
    start = (page - 1) * rows
    return table.iloc[start:start + rows].reset_index(drop=True), page, pages


# ---- durations from audio headers (cached) ---------------------------------------------------
DURATION_CACHE_VERSION = 1
AUTO_READ_MAX_FILES = 500  # up to this many headers (~0.5 s) an app may read without asking first


def duration_cache_path(ds: BirdDataset, home: str | os.PathLike | None = None) -> Path:
    """Where durations of `ds` are cached: `<home>/cache/durations-<hash of root>.json`.

    The cache lives in the user's birdcore home, not the dataset folder, which may be read-only.
    """
    home = birdcore_home() if home is None else home
    key = hashlib.sha1(str(ds.root).encode("utf-8")).hexdigest()[:16]
    return Path(home) / "cache" / f"durations-{key}.json"


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _read_cache(cache_path: Path, root: Path) -> dict[str, list]:
    try:
        data = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    ok = isinstance(data, dict) and data.get("version") == DURATION_CACHE_VERSION and data.get("root") == str(root)
    files = data.get("files") if ok else None
    return files if isinstance(files, dict) else {}


def _durations_frame(filenames: list[str], values: list[float], errors: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"filename": filenames, "duration_s": np.asarray(values, dtype=float), "error": errors})


def cached_durations(ds: BirdDataset, cache_path: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Durations of every recording from the cache alone, or None when any file is not (validly) cached.

    Only `stat` calls, no audio is opened, so the app can call this on every rerun. A cached entry
    is valid while the file's size and modification time are unchanged. Missing files count as
    cached (duration NaN, error "missing").
    """
    if not ds.has_train_audio:
        return None
    cpath = Path(cache_path) if cache_path is not None else duration_cache_path(ds)
    cache = _read_cache(cpath, ds.root)
    if not cache:
        return None
    names, values, errors = [], [], []
    for name, path in zip(ds.metadata["filename"], ds.audio_paths()):
        key = _stat_key(path)
        if key is None:
            value, err = np.nan, "missing"
        else:
            entry = cache.get(name)
            if not entry or entry[:2] != key:
                return None
            value, err = (np.nan if entry[2] is None else float(entry[2])), (entry[3] or "")
        names.append(name)
        values.append(value)
        errors.append(err)
    return _durations_frame(names, values, errors)


def read_durations(ds: BirdDataset, cache_path: str | os.PathLike | None = None,
                   progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Duration (s) of every recording from its audio header, reusing and updating the cache.

    Returns one row per metadata row: filename, duration_s (NaN when missing/unreadable), error
    ("" when fine, "missing", or the AudioError text). `progress(done, total)` is called every
    200 files. Raises DatasetError when the dataset has no `train_audio/` folder. A cache that
    cannot be written (read-only home) is skipped silently: it only saves time.
    """
    if not ds.has_train_audio:
        ds.require_audio()  # raises the standard "metadata only" DatasetError
    cpath = Path(cache_path) if cache_path is not None else duration_cache_path(ds)
    cache = _read_cache(cpath, ds.root)
    names, values, errors = [], [], []
    total = len(ds.metadata)
    changed = False
    for i, (name, path) in enumerate(zip(ds.metadata["filename"], ds.audio_paths())):
        key = _stat_key(path)
        if key is None:
            names.append(name), values.append(np.nan), errors.append("missing")
            continue
        entry = cache.get(name)
        if not entry or entry[:2] != key:
            try:
                entry = [*key, audio_duration(path), None]
            except BirdcoreError as exc:
                entry = [*key, None, str(exc)]
            cache[name] = entry
            changed = True
        names.append(name)
        values.append(np.nan if entry[2] is None else float(entry[2]))
        errors.append(entry[3] or "")
        if progress is not None and (i + 1) % 200 == 0:
            progress(i + 1, total)
    if progress is not None:
        progress(total, total)
    if changed or not cpath.exists():
        try:
            atomic_write_json(cpath, {"version": DURATION_CACHE_VERSION, "root": str(ds.root), "files": cache})
        except OSError:
            pass
    return _durations_frame(names, values, errors)


def duration_summary(durations: pd.DataFrame, meta: pd.DataFrame) -> dict:
    """Totals for the recordings in `meta`: files, readable, missing, unreadable, total/median/max seconds."""
    d = durations[durations["filename"].isin(meta["filename"])]
    ok = d["duration_s"].dropna()
    return {
        "files": int(len(d)),
        "readable": int(len(ok)),
        "missing": int((d["error"] == "missing").sum()),
        "unreadable": int(((d["error"] != "") & (d["error"] != "missing")).sum()),
        "total_s": float(ok.sum()),
        "median_s": float(ok.median()) if len(ok) else float("nan"),
        "max_s": float(ok.max()) if len(ok) else float("nan"),
    }


_NICE_BIN_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 3600)


def duration_histogram(durations: pd.DataFrame, meta: pd.DataFrame, max_bins: int = 40) -> pd.DataFrame:
    """Recordings of `meta` per duration bin, with a round bin width (1, 2, 5, 10 … s) giving at most
    `max_bins` bins; empty bins kept. Columns: seconds (label "10–20"), start_s, end_s, recordings."""
    d = durations.loc[durations["filename"].isin(meta["filename"]), "duration_s"].dropna()
    if d.empty:
        return pd.DataFrame({"seconds": [], "start_s": [], "end_s": [], "recordings": []})
    top = float(d.max())
    width = next((w for w in _NICE_BIN_S if top / w < max_bins), _NICE_BIN_S[-1])
    idx = np.floor(d.to_numpy() / width).astype(int)
    n = int(idx.max()) + 1
    counts = np.bincount(idx, minlength=n)
    starts = np.arange(n) * width
    labels = [f"{s:g}–{s + width:g}" for s in starts]
    return pd.DataFrame({"seconds": labels, "start_s": starts.astype(float), "end_s": (starts + width).astype(float),
                         "recordings": counts.astype(int)})


# ---- readable at hundreds of species: ranking, search, map extents ---------------------------------
RANK_MODES = ("top", "bottom", "all")


def species_ranking(counts: pd.DataFrame, query: str = "", mode: str = "top", n: int = 30) -> pd.DataFrame:
    """The rows of `species_counts` a ranked list shows, with their rank among *all* species.

    `query` keeps species whose code or common name contains it (case-insensitive) — the rank stays
    the one in the full list, so "#87" still means 87th most recorded. `mode` "top" keeps the first
    `n` of what is left, "bottom" the last `n` (still most first, so the list reads the same way),
    "all" everything. Columns: rank, species, common_name, recordings, scored, label ("code — name").
    """
    if mode not in RANK_MODES:
        raise ValueError(f"mode={mode!r}: use one of {RANK_MODES}")
    out = counts.reset_index(drop=True).copy()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    names = out["common_name"].fillna("").astype(str)
    out["label"] = [f"{c} — {nm}" if nm else c for c, nm in zip(out["species"].astype(str), names)]
    q = str(query or "").strip().lower()
    if q:
        hit = out["species"].astype(str).str.lower().str.contains(q, regex=False) \
            | names.str.lower().str.contains(q, regex=False)
        out = out[hit.to_numpy()]
    n = max(int(n), 1)
    if mode == "top":
        out = out.head(n)
    elif mode == "bottom":
        out = out.tail(n)
    return out.reset_index(drop=True)


def rating_for_species(meta: pd.DataFrame, species: list[str] | tuple[str, ...],
                       include_unrated: bool = False) -> pd.DataFrame:
    """`rating_by_species` statistics for exactly `species`, in that order; a species without a
    (rated) recording is left out. Lets a chart follow the species a ranked list shows."""
    stats = rating_by_species(meta[meta["primary_label"].isin(set(species))], top_n=len(meta) + 1,
                              include_unrated=include_unrated)
    order = {s: i for i, s in enumerate(species)}
    stats = stats[stats["species"].isin(order)]
    return stats.sort_values("species", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def location_clusters(meta: pd.DataFrame, scored: list[str] | tuple[str, ...] = (),
                      cell_deg: float = 0.1) -> tuple[pd.DataFrame, int]:
    """Recording places merged per `cell_deg` grid cell (and scored / not scored), for a light map.

    14,852 recordings are ~4,400 places at 0.1°; a browser draws that many map markers in a
    fraction of the time it needs for one per recording. Returns the clusters and the count of
    rows without coordinates. Columns: latitude, longitude (mean of the cell's recordings),
    recordings, species (distinct primary labels), top (the cell's species, most recorded first,
    at most 3, as text), scored (bool).
    """
    pts, missing = locations(meta, scored)
    if pts.empty:
        return pd.DataFrame(columns=["latitude", "longitude", "recordings", "species", "top", "scored"]), missing
    pts = pts.assign(cy=np.floor(pts["latitude"] / cell_deg).astype(int),
                     cx=np.floor(pts["longitude"] / cell_deg).astype(int))
    keys = ["cy", "cx", "scored"]
    g = pts.groupby(keys, sort=False)
    out = g.agg(latitude=("latitude", "mean"), longitude=("longitude", "mean"), recordings=("species", "size"),
                species=("species", "nunique")).reset_index()
    per = pts.groupby([*keys, "species"], sort=False).size().rename("n").reset_index()
    per = per.sort_values([*keys, "n", "species"], ascending=[True, True, True, False, True], kind="stable")
    top: dict[tuple, list[str]] = {}
    for a, b, c, sp in per[[*keys, "species"]].itertuples(index=False, name=None):  # one pass, no per-group call
        names = top.setdefault((a, b, c), [])
        if len(names) < 3:
            names.append(sp)
    out["top"] = [", ".join(top.get((a, b, c), ())) for a, b, c in zip(out["cy"], out["cx"], out["scored"])]
    out = out.sort_values(["scored", "recordings"], ascending=[True, False], kind="stable")
    return out[["latitude", "longitude", "recordings", "species", "top", "scored"]].reset_index(drop=True), missing


Extent = tuple[float, float, float, float]  # lat_min, lat_max, lon_min, lon_max


def _padded(lat: np.ndarray, lon: np.ndarray, pad_frac: float, min_span: float) -> Extent:
    lat0, lat1, lon0, lon1 = float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())
    out = []
    for lo, hi, limit in ((lat0, lat1, 90.0), (lon0, lon1, 180.0)):
        span = max(hi - lo, min_span)
        mid = (lo + hi) / 2
        half = span * (1 + 2 * pad_frac) / 2
        out += [max(mid - half, -limit), min(mid + half, limit)]
    return out[0], out[1], out[2], out[3]


def points_extent(points: pd.DataFrame, pad_frac: float = 0.08, min_span: float = 2.0) -> Extent | None:
    """Bounding box (lat_min, lat_max, lon_min, lon_max) of map points, padded by `pad_frac` of its
    size on each side and at least `min_span` degrees wide and tall (one site is not a zoom to a
    pixel). None when there are no points."""
    if points.empty:
        return None
    return _padded(points["latitude"].to_numpy(float), points["longitude"].to_numpy(float), pad_frac, min_span)


def focus_extent(meta: pd.DataFrame, species: list[str] | tuple[str, ...], cell_deg: float = 10.0,
                 pad_frac: float = 0.1, min_span: float = 2.0) -> Extent | None:
    """Where the given (e.g. scored) species live together: the box around their recordings in the
    region where most of them were recorded.

    The bounding box of every recording of the scored species is the whole world (BirdCLEF 2022's
    skylark and house finch are recorded on every continent), so: the `cell_deg` grid cell holding
    the most distinct `species` wins (ties: more recordings), and the box is that of those species'
    recordings in the winning cell and its 8 neighbours — Hawaii for BirdCLEF 2022. None when none
    of the species has coordinates.
    """
    pts, _ = locations(meta[meta["primary_label"].isin(set(species))], species)
    if pts.empty:
        return None
    cy = np.floor(pts["latitude"].to_numpy(float) / cell_deg).astype(int)
    cx = np.floor(pts["longitude"].to_numpy(float) / cell_deg).astype(int)
    cells = pd.DataFrame({"cy": cy, "cx": cx, "species": pts["species"].to_numpy()})
    score = cells.groupby(["cy", "cx"]).agg(n=("species", "nunique"), rec=("species", "size")).reset_index()
    best = score.sort_values(["n", "rec", "cy", "cx"], ascending=[False, False, True, True]).iloc[0]
    near = (np.abs(cy - int(best["cy"])) <= 1) & (np.abs(cx - int(best["cx"])) <= 1)
    return _padded(pts["latitude"].to_numpy(float)[near], pts["longitude"].to_numpy(float)[near], pad_frac, min_span)


def display_table(df: pd.DataFrame, empty: str = "—") -> pd.DataFrame:
    """A copy of `df` for showing to a person: missing values (None, NaN, "") become `empty` ("—"),
    so a table never reads "None" or "nan". Numeric columns with gaps turn into text."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        blank = s.isna()
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            blank = blank | (s.astype(str).str.strip() == "")
        if blank.any():
            out[col] = s.astype(object).where(~blank, empty)
            if pd.api.types.is_numeric_dtype(s):
                out[col] = [empty if b else f"{v:g}" for v, b in zip(s, blank)]
    return out
