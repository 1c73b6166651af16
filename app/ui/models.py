"""Cached model loading shared by the pages that score audio (inspection, annotation, submission)."""

from __future__ import annotations

import streamlit as st

from birdcore.data.dataset import BirdDataset
from birdcore.inference import catalog


@st.cache_resource(max_entries=6, show_spinner="Loading model …")
def load_model(kind: str, path: str, label: str, backend: str, species: tuple, taxonomy: str,
               stamp: float) -> catalog.LoadedModel:
    """`birdcore.analysis.inspection.load_model`, cached per model, backend, species list and file version (`stamp`)."""
    return catalog.load_model(catalog.ModelRef(kind, path, label), backend, species=list(species), taxonomy_csv=taxonomy)


def load_ref(ref: catalog.ModelRef, backend: str, ds: BirdDataset) -> catalog.LoadedModel:
    """The model `ref` for dataset `ds` (its species, its taxonomy), cached (`load_model`): every page,
    and `warm_default_model`, ask with the same arguments, so they share one loaded model."""
    return load_model(ref.kind, ref.path, ref.label, backend, tuple(ds.species),
                      str(ds.root / "eBird_Taxonomy_v2021.csv"), catalog.model_stamp(ref))


def warm_default_model() -> str | None:
    """Load the model the scoring pages open on (the best finished run for the default dataset, torch
    backend) into the cache; returns its label, or None when there is none to load.

    `app/serve.py` calls it before the server listens: on a new server, Inspection's first visit
    otherwise waited for the checkpoint load while the page was half drawn.
    """
    from .data import default_dataset_path, load_dataset_cached
    from .runs import REPO_ROOT, runs_dir

    ds = load_dataset_cached(default_dataset_path())
    refs = catalog.find_models([runs_dir()], REPO_ROOT / "models", birdnet=False)
    index = catalog.default_index(refs)
    if index is None:
        return None
    load_ref(refs[index], "torch", ds)
    return refs[index].label
