"""Parsing of the BirdCLEF metadata files: `train_metadata.csv` and `eBird_Taxonomy_v2021.csv`.

Pure table work (pandas), no audio. Errors name the file, the row (1-based line number in the
file, header = line 1) or column, and what to fix.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd

from birdcore.errors import DatasetError, brief, not_found_message

TRAIN_COLUMNS = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "license", "rating", "time", "url", "filename",
]
REQUIRED_TRAIN_COLUMNS = ["primary_label", "secondary_labels", "rating", "filename"]
TAXONOMY_COLUMNS = ["SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME"]
TEST_COLUMNS = ["row_id", "file_id", "bird", "end_time"]
# A recording or window with no target species (a negative): trains as an all-zero target, is never
# a class, and is not a taxonomy code. BirdCLEF 2021's soundscape labels use the same word.
NEGATIVE_LABEL = "nocall"
# Optional: the part of the file a row stands for, in seconds (windows of long recordings imported
# from selection tables). Without them a row is the whole file. One file may then have many rows.
SPAN_COLUMNS = ("start_s", "end_s")

_TIME_24H = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})\s*$")
_TIME_12H = re.compile(r"^\s*(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?m\.?\s*$", re.IGNORECASE)


def read_csv_checked(path: Path, what: str, required: list[str]) -> pd.DataFrame:
    """Read a CSV (UTF-8, optional BOM) and check it has rows and the `required` columns."""
    if not path.exists():
        raise DatasetError(not_found_message(path, what))
    if path.is_dir():
        raise DatasetError(f"{path}: {what} is a folder, not a CSV file")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: {what} is empty (0 bytes); re-download or re-extract it")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except OSError as exc:  # no permission, I/O error, a FIFO that went away
        raise DatasetError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: {what} has no header or rows") from None
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: {what} is not a valid CSV ({brief(exc)}){_delimiter_hint(path)}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = _delimiter_hint(path) if len(df.columns) == 1 else ""
        raise DatasetError(
            f"{path}: {what} lacks column(s) {', '.join(missing)}{hint} (found: {', '.join(df.columns[:15])})"
        )
    if len(df) == 0:
        raise DatasetError(f"{path}: {what} has a header but no rows")
    return df


def _delimiter_hint(path: Path) -> str:
    with open(path, "rb") as fh:
        header = fh.readline().decode("utf-8", "replace")
    if "," not in header and any(sep in header for sep in (";", "\t", "|")):
        return " — the file seems to use another delimiter; it must be comma-separated"
    return ""


def parse_list_column(values: pd.Series, path: Path, column: str) -> pd.Series:
    """Parse Python-list strings like "['houspa', 'redava']" into lists of str, without eval.

    `ast.literal_eval` only evaluates literals (no code runs). It is applied once per distinct
    string (the real file has few distinct values), so 14,852 rows take milliseconds.
    An empty cell means an empty list.
    """
    cache: dict[str, list[str]] = {}
    for raw in pd.unique(values):
        text = raw.strip()
        if text == "":
            cache[raw] = []
            continue
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if not isinstance(parsed, (list, tuple)) or not all(isinstance(x, str) for x in parsed):
            line = int(np.flatnonzero(values.to_numpy() == raw)[0]) + 2
            raise DatasetError(
                f"{path}: line {line}, column {column}: {raw[:80]!r} is not a list of strings"
                " (expected e.g. \"['houspa', 'redava']\" or [])"
            )
        cache[raw] = [x.strip() for x in parsed if x.strip()]
    return values.map(cache)


def parse_time_minutes(values: pd.Series) -> pd.Series:
    """Minutes after midnight for '08:30', '8.30', '9:30am', '5:30 pm'; NaN for '?', '25:00', etc.

    Odd values are common in the real metadata (487 rows of '?', 'xx:xx', 'am'); rows keep their
    original `time` text and only this derived column is missing.
    """
    cache: dict[str, float] = {}
    for raw in pd.unique(values):
        cache[raw] = _time_to_minutes(raw)
    return values.map(cache).astype(float)


def _time_to_minutes(text: str) -> float:
    m = _TIME_24H.match(text)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
        return float(h * 60 + mi) if h < 24 and mi < 60 else np.nan
    m = _TIME_12H.match(text)
    if m:
        h, mi = int(m.group(1)), int(m.group(2) or 0)
        if not (1 <= h <= 12 and mi < 60):
            return np.nan
        h = h % 12 + (12 if m.group(3).lower() == "p" else 0)
        return float(h * 60 + mi)
    return np.nan


def parse_numeric(df: pd.DataFrame, column: str, path: Path, lo: float, hi: float,
                  allow_missing: bool) -> pd.Series:
    """Convert a text column to float, checking the range; errors name the first bad line."""
    raw = df[column].str.strip()
    num = pd.to_numeric(raw, errors="coerce")
    bad_text = num.isna() & (raw != "")
    if bad_text.any():
        i = int(np.flatnonzero(bad_text.to_numpy())[0])
        raise DatasetError(f"{path}: line {i + 2}, column {column}: {df[column].iloc[i]!r} is not a number")
    if not allow_missing and num.isna().any():
        i = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise DatasetError(f"{path}: line {i + 2}, column {column}: value is empty")
    out = (num < lo) | (num > hi)
    if out.any():
        i = int(np.flatnonzero(out.to_numpy())[0])
        raise DatasetError(
            f"{path}: line {i + 2}, column {column}: {num.iloc[i]} is outside the valid range {lo}..{hi}"
            f" ({int(out.sum())} such rows)"
        )
    return num.astype(float)


def read_train_metadata(path: Path) -> pd.DataFrame:
    """Read and validate `train_metadata.csv`.

    Returns one row per recording with parsed columns: `secondary_labels` and `type` as lists,
    `rating`/`latitude`/`longitude` as floats (NaN where absent), the original `time` text plus
    `time_minutes` (NaN when unparseable). Extra columns are kept. Raises DatasetError for a
    missing/empty file, missing required columns, malformed list strings, ratings outside 0–5,
    coordinates outside ±90/±180, empty labels or filenames, and duplicated filenames.
    """
    df = read_csv_checked(path, "train_metadata.csv", REQUIRED_TRAIN_COLUMNS)
    for col in TRAIN_COLUMNS:
        if col not in df.columns:
            df[col] = ""  # optional descriptive columns: keep the schema stable for EDA
    df["primary_label"] = df["primary_label"].str.strip()
    df["filename"] = df["filename"].str.strip()
    for col in ("primary_label", "filename"):
        empty = df[col] == ""
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise DatasetError(f"{path}: line {i + 2}, column {col}: value is empty")
    has_spans = all(c in df.columns for c in SPAN_COLUMNS)
    if has_spans:
        _parse_spans(df, path)
    else:
        for c in SPAN_COLUMNS:
            df[c] = np.nan
    dup = df.duplicated(["filename", *SPAN_COLUMNS], keep="first") if has_spans else df["filename"].duplicated()
    if dup.any():
        names = df.loc[dup, "filename"].unique()[:5]
        what = ("rows with the same file and span (start_s, end_s)" if has_spans else
                "each recording must be listed once")
        raise DatasetError(
            f"{path}: column filename: {int(dup.sum())} duplicated filename(s), e.g. {', '.join(names)}"
            f" (line {int(np.flatnonzero(dup.to_numpy())[0]) + 2}); {what}"
        )
    df["secondary_labels"] = parse_list_column(df["secondary_labels"], path, "secondary_labels")
    df["type"] = parse_list_column(df["type"], path, "type")
    df["rating"] = parse_numeric(df, "rating", path, 0.0, 5.0, allow_missing=False)
    df["latitude"] = parse_numeric(df, "latitude", path, -90.0, 90.0, allow_missing=True)
    df["longitude"] = parse_numeric(df, "longitude", path, -180.0, 180.0, allow_missing=True)
    df["time_minutes"] = parse_time_minutes(df["time"])
    neg = (df["primary_label"] == NEGATIVE_LABEL) & (df["secondary_labels"].map(len) > 0)
    if neg.any():
        i = int(np.flatnonzero(neg.to_numpy())[0])
        raise DatasetError(f"{path}: line {i + 2}: primary_label {NEGATIVE_LABEL!r} marks a window with no bird, but"
                           f" secondary_labels lists {df['secondary_labels'].iloc[i]}; make one of them the primary label")
    return df.reset_index(drop=True)


def _parse_spans(df: pd.DataFrame, path: Path) -> None:
    """start_s / end_s in place: both empty (the whole file) or 0 ≤ start_s < end_s."""
    for c in SPAN_COLUMNS:
        df[c] = parse_numeric(df, c, path, 0.0, float("inf"), allow_missing=True)
    one = df["start_s"].isna() != df["end_s"].isna()
    bad = one | (df["start_s"] >= df["end_s"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path}: line {i + 2}, columns start_s/end_s: {df['start_s'].iloc[i]!r}..{df['end_s'].iloc[i]!r}"
                           " is not a span (give both, start_s < end_s, or leave both empty for the whole file)")


def read_taxonomy(path: Path) -> pd.DataFrame:
    """Read `eBird_Taxonomy_v2021.csv` (UTF-8 with BOM) indexed by SPECIES_CODE."""
    df = read_csv_checked(path, "eBird_Taxonomy_v2021.csv", TAXONOMY_COLUMNS)
    df["SPECIES_CODE"] = df["SPECIES_CODE"].str.strip()
    return df.drop_duplicates("SPECIES_CODE").set_index("SPECIES_CODE", drop=False)


def _first_few(values, n: int = 5) -> list:
    out = []
    for v in values:
        out.append(v)
        if len(out) >= n:
            break
    return out


def read_test_table(path: str | Path) -> pd.DataFrame:
    """Read a BirdCLEF 2022 `test.csv` (`row_id,file_id,bird,end_time`), strictly.

    All columns are read as text (so a bird code like "nan" stays a string), then `end_time`
    becomes int64 seconds. DatasetError names the file, the column and the first offending lines
    on: a missing/unreadable file, missing columns, empty cells, non-integer end_time, duplicated
    row_id, or a row_id that is not `<file_id>_<bird>_<end_time>`. Extra columns are kept after
    the four required ones.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: test table not found")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DatasetError(f"{p}: cannot parse as CSV ({e})") from None
    missing = [c for c in TEST_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{p}: missing column(s) {missing}; found {list(df.columns)}; expected {','.join(TEST_COLUMNS)}")
    df = df[TEST_COLUMNS + [c for c in df.columns if c not in TEST_COLUMNS]].reset_index(drop=True)
    line = df.index.to_numpy() + 2  # 1-based file line, after the header
    for col in TEST_COLUMNS:
        empty = (df[col].str.strip() == "").to_numpy()
        if empty.any():
            raise DatasetError(f"{p}: column {col!r} is empty on {int(empty.sum())} line(s), e.g. lines {_first_few(line[empty])}")
    bad = ~df["end_time"].str.fullmatch(r"\d+").to_numpy()
    if bad.any():
        raise DatasetError(
            f"{p}: column 'end_time' must hold whole seconds; {int(bad.sum())} bad value(s), "
            f"e.g. line {int(line[bad][0])}: {df['end_time'][bad].iloc[0]!r}"
        )
    expected = df["file_id"] + "_" + df["bird"] + "_" + df["end_time"].astype(int).astype(str)
    df["end_time"] = df["end_time"].astype("int64")
    dup = df["row_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise DatasetError(f"{p}: column 'row_id' has {int(dup.sum())} duplicated rows, e.g. {_first_few(df['row_id'][dup].unique())}")
    wrong = (df["row_id"] != expected).to_numpy()
    if wrong.any():
        raise DatasetError(
            f"{p}: column 'row_id' must equal <file_id>_<bird>_<end_time>; {int(wrong.sum())} row(s) differ, "
            f"e.g. line {int(line[wrong][0])}: {df['row_id'][wrong].iloc[0]!r} (expected {expected[wrong].iloc[0]!r})"
        )
    return df
