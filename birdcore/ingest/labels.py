"""Label names as people write them → eBird species codes (or the negative label).

Folder names, CSV cells and selection-table labels say "blkpho", "Sayornis nigricans",
"Black_Phoebe" or "no bird". `LabelResolver` maps each through the eBird taxonomy (code, scientific
or common name; case, `_`, `-` and extra spaces ignored), through a user map first (`--map SP=nocall`),
and names every unknown label at once with the closest taxonomy names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from birdcore.data.metadata import NEGATIVE_LABEL, read_taxonomy
from birdcore.errors import DatasetError

# Written by people for "this window has no target bird".
NEGATIVE_NAMES = frozenset({"nocall", "no call", "no bird", "nobird", "noise", "negative", "none", "background",
                            "empty"})


def normalise(name: str) -> str:
    """Case-, underscore-, hyphen- and space-insensitive form of a label."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(name))).strip().lower()


@lru_cache(maxsize=4)
def _taxonomy_names(path: str, mtime_ns: int) -> tuple[dict[str, str], dict[str, str]]:  # noqa: ARG001 (cache key)
    """(normalised name → code, normalised name → spelling) for codes, scientific and common names."""
    lookup: dict[str, str] = {}
    names: dict[str, str] = {}
    tax = read_taxonomy(Path(path))
    for code, com, sci in tax[["SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME"]].itertuples(index=False, name=None):
        for name in (code, sci, com):
            if isinstance(name, str) and name.strip():
                lookup.setdefault(normalise(name), code)
                names.setdefault(normalise(name), name)
    return lookup, names


@dataclass
class LabelResolver:
    """Maps label names to species codes. Without a taxonomy, labels must already be codes."""

    taxonomy: Path | None = None
    user_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lookup: dict[str, str] = {}
        self._names: dict[str, str] = {}  # normalised name → how the taxonomy spells it
        if self.taxonomy is not None:
            p = Path(self.taxonomy).resolve()
            self._lookup, self._names = _taxonomy_names(str(p), p.stat().st_mtime_ns)
        self._user = {normalise(k): v for k, v in self.user_map.items()}

    def resolve_one(self, name: str) -> str | None:
        """The code of `name`, NEGATIVE_LABEL for a no-bird name, None when unknown."""
        key = normalise(name)
        if key in self._user:
            target = self._user[key]
            return NEGATIVE_LABEL if normalise(target) in NEGATIVE_NAMES else self.resolve_one(target) or target
        if key in NEGATIVE_NAMES:
            return NEGATIVE_LABEL
        if self.taxonomy is None:
            return str(name).strip() if re.fullmatch(r"[A-Za-z0-9]+", str(name).strip()) else None
        return self._lookup.get(key)

    def resolve(self, names: Iterable[str], where: dict[str, str] | None = None) -> dict[str, str]:
        """name → code for every name; DatasetError listing all unknown names (with close matches
        and, from `where`, the file/line each was seen first)."""
        out, unknown = {}, []
        for n in dict.fromkeys(names):
            code = self.resolve_one(n)
            if code is None:
                unknown.append(n)
            else:
                out[n] = code
        if unknown:
            raise DatasetError(self._unknown_message(unknown, where or {}))
        return out

    def _unknown_message(self, unknown: list[str], where: dict[str, str]) -> str:
        parts = []
        for n in unknown:
            close = difflib.get_close_matches(normalise(n), list(self._names), n=3, cutoff=0.6)
            hint = f" (close: {', '.join(repr(self._names[c]) for c in close)})" if close else ""
            seen = f" [{where[n]}]" if n in where else ""
            parts.append(f"{n!r}{hint}{seen}")
        how = ("an eBird code, scientific or common name of the taxonomy" if self.taxonomy is not None else
               "an eBird code (pass --taxonomy eBird_Taxonomy_v2021.csv to use scientific or common names)")
        return (f"{len(unknown)} unknown label(s): {'; '.join(parts)}. Each label must be {how}, a no-bird"
                f" word ({', '.join(sorted(NEGATIVE_NAMES))}), or mapped with --map NAME=CODE")
