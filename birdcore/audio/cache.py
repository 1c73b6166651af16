"""Decoded-audio cache: every training recording decoded once to a fixed rate, read by memmap.

Layout (default root `DATA/.birdcore_cache/<sr>_<dtype>/`):

    index.json                 {"version", "sr", "dtype", "files": {filename: entry}}
    <filename>.npy             one array per recording, e.g. `afrsil1/XC125458.ogg.npy`
    skipped.csv                filename,error — recordings that failed to decode (AudioError)

One `.npy` per recording rather than one big memmap + offsets: a rebuild after adding or changing
recordings writes only those files; each file is written atomically (temp + rename), so a crash
never leaves a half-written array that looks valid; worker processes write in parallel without
coordinating offsets; and `np.load(mmap_mode="r")` still gives zero-copy window reads (opening a
file costs ~30 µs and is cached per `CachedAudio`).

Sample format: "int16" stores round(y / scale · 32767) with a per-file `scale` = max(1, peak)
kept in the index, so Vorbis overshoot beyond ±1 is not clipped (error ≤ scale / 65534 per
sample, ~ -96 dBFS); "float16" stores y directly (~3 significant digits, 11-bit mantissa).
Both are half the size of float32: a 5-s window at 32 kHz is 320 kB.

An entry is reused when the source file's size and mtime (ns) match the index and its `.npy`
exists; otherwise it is (re)decoded. The index is rewritten atomically every 64 files and at the
end, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from birdcore.atomic_io import atomic_path, atomic_write_json, atomic_write_text
from birdcore.audio.io import DEFAULT_SR, load_audio
from birdcore.errors import AudioError, DatasetError

__all__ = ["build_cache", "open_cache", "CachedAudio", "CacheEntry", "default_cache_dir", "CACHE_DIRNAME"]

CACHE_DIRNAME = ".birdcore_cache"
INDEX_VERSION = 1
_DTYPES = ("int16", "float16")
_INDEX_EVERY = 64

Progress = Callable[[int, int, str], None]


def default_cache_dir(data_root: str | os.PathLike, sr: int = DEFAULT_SR, dtype: str = "int16") -> Path:
    """`DATA/.birdcore_cache/<sr>_<dtype>`."""
    return Path(data_root) / CACHE_DIRNAME / f"{int(sr)}_{dtype}"


def _npy_rel(filename: str) -> str:
    return f"{filename}.npy"


def _encode_one(args: tuple[str, str, str, int, str]) -> tuple[str, dict | None, str | None]:
    """Decode one recording and write its `.npy` atomically; runs in a worker process."""
    filename, src, dst, sr, dtype = args
    try:
        y = load_audio(src, sr=sr)
    except AudioError as exc:
        return filename, None, str(exc)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    scale = max(1.0, peak)
    if dtype == "int16":
        data = np.round(y * (32767.0 / scale)).astype(np.int16)
    else:
        data = y.astype(np.float16)
    with atomic_path(dst, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, data)
    st = os.stat(src)
    return filename, {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "samples": int(y.size),
                      "scale": scale, "path": _npy_rel(filename)}, None


def _dataset_files(dataset) -> list[tuple[str, Path]]:
    return list(zip((str(f) for f in dataset.metadata["filename"]), dataset.audio_paths()))


def build_cache(
    dataset,
    out_dir: str | os.PathLike | None = None,
    sr: int = DEFAULT_SR,
    dtype: str = "int16",
    workers: int = 2,
    progress: Progress | None = None,
) -> Path:
    """Decode every recording of `dataset` (a `BirdDataset`) into the cache; return its folder.

    - `out_dir`: default `default_cache_dir(dataset.root, sr, dtype)`.
    - Recordings already cached with the same size and mtime are skipped (not decoded).
    - Recordings that fail to decode (AudioError: missing, empty, corrupt, truncated) are listed
      in `skipped.csv` (filename, error) and the build goes on; entries of earlier builds whose
      files vanished are dropped from the index.
    - `workers` > 1 decodes in that many processes (decoding is CPU-bound; threads did not
      speed it up here); `progress(done, total, filename)` is called after each recording.
    Raises DatasetError when the dataset has no `train_audio/` folder, ValueError for a bad dtype.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"build_cache: dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    if not dataset.has_train_audio:
        raise DatasetError(f"{dataset.train_audio_dir}: folder not found — nothing to cache")
    root = Path(out_dir) if out_dir is not None else default_cache_dir(dataset.root, sr, dtype)
    root.mkdir(parents=True, exist_ok=True)
    index = _read_index(root, sr, dtype)
    files = _dataset_files(dataset)
    entries: dict[str, dict] = {}
    todo: list[tuple[str, str, str, int, str]] = []
    for filename, path in files:
        old = index["files"].get(filename)
        if old is not None and _still_valid(old, path, root):
            entries[filename] = old
        else:
            todo.append((filename, str(path), str(root / _npy_rel(filename)), int(sr), dtype))
    total, done = len(files), len(files) - len(todo)
    skipped: list[tuple[str, str]] = []
    index["files"] = entries

    def record(result: tuple[str, dict | None, str | None]) -> None:
        nonlocal done
        filename, entry, error = result
        if entry is None:
            skipped.append((filename, error or "unknown error"))
        else:
            entries[filename] = entry
        done += 1
        if done % _INDEX_EVERY == 0:
            _write_index(root, index)
        if progress is not None:
            progress(done, total, filename)

    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_encode_one, todo, chunksize=4):
                record(result)
    else:
        for item in todo:
            record(_encode_one(item))
    _write_index(root, index)
    _write_skipped(root, skipped)
    return root


def _still_valid(entry: dict, src: Path, root: Path) -> bool:
    try:
        st = os.stat(src)
    except OSError:
        return False
    return (entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
            and (root / entry["path"]).is_file())


def _read_index(root: Path, sr: int, dtype: str) -> dict:
    p = root / "index.json"
    fresh = {"version": INDEX_VERSION, "sr": int(sr), "dtype": dtype, "files": {}}
    if not p.exists():
        return fresh
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return fresh  # a damaged index only costs a rebuild
    if data.get("version") != INDEX_VERSION or data.get("sr") != sr or data.get("dtype") != dtype:
        return fresh
    return data


def _write_index(root: Path, index: dict) -> None:
    atomic_write_json(root / "index.json", index)


def _write_skipped(root: Path, skipped: Iterable[tuple[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["filename", "error"])
    w.writerows(skipped)
    atomic_write_text(root / "skipped.csv", buf.getvalue())


@dataclass
class CacheEntry:
    """One cached recording as a window source (see `birdcore.augment.window.AudioSource`)."""

    cache: "CachedAudio"
    name: str

    @property
    def sample_rate(self) -> int:
        return self.cache.sample_rate

    @property
    def duration(self) -> float:
        return self.cache.duration(self.name)

    def read(self, offset_s: float, duration_s: float) -> np.ndarray:
        return self.cache.read(self.name, offset_s, duration_s)


class CachedAudio:
    """Read-only view of a built cache; windows come from memory-mapped `.npy` files.

    Safe to use from DataLoader worker processes (each opens its own memmaps lazily).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        p = self.root / "index.json"
        if not p.exists():
            raise DatasetError(f"{self.root}: no cache index (index.json) — run `birdcore cache DATA` first")
        try:
            index = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{p}: damaged cache index ({exc}); rebuild the cache") from None
        self.sample_rate = int(index["sr"])
        self.dtype = str(index["dtype"])
        self.files: dict[str, dict] = dict(index["files"])
        self._maps: dict[str, np.ndarray] = {}

    def __contains__(self, filename: object) -> bool:
        return filename in self.files

    def __len__(self) -> int:
        return len(self.files)

    @property
    def filenames(self) -> list[str]:
        return sorted(self.files)

    def skipped(self) -> list[tuple[str, str]]:
        """(filename, error) rows of `skipped.csv` from the last build."""
        p = self.root / "skipped.csv"
        if not p.exists():
            return []
        with open(p, newline="", encoding="utf-8") as fh:
            return [(r["filename"], r["error"]) for r in csv.DictReader(fh)]

    def _entry(self, filename: str) -> dict:
        try:
            return self.files[filename]
        except KeyError:
            raise AudioError(f"{filename}: not in the audio cache {self.root} (rebuild it, or see skipped.csv)") from None

    def duration(self, filename: str) -> float:
        """Length in seconds of the cached recording."""
        return self._entry(filename)["samples"] / self.sample_rate

    def entry(self, filename: str) -> CacheEntry:
        """A window source for `load_training_clip`."""
        self._entry(filename)
        return CacheEntry(self, filename)

    def _map(self, filename: str) -> np.ndarray:
        m = self._maps.get(filename)
        if m is None:
            path = self.root / self._entry(filename)["path"]
            try:
                m = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise AudioError(f"{path}: cannot read cached audio ({exc}); rebuild the cache") from None
            self._maps[filename] = m
        return m

    def read(self, filename: str, offset_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
        """Window [offset_s, offset_s + duration_s) as float32 at the cache's rate.

        Like `load_audio(..., allow_short=True)`: a window running past the end returns the
        available samples; an offset past the end raises AudioError.
        """
        m = self._map(filename)
        start = int(round(offset_s * self.sample_rate))
        if start < 0 or start >= len(m):
            raise AudioError(f"{filename}: offset {offset_s:.3f} s is outside the cached recording ({len(m) / self.sample_rate:.3f} s)")
        stop = len(m) if duration_s is None else min(len(m), start + int(round(duration_s * self.sample_rate)))
        chunk = np.asarray(m[start:stop])
        if self.dtype == "int16":
            return chunk.astype(np.float32) * np.float32(self._entry(filename)["scale"] / 32767.0)
        return chunk.astype(np.float32)


def open_cache(data_root_or_dir: str | os.PathLike, sr: int = DEFAULT_SR, dtype: str = "int16") -> CachedAudio:
    """Open a cache by its folder, or by the dataset root (then `DATA/.birdcore_cache/<sr>_<dtype>`)."""
    p = Path(data_root_or_dir)
    if (p / "index.json").exists():
        return CachedAudio(p)
    return CachedAudio(default_cache_dir(p, sr, dtype))
