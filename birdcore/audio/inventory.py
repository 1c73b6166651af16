"""A plain folder of recordings: find its audio files (recursively) and summarise them from headers.

`birdcore info FOLDER` on a folder without train_metadata.csv prints `summarise_folder`;
`birdcore predict FOLDER` scores `find_audio_files(FOLDER)`. Nothing is decoded: the header (and,
for WAV and Ogg, a cheap truncation check; `io.check_audio`) gives rate, channels and length.
Hidden files and folders (names starting with ".", e.g. a `.birdcore_cache/`) are left out.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from pathlib import Path
from typing import Callable

from birdcore.audio.io import AUDIO_EXTENSIONS, check_audio
from birdcore.errors import AudioError

SHOW_UNREADABLE = 5  # how many unreadable files a summary lists (all are counted)


def _walk(folder: Path):
    """(relative path, path) of every non-hidden file under `folder`, sorted by relative path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in filenames:
            if not name.startswith("."):
                p = base / name
                out.append((p.relative_to(folder).as_posix(), p))
    return sorted(out, key=lambda t: t[0])


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files (by extension, `AUDIO_EXTENSIONS`) in `folder` and all its sub-folders, sorted by
    their path relative to `folder` (deterministic on every file system)."""
    root = Path(folder)
    return [p for _, p in _walk(root) if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()]


def duplicate_names(files: list[Path]) -> dict[str, list[Path]]:
    """File names (without extension) shared by several files: stem -> paths. A prediction table
    names each recording by its stem (`file_id`), so such files would share rows' ids."""
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    return {s: ps for s, ps in by_stem.items() if len(ps) > 1}


def _reason(path: Path, message: str) -> str:
    """The message of an AudioError without its leading `<path>: `."""
    return message.removeprefix(f"{path}: ")


def summarise_folder(folder: str | os.PathLike, progress: Callable[[int, int], None] | None = None,
                     show_unreadable: int = SHOW_UNREADABLE) -> dict:
    """Counts of a folder of recordings, from headers only (JSON-ready).

    Keys: root, files (audio files by extension), readable, unreadable, total_duration_s,
    median_duration_s, min_duration_s, max_duration_s, sample_rates {Hz: files}, channels
    {n: files}, formats {extension: files} (unreadable ones included), folders {top-level
    sub-folder or ".": files}, unreadable_files [{path, error}] (the first `show_unreadable`),
    other_files {extension: files} (not audio by extension). `progress(done, total)` per file.
    """
    root = Path(folder)
    entries = _walk(root)
    audio = [(rel, p) for rel, p in entries if p.suffix.lower() in AUDIO_EXTENSIONS]
    other = Counter(p.suffix.lower() or "(none)" for _, p in entries if p.suffix.lower() not in AUDIO_EXTENSIONS)
    durations: list[float] = []
    rates: Counter = Counter()
    channels: Counter = Counter()
    formats: Counter = Counter()
    folders: Counter = Counter()
    bad: list[dict] = []
    for i, (rel, p) in enumerate(audio):
        formats[p.suffix.lower()] += 1
        folders[rel.split("/", 1)[0] if "/" in rel else "."] += 1
        try:
            info = check_audio(p)
        except AudioError as exc:
            bad.append({"path": rel, "error": _reason(p, str(exc))})
        else:
            durations.append(info.duration)
            rates[info.samplerate] += 1
            channels[info.channels] += 1
        if progress is not None:
            progress(i + 1, len(audio))
    return {
        "root": str(root),
        "files": len(audio),
        "readable": len(durations),
        "unreadable": len(bad),
        "total_duration_s": round(sum(durations), 3),
        "median_duration_s": round(statistics.median(durations), 3) if durations else None,
        "min_duration_s": round(min(durations), 3) if durations else None,
        "max_duration_s": round(max(durations), 3) if durations else None,
        "sample_rates": {str(k): v for k, v in sorted(rates.items())},
        "channels": {str(k): v for k, v in sorted(channels.items())},
        "formats": dict(sorted(formats.items(), key=lambda kv: (-kv[1], kv[0]))),
        "folders": dict(sorted(folders.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unreadable_files": bad[:max(0, show_unreadable)],
        "other_files": dict(sorted(other.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def format_duration(seconds: float | None) -> str:
    """`3723.4` -> `"1:02:03"`; `6.04` -> `"6.0 s"` (under a minute); None -> `"-"`."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summary_lines(summary: dict, folder_limit: int = 10) -> list[str]:
    """`summarise_folder`'s dict as the aligned lines `birdcore info` prints."""
    def counts(d: dict, fmt=str, limit: int | None = None) -> str:
        items = list(d.items())
        text = ", ".join(f"{fmt(k)}: {v}" for k, v in items[:limit])
        return text + (f", … ({len(items) - limit} more)" if limit is not None and len(items) > limit else "")

    ch_name = {"1": "mono", "2": "stereo"}
    n_folders = sum(1 for k in summary["folders"] if k != ".")
    lines = [
        f"folder       {summary['root']} (no train_metadata.csv: a folder of recordings)",
        f"recordings   {summary['files']} audio files ({summary['readable']} readable, {summary['unreadable']} unreadable)"
        + (f" in {n_folders} sub-folder{'s' if n_folders != 1 else ''}" if n_folders else ""),
        (f"duration     total {format_duration(summary['total_duration_s'])}, median"
         f" {format_duration(summary['median_duration_s'])} (shortest {format_duration(summary['min_duration_s'])},"
         f" longest {format_duration(summary['max_duration_s'])})"),
        f"sample rates {counts(summary['sample_rates'], lambda k: f'{k} Hz') or '-'}",
        f"channels     {counts(summary['channels'], lambda k: ch_name.get(k, f'{k} channels')) or '-'}",
        f"formats      {counts(summary['formats']) or '-'}",
    ]
    if n_folders:
        lines.append(f"folders      {counts(summary['folders'], limit=folder_limit)}")
    for item in summary["unreadable_files"]:
        lines.append(f"unreadable   {item['path']}: {item['error']}")
    if summary["unreadable"] > len(summary["unreadable_files"]):
        lines.append(f"unreadable   … and {summary['unreadable'] - len(summary['unreadable_files'])} more")
    if summary["other_files"]:
        lines.append(f"other files  {sum(summary['other_files'].values())} not audio by extension"
                     f" ({counts(summary['other_files'], limit=6)})")
    return lines
