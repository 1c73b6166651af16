"""Thin shared helpers for the Streamlit pages of the BirdCLEF workbench.

A page in app/pages/N_Title.py reads like a layout:

    import streamlit as st
    import ui                          # before birdcore (see REPO_ROOT below)

    ui.page_setup("EDA", icon="📊")
    ds = ui.require_dataset()          # sidebar folder picker; st.error + st.stop when it fails
    with ui.error_box():               # a BirdcoreError inside becomes an st.error, not a traceback
        ...

`import ui` works because Streamlit puts the folder of the script it was started with on sys.path:
app/ under `streamlit run app/Home.py`. A page started on its own (`AppTest.from_file(
"app/pages/1_EDA.py")`, `streamlit run app/pages/1_EDA.py`) gets app/pages/ instead, where the
stand-in app/pages/ui/__init__.py adds app/ and hands over to this package.

What lives here:
- `data`: the sidebar dataset picker and the cached dataset loader (`get_dataset`,
  `require_dataset`, `load_dataset_cached`, `missing_audio`, `demo_dir`, `default_dataset_path`).
- `errors`: `show_error`, `error_box` — user-input errors rendered as message boxes.
- `settings`: `recall` / `remember` — values kept between sessions in `$BIRDCORE_HOME/app.json`;
  `remembered(widget_key, setting, default)` makes a widget start from its remembered value.
- `nav`: `page_setup`, `list_pages`, `page_link` (only links to pages that exist in this app run).
- `text.count`: "1 recording" / "2 recordings".
- `charts`: small Vega-Lite chart builders with the app's colours, and `show` to draw one (or a Plotly
  figure); `geo_map`: the recording-places map (Plotly).
- `figures`: waveform, log-mel, spectrogram and probability-heatmap figures (Preview, Inspection,
  Annotation); `preview_widgets`: the Preview page's augmentation form and audio plumbing;
  `runs`: the Training and Thresholds pages' run helpers and curves.

The app imports the engine (`birdcore`), never the reverse.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `birdcore` is importable from the repo root; `streamlit run app/Home.py` only puts app/ on
# sys.path, so add the root when the package is not installed.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from .data import (  # noqa: E402
    DATASET_KEY,
    dataset_picker,
    default_dataset_path,
    demo_dir,
    get_dataset,
    load_dataset_cached,
    missing_audio,
    require_dataset,
)
from .errors import error_box, show_error  # noqa: E402
from .nav import (  # noqa: E402
    APP_DIR,
    PAGES_DIR,
    list_pages,
    page_link,
    page_setup,
    page_summary,
    page_title,
)
from .settings import recall, remember, remembered  # noqa: E402
from .text import count  # noqa: E402

__all__ = [
    "APP_DIR", "DATASET_KEY", "PAGES_DIR", "REPO_ROOT", "charts", "count", "dataset_picker",
    "default_dataset_path", "demo_dir", "error_box", "get_dataset", "list_pages", "load_dataset_cached",
    "missing_audio", "page_link", "page_setup", "page_summary", "page_title", "recall", "remember",
    "remembered", "require_dataset", "runs_dir", "show_error", "load_model", "load_ref",
]

# Loaded on first use, not by `import ui`: charts and runs build chart specs, models imports the
# inference catalog (scipy.stats via the metrics, ~2 s on a busy machine). Every page's first run on a
# fresh server paid all of it before drawing anything; now a page pays only for what it uses.
_LAZY = {"charts": ("charts", None), "runs_dir": ("runs", "runs_dir"), "load_model": ("models", "load_model"),
         "load_ref": ("models", "load_ref")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module if attr is None else getattr(module, attr)
