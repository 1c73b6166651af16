"""Cached model loading shared by the pages that score audio (inspection, annotation, submission)."""

from __future__ import annotations

import streamlit as st

from birdcore.inference import catalog


@st.cache_resource(max_entries=6, show_spinner="Loading model …")
def load_model(kind: str, path: str, label: str, backend: str, species: tuple, taxonomy: str,
               stamp: float) -> catalog.LoadedModel:
    """`birdcore.analysis.inspection.load_model`, cached per model, backend, species list and file version (`stamp`)."""
    return catalog.load_model(catalog.ModelRef(kind, path, label), backend, species=list(species), taxonomy_csv=taxonomy)
