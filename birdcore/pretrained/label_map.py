"""BirdNET label <-> eBird species code.

BirdNET V2.4 labels are `Scientific name_Common name` (e.g. `Loxops mana_Hawaii Creeper`); BirdCLEF
uses eBird codes (`hawcre`). The bridge is the scientific name: `SCI_NAME` in
`eBird_Taxonomy_v2021.csv` (as shipped with BirdCLEF 2022; UTF-8 with a BOM). Matching is exact
first, then on a normalised name (case-folded, whitespace collapsed). About 100 of the 6,522
BirdNET classes do not map: non-bird classes (`Human vocal`, `Dog`, `Engine`, frogs, insects) and
names whose taxonomy changed after 2021. Pure table work: no model, no extra needed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from birdcore.data.metadata import read_csv_checked
from birdcore.errors import ConfigError

# Lets the CLI and notebooks find the taxonomy without passing it every time.
TAXONOMY_ENV = "BIRDCORE_EBIRD_TAXONOMY"
TAXONOMY_FILE = "eBird_Taxonomy_v2021.csv"  # its name in a BirdCLEF dataset folder


def split_label(label: str) -> tuple[str, str]:
    """`'Loxops mana_Hawaii Creeper'` -> `('Loxops mana', 'Hawaii Creeper')` (no `_` -> same name twice)."""
    sci, sep, common = label.partition("_")
    return sci, (common if sep else sci)


def normalise_sci_name(name: str) -> str:
    """Case-fold and collapse whitespace: `' Loxops  Mana '` -> `'loxops mana'`."""
    return " ".join(str(name).split()).casefold()


def resolve_taxonomy(taxonomy_csv: str | os.PathLike | None) -> Path:
    """The taxonomy CSV to use: the argument, else `$BIRDCORE_EBIRD_TAXONOMY`; ConfigError if neither."""
    if taxonomy_csv is None:
        env = os.environ.get(TAXONOMY_ENV)
        if not env:
            raise ConfigError(
                "taxonomy_csv: BirdNET labels are mapped to eBird codes through eBird_Taxonomy_v2021.csv; "
                f"pass its path (it is in the BirdCLEF dataset folder) or set ${TAXONOMY_ENV}"
            )
        taxonomy_csv = env
    return Path(taxonomy_csv)


def find_taxonomy(taxonomy_csv: str | os.PathLike | None = None,
                  dataset_dir: str | os.PathLike | None = None) -> Path | None:
    """The taxonomy to use: `taxonomy_csv`, else `$BIRDCORE_EBIRD_TAXONOMY`, else the dataset folder's
    `eBird_Taxonomy_v2021.csv`; None when none is given. ConfigError when a named file is missing."""
    for given, where in ((taxonomy_csv, ""), (os.environ.get(TAXONOMY_ENV) or None, f" (${TAXONOMY_ENV})")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise ConfigError(f"{p}{where}: taxonomy file not found (eBird_Taxonomy_v2021.csv,"
                                  " shipped with the BirdCLEF data)")
            return p
    if dataset_dir is not None and (Path(dataset_dir) / TAXONOMY_FILE).is_file():
        return Path(dataset_dir) / TAXONOMY_FILE
    return None


def taxonomy_names(taxonomy_csv: str | os.PathLike | None = None) -> dict[str, str]:
    """eBird code -> common name (`PRIMARY_COM_NAME`, else the scientific name) for every taxonomy row."""
    path = resolve_taxonomy(taxonomy_csv)
    return dict(_code_names(str(path), path.stat().st_mtime_ns if path.exists() else -1))


@lru_cache(maxsize=4)
def _code_names(path: str, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    df = read_csv_checked(Path(path), "eBird taxonomy", ["SCI_NAME", "SPECIES_CODE"])
    common = df["PRIMARY_COM_NAME"] if "PRIMARY_COM_NAME" in df.columns else df["SCI_NAME"]
    out: dict[str, str] = {}
    for code, name, sci in zip(df["SPECIES_CODE"], common, df["SCI_NAME"]):
        code = str(code).strip()
        if code:
            out.setdefault(code, str(name).strip() or str(sci).strip())
    return tuple(out.items())


@lru_cache(maxsize=4)
def _sci_to_code(path: str, mtime_ns: int) -> tuple[dict[str, str], dict[str, str]]:
    # Cached per (path, mtime): the CSV has 16,752 rows and is read on every predict call otherwise.
    df = read_csv_checked(Path(path), "eBird taxonomy", ["SCI_NAME", "SPECIES_CODE"])
    exact: dict[str, str] = {}
    loose: dict[str, str] = {}
    for sci, code in zip(df["SCI_NAME"], df["SPECIES_CODE"]):
        code = code.strip()
        if not sci or not code:
            continue
        exact.setdefault(sci, code)  # first row wins if a name repeats
        loose.setdefault(normalise_sci_name(sci), code)
    return exact, loose


def birdnet_to_ebird(labels: Sequence[str], taxonomy_csv: str | os.PathLike | None = None) -> dict[int, str]:
    """Map BirdNET class index -> eBird species code, for the labels whose scientific name matches.

    `labels`: BirdNET's label strings in model-output order (`BirdNET.labels`). Unmapped classes are
    absent from the result. Two BirdNET labels may map to one code (rare); callers taking a column
    per code should combine them (`codes_to_indices` + max). Raises DatasetError for an unreadable
    taxonomy file and ConfigError when no taxonomy is given.
    """
    path = resolve_taxonomy(taxonomy_csv)
    mtime = path.stat().st_mtime_ns if path.exists() else -1  # a missing file errors in the reader
    exact, loose = _sci_to_code(str(path), mtime)
    mapping: dict[int, str] = {}
    for i, label in enumerate(labels):
        sci, _ = split_label(label)
        code = exact.get(sci) or loose.get(normalise_sci_name(sci))
        if code:
            mapping[i] = code
    return mapping


def codes_to_indices(mapping: dict[int, str]) -> dict[str, list[int]]:
    """Invert `birdnet_to_ebird`: eBird code -> the BirdNET indices mapped to it (sorted by code)."""
    out: dict[str, list[int]] = {}
    for idx, code in sorted(mapping.items()):
        out.setdefault(code, []).append(idx)
    return dict(sorted(out.items()))


def coverage(mapping: dict[int, str], codes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split `codes` (e.g. the scored species) into (mapped by BirdNET, missing from BirdNET)."""
    known = set(mapping.values())
    codes = list(codes)
    return [c for c in codes if c in known], [c for c in codes if c not in known]
