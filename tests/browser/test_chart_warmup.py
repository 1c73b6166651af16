"""The chart libraries' scripts are loaded while the user reads a page, not on the way into a chart page
(app/ui/warmup.py)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

CHUNKS = {"vega-lite": re.compile(r"/static/js/ArrowVegaLiteChart\.[^/]+\.js$"),
          "vega-embed": re.compile(r"/static/js/embed\.[^/]+\.js$"),
          "data grid": re.compile(r"/static/js/DataFrame\.[^/]+\.js$"),
          "plotly": re.compile(r"/static/js/PlotlyChart\.[^/]+\.js$")}


def test_home_loads_the_chart_scripts_once_and_eda_then_draws_without_fetching_them(page, app_url):
    fetched: list[str] = []
    page.on("request", lambda r: fetched.extend(k for k, rx in CHUNKS.items() if rx.search(r.url)))
    page.goto(f"{app_url}/", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=90_000)
    # Home draws no chart …
    assert page.locator('[data-testid="stPlotlyChart"],[data-testid="stVegaLiteChart"]').count() == 0
    page.wait_for_function("window.__bcChartsWarm === 'done'", timeout=60_000)
    assert sorted(fetched) == sorted(CHUNKS), fetched  # … yet its page has loaded each chart module, once
    order = page.evaluate("() => [...document.querySelectorAll('script[data-bc-warmup]')].map(s => s.dataset.bcWarmup)")
    # The small ones first, Plotly's last.
    assert [n.split(".")[0] for n in order] == ["ArrowVegaLiteChart", "embed", "DataFrame", "PlotlyChart"]

    page.locator('[data-testid="stSidebarNav"] a', has_text="EDA").first.click()
    page.wait_for_selector('[data-testid="stVegaLiteChart"] svg.marks', timeout=90_000)  # EDA's first charts draw
    page.get_by_role("tab", name="Places").click()
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)  # and the map
    assert sorted(fetched) == sorted(CHUNKS), f"a chart page fetched a chart script again: {fetched}"
    assert not page.locator('[data-testid="stException"]').count()
