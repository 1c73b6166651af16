"""Open every page of the running app in headless Chromium, check it renders, save a screenshot.

Pages are discovered from app/pages/N_Title.py, so pages added later are covered automatically.
Screenshots (full page) and the browser console go to tests/artifacts/<page>.png / .console.txt.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"  # git-ignored
WIDTH = 1400
PAGE_FILE = re.compile(r"^(\d+)_(.+)\.py$")


def app_pages() -> list[tuple[str, str]]:
    """(name, url path) of Home and of every app/pages/N_Title.py, in page order."""
    found = sorted((int(m.group(1)), m.group(2)) for p in (REPO / "app" / "pages").glob("*.py")
                   if (m := PAGE_FILE.match(p.name)))
    return [("Home", "")] + [(title, title) for _, title in found]  # Streamlit's URL path is the title


def wait_until_idle(page, timeout_s: float = 90.0) -> None:
    """Wait until the script run has finished, no element is still loading and every chart is drawn.

    Streamlit marks the app root with data-test-script-state: "initial" → "running" →
    "notRunning", so "notRunning" means at least one run completed. It must hold for a second in
    a row: a widget callback or st.rerun can start another run right after.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < 4:  # 4 × 250 ms
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        charts = page.locator('[data-testid="stPlotlyChart"],[data-testid="stVegaLiteChart"]').count()
        drawn = page.locator('[data-testid="stPlotlyChart"]:has(.main-svg),'
                             '[data-testid="stVegaLiteChart"]:has(svg.marks)').count()
        # An element whose script Streamlit is still loading shows a skeleton in its place.
        loading = page.locator('[data-testid="stSkeleton"],[data-testid="stSkeletonElement"]').count()
        quiet = quiet + 1 if (state == "notRunning" and drawn == charts and not loading) else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"page not idle after {timeout_s:.0f} s (script {state}, {drawn}/{charts} charts)")
        page.wait_for_timeout(250)


@pytest.mark.parametrize("name,path", app_pages(), ids=[n for n, _ in app_pages()])
def test_page_renders(page, app_url, name, path):
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("response", lambda r: console.append(f"http {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(f"{app_url}/{path}", wait_until="domcontentloaded")
    wait_until_idle(page)

    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    if name == "Home":
        assert page.locator("h1").first.inner_text().strip() == "BirdCLEF workbench"
        assert page.locator('[data-testid="stMetric"]').count() >= 4
        assert page.locator('[data-testid="stPageLink"]').count() >= 1
    if name == "EDA":
        assert page.locator("h1").first.inner_text().strip() == "Exploratory data analysis"
        assert page.get_by_role("tab").count() == 7  # lazy tabs; the first one, Species, is open
        # The first tab's charts are Vega-Lite (drawn as SVG); Plotly's script is not needed for them.
        assert page.locator('[data-testid="stVegaLiteChart"]:has(svg.marks)').count() >= 3
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0

    # Grow the viewport to the whole page (Streamlit scrolls inside a div, not the document).
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": int(min(max(height + 40, 600), 12000))})
    wait_until_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    Path(ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console) + "\n", encoding="utf-8")
