"""The sidebar dataset picker and the cached dataset loader shared by every page.

The chosen folder lives in `st.session_state[DATASET_KEY]`, so it follows the user from page to
page. Its first value is `$BIRDCORE_DATA` when set (an explicit choice at launch), else the folder
remembered from the last session, else the demo dataset `<repo>/data/demo`. A folder the user
types is remembered once it loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from birdcore.data.dataset import BirdDataset, load_dataset

from .errors import USER_ERRORS, show_error
from .settings import recall, remember

DATASET_KEY = "dataset_path"          # session state: the folder every page shows
SETTING_KEY = "dataset_path"          # app settings: the folder remembered between sessions
_INPUT_KEY = "_dataset_path_input"    # the sidebar text input (widget state is per page)
_CHOSEN_KEY = "_dataset_path_chosen"  # set when the user typed a path; remembered after it loads
_FINGERPRINT_FILES = ("train_metadata.csv", "scored_birds.json", "eBird_Taxonomy_v2021.csv", "test.csv",
                      "sample_submission.csv", "test_labels.csv", "train_audio", "test_soundscapes")


def demo_dir() -> Path:
    """The demo dataset folder (`birdcore.demo.default_demo_dir()`, else `<repo>/data/demo`)."""
    try:
        from birdcore.demo import default_demo_dir

        return Path(default_demo_dir())
    except Exception:  # the demo module may be absent or mid-edit; the fallback is its documented path
        return Path(__file__).resolve().parents[2] / "data" / "demo"


def default_dataset_path() -> str:
    """`$BIRDCORE_DATA`, else the remembered folder, else the demo folder."""
    env = os.environ.get("BIRDCORE_DATA", "").strip()
    if env:
        return env
    remembered = recall(SETTING_KEY)
    if isinstance(remembered, str) and remembered.strip():
        return remembered.strip()
    return str(demo_dir())


def _fingerprint(root: Path) -> tuple:
    """Size and mtime of the files `load_dataset` reads: any change reloads the dataset."""
    parts = []
    for name in _FINGERPRINT_FILES:
        try:
            st_ = (root / name).stat()
            parts.append((name, st_.st_size, st_.st_mtime_ns))
        except OSError:
            parts.append((name, None, None))
    return tuple(parts)


# cache_resource, not cache_data: the dataset is shared read-only by all sessions, and cache_data
# would unpickle a copy of the 14,852-row metadata on every rerun (~tens of ms for nothing).
@st.cache_resource(max_entries=4, show_spinner="Loading dataset …")
def _load(root: str, fingerprint: tuple) -> BirdDataset:
    return load_dataset(root)


def load_dataset_cached(path: str | os.PathLike) -> BirdDataset:
    """`birdcore.data.dataset.load_dataset(path)`, cached per folder until one of its files changes.

    Raises DatasetError like `load_dataset` (errors are never cached). Treat the result as
    read-only: it is the same object for every session.
    """
    root = Path(path).expanduser()
    if root.exists():
        root = root.resolve()
    return _load(str(root), _fingerprint(root))


def _on_path_typed() -> None:
    st.session_state[DATASET_KEY] = str(st.session_state[_INPUT_KEY]).strip()
    st.session_state[_CHOSEN_KEY] = True


def dataset_picker() -> str:
    """Draw the sidebar folder input and return the chosen dataset folder."""
    state = st.session_state
    if DATASET_KEY not in state:
        state[DATASET_KEY] = default_dataset_path()
    # Widget state does not survive a page switch, so re-seed the input from the shared key.
    state[_INPUT_KEY] = state[DATASET_KEY]
    st.sidebar.text_input(
        "Dataset folder", key=_INPUT_KEY, on_change=_on_path_typed,
        help="Folder holding train_metadata.csv (Kaggle BirdCLEF layout; train_audio/ optional)."
             " Remembered for next time once it loads.",
    )
    return state[DATASET_KEY]


def get_dataset() -> BirdDataset | None:
    """The sidebar picker plus the loaded dataset; on failure an st.error with the message and None."""
    path = dataset_picker()
    if not path:
        st.info("Enter a dataset folder in the sidebar (the one holding train_metadata.csv).")
        return None
    try:
        ds = load_dataset_cached(path)
    except USER_ERRORS as exc:
        show_error(exc)
        return None
    if st.session_state.pop(_CHOSEN_KEY, False):
        remember(SETTING_KEY, str(ds.root))
    audio = "with audio" if ds.has_train_audio else "metadata only"
    st.sidebar.caption(f"{len(ds.metadata):,} recordings · {ds.num_classes} species · {audio}")
    return ds


def require_dataset() -> BirdDataset:
    """Like `get_dataset`, but stops the page (after the error box) when no dataset loads."""
    ds = get_dataset()
    if ds is None:
        st.stop()
    return ds


@st.cache_data(ttl=60, show_spinner=False)
def _missing_audio(root: str, fingerprint: tuple) -> list[str]:
    return load_dataset_cached(root).missing_audio()


def missing_audio(ds: BirdDataset) -> list[str]:
    """`ds.missing_audio()` (one stat per file), cached for a minute so reruns stay cheap."""
    if not ds.has_train_audio:
        return list(ds.metadata["filename"])
    return _missing_audio(str(ds.root), _fingerprint(ds.root))
