"""Chart builders with the app's look, and `show` to draw one.

The charts are Vega-Lite specs (plain dicts). Each builder takes the plain DataFrames that
`birdcore.analysis.eda` or the run readers return and only decides looks: colours, axis titles, sizes.
The data travels as named `datasets` (DataFrames, which Streamlit sends as Arrow), never inside the
marks, so a chart whose data grows while its spec stays the same (a live run's loss) is updated in
place by the browser rather than drawn anew.

Why Vega-Lite and not Plotly: measured in Chromium on this 2-core machine, a page with three small
Plotly charts settled 3.3–3.5 s after a fresh load, the same page with three Vega-Lite charts 1.5–1.9 s
and a one-line page 1.2–1.3 s (`benchmarks/bench_app.py`; Plotly's 4.7 MB script is evaluated on every
fresh page load that draws one). Plotly stays where only it does the job: the recording-places map
(`geo_map`) and the spectrogram views with their dB readout (`figures`); `show` draws those too.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from .palette import BASE, HEAT, HIGHLIGHT, MUTED  # noqa: F401 (re-exported: pages use charts.MUTED)

Spec = dict[str, Any]  # a Vega-Lite spec; tabular data as DataFrames under "datasets"

ROW_PX = 22  # one labelled row of a ranked list: every name readable, 150 species ≈ 3,400 px (scrolled)
LABEL_PX = 280  # room for "#12 code — common name" before Vega-Lite truncates an axis label with "…"
# One colour per line when several runs or metrics share a chart (colour-blind-safe set).
PALETTE = ("#3a7ca5", "#e4572e", "#2e933c", "#8e5ea2", "#f2a541", "#17becf", "#7f7f7f", "#bcbd22")


# ---- spec pieces ---------------------------------------------------------------------------------
def spec(layers: Sequence[Spec], datasets: dict[str, pd.DataFrame], *, title: str | None = None,
         height: int = 320) -> Spec:
    """A layered chart of `height` px (drawn full width) over named `datasets`; each layer names its
    data (`{"data": {"name": …}}`)."""
    out: Spec = {"height": int(height), "datasets": dict(datasets), "layer": list(layers),
                 "config": {"legend": {"orient": "top", "title": None}}}
    if title:
        out["title"] = {"text": title, "anchor": "start"}
    return out


def field(name: str, kind: str = "quantitative", title: str | None = None, **extra) -> Spec:
    """An encoding channel reading column `name`; `title` None shows no axis title."""
    return {"field": name, "type": kind, "title": title, **extra}


def categories(name: str, order: Sequence[str], title: str | None = None, *, label_limit: int | None = None,
               **extra) -> Spec:
    """A category channel in exactly `order` (the frame's order: Vega-Lite would sort it), every
    category labelled (`labelOverlap` off: a crowded axis must not drop names)."""
    axis = {"labelOverlap": False, **({"labelLimit": label_limit} if label_limit else {}), **extra.pop("axis", {})}
    return {"field": name, "type": "nominal", "title": title, "sort": [str(v) for v in order], "axis": axis, **extra}


def colour_by(name: str, domain: Sequence[str], colours: Sequence[str]) -> Spec:
    """A colour channel with a fixed colour per value of column `name` (legend on top, no title)."""
    domain = [str(d) for d in domain]
    return {"field": name, "type": "nominal", "title": None,
            "scale": {"domain": domain, "range": [colours[i % len(colours)] for i in range(len(domain))]}}


def rule_at(dataset: str) -> Spec:
    """A dashed vertical line on the quantitative x axis at each `x` of `dataset` (a threshold: `rule_data`).
    Data, not a constant in the spec: moving the threshold then updates the drawn chart in place."""
    return {"data": {"name": dataset},
            "mark": {"type": "rule", "color": "black", "strokeWidth": 1.5, "strokeDash": [5, 4]},
            "encoding": {"x": {"field": "x", "type": "quantitative"}}}


def rule_data(*xs: float) -> pd.DataFrame:
    """The rows of `rule_at`: one per line."""
    return pd.DataFrame({"x": [float(x) for x in xs]})


def x_axis(chart: Spec, **axis) -> Spec:
    """Set `axis` properties on the x channel of every layer of `chart` (in place); returns it."""
    for layer in chart.get("layer", [chart]):
        x = layer.get("encoding", {}).get("x")
        if x is not None and "field" in x:
            x["axis"] = {**x.get("axis", {}), **axis}
    return chart


def height(chart: Spec) -> int:
    """The chart's height in px."""
    return int(chart["height"])


# ---- builders ------------------------------------------------------------------------------------
def _oriented(cat: Spec, val: Spec, horizontal: bool) -> Spec:
    return {"y": cat, "x": val} if horizontal else {"x": cat, "y": val}


def _log_scale(top: float) -> tuple[Spec, list[int]]:
    """A log value scale whose floor sits just under 1 (a species with one recording still has a visible
    bar instead of one starting at the axis edge) and tick values at the powers of ten only."""
    top = max(float(top), 1.0)
    ticks = [10 ** k for k in range(0, int(np.floor(np.log10(top))) + 1)]
    return {"type": "log", "domain": [0.8, top * 1.8], "nice": False}, ticks


def bar(df: pd.DataFrame, x: str, y: str, *, title: str | None = None, horizontal: bool = False,
        log: bool = False, color: str = BASE, hover: str | None = None, height: int | None = None,
        xlabel: str | None = None, ylabel: str | None = None) -> Spec:
    """One bar per row of `df` (categories in `x`, values in `y`), in the frame's order.

    `horizontal` puts categories on the y axis, first row on top; `log` makes the value axis
    logarithmic; `hover` names a column shown on hover. `height` defaults to 320 px, or to
    ~26 px per bar for horizontal bars so that four bars are not drawn a hand's width thick.
    """
    if height is None:
        height = min(120 + 26 * len(df), 640) if horizontal else 320
    data = df.assign(**{x: df[x].astype(str)})
    cat_title, val_title = (ylabel, xlabel) if horizontal else (xlabel, ylabel)
    val = field(y, title=val_title)
    if log:
        val["scale"], ticks = _log_scale(df[y].max() if len(df) else 1)
        val["axis"] = {"values": ticks, "format": "~s"}
    cat = categories(x, data[x], cat_title, label_limit=LABEL_PX if horizontal else None,
                     **({} if horizontal else {"axis": {"labelAngle": -45 if len(df) > 12 else 0}}))
    tooltip = [field(x, "nominal", x), field(y, title=y)] + ([field(hover, "nominal", hover)] if hover else [])
    layer = {"data": {"name": "bars"}, "mark": {"type": "bar", "color": color},
             "encoding": {**_oriented(cat, val, horizontal), "tooltip": tooltip}}
    return spec([layer], {"bars": data}, title=title, height=height)


def grouped_bar(df: pd.DataFrame, x: str, series: Sequence[tuple[str, str, str]], *, title: str | None = None,
                height: int = 320, xlabel: str | None = None, ylabel: str | None = None,
                percent: bool = False) -> Spec:
    """Bars of several value columns side by side per category `x` (frame order): `series` is
    (column, legend name, colour) each; `percent` formats the value axis as shares."""
    series = [s for s in series if s[0] in df.columns]
    long = df.melt(id_vars=[x], value_vars=[s[0] for s in series], var_name="_column", value_name="value")
    long[x] = long[x].astype(str)
    long["series"] = long["_column"].map({c: name for c, name, _ in series})
    fmt = {"format": ".0%"} if percent else {}
    layer = {"data": {"name": "bars"}, "mark": {"type": "bar"},
             "encoding": {"x": categories(x, df[x].astype(str), xlabel,
                                          axis={"labelAngle": -45 if len(df) > 12 else 0}),
                          "y": field("value", title=ylabel, axis=fmt),
                          "xOffset": {"field": "series", "sort": [s[1] for s in series]},
                          "color": colour_by("series", [s[1] for s in series], [s[2] for s in series]),
                          "tooltip": [field(x, "nominal", x), field("series", "nominal", "series"),
                                      field("value", title="value", **fmt)]}}
    return spec([layer], {"bars": long.drop(columns="_column")}, title=title, height=height)


def histogram_bars(df: pd.DataFrame, start: str, end: str, y: str, *, label: str | None = None,
                   title: str | None = None, height: int = 320, xlabel: str | None = None,
                   ylabel: str | None = None) -> Spec:
    """Pre-binned histogram: one bar per row spanning [`start`, `end`) on a numeric axis (`bin: "binned"`:
    without it, x and x2 would make Vega-Lite draw each bar sideways, a thin line at its height)."""
    tooltip = ([field(label, "nominal", label)] if label else []) + [field(y, title=y)]
    layer = {"data": {"name": "bins"}, "mark": {"type": "bar", "color": BASE, "stroke": "white", "strokeWidth": 1},
             "encoding": {"x": field(start, title=xlabel, bin="binned"), "x2": {"field": end},
                          "y": field(y, title=ylabel),
                          "tooltip": tooltip}}
    return spec([layer], {"bins": df}, title=title, height=height)


def box_stats(stats: pd.DataFrame, x: str = "species", *, title: str | None = None, height: int | None = None,
              ylabel: str | None = None, horizontal: bool = False, labels: str | None = None) -> Spec:
    """Box plot from precomputed statistics (columns min, q1, median, q3, max, mean), one box per row.

    Sending five numbers per box instead of every value keeps the chart light for large tables.
    `horizontal` puts one box per line, first row on top, every line labelled (`labels` names the
    column of the line's text, default `x`); its height then grows with the rows (`ylabel` titles
    the value axis either way).
    """
    name = labels or x
    data = stats.assign(**{name: stats[name].astype(str)})
    if height is None:
        height = 80 + ROW_PX * max(len(data), 3) if horizontal else 360
    cat = categories(name, data[name], None, label_limit=LABEL_PX if horizontal else None)
    val = "x" if horizontal else "y"
    tip = [field(name, "nominal", name)] + [field(c, title=c, format=".2f") for c in
                                            ("min", "q1", "median", "q3", "max", "mean")]
    pos = {("y" if horizontal else "x"): cat}

    def layer(mark: Spec, lo: str, hi: str | None = None) -> Spec:
        enc = {**pos, val: field(lo, title=ylabel), "tooltip": tip}
        if hi:
            enc[val + "2"] = {"field": hi}
        return {"data": {"name": "boxes"}, "mark": mark, "encoding": enc}

    size = max(min(ROW_PX - 8, 40), 6) if horizontal else 24
    return spec([layer({"type": "rule", "color": MUTED}, "min", "max"),
                 layer({"type": "bar", "color": BASE, "size": size}, "q1", "q3"),
                 layer({"type": "tick", "color": "white", "thickness": 2, "size": size}, "median"),
                 layer({"type": "point", "color": "black", "size": 14, "filled": True}, "mean")],
                {"boxes": data}, title=title, height=height)


def heatmap(matrix: pd.DataFrame, *, title: str | None = None, height: int = 460,
            colorbar_title: str = "") -> Spec:
    """A square matrix (index = rows, columns = columns) as a heatmap, counts written in the cells."""
    cols, idx = [str(c) for c in matrix.columns], [str(i) for i in matrix.index]
    cells = pd.DataFrame({"row": np.repeat(idx, len(cols)), "column": np.tile(cols, len(idx)),
                          "value": matrix.to_numpy().ravel()})
    top = float(cells["value"].max()) if len(cells) else 0.0
    enc = {"x": categories("column", cols, None, axis={"labelAngle": -45}),
           "y": categories("row", idx, None)}
    tip = [field("row", "nominal", "species"), field("column", "nominal", "with"), field("value", title=colorbar_title)]
    rect = {"data": {"name": "cells"}, "mark": {"type": "rect"},
            "encoding": {**enc, "color": field("value", title=colorbar_title, scale={"scheme": HEAT.lower()}),
                         "tooltip": tip}}
    # Zeros left blank keep the pattern readable; light text on the dark half of the scale.
    text = {"data": {"name": "cells"}, "transform": [{"filter": "datum.value > 0"}],
            "mark": {"type": "text", "fontSize": 10},
            "encoding": {**enc, "text": field("value"), "tooltip": tip,
                         "color": {"condition": {"test": f"datum.value > {top / 2!r}", "value": "white"},
                                   "value": "black"}}}
    chart = spec([rect, text], {"cells": cells}, title=title, height=height)
    chart["config"]["legend"] = {"orient": "right", "title": None}
    return chart


def ranked_bars(df: pd.DataFrame, label: str, value: str, flag: str, *, labels: tuple[str, str] = ("yes", "no"),
                colors: tuple[str, str] = (HIGHLIGHT, BASE), log: bool = False, hover: str | None = None,
                xlabel: str | None = None) -> Spec:
    """A ranked list as horizontal bars: one labelled line per row of `df` (`label` on the left, in the
    frame's order, first on top), the value written at the end of each bar, coloured by the boolean
    column `flag`. Its height grows with the rows (`ROW_PX` each): draw it in a scrolling container.

    `log`: a log value axis with a tick at every power of ten only (1, 10, 100 …, no "2 5" minor
    labels) and its floor just under 1, so a species with one recording still has a visible bar
    rather than one that starts at the axis edge and looks empty.
    """
    data = df.assign(**{label: df[label].astype(str), "group": np.where(df[flag].astype(bool), *labels)})
    present = [g for g in labels if (data["group"] == g).any()]
    top = max(float(df[value].max()) if len(df) else 1.0, 1.0)
    val = field(value, title=xlabel)
    if log:
        val["scale"], ticks = _log_scale(top)
        val["axis"] = {"values": ticks, "format": "~s"}
    else:
        val["scale"] = {"domain": [0, top * 1.12]}
    enc = {"y": categories(label, data[label], None, label_limit=LABEL_PX), "x": val}
    tooltip = [field(label, "nominal", "species"), field(value, title=value)] + (
        [field(hover, "nominal", hover)] if hover else [])
    bars = {"data": {"name": "rows"}, "mark": {"type": "bar", "size": max(ROW_PX - 6, 4)},
            "encoding": {**enc, "color": colour_by("group", present, [colors[labels.index(g)] for g in present]),
                         "tooltip": tooltip}}
    counts = {"data": {"name": "rows"}, "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 11},
              "encoding": {**enc, "text": field(value)}}
    return spec([bars, counts], {"rows": data}, height=70 + ROW_PX * max(len(df), 3))


def lines(df: pd.DataFrame, x: str, y: str, group: str | None = None, *, title: str | None = None,
          height: int = 300, xlabel: str | None = None, ylabel: str | None = None, markers: bool = True,
          names: dict | None = None, yrange: Sequence[float] | None = None,
          tooltip: Sequence[str] = ()) -> Spec:
    """One line per value of `group` (or a single line), points joined in the frame's order (not
    sorted by x: a precision–recall path turns back). `names` renames groups in the legend;
    `tooltip` adds columns to the hover text."""
    data = df.copy()
    data["series"] = [str((names or {}).get(g, g)) for g in data[group]] if group is not None else str(y)
    data["order"] = np.arange(len(data))
    series = list(dict.fromkeys(data["series"]))
    val = field(y, title=ylabel)
    if yrange is not None:
        val["scale"] = {"domain": [float(v) for v in yrange], "zero": False}
    tips = [field("series", "nominal", group or "series"), field(x, title=x), field(y, title=y, format=".4~f"),
            *(field(c, "nominal", c) for c in tooltip)]
    layer = {"data": {"name": "points"},
             "mark": {"type": "line", "strokeWidth": 2, **({"point": {"size": 36}} if markers else {})},
             "encoding": {"x": field(x, title=xlabel, scale={"zero": False}), "y": val, "order": {"field": "order"},
                          "color": colour_by("series", series, PALETTE), "tooltip": tips}}
    chart = spec([layer], {"points": data}, title=title, height=height)
    if group is None:
        layer["encoding"]["color"]["legend"] = None
    elif len(series) > 2:  # several long names: a legend row above would crowd the title
        chart["config"]["legend"] = {"orient": "bottom", "title": None}
    return chart


# ---- drawing -------------------------------------------------------------------------------------
def show(fig, key: str | None = None, geo: bool = False) -> None:
    """Draw a chart full width: a Vega-Lite spec (from this module), or a Plotly figure (the map,
    the spectrogram views) without Plotly's logo; `geo`: a map whose outlines come from the app's
    own topojson files (`geo_map.TOPOJSON_URL`) instead of plotly.js's default CDN."""
    if isinstance(fig, dict):
        # Streamlit fills in parts of a spec's nested dicts while sending it; the figures are shared
        # between sessions from a cache, so it gets its own copy (the DataFrames are only read).
        own = {k: (v if k == "datasets" else copy.deepcopy(v)) for k, v in fig.items()}
        if key is None:
            st.vega_lite_chart(own, width="stretch")
            return
        # A chart without selections gets neither an element id nor the "st-key-<key>" class that
        # pages and browser tests find elements by: its key travels in the spec's usermeta (ignored by
        # Vega-Lite) and names a container around it.
        own["usermeta"] = {**own.get("usermeta", {}), "key": key}
        with st.container(key=key):
            st.vega_lite_chart(own, width="stretch")
        return
    config = {"displaylogo": False}
    if geo:
        from .geo_map import TOPOJSON_URL

        config["topojsonURL"] = TOPOJSON_URL
    st.plotly_chart(fig, width="stretch", key=key, config=config)


def species_label(codes: Sequence[str], names: dict[str, str]) -> list[str]:
    """"code — common name" labels for pickers."""
    return [f"{c} — {names[c]}" if names.get(c) else c for c in codes]
