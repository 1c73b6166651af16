"""Load the chart scripts in the browser's idle time, while the user reads a page.

Streamlit fetches and evaluates a chart library's chunk the first time a page of the tab draws such a
chart: Vega-Lite's (`ArrowVegaLiteChart` and vega-embed, ~0.8 MB) for the EDA, Training, Thresholds
and Submission charts, the data grid's (~0.5 MB) for `st.dataframe`, Plotly's (4.7 MB, ~1.7–2 s of the
browser's main thread on 2 cores) for the map and the zoomable spectrograms. Every page
(`ui.page_setup`) asks for the same modules once it has settled and the browser is idle; the tab's
module map then holds them, and the next chart page of the tab only draws (EDA from Home's sidebar,
when its charts were Plotly: 3.3 s before, 0.4–1.0 s after, in Chromium).

How: a one-pixel `st.iframe` (same origin, like `shortcuts`) adds module scripts to the parent page,
with the URLs Streamlit's own lazy imports use (the chunk's name beside Streamlit's main script), so
both land on one module. A chunk's file name carries a content hash that changes with Streamlit's
version, so it is looked up in Streamlit's static folder, not written here; one not found is left out.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import streamlit as st


# Vega-Lite first: small, and the chart pages' first view needs it; then the data grid (st.dataframe: the
# runs, threshold, submission and inspection tables); Plotly's last, only behind a tab or an expander.
CHUNKS = ("ArrowVegaLiteChart.*.js", "embed.*.js", "DataFrame.*.js", "PlotlyChart.*.js")


@functools.lru_cache(maxsize=None)
def chunk(pattern: str) -> str | None:
    """The URL path of Streamlit's chunk matching `pattern` relative to the app's root
    ("static/js/PlotlyChart.<hash>.js"), or None when this Streamlit has not exactly one."""
    js = Path(st.__file__).parent / "static" / "static" / "js"
    found = sorted(js.glob(pattern))
    return f"static/js/{found[0].name}" if len(found) == 1 else None


def script(chunks: Sequence[str]) -> str:
    """The iframe's HTML: once the parent page has settled (script run over, nothing loading or stale,
    for 1 s in a row) and the browser is idle, import `chunks` there, one after the other (once per tab)."""
    # Not at the first idle moment: while the server still runs the page's script the browser is idle
    # too, and Plotly's evaluation then competed with drawing the page (Annotation's cold load went
    # from ~3 s to ~5 s in Chromium).
    names = [c.rsplit("/", 1)[-1] for c in chunks]
    return f"""<script>
(function() {{
  const win = window.parent;
  if (!win || win.__bcChartsWarm) return;
  const doc = win.document;
  // Beside Streamlit's main script, as its own import("./PlotlyChart….js") resolves it (a
  // --server.baseUrlPath prefix included); the page's base only if that script is not found.
  const main = doc.querySelector('script[type="module"][src*="static/js/"]');
  const urls = main ? {json.dumps(names)}.map((n) => new URL(n, main.src).href)
                    : {json.dumps(list(chunks))}.map((c) => new URL(c, doc.baseURI).href);
  const idle = (f) => (win.requestIdleCallback || ((g) => win.setTimeout(g, 200)))(f, {{timeout: 2000}});
  // A module <script> in the parent, not eval("import(…)"): the same module map entry, and no eval
  // for a Content-Security-Policy to refuse. One at a time, each in an idle moment after the last
  // has run, so a click on the page is never queued behind all of them.
  const load = (i) => {{
    if (i >= urls.length) {{ win.__bcChartsWarm = "done"; return; }}
    const tag = doc.createElement("script");
    tag.type = "module";
    tag.src = urls[i];
    tag.dataset.bcWarmup = {json.dumps(names)}[i];
    tag.onload = () => idle(() => load(i + 1));
    tag.onerror = () => {{ tag.remove(); idle(() => load(i + 1)); }};
    doc.head.appendChild(tag);
  }};
  let calm = 0;
  (function tick() {{
    const app = doc.querySelector('[data-testid="stApp"]');
    const settled = app && app.getAttribute("data-test-script-state") === "notRunning"
      && !doc.querySelector('[data-testid="stSkeleton"],[data-stale="true"],[data-testid="stStatusWidget"]');
    calm = settled ? calm + 1 : 0;
    if (calm >= 4) idle(() => {{
      if (win.__bcChartsWarm) return;
      win.__bcChartsWarm = true;
      load(0);
    }});
    else setTimeout(tick, 250);
  }})();
}})();
</script>"""


def warm_charts() -> None:
    """Put the warm-up iframe on the page (nothing when none of Streamlit's chart chunks is found)."""
    found = [c for c in map(chunk, CHUNKS) if c]
    if found:
        st.iframe(script(found), height=1)
