"""Page setup and navigation between the pages in `app/pages/` (named `N_Title.py`)."""

from __future__ import annotations

import ast
import importlib
import os
import re
import threading
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

APP_DIR = Path(__file__).resolve().parents[1]
PAGES_DIR = APP_DIR / "pages"
APP_TITLE = "BirdCLEF workbench"
_PAGE_FILE = re.compile(r"^(\d+)_(.+)\.py$")


def page_setup(title: str, icon: str | None = None) -> None:
    """Browser-tab title, icon and wide layout; call first on every page."""
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", page_icon=icon, layout="wide")
    _prewarm_imports()
    # The chart libraries' scripts load while the user reads this page, not on the way into a chart
    # page (ui/warmup.py). In the sidebar: a 1-px frame there moves none of the page's content.
    from .warmup import warm_charts

    with st.sidebar:
        warm_charts()


_WARM = threading.Lock()
_WARMED = False
# The engine modules behind the model pages import torch and timm (~2 s, once per server process).
# Importing them in a background thread when the first page renders means a user who opens Home
# or EDA first does not wait for them when moving on to Preview, Training or Inspection. `app/serve.py`
# (what `make app` runs) imports them before the server listens; then this thread finds them loaded.
# scipy.stats comes first: while it imports it peeks at sys.modules["torch"], and a torch that this thread
# is still importing (half initialised) makes it raise in the page's thread ("partially initialized
# module 'torch'"). Imported here first, a page either waits for it on its import lock or finds it done.
# After them, what pages import lazily on their first run (found by diffing sys.modules around each
# page's first AppTest run after a preload): Streamlit's emoji table (set_page_config's icon, 0.75 s),
# audiomentations (Preview), Matplotlib's colormaps and PIL (spectrogram pictures), Matplotlib's Figure
# and Agg canvas (picture charts, ui/pictures.py).
HEAVY_MODULES = ("scipy.stats", "torch", "birdcore.features.mel_frontend", "birdcore.augment.preview",
                 "birdcore.inference.catalog", "streamlit.emojis", "audiomentations", "matplotlib.cm", "PIL.Image",
                 "matplotlib.figure", "matplotlib.backends.backend_agg")


def _script_running() -> bool:
    # Streamlit runs each page script in a thread of this name, alive only while a run is in progress.
    return any(t.name == "ScriptRunner.scriptThread" and t.is_alive() for t in threading.enumerate())


def _prewarm_imports() -> None:
    global _WARMED
    with _WARM:
        if _WARMED:
            return
        _WARMED = True

    def load() -> None:
        # After the first page has rendered, never while it runs: pages draw their title before their
        # own heavy imports, and the two import streams fighting for the GIL delayed "settled" by seconds.
        time.sleep(2.0)
        deadline = time.monotonic() + 60.0
        while _script_running() and time.monotonic() < deadline:
            time.sleep(0.25)
        for name in HEAVY_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # a missing optional part shows up on its page, with its message
                return

    threading.Thread(target=load, name="birdcore-prewarm", daemon=True).start()


def list_pages() -> list[Path]:
    """The page files `app/pages/N_Title.py`, ordered by N (pages added later appear on their own)."""
    if not PAGES_DIR.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in PAGES_DIR.iterdir() if (m := _PAGE_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def page_title(path: str | os.PathLike) -> str:
    """The title Streamlit shows for a page file: "1_EDA.py" → "EDA", "3_Train_model.py" → "Train model"."""
    name = Path(path).name
    m = _PAGE_FILE.match(name)
    stem = m.group(2) if m else Path(name).stem
    return stem.replace("_", " ")


def page_link(page: str, label: str | None = None, icon: str | None = None, help: str | None = None) -> bool:
    """`st.page_link` to `page` (path relative to `app/`, e.g. "pages/2_Preview.py") when that page is
    part of the running app; returns False and draws nothing otherwise.

    A page is missing when its file does not exist yet, or when a page runs on its own
    (`streamlit run app/pages/1_EDA.py`, AppTest of one page), where st.page_link would raise.
    """
    target = (APP_DIR / page).resolve()
    if not target.is_file():
        return False
    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    registered = {os.path.realpath(str(info.get("script_path", ""))) for info in ctx.pages_manager.get_pages().values()}
    if os.path.realpath(target) not in registered:
        return False
    rel = os.path.relpath(target, Path(ctx.main_script_path).resolve().parent)
    st.page_link(rel, label=label, icon=icon, help=help)
    return True


def page_summary(path: str | os.PathLike) -> str:
    """First line of a page file's module docstring ("" when none), for the Home page's page list."""
    try:
        doc = ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8")))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    return doc.strip().splitlines()[0] if doc else ""
