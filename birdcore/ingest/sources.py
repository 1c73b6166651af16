"""Readers for the ways people keep labelled recordings. Each gives `Entry` rows: a file, its
labels (raw names), optionally the span of the file they hold for, and extra metadata.

- `label_folders`: `ROOT/<label>/**/*.wav|flac|mp3|ogg` (one label per folder);
- `file_table`: a CSV of files and labels (xeno-canto-style exports; extra columns kept);
- `selection_table`: a Raven Pro selection table or an Audacity label track beside a long
  recording; labelled selections become positive 5-s windows, the other windows of the file negatives;
- `app_annotations`: the Annotation page's `labels.csv` (checked windows only; "no bird" rows are negatives).

Errors name the file and line. Selections are checked: end after start, inside the recording,
no two selections of one label overlapping, at least one selection per table.
"""

from __future__ import annotations

import ast
import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.annotation.store import (
    covered_seconds,
    overlaps_enough,
    read_annotations,
    read_audacity_labels,
)
from birdcore.audio.io import AUDIO_EXTENSIONS, audio_info
from birdcore.audio.windows import MIN_LAST_S, WINDOW_S, window_count
from birdcore.errors import AudioError, DatasetError, brief

FILE_COLUMNS = ("filename", "file", "path", "file_path", "filepath", "audio", "recording")
LABEL_COLUMNS = ("ebird_code", "primary_label", "species_code", "label", "species", "scientific_name", "common_name")
RAVEN_LABEL_COLUMNS = ("Species Code", "Species", "species", "Annotation", "Label", "label", "Common Name", "Class")
RAVEN_TIMES = ("Begin Time (s)", "End Time (s)")
END_SLACK_S = 0.05  # a selection may end this far past the decoded end (rounding in the tools)


@dataclass
class Entry:
    """One training row to be: a file, label names (first = primary; none = a negative), a span."""

    path: Path
    labels: list[str]
    where: str
    start: float | None = None
    end: float | None = None
    extra: dict = field(default_factory=dict)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def label_folders(root: Path) -> list[Entry]:
    """One entry per audio file under `root/<label>/` (any depth below the label folder)."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    entries = [Entry(p, [d.name], f"{d}") for d in subdirs for p in _audio_files(d)]
    if not entries:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS][:3]
        why = (f"its audio files ({', '.join(loose)} …) are not in label folders" if loose else
               "no audio files found in its sub-folders")
        raise DatasetError(f"{root}: not a folder of labelled recordings — {why}; expected ROOT/<label>/*.wav|flac|mp3|ogg")
    return entries


def _pick(columns: list[str], wanted: tuple[str, ...], chosen: str | None, path: Path, what: str) -> str:
    if chosen:
        if chosen not in columns:
            raise DatasetError(f"{path}: no column {chosen!r} ({what}); columns: {', '.join(columns)}")
        return chosen
    lower = {c.lower(): c for c in columns}
    for w in wanted:
        if w.lower() in lower:
            return lower[w.lower()]
    raise DatasetError(f"{path}: no {what} column (one of {', '.join(wanted)}); columns: {', '.join(columns)}")


def _list_cell(text: str) -> list[str]:
    text = (text or "").strip()
    if not text or text == "[]":
        return []
    if text.startswith("["):
        try:
            return [str(v).strip() for v in ast.literal_eval(text) if str(v).strip()]
        except (ValueError, SyntaxError):
            pass
    return [v.strip() for v in text.replace(";", ",").split(",") if v.strip()]


def file_table(path: Path, label_column: str | None = None) -> list[Entry]:
    """Entries of a CSV of files and labels; paths relative to the CSV's folder. Every missing file
    is listed at once (file and line). Extra columns are kept as metadata."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as a CSV table ({brief(exc)})") from None
    if df.empty:
        raise DatasetError(f"{path}: the table has no rows")
    cols = list(df.columns)
    fcol = _pick(cols, FILE_COLUMNS, None, path, "file")
    lcol = _pick(cols, LABEL_COLUMNS, label_column, path, "label")
    scol = "secondary_labels" if "secondary_labels" in cols else None
    entries, missing = [], []
    for i, row in enumerate(df.to_dict("records")):
        line = i + 2
        rel = row[fcol].strip()
        p = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        if not rel or not p.is_file():
            missing.append(f"line {line}: {rel or '(empty)'}")
            continue
        label = row[lcol].strip()
        if not label:
            raise DatasetError(f"{path}: line {line}, column {lcol}: empty label (write 'nocall' for a recording with no bird)")
        secondary = _list_cell(row[scol]) if scol else []
        extra = {k: v for k, v in row.items() if k not in (fcol, lcol, scol)}
        entries.append(Entry(p, [label, *secondary], f"{path}:{line}", extra=extra))
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DatasetError(f"{path}: {len(missing)} listed audio file(s) not found: {'; '.join(missing[:10])}{more}")
    return entries


def _raven(path: Path, label_column: str | None) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as a Raven selection table ({brief(exc)})") from None
    lcol = _pick(list(df.columns), RAVEN_LABEL_COLUMNS, label_column, path, "label")
    out = []
    for i, row in enumerate(df.to_dict("records")):
        if str(row.get("View", "")).lower().startswith("waveform"):
            continue  # Raven lists each selection once per view; the spectrogram row is enough
        try:
            a, b = float(row[RAVEN_TIMES[0]]), float(row[RAVEN_TIMES[1]])
        except ValueError:
            raise DatasetError(f"{path}: line {i + 2}: begin/end time is not a number") from None
        out.append((a, b, str(row[lcol]).strip(), i + 2))
    return pd.DataFrame(out, columns=["start", "end", "label", "line"])


def _audacity(path: Path) -> pd.DataFrame:
    boxes = read_audacity_labels(path)
    lines = [i for i, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1)
             if raw.strip() and not raw.lstrip().startswith("\\")]
    return boxes.assign(line=lines[: len(boxes)])[["start", "end", "label", "line"]]


def is_selection_table(path: Path) -> bool:
    """A Raven table (tab-separated, with begin/end time columns) or an Audacity label track."""
    if path.suffix.lower() != ".txt":
        return False
    try:
        head = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()[:1]
    except OSError:
        return False
    if head and all(t in head[0] for t in RAVEN_TIMES):
        return True
    parts = head[0].split("\t") if head else []  # Audacity: start<TAB>end[<TAB>label]
    try:
        return len(parts) >= 2 and all(np.isfinite(float(x)) for x in parts[:2])
    except ValueError:
        return False


def audio_for_table(table: Path, candidates: list[Path]) -> Path:
    """The recording a table describes: the audio file whose name stem starts the table's name
    (`x.wav` ↔ `x.txt`, `x.Table.1.selections.txt`); the longest such stem wins."""
    name = table.name.lower()
    hits = [p for p in candidates if name.startswith(p.stem.lower() + ".") or table.stem.lower() == p.stem.lower()]
    if not hits:
        raise DatasetError(f"{table}: no recording beside it whose name starts the table's name"
                           f" (looked in {table.parent})")
    return max(hits, key=lambda p: len(p.stem))


def selection_table(table: Path, audio: Path, label_column: str | None = None,
                    window_s: float = WINDOW_S) -> list[Entry]:
    """Windows of `audio` labelled from the table at `table` (Raven or Audacity)."""
    with open(table, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    sel = _raven(table, label_column) if all(t in first for t in RAVEN_TIMES) else _audacity(table)
    if sel.empty:
        raise DatasetError(f"{table}: the selection table has no selections (an unlabelled recording is not"
                           " training data; label its birds, or list it as 'nocall' in a CSV)")
    try:
        duration = audio_info(audio).duration
    except AudioError as exc:
        raise DatasetError(f"{table}: its recording cannot be read ({exc})") from None
    _check_selections(sel, table, duration)
    spans = list(sel[["start", "end", "label"]].itertuples(index=False, name=None))
    return windows_from_spans(audio, duration, spans, f"{table}", window_s)


def _check_selections(sel: pd.DataFrame, table: Path, duration: float) -> None:
    for a, b, lab, line in sel.itertuples(index=False, name=None):
        if not lab:
            raise DatasetError(f"{table}: line {line}: empty label")
        if not (np.isfinite(a) and np.isfinite(b)) or b <= a:
            raise DatasetError(f"{table}: line {line}: end {b} is not after begin {a}")
        if a < 0 or b > duration + END_SLACK_S:
            raise DatasetError(f"{table}: line {line}: selection {a:g}–{b:g} s is outside the recording"
                               f" (0–{duration:.2f} s)")
    for lab, grp in sel.groupby("label"):
        g = grp.sort_values("start").to_numpy()
        for prev, cur in zip(g[:-1], g[1:]):
            if cur[0] < prev[1]:
                raise DatasetError(f"{table}: lines {int(prev[3])} and {int(cur[3])}: two {lab!r} selections overlap"
                                   f" ({prev[0]:g}–{prev[1]:g} s and {cur[0]:g}–{cur[1]:g} s); merge them")


def windows_from_spans(audio: Path, duration: float, spans: list[tuple[float, float, str]], where: str,
                       window_s: float = WINDOW_S, checked: list[tuple[float, float]] | None = None) -> list[Entry]:
    """One entry per scored window of the recording (the inference window rule): labels of the
    spans present in it (≥ 0.5 s or half the span), most overlap first; no span → a negative.
    With `checked` (ranges a person listened to), windows less than half covered are left out."""
    n = window_count(int(round(duration * 1000)), 1000, window_s, MIN_LAST_S)
    out = []
    for w in range(n):
        lo, hi = w * window_s, (w + 1) * window_s
        if checked is not None and covered_seconds(checked, lo, hi) < window_s / 2:
            continue
        hits: dict[str, float] = {}
        for a, b, lab in spans:
            if lab and overlaps_enough(a, b, lo, hi):
                hits[lab] = hits.get(lab, 0.0) + min(b, hi) - max(a, lo)
        labels = sorted(hits, key=lambda k: -hits[k])
        out.append(Entry(audio, labels, f"{where} window {lo:g}–{hi:g} s", start=lo, end=hi))
    return out


def app_annotations(path: Path, audio_dirs: list[Path], window_s: float = WINDOW_S) -> list[Entry]:
    """Windows the Annotation page saved (`labels.csv`): each checked window of each file, with
    its species; "checked, nothing there" windows become negatives. Audio is found by file_id in
    `audio_dirs` (default: the dataset's test_soundscapes/ and train_audio/ beside annotations/)."""
    ann = read_annotations(path)
    if ann.empty:
        raise DatasetError(f"{path}: no saved annotations")
    files = {p.stem: p for d in audio_dirs if d.is_dir() for p in _audio_files(d)}
    missing = sorted(set(ann["file_id"].astype(str)) - set(files))
    if missing:
        raise DatasetError(f"{path}: no audio for file_id(s) {', '.join(missing[:5])} in"
                           f" {', '.join(map(str, audio_dirs))} (pass --audio DIR)")
    entries = []
    for fid, grp in ann.groupby(ann["file_id"].astype(str), sort=True):
        audio = files[fid]
        duration = audio_info(audio).duration
        ranges = [(float(a), float(b)) for a, b in grp[["start", "end"]].itertuples(index=False, name=None)]
        spans = [(float(a), float(b), str(s)) for a, b, s in grp[["start", "end", "species"]].itertuples(index=False, name=None)]
        entries += windows_from_spans(audio, duration, spans, f"{path} ({fid})", window_s, checked=ranges)
    return entries


def collect(source: Path, *, label_column: str | None = None, audio_dirs: list[Path] | None = None,
            window_s: float = WINDOW_S) -> tuple[str, list[Entry]]:
    """(kind, entries) of one source, its kind recognised from what it is."""
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if source.is_dir():
        tables = [p for p in sorted(source.rglob("*.txt")) if is_selection_table(p)]
        if tables:
            audio = _audio_files(source)
            entries = []
            for t in tables:
                entries += selection_table(t, audio_for_table(t, [a for a in audio if a.parent == t.parent]),
                                           label_column, window_s)
            return "selection tables", entries
        return "label folders", label_folders(source)
    if source.suffix.lower() == ".txt":
        if source.stat().st_size and not is_selection_table(source):
            raise DatasetError(f"{source}: not a Raven selection table nor an Audacity label track")
        return "selection table", selection_table(source, audio_for_table(source, _audio_files(source.parent)),
                                                  label_column, window_s)
    if source.suffix.lower() == ".csv":
        with open(source, encoding="utf-8-sig", errors="replace", newline="") as fh:
            header = next(csv.reader(fh), [])
        if {"file_id", "start", "end", "species"} <= set(header):
            root = source.parent.parent if source.parent.name == "annotations" else source.parent
            dirs = audio_dirs or [root / "test_soundscapes", root / "train_audio", root]
            return "app annotations", app_annotations(source, dirs, window_s)
        return "file table", file_table(source, label_column)
    raise DatasetError(f"{source}: not a folder, a .csv table or a .txt selection table")
