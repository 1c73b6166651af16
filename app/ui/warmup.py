"""Load Plotly's JavaScript in the browser's idle time, on a page that draws no Plotly chart itself.

Streamlit fetches and evaluates Plotly's 4.7 MB chunk the first time a page of the tab draws a Plotly
chart: ~1.7–2 s of the browser's main thread on 2 cores, paid on the way into EDA, Training or
Thresholds. Every page (`ui.page_setup`) asks for the same module once it has settled and the browser
is idle; the tab's module map then holds it, and the next Plotly page of the tab only draws (EDA from
Home's sidebar: 3.3 s before, 0.4–1.0 s after, in Chromium).

How: a one-pixel `st.iframe` (same origin, like `shortcuts`) adds a module script to the parent page,
with the URL Streamlit's own lazy import uses (the chunk's name beside Streamlit's main script), so both
land on one module. The chunk's file name carries a content hash that changes with Streamlit's
version, so it is looked up in Streamlit's static folder, not written here; when it is not found,
nothing is done.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import streamlit as st


@functools.lru_cache(maxsize=1)
def plotly_chunk() -> str | None:
    """The URL path of Streamlit's Plotly chunk relative to the app's root ("static/js/PlotlyChart.<hash>.js"),
    or None when this Streamlit has none."""
    js = Path(st.__file__).parent / "static" / "static" / "js"
    found = sorted(js.glob("PlotlyChart.*.js"))
    return f"static/js/{found[0].name}" if len(found) == 1 else None


def script(chunk: str) -> str:
    """The iframe's HTML: once the parent page has settled (script run over, nothing loading or stale,
    for 1 s in a row) and the browser is idle, import `chunk` there (once per tab)."""
    # Not at the first idle moment: while the server still runs the page's script the browser is idle
    # too, and Plotly's evaluation then competed with drawing the page (Annotation's cold load went
    # from ~3 s to ~5 s in Chromium).
    return f"""<script>
(function() {{
  const win = window.parent;
  if (!win || win.__bcPlotlyWarm) return;
  const doc = win.document;
  // Beside Streamlit's main script, as its own import("./PlotlyChart….js") resolves it (a
  // --server.baseUrlPath prefix included); the page's base only if that script is not found.
  const main = doc.querySelector('script[type="module"][src*="static/js/"]');
  const url = main ? new URL({json.dumps(chunk.rsplit("/", 1)[-1])}, main.src).href
                   : new URL({json.dumps(chunk)}, doc.baseURI).href;
  // A module <script> in the parent, not eval("import(…)"): the same module map entry, and no eval
  // for a Content-Security-Policy to refuse.
  const go = () => {{
    if (win.__bcPlotlyWarm) return;
    win.__bcPlotlyWarm = true;
    const tag = doc.createElement("script");
    tag.type = "module";
    tag.src = url;
    tag.dataset.bcWarmup = "plotly";
    tag.onerror = () => {{ win.__bcPlotlyWarm = false; tag.remove(); }};
    doc.head.appendChild(tag);
  }};
  let calm = 0;
  (function tick() {{
    const app = doc.querySelector('[data-testid="stApp"]');
    const settled = app && app.getAttribute("data-test-script-state") === "notRunning"
      && !doc.querySelector('[data-testid="stSkeleton"],[data-stale="true"],[data-testid="stStatusWidget"]');
    calm = settled ? calm + 1 : 0;
    if (calm >= 4) (win.requestIdleCallback || ((f) => win.setTimeout(f, 200)))(go, {{timeout: 2000}});
    else setTimeout(tick, 250);
  }})();
}})();
</script>"""


def warm_plotly() -> None:
    """Put the warm-up iframe on the page (nothing when Streamlit's Plotly chunk is not found)."""
    chunk = plotly_chunk()
    if chunk:
        st.iframe(script(chunk), height=1)
