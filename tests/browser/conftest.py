"""Fixtures for driving the running app in headless Chromium (Playwright's Python API).

The system Chromium (`apt-get install chromium`) is used, never a downloaded browser; every
browser test is skipped with the reason when /usr/bin/chromium is absent. One Streamlit server
serves the whole session; it shows the demo dataset when `birdcore.demo` can provide it, else the
real metadata in ../shared, else a one-row folder written here. Its runs folder (`BIRDCORE_RUNS`)
holds one small run trained at the start of the session, so the pages about runs have content.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("BIRDCORE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}  # test_browser.py grows the height to the page for screenshots


def _load_server_helper():
    # Shared with tests/test_app_server.py; loaded by path so it works under any pytest import mode.
    spec = importlib.util.spec_from_file_location("_app_server_helper", REPO / "tests" / "test_app_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def browser_data_dir(tmp_path_factory) -> Path:
    try:
        from birdcore.demo import ensure_demo_dataset

        return Path(ensure_demo_dataset())
    except ImportError:
        pass
    real = REPO.parent / "shared" / "data" / "birdclef2022"
    if real.is_dir():
        return real
    data = tmp_path_factory.mktemp("browser-data")
    (data / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n"
                                             "zzaaa1,[],4.0,zzaaa1/XC1.ogg\n", encoding="utf-8")
    return data


@pytest.fixture(scope="session")
def browser_runs_dir(browser_data_dir, tmp_path_factory) -> Path:
    """A runs folder with one real finished run on the browser dataset (a tiny CNN, 2 epochs: ~10–30 s),
    so the Training and Thresholds pages draw curves and OOF analysis rather than their empty states.
    Left empty when the dataset has no audio (the metadata-only fallbacks)."""
    from birdcore.config.run import load_run_config
    from birdcore.errors import BirdcoreError
    from birdcore.training.launcher import prepare_run, run_in_process

    runs = tmp_path_factory.mktemp("browser-runs")
    cfg = load_run_config("demo-cpu", ["train.epochs=2", "train.num_workers=0", "data.clip_seconds=2.0",
                                       "train.batch_size=16", "train.log_every_steps=2", "model.pretrained=false",
                                       'model.backbone="resnet10t"'])
    try:
        run = prepare_run(browser_data_dir, cfg, runs)
    except BirdcoreError:  # no train_audio/: nothing to train on
        return runs
    run_in_process(run)
    return runs


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get install -y chromium` to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def _serve(data: Path, work: Path, runs: Path | None = None) -> Iterator[str]:
    helper = _load_server_helper()
    env = pytest.MonkeyPatch()  # the server inherits os.environ: point it at this runs folder
    if runs is not None:
        env.setenv("BIRDCORE_RUNS", str(runs))
    try:
        with helper.streamlit_server(data, work / "home", work / "streamlit.log") as base:
            yield base
    finally:
        env.undo()


@pytest.fixture(scope="session")
def serve_app():
    """`serve_app(data, work, runs=None)`: a context manager running `streamlit run app/Home.py` on
    dataset `data` (settings and log under the folder `work`, runs in `runs` when given) and yielding
    its base URL. The one way every browser test starts a server of its own."""
    return _serve


@pytest.fixture(scope="session")
def app_url(browser, browser_data_dir, browser_runs_dir, serve_app, tmp_path_factory):
    """Base URL of a Streamlit server running app/Home.py for the whole browser session."""
    with serve_app(browser_data_dir, tmp_path_factory.mktemp("browser-server"), browser_runs_dir) as base:
        yield base


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    yield pg
    context.close()
