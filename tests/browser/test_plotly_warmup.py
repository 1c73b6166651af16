"""Plotly's script is loaded while the user reads a page without charts, not on the way into a chart page."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

PLOTLY_CHUNK = re.compile(r"/static/js/PlotlyChart\.[^/]+\.js$")


def test_home_loads_plotly_once_and_eda_then_draws_without_fetching_it(page, app_url):
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if PLOTLY_CHUNK.search(r.url) else None)
    page.goto(f"{app_url}/", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=90_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # Home draws no Plotly chart …
    page.wait_for_function("window.__bcPlotlyWarm === true", timeout=30_000)
    page.wait_for_function(  # … yet its page has loaded Plotly's module, once idle
        "performance.getEntriesByType('resource').some(e => /PlotlyChart\\.[^/]+\\.js$/.test(e.name))",
        timeout=30_000)
    assert len(fetched) == 1, fetched

    page.locator('[data-testid="stSidebarNav"] a', has_text="EDA").first.click()
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)  # EDA's charts draw
    assert len(fetched) == 1, "the chart page fetched Plotly's script again"
    assert not page.locator('[data-testid="stException"]').count()
