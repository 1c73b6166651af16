"""Charts drawn as pictures (PNG, Matplotlib's Agg canvas) for views that must be on screen at once.

Why not Plotly here: Streamlit loads Plotly's 4.7 MB JavaScript chunk on the first Plotly chart of a
page load and evaluates it on the browser's main thread. Measured in headless Chromium on 2 cores
(`benchmarks/bench_app.py --chromium`), one small Plotly bar chart made a one-line page settle at
3.4 s instead of 1.5 s; the same chart as a PNG (`st.image`) settled at 1.6 s. Summary charts that
need no hover or zoom (Home's) are therefore pictures; interactive ones are Vega-Lite (`charts`),
Plotly only for the map and the zoomable spectrograms.
"""

from __future__ import annotations

import io
from typing import Sequence

from .palette import BASE

DPI = 100


def bar_png(categories: Sequence[str], values: Sequence[float], *, title: str | None = None,
            xlabel: str | None = None, ylabel: str | None = None, color: str = BASE,
            width_px: int = 640, height_px: int = 260) -> bytes:
    """A vertical bar chart as PNG bytes: one bar per category, in the given order, each bar's value
    written above it (a picture has no hover), zero bars kept so the scale reads whole."""
    # The object-oriented API (Figure + Agg canvas), not pyplot: no global figure state shared between
    # the server's script threads, nothing to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(categories) != len(values):
        raise ValueError(f"bar_png: {len(categories)} categories but {len(values)} values")
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = range(len(categories))
    bars = ax.bar(xs, values, color=color, width=0.8)
    ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=7, padding=1, color="#404b57")
    ax.set_xticks(list(xs), [str(c) for c in categories], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(y=0.12)  # room for the value labels above the tallest bar
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    fig.tight_layout(pad=0.4)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
