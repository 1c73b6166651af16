"""The EDA page's tables, computed once per dataset version and filter (`st.cache_data`).

A rerun that only changes a view (log scale, top-N, search, map zoom) reuses the filtered tables
instead of recomputing them from the 14,852-row metadata; a filter change computes them once and
every later visit of that filter is a cache hit. The numbers all come from
`birdcore.analysis.eda`; this module only decides what to cache.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from birdcore.analysis import eda
from birdcore.data.dataset import BirdDataset

from .data import _fingerprint, load_dataset_cached

MAX_BOXES = 60  # per-species box plots drawn at most (one labelled line each)


def _filtered(root: str, flt: eda.EdaFilter) -> tuple[BirdDataset, pd.DataFrame]:
    ds = load_dataset_cached(root)
    return ds, eda.filter_recordings(ds, flt)


@st.cache_data(max_entries=32, show_spinner=False)
def _tables(root: str, fingerprint: tuple, flt: eda.EdaFilter) -> dict:
    ds, meta = _filtered(root, flt)
    hours, no_time = eda.time_of_day_histogram(meta)
    clusters, no_coords = eda.location_clusters(meta, ds.scored)
    pairs = eda.cooccurrence_pairs(meta, top_n=20)
    names = ds.metadata.drop_duplicates("primary_label").set_index("primary_label")["common_name"]
    pairs["name_a"], pairs["name_b"] = pairs["species_a"].map(names), pairs["species_b"].map(names)
    return {
        "matches": len(meta),
        "counts": eda.species_counts(meta, ds.scored),
        "rating_hist": eda.rating_histogram(meta),
        "with_secondary": int((meta["secondary_labels"].map(len) > 0).sum()),
        "pairs": eda.display_table(pairs),
        "types": eda.type_counts(meta, top_n=15),
        "hours": hours, "no_time": no_time,
        "clusters": clusters, "no_coords": no_coords,
        "fit": eda.points_extent(clusters),
        "focus": eda.focus_extent(meta, ds.scored) if ds.scored else None,
        "authors": eda.top_values(meta, "author", top_n=15),
        "licenses": eda.license_counts(meta, top_n=10),
        "recordings": eda.display_table(eda.recordings_table(meta)),
    }


def tables(ds: BirdDataset, flt: eda.EdaFilter) -> dict:
    """Every filtered table the EDA page draws, cached per dataset version and filter."""
    return _tables(str(ds.root), _fingerprint(ds.root), flt)


@st.cache_data(max_entries=64, show_spinner=False)
def _ratings(root: str, fingerprint: tuple, flt: eda.EdaFilter, species: tuple[str, ...]) -> pd.DataFrame:
    _, meta = _filtered(root, flt)
    return eda.rating_for_species(meta, species)


def ratings(ds: BirdDataset, flt: eda.EdaFilter, species: tuple[str, ...]) -> pd.DataFrame:
    """Rating statistics of exactly `species` (the rows a ranked list shows), cached."""
    return _ratings(str(ds.root), _fingerprint(ds.root), flt, tuple(species))


@st.cache_data(max_entries=64, show_spinner=False)
def _cooccurrence(root: str, fingerprint: tuple, flt: eda.EdaFilter, top_n: int) -> pd.DataFrame:
    _, meta = _filtered(root, flt)
    return eda.cooccurrence_matrix(meta, top_n=top_n)


def cooccurrence(ds: BirdDataset, flt: eda.EdaFilter, top_n: int) -> pd.DataFrame:
    """The `top_n` × `top_n` co-occurrence matrix, cached."""
    return _cooccurrence(str(ds.root), _fingerprint(ds.root), flt, int(top_n))
