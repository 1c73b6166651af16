"""Streamlit's floor for a page's mix of elements: how fast a trivial page with the same widgets, tables and
charts loads, so that a page's own cost can be told from what its kinds of elements cost Streamlit.

Streamlit fetches and evaluates each kind of element's script the first time a tab draws one: the data grid
(~1.2 MB of JavaScript), Vega-Lite (~0.8 MB), every widget's own chunk. On a fresh load that is part of the
wait whatever the page computes. `bench_app.py --chromium --floor-mix` counts the elements each page draws
(`INVENTORY_JS`), writes a throwaway app whose pages draw the same counts with trivial content (`write_app`),
and loads both alternately: the difference is the page's own work (its script, its data, its figures).
"""

from __future__ import annotations

import json
from pathlib import Path

# data-testid → one statement drawing one such element ({i}: its index, for unique labels and keys).
# Widgets that Streamlit draws inside others (a form's submit button, a radio's options) are not listed:
# their container's statement draws them.
KINDS: dict[str, str] = {
    "stTextInput": 'st.text_input("text {i}", "x")',
    "stTextArea": 'st.text_area("area {i}", "x")',
    "stSelectbox": 'st.selectbox("select {i}", ["a", "b"])',
    "stMultiSelect": 'st.multiselect("multi {i}", ["a", "b"], ["a"])',
    "stNumberInput": 'st.number_input("number {i}", value=1)',
    "stCheckbox": 'st.checkbox("check {i}")',
    "stSlider": 'st.slider("slider {i}", 0, 10, 5)',
    "stRadio": 'st.radio("radio {i}", ["a", "b"], horizontal=True)',
    "stButtonGroup": 'st.segmented_control("group {i}", ["a", "b"], default="a")',
    "stButton": 'st.button("button {i}")',
    "stDownloadButton": 'st.download_button("download {i}", b"x", file_name="x.txt")',
    "stFileUploader": 'st.file_uploader("upload {i}")',
    "stForm": 'with st.form("form {i}"):\n    st.form_submit_button("submit {i}")',
    "stExpander": 'with st.expander("expander {i}"):\n    st.write("x")',
    "stTabs": 'st.tabs(["tab a {i}", "tab b {i}"])[0].write("x")',
    "stMetric": 'st.metric("metric {i}", 1)',
    "stProgress": "st.progress(0.5)",
    "stAlert": 'st.info("info {i}")',
    "stPageLink": 'st.page_link("https://example.com", label="link {i}")',
    "stTable": "st.table(FRAME)",
    "stDataFrame": "st.dataframe(FRAME)",
    "stVegaLiteChart": "st.vega_lite_chart(FRAME, BAR)",
    "stPlotlyChart": 'st.plotly_chart(go.Figure(go.Scatter(y=[1, 3, 2])), key="plotly {i}")',
    "stImage": "st.image(np.zeros((16, 64)), clamp=True)",
    "stAudio": "st.audio(np.zeros(8000), sample_rate=8000)",
    "stIFrame": 'st.iframe("<p>x</p>", height=1)',
    "stHtml": 'st.html("<b>x</b>")',
    "stHeading": 'st.subheader("heading {i}")',
    "stMarkdown": 'st.markdown("text {i}")',
}

# {data-testid: count} of the kinds above drawn on the page, hidden ones (a closed expander's, an inactive
# tab's) included: Streamlit loads their scripts all the same.
INVENTORY_JS = """(kinds) => Object.fromEntries(
  kinds.map((k) => [k, document.querySelectorAll(`[data-testid="${k}"]`).length]).filter(([, n]) => n))"""

HEADER = '''import numpy as np
import pandas as pd
import streamlit as st
{plotly}
st.set_page_config(page_title="Floor", page_icon="🧭", layout="wide")  # as the app's ui.page_setup
FRAME = pd.DataFrame({{"code": list("abcdefghij"), "n": range(10)}})
BAR = {{"mark": "bar", "encoding": {{"x": {{"field": "code", "type": "nominal"}},
                                  "y": {{"field": "n", "type": "quantitative"}}}}}}
'''

# Headings and markdown are in Streamlit's main script; their count changes little, so at most this many.
CAP = {"stMarkdown": 10, "stHeading": 4}


def page_source(counts: dict[str, int]) -> str:
    """The script of a trivial page drawing `counts[kind]` elements of each kind in KINDS."""
    lines = [HEADER.format(plotly="import plotly.graph_objects as go" if "stPlotlyChart" in counts else "")]
    for kind, n in counts.items():
        if kind not in KINDS:
            continue
        for i in range(min(n, CAP.get(kind, 50))):
            lines.append(KINDS[kind].format(i=i))
    return "\n".join(lines) + "\n"


def write_app(root: Path, mixes: dict[str, dict[str, int]], config: Path | None = None) -> Path:
    """A throwaway app under `root`: app/Home.py (Home's mix, else a one-line page) and app/pages/N_<title>.py
    drawing each title's element counts (same page names, so the same URLs as the real app's), with a copy of the app's
    `.streamlit/config.toml` (`config`). Returns `root`."""
    pages = root / "app" / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    home = page_source(mixes["Home"]) if "Home" in mixes else 'import streamlit as st\nst.title("Home")\n'
    if config is not None:  # the app's theme and client settings, so both draw alike
        (root / ".streamlit").mkdir(exist_ok=True)
        (root / ".streamlit" / "config.toml").write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "app" / "Home.py").write_text(home, encoding="utf-8")
    for n, (title, counts) in enumerate(mixes.items(), start=1):
        if title != "Home":
            (pages / f"{n}_{title}.py").write_text(page_source(counts), encoding="utf-8")
    (root / "mixes.json").write_text(json.dumps(mixes, indent=2), encoding="utf-8")
    return root
