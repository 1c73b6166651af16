"""The EDA page's tables and figures, computed once per dataset version and filter.

A rerun that only changes a view (log scale, top-N, search, map zoom) reuses the filtered tables
instead of recomputing them from the 14,852-row metadata; a filter change computes them once and
every later visit of that filter is a cache hit. The numbers all come from
`birdcore.analysis.eda`; this module only decides what to cache.

Figures are cached too (`st.cache_resource`, shared and never copied): building the Plotly map
validates every point, which for its ~4,500 places cost more than all the statistics together.
`st.plotly_chart` only reads a figure (it serialises a deep copy), and `charts.show` gives Streamlit
its own copy of a Vega-Lite spec's dicts, so sharing is safe.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from birdcore.analysis import eda
from birdcore.data.dataset import BirdDataset

from . import charts, geo_map
from .charts import Spec
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


@st.cache_data(max_entries=64, show_spinner=False)
def _table_page(root: str, fingerprint: tuple, flt: eda.EdaFilter, page: int) -> tuple[pd.DataFrame, int, int]:
    _, meta = _filtered(root, flt)
    rows, page, pages = eda.table_page(meta, page)  # slice first: only one page is formatted
    return eda.display_table(eda.recordings_table(rows)), page, pages


def table_page(ds: BirdDataset, flt: eda.EdaFilter, page: int) -> tuple[pd.DataFrame, int, int]:
    """One page of the filtered recordings table ("—" for gaps), the page shown and the page count."""
    return _table_page(str(ds.root), _fingerprint(ds.root), flt, int(page))


@st.cache_resource(max_entries=32, show_spinner=False)
def _summary_figures(root: str, fingerprint: tuple, flt: eda.EdaFilter) -> dict[str, Spec]:
    t = _tables(root, fingerprint, flt)
    return {
        "rating_hist": charts.bar(t["rating_hist"], "rating", "recordings", title="All recordings",
                                  xlabel="rating (0.0 = not rated)", ylabel="recordings"),
        "types": charts.bar(t["types"], "type", "recordings", horizontal=True, xlabel="recordings"),
        "hours": charts.bar(t["hours"], "hour", "recordings", height=380, xlabel="hour (local time of recording)",
                            ylabel="recordings"),
        "authors": charts.bar(t["authors"], "author", "recordings", horizontal=True, xlabel="recordings"),
        "licenses": charts.bar(t["licenses"], "short", "recordings", horizontal=True, hover="license",
                               xlabel="recordings"),
    }


def summary_figures(ds: BirdDataset, flt: eda.EdaFilter) -> dict[str, Spec]:
    """The filter's fixed charts (ratings, call types, hours, recordists, licences), built once per filter.
    Read-only: the same figures serve every session."""
    return _summary_figures(str(ds.root), _fingerprint(ds.root), flt)


@st.cache_resource(max_entries=32, show_spinner=False)
def _map_figure(root: str, fingerprint: tuple, flt: eda.EdaFilter, outlines: bool, extent: tuple | None) -> go.Figure:
    return geo_map.geo_clusters(_tables(root, fingerprint, flt)["clusters"], outlines=outlines, extent=extent)


def map_figure(ds: BirdDataset, flt: eda.EdaFilter, outlines: bool, extent: tuple | None) -> go.Figure:
    """The recording places map of the filter at `extent`, built once per view. Read-only."""
    return _map_figure(str(ds.root), _fingerprint(ds.root), flt, bool(outlines),
                       None if extent is None else tuple(float(v) for v in extent))


@st.cache_resource(max_entries=64, show_spinner=False)
def _ranked(root: str, fingerprint: tuple, flt: eda.EdaFilter, query: str, mode: str, n: int,
            log: bool) -> tuple[pd.DataFrame, Spec | None]:
    ranked = eda.species_ranking(_tables(root, fingerprint, flt)["counts"], query, mode, n)
    if ranked.empty:
        return ranked, None
    ranked = ranked.assign(line=[f"#{r} {lab}" for r, lab in zip(ranked["rank"], ranked["label"])])
    fig = charts.ranked_bars(ranked, "line", "recordings", "scored", labels=("scored", "not scored"), log=log,
                             xlabel="recordings" + (" (log scale)" if log else ""))
    return ranked, fig


def ranked(ds: BirdDataset, flt: eda.EdaFilter, query: str, mode: str, n: int,
           log: bool) -> tuple[pd.DataFrame, Spec | None]:
    """The ranked species rows a list shows (`eda.species_ranking`) and their bar figure (None when no
    species matches `query`), built once per view. Both read-only."""
    return _ranked(str(ds.root), _fingerprint(ds.root), flt, str(query or "").strip(), mode, int(n), bool(log))


@st.cache_resource(max_entries=32, show_spinner=False)
def _cooc_figure(root: str, fingerprint: tuple, flt: eda.EdaFilter, top_n: int) -> Spec:
    matrix = _cooccurrence(root, fingerprint, flt, top_n)
    return charts.heatmap(matrix, title=f"Top {len(matrix)} co-occurring species", colorbar_title="recordings",
                          height=220 + 18 * len(matrix))


def cooccurrence_figure(ds: BirdDataset, flt: eda.EdaFilter, top_n: int) -> Spec:
    """The `top_n` co-occurrence heatmap, built once per filter and size. Read-only."""
    return _cooc_figure(str(ds.root), _fingerprint(ds.root), flt, int(top_n))
