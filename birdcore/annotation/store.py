"""Human labels per recording window: store, validate, merge concurrent saves, export and import.

A label says which species are present in a time range of one recording, optionally in a
frequency band:

    file_id,start,end,species,annotator,updated_at,low_hz,high_hz
    soundscape_1000170626,0,5,zzasc1,ann,2026-11-25T19:15:56+00:00,1000,8000
    soundscape_1000170626,0,5,zzcro1,ann,2026-11-25T19:15:56+00:00,1000,8000
    soundscape_1000170626,5,10,,ann,2026-11-25T19:16:02+00:00,,

- One row per species present; a row with an empty `species` marks a range as "checked, nothing
  there" (so an empty window is told apart from one nobody listened to).
- `file_id` is the recording's file name without extension (the soundscape id of test.csv).
- `start`/`end` are seconds from the start of the recording, stored with millisecond precision;
  (file_id, start, end) is the key a save replaces.
- `low_hz`/`high_hz` (optional): the band the label was made in (the Annotation page's frequency
  zoom), the Low/High Freq of its Raven selection. Both empty = no band (Raven then gets the
  export's default); when given, 0 <= low_hz < high_hz. A file without these two columns (written
  before they existed) reads as having no bands; every save writes all eight columns.
- Default location: `<dataset>/annotations/labels.csv` (`default_labels_path`).

Saves are read-modify-write under `atomic_io.file_lock` and land with an atomic rename, so two
app sessions saving at once never lose each other's rows and a reader never sees a torn file; a
crash mid-save leaves the previous file as it was.

Interchange: `raven_table` / `raven_text` / `raven_tables` / `raven_zip` (Raven selection tables,
tab-separated; a selection's Low/High Freq is its label's band, else a default) and
`read_audacity_labels` / `audacity_to_annotations` (Audacity label tracks, see
/work/shared/notes/birdclef-reference.md). `annotations_to_labels` turns labels into the
`row_id,target` ground truth of a test.csv-like row set, for `evaluate_submission` and the app.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path, atomic_write_text, file_lock
from birdcore.errors import DatasetError, not_found_message

__all__ = [
    "COLUMNS", "RAVEN_COLUMNS", "default_labels_path", "empty_annotations", "read_annotations",
    "save_window", "save_windows", "window_species", "annotated_windows", "raven_table", "raven_text",
    "read_audacity_labels", "audacity_to_annotations", "raven_tables", "raven_zip", "raven_file_name",
    "remove_window", "RAVEN_FILE_COLUMNS", "annotations_to_labels", "write_labels_table",
    "overlaps_enough", "covered_seconds", "BAND_COLUMNS", "window_bands",
]

# The band columns are optional in a file (older files have only the first six) but always in a table.
BAND_COLUMNS = ["low_hz", "high_hz"]
COLUMNS = ["file_id", "start", "end", "species", "annotator", "updated_at", *BAND_COLUMNS]
_REQUIRED = COLUMNS[:6]
RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "Species Code", "file"]
# Same presence rule as the demo dataset's test_labels.csv (birdcore/demo/scenes.py): a labelled
# range counts for a window when it overlaps it by 0.5 s, or by half its own length if shorter.
MIN_OVERLAP_S = 0.5
MIN_OVERLAP_FRACTION = 0.5
# What `updated_at` must look like: full seconds, optional fraction and zone. Strict on purpose: a
# file cut off inside its last timestamp ("2026-11-25T19:1") is then reported as truncated.
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def default_labels_path(dataset_root: str | os.PathLike) -> Path:
    """`<dataset>/annotations/labels.csv` (not created here)."""
    return Path(dataset_root) / "annotations" / "labels.csv"


def empty_annotations() -> pd.DataFrame:
    """An annotation table without rows (the right columns and dtypes)."""
    return pd.DataFrame({"file_id": pd.Series(dtype=str), "start": pd.Series(dtype=float),
                         "end": pd.Series(dtype=float), "species": pd.Series(dtype=str),
                         "annotator": pd.Series(dtype=str), "updated_at": pd.Series(dtype=str),
                         "low_hz": pd.Series(dtype=float), "high_hz": pd.Series(dtype=float)})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ms(x: float) -> float:
    """Seconds rounded to milliseconds: the key precision (0.1 + 0.2 must equal 0.3)."""
    return round(float(x) + 0.0, 3)


def _band(band: Sequence[float] | None) -> tuple[float, float] | None:
    """A band as (low_hz, high_hz) rounded as written (3 decimals), or None for "no band" (None or
    two NaNs, as a table row without a band gives). Raises ValueError unless 0 <= low < high."""
    if band is None:
        return None
    low, high = (float(x) for x in band)
    if math.isnan(low) and math.isnan(high):
        return None
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high <= low:
        raise ValueError("need finite 0 <= low_hz < high_hz")
    return round(low + 0.0, 3), round(high + 0.0, 3)


# ------------------------------------------------------------------------------------ reading
def read_annotations(path: str | os.PathLike, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Read and validate a labels CSV; a missing file reads as an empty table.

    DatasetError names the file, the line (header = line 1) and the field on: unknown or missing
    columns (`low_hz`/`high_hz` may be left out, but only together), a row with the wrong number of
    fields (a truncated file says so), an empty file_id, start/end that are not finite numbers with
    0 <= start < end, a band that is half given, not numbers, or not 0 <= low_hz < high_hz, and —
    when `classes` is given — a species code not in `classes`. Rows come back sorted by file_id,
    start, end, species, with all of `COLUMNS` (low_hz/high_hz NaN where a row has no band).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return empty_annotations()
    except OSError as exc:  # a folder, no permission, I/O error: say which path and why
        raise DatasetError(f"{p}: cannot read the labels file ({exc.strerror or type(exc).__name__})") from None
    return _parse(data, p, classes)


def _parse(data: bytes, p: Path, classes: Sequence[str] | None) -> pd.DataFrame:
    if not data.strip():
        raise DatasetError(f"{p}: empty file — expected the header {','.join(COLUMNS)} (truncated by a crash?"
                           " delete it to start over)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    unknown = [h for h in header if h not in COLUMNS]
    # Both band columns or neither: a file with one of them is damaged, not an old file.
    wanted = COLUMNS if any(c in header for c in BAND_COLUMNS) else _REQUIRED
    missing = [c for c in wanted if c not in header]
    if unknown or missing:
        parts = [f"unknown column(s) {unknown}"] if unknown else []
        parts += [f"missing column(s) {missing}"] if missing else []
        raise DatasetError(f"{p}: line 1: {'; '.join(parts)}; expected exactly {','.join(COLUMNS)}"
                           f" ({','.join(BAND_COLUMNS)} may be left out together)")
    pos = [header.index(c) for c in wanted]
    known = set(classes) if classes is not None else None
    ends_cleanly = text.endswith("\n")
    rows = []
    for record in reader:
        line = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        if len(record) != len(header):
            last = not ends_cleanly and line == text.count("\n") + 1
            why = " — the file looks truncated (its last line is cut off)" if last else ""
            raise DatasetError(f"{p}: line {line}: expected {len(header)} fields, got {len(record)}{why}")
        file_id, start, end, species, annotator, updated, *band = (record[i].strip() for i in pos)
        if not file_id:
            raise DatasetError(f"{p}: line {line}, field file_id: empty")
        t0, t1 = _number(start, p, line, "start"), _number(end, p, line, "end")
        if t0 < 0:
            raise DatasetError(f"{p}: line {line}, field start: {start!r} is negative")
        if t1 <= t0:
            raise DatasetError(f"{p}: line {line}, field end: {end!r} is not after start {start!r}")
        if updated and not _ISO.match(updated):
            last = not ends_cleanly and line == text.count("\n") + 1
            why = " — the file looks truncated (its last line is cut off)" if last else ""
            raise DatasetError(f"{p}: line {line}, field updated_at: {updated!r} is not an ISO 8601 time{why}")
        if species and known is not None and species not in known:
            raise DatasetError(f"{p}: line {line}, field species: unknown species code {species!r}"
                               " (not a class of this dataset)")
        low, high = _parse_band(band or ["", ""], p, line)
        rows.append((file_id, _ms(t0), _ms(t1), species, annotator, updated, low, high))
    df = pd.DataFrame(rows, columns=COLUMNS) if rows else empty_annotations()
    return _sorted(df)


def _parse_band(cells: Sequence[str], p: Path, line: int) -> tuple[float, float]:
    """(low_hz, high_hz) of one row; (NaN, NaN) when both cells are empty."""
    low, high = cells
    if not low and not high:
        return math.nan, math.nan
    if not low or not high:  # half a band is a slip, not "no band": say which half is missing
        empty, given = ("low_hz", "high_hz") if not low else ("high_hz", "low_hz")
        raise DatasetError(f"{p}: line {line}, field {empty}: empty while {given} is"
                           f" {low or high!r} (give both or neither)")
    lo, hi = _number(low, p, line, "low_hz", "Hz"), _number(high, p, line, "high_hz", "Hz")
    if lo < 0:
        raise DatasetError(f"{p}: line {line}, field low_hz: {low!r} is negative")
    if hi <= lo:
        raise DatasetError(f"{p}: line {line}, field high_hz: {high!r} is not above low_hz {low!r}")
    return round(lo + 0.0, 3), round(hi + 0.0, 3)


def _number(value: str, p: Path, line: int, field: str, unit: str = "seconds") -> float:
    try:
        x = float(value)
    except ValueError:
        raise DatasetError(f"{p}: line {line}, field {field}: {value!r} is not a number ({unit})") from None
    if not math.isfinite(x):
        raise DatasetError(f"{p}: line {line}, field {field}: {value!r} is not a finite number")
    return x


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(**{c: math.nan for c in BAND_COLUMNS if c not in df.columns})  # a table made without bands
    df = df.astype({"file_id": str, "start": float, "end": float, "species": str, "annotator": str,
                    "updated_at": str, "low_hz": float, "high_hz": float})
    return df.sort_values(["file_id", "start", "end", "species"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------ writing
def _num_text(x: float) -> str:
    """A number with at most 3 decimals and no trailing zeros; "" for NaN (no band)."""
    return "" if math.isnan(x) else f"{x:.3f}".rstrip("0").rstrip(".")


def _format_row(row: Sequence) -> list[str]:
    file_id, start, end, species, annotator, updated, low, high = row
    return [file_id, _num_text(start), _num_text(end), species, annotator, updated, _num_text(low), _num_text(high)]


def _write_table(path: Path, df: pd.DataFrame) -> None:
    """Atomically replace `path` with `df` (temp file + fsync + rename)."""
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in df[COLUMNS].itertuples(index=False, name=None):
            writer.writerow(_format_row(row))


def save_window(path: str | os.PathLike, file_id: str, start: float, end: float, species: Iterable[str], *,
                annotator: str = "", classes: Sequence[str] | None = None,
                band: tuple[float, float] | None = None) -> pd.DataFrame:
    """Set the species of one range (replacing what was saved for exactly that range); returns the file's table.

    An empty `species` saves an explicit "checked, nothing there" row. `band` = (low_hz, high_hz)
    the label was made in, stored on each of its rows (None: no band). See `save_windows`.
    """
    return save_windows(path, [(file_id, start, end, list(species), band)], annotator=annotator, classes=classes)


def save_windows(path: str | os.PathLike, windows: Iterable[tuple], *,
                 annotator: str = "", classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Save several ranges at once: `windows` = (file_id, start s, end s, species codes[, band]).

    The optional 5th element is the range's frequency band (low_hz, high_hz), stored on every row
    of the range ("no bird" row included); None, two NaNs or no 5th element = no band. A save
    replaces the range's rows, band included; rows of other ranges keep theirs.
    Read-modify-write under an exclusive file lock (`<path>.lock`), so concurrent savers (two
    browser sessions, two processes) serialise and none loses the other's rows; the new table
    replaces the file atomically. A corrupt existing file raises DatasetError and is left alone
    (overwriting it would silently drop its rows). Codes are checked against `classes` when given.
    """
    p = Path(path)
    stamp = _now()
    new_rows, keys = [], set()
    for window in windows:
        file_id, start, end, species, *rest = window
        file_id = str(file_id).strip()
        t0, t1 = _ms(start), _ms(end)
        if not file_id or not (math.isfinite(t0) and math.isfinite(t1)) or t0 < 0 or t1 <= t0:
            raise DatasetError(f"{p}: cannot save range {file_id!r} {start}–{end} s"
                               " (need a file_id and 0 <= start < end)")
        codes = sorted({str(s).strip() for s in species if str(s).strip()})
        if classes is not None:
            bad = [c for c in codes if c not in set(classes)]
            if bad:
                raise DatasetError(f"{p}: unknown species code(s) {bad} for {file_id} {t0}–{t1} s")
        try:
            band = _band(rest[0] if rest else None)
        except (TypeError, ValueError) as exc:  # TypeError: not a pair of numbers
            raise DatasetError(f"{p}: cannot save {file_id} {t0}–{t1} s with band {rest[0]!r} ({exc})") from None
        low, high = band or (math.nan, math.nan)
        keys.add((file_id, t0, t1))
        new_rows += [(file_id, t0, t1, c, annotator, stamp, low, high) for c in (codes or [""])]
    with file_lock(p):
        current = read_annotations(p)  # under the lock: nobody writes between this read and our rename
        key = list(zip(current["file_id"], current["start"], current["end"]))
        keep = current[[k not in keys for k in key]] if len(current) else current
        new = _sorted(pd.DataFrame(new_rows, columns=COLUMNS))
        # Leave an empty side out: concatenating an empty frame is a pandas deprecation warning.
        table = _sorted(pd.concat([f for f in (keep, new) if len(f)] or [new], ignore_index=True))
        _write_table(p, table)
    return table


# ----------------------------------------------------------------------------------- queries
def window_species(ann: pd.DataFrame) -> dict[tuple[str, float, float], set[str]]:
    """(file_id, start, end) → the species saved for that exact range (empty set = checked, nothing)."""
    out: dict[tuple[str, float, float], set[str]] = {}
    for f, a, b, s in ann[["file_id", "start", "end", "species"]].itertuples(index=False, name=None):
        codes = out.setdefault((f, _ms(a), _ms(b)), set())
        if s:
            codes.add(s)
    return out


def window_bands(ann: pd.DataFrame) -> dict[tuple[str, float, float], tuple[float, float] | None]:
    """(file_id, start, end) → the band (low_hz, high_hz) saved for that range, None when it has none.
    A save gives all rows of a range one band; should a hand-edited file differ, the first row's wins."""
    out: dict[tuple[str, float, float], tuple[float, float] | None] = {}
    cols = ["file_id", "start", "end", *BAND_COLUMNS]
    for f, a, b, lo, hi in _sorted(ann)[cols].itertuples(index=False, name=None):
        key = (f, _ms(a), _ms(b))
        if key not in out:
            out[key] = None if math.isnan(lo) or math.isnan(hi) else (float(lo), float(hi))
    return out


def annotated_windows(ann: pd.DataFrame, file_id: str | None = None) -> set[tuple[str, float, float]]:
    """The (file_id, start, end) keys that have been saved (of one file when `file_id` is given)."""
    keys = set(window_species(ann))
    return {k for k in keys if k[0] == file_id} if file_id is not None else keys


# --------------------------------------------------------------------------------- interchange
def raven_table(ann: pd.DataFrame, *, low_hz: float = 0.0, high_hz: float = 16000.0,
                include_empty: bool = False) -> pd.DataFrame:
    """Annotations as a Raven selection table (columns `RAVEN_COLUMNS`), one selection per species row.

    A box spans its row's band (`low_hz`/`high_hz` columns) when the row has one; rows without a
    band (or a table without these columns) span the `low_hz`–`high_hz` given here (default
    0–16 kHz, the mel range of the 32-kHz front end). "Checked, nothing there" rows are left out
    unless `include_empty` (then with an empty Species Code). `file` holds the file_id.
    """
    rows = ann if include_empty else ann[ann["species"] != ""]
    rows = rows.sort_values(["file_id", "start", "end", "species"], kind="stable")
    low, high = (_band_or(rows, col, default) for col, default in zip(BAND_COLUMNS, (low_hz, high_hz)))
    return pd.DataFrame({
        "Selection": np.arange(1, len(rows) + 1),
        "View": "Spectrogram 1",
        "Channel": 1,
        "Begin Time (s)": rows["start"].to_numpy(dtype=float),
        "End Time (s)": rows["end"].to_numpy(dtype=float),
        "Low Freq (Hz)": low,
        "High Freq (Hz)": high,
        "Species Code": rows["species"].to_numpy(dtype=str),
        "file": rows["file_id"].to_numpy(dtype=str),
    }, columns=RAVEN_COLUMNS)


def _band_or(rows: pd.DataFrame, column: str, default: float) -> np.ndarray:
    """The rows' `column` (low_hz or high_hz) with `default` where a row has no band."""
    if column not in rows.columns:
        return np.full(len(rows), float(default))
    values = rows[column].to_numpy(dtype=float)
    return np.where(np.isnan(values), float(default), values)


RAVEN_FILE_COLUMNS = RAVEN_COLUMNS[:-1]  # one table per sound file: the file is the table, not a column


def raven_tables(ann: pd.DataFrame, *, low_hz: float = 0.0, high_hz: float = 16000.0,
                 include_empty: bool = False) -> dict[str, pd.DataFrame]:
    """One Raven selection table per sound file, as Raven opens them: file_id → table with columns
    `RAVEN_FILE_COLUMNS` (Selection numbered from 1 in each file, Begin/End Time (s), Low/High Freq
    (Hz), Species Code). A box spans its label's saved band, else `low_hz`–`high_hz` (the default
    for labels without a band). Files are in file_id order; empty rows as in `raven_table`."""
    out: dict[str, pd.DataFrame] = {}
    whole = raven_table(ann, low_hz=low_hz, high_hz=high_hz, include_empty=include_empty)
    for file_id, part in whole.groupby("file", sort=True):
        part = part[RAVEN_FILE_COLUMNS].reset_index(drop=True)
        part["Selection"] = np.arange(1, len(part) + 1)
        out[str(file_id)] = part
    return out


def raven_file_name(file_id: str) -> str:
    """The name Raven gives a selection table of `file_id`: "<file_id>.Table.1.selections.txt"."""
    safe = re.sub(r"[^\w.+-]", "_", str(file_id)) or "recording"
    return f"{safe}.Table.1.selections.txt"


def raven_zip(ann: pd.DataFrame, **kwargs) -> bytes:
    """`raven_tables` as a zip of tab-separated selection tables, one `raven_file_name` per sound file
    (`kwargs`: `low_hz`/`high_hz` for labels without a band, `include_empty`)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_id, table in raven_tables(ann, **kwargs).items():
            zf.writestr(raven_file_name(file_id),
                        table.to_csv(sep="\t", index=False, lineterminator="\n", float_format="%.3f"))
    return buf.getvalue()


def remove_window(path: str | os.PathLike, file_id: str, start: float, end: float) -> pd.DataFrame:
    """Forget what was saved for exactly the range (file_id, start, end) — the undo of a first save;
    returns the file's table. Same lock and atomic replace as `save_windows`; a missing file is left
    missing. The other ranges' rows are written back as they were, bands included."""
    p = Path(path)
    key = (str(file_id).strip(), _ms(start), _ms(end))
    with file_lock(p):
        current = read_annotations(p) if p.exists() else empty_annotations()
        keep = current[[k != key for k in zip(current["file_id"], current["start"], current["end"])]] \
            if len(current) else current
        if len(keep) != len(current):
            _write_table(p, _sorted(keep))
    return _sorted(keep)


def raven_text(ann: pd.DataFrame, **kwargs) -> str:
    """`raven_table` as the tab-separated text Raven reads (header line, `\\n` line ends); `kwargs` as
    `raven_table` (each row's band, else `low_hz`/`high_hz`)."""
    return raven_table(ann, **kwargs).to_csv(sep="\t", index=False, lineterminator="\n", float_format="%.3f")


def read_audacity_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read an Audacity label track: DataFrame start, end (s), label, low_hz, high_hz (NaN when absent).

    Format: `start<TAB>end<TAB>label` lines, each optionally followed by a spectral line
    `\\<TAB>low_hz<TAB>high_hz`. DatasetError names the file and line on anything else.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DatasetError(not_found_message(p, "label file")) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    rows: list[list] = []
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        parts = raw.rstrip("\r").split("\t")
        if parts[0].strip() == "\\":
            if not rows or len(parts) < 3:
                raise DatasetError(f"{p}: line {i}: a frequency line must follow a label line and hold low and high Hz")
            rows[-1][3] = _number(parts[1].strip(), p, i, "low_hz")
            rows[-1][4] = _number(parts[2].strip(), p, i, "high_hz")
            continue
        if len(parts) < 2:
            raise DatasetError(f"{p}: line {i}: expected start<TAB>end<TAB>label, got {raw[:60]!r}")
        t0, t1 = _number(parts[0].strip(), p, i, "start"), _number(parts[1].strip(), p, i, "end")
        if t1 < t0:
            raise DatasetError(f"{p}: line {i}, field end: {t1} is before start {t0}")
        rows.append([t0, t1, parts[2].strip() if len(parts) > 2 else "", float("nan"), float("nan")])
    return pd.DataFrame(rows, columns=["start", "end", "label", "low_hz", "high_hz"])


def audacity_to_annotations(boxes: pd.DataFrame, file_id: str, *, annotator: str = "",
                            label_map: dict[str, str] | None = None, duration: float | None = None) -> pd.DataFrame:
    """Turn `read_audacity_labels` boxes into annotation rows of `file_id` (species = label, mapped by
    `label_map` when given; zero-length point labels get 1 ms so they stay valid ranges). A box's
    spectral selection becomes its band when it is a valid one (0 <= low < high), else no band.

    With `duration` (s) one "checked, nothing there" row spans the whole recording, which makes
    every window without a box count as a checked negative in `annotations_to_labels`.
    """
    mapping = label_map or {}
    stamp = _now()
    cols = ["start", "end", "label"] + [c for c in BAND_COLUMNS if c in boxes.columns]
    rows = [(file_id, _ms(a), _ms(max(b, a + 0.001)), mapping.get(lab, lab), annotator, stamp, *_band_or_nan(band))
            for a, b, lab, *band in boxes[cols].itertuples(index=False, name=None)]
    if duration is not None:
        rows.append((file_id, 0.0, _ms(duration), "", annotator, stamp, math.nan, math.nan))
    return _sorted(pd.DataFrame(rows, columns=COLUMNS)) if rows else empty_annotations()


def _band_or_nan(band: Sequence[float]) -> tuple[float, float]:
    """A box's (low_hz, high_hz) when it is a valid band, else (NaN, NaN): an odd spectral line of an
    imported label track loses its band rather than the label."""
    if len(band) != 2:  # boxes without low_hz/high_hz columns
        return math.nan, math.nan
    try:
        return _band(band) or (math.nan, math.nan)
    except ValueError:
        return math.nan, math.nan


# ------------------------------------------------------------------------------ ground truth
def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def overlaps_enough(a: float, b: float, lo: float, hi: float) -> bool:
    """Whether a labelled range [a, b] counts as present in the window [lo, hi]: it overlaps it by
    ≥ 0.5 s, or by half the range when the range is shorter (the presence rule everywhere)."""
    return _overlap(a, b, lo, hi) >= min(MIN_OVERLAP_S, MIN_OVERLAP_FRACTION * (b - a))


def covered_seconds(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by the union of `intervals`."""
    return _covered(intervals, lo, hi)


def _covered(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by the union of `intervals`."""
    total, cur = 0.0, lo
    for a, b in sorted(intervals):
        a, b = max(a, cur), min(b, hi)
        if b > a:
            total += b - a
            cur = b
    return total


def annotations_to_labels(ann_df: pd.DataFrame, test_df: pd.DataFrame, *, window_s: float = 5.0,
                          unannotated: str = "drop") -> pd.DataFrame:
    """Ground truth `row_id,target` for the rows of a test.csv-like table (row_id, file_id, bird, end_time).

    A row's window is (end_time − window_s, end_time]. It is *checked* when the saved ranges of its
    file (any species, or the empty "nothing there" rows) cover at least half the window; its
    target is True when a range labelled with its bird overlaps the window by ≥ 0.5 s (or half
    the range, if shorter) — the demo dataset's presence rule. Rows of unchecked windows are
    dropped (`unannotated="drop"`, the default: unknown is not absent) or set False ("false").
    Output keeps test_df's order. Pitfall: scoring a full submission against the dropped table
    needs the submission filtered to the same row_ids first (`evaluate_submission` rejects extra rows).
    """
    if unannotated not in ("drop", "false"):
        raise ValueError(f"unannotated={unannotated!r}: use 'drop' or 'false'")
    by_file: dict[str, list[tuple[float, float, str]]] = {}
    for f, a, b, s in ann_df[["file_id", "start", "end", "species"]].itertuples(index=False, name=None):
        by_file.setdefault(str(f), []).append((float(a), float(b), str(s)))
    keep, target = [], []
    for f, bird, end in test_df[["file_id", "bird", "end_time"]].itertuples(index=False, name=None):
        ranges = by_file.get(str(f), [])
        lo, hi = float(end) - window_s, float(end)
        checked = bool(ranges) and _covered([(a, b) for a, b, _ in ranges], lo, hi) >= window_s / 2
        hit = checked and any(s == bird and overlaps_enough(a, b, lo, hi) for a, b, s in ranges)
        keep.append(checked or unannotated == "false")
        target.append(hit)
    keep_arr = np.asarray(keep, dtype=bool)
    return pd.DataFrame({"row_id": test_df["row_id"].astype(str).to_numpy()[keep_arr],
                         "target": np.asarray(target, dtype=bool)[keep_arr]})


def write_labels_table(path: str | os.PathLike, labels: pd.DataFrame) -> Path:
    """Atomically write a `row_id,target` table with True/False (the layout of test_labels.csv)."""
    out = pd.DataFrame({"row_id": labels["row_id"].astype(str), "target": labels["target"].astype(bool)})
    return atomic_write_text(path, out.to_csv(index=False, lineterminator="\n"))
