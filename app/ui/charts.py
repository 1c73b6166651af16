"""Small Plotly figure builders with the app's look, and `show` to draw one.

They take the plain DataFrames that `birdcore.analysis.eda` returns and only decide looks: colours,
axis titles, sizes. Built with `plotly.graph_objects` (not plotly.express), which is several
times cheaper per figure and keeps a rerun of a chart-heavy page well under a second.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

BASE = "#3a7ca5"     # every ordinary bar / point
HIGHLIGHT = "#e4572e"  # scored species, the thing to notice
MUTED = "#a0aab4"
HEAT = "Blues"


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


def box_stats(stats: pd.DataFrame, x: str = "species", *, title: str | None = None, height: int = 360,
              ylabel: str | None = None) -> go.Figure:
    """Box plot from precomputed statistics (columns min, q1, median, q3, max, mean), one box per row.

    Sending five numbers per box instead of every value keeps the chart light for large tables.
    """
    fig = go.Figure(go.Box(
        x=stats[x].astype(str).tolist(), q1=stats["q1"].tolist(), median=stats["median"].tolist(),
        q3=stats["q3"].tolist(), lowerfence=stats["min"].tolist(), upperfence=stats["max"].tolist(),
        mean=stats["mean"].tolist(), marker_color=BASE, boxpoints=False, name="",
    ))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=stats[x].astype(str).tolist())
    return _finish(fig, title, height, None, ylabel)


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
    fig.update_yaxes(autorange="reversed")
    return _finish(fig, title, height, None, None)


def geo_points(df: pd.DataFrame, flag: str, *, labels: tuple[str, str] = ("yes", "no"),
               colors: tuple[str, str] = (HIGHLIGHT, BASE), hover: str | None = None, outlines: bool = False,
               title: str | None = None, height: int = 420) -> go.Figure:
    """Points at `latitude`/`longitude` on a world map, coloured by the boolean column `flag`.

    No map tiles. By default only a graticule is drawn, which works offline. `outlines` adds land,
    coastlines and borders — plotly.js then downloads them from its CDN (cdn.plot.ly) and, offline,
    the whole chart stays blank; that is why it is opt-in.
    """
    fig = go.Figure()
    for value, label, color in ((False, labels[1], colors[1]), (True, labels[0], colors[0])):
        part = df[df[flag] == value]
        if part.empty:
            continue
        extra = dict(hovertext=part[hover].astype(str).tolist(), hoverinfo="text") if hover else {}
        fig.add_trace(go.Scattergeo(lat=part["latitude"].tolist(), lon=part["longitude"].tolist(), name=label,
                                    mode="markers", marker=dict(size=4, color=color, opacity=0.6), **extra))
    fig.update_geos(projection_type="natural earth", showframe=True, framecolor=MUTED, bgcolor="#f7f9fb",
                    showland=outlines, showcoastlines=outlines, showcountries=outlines, showocean=False,
                    showlakes=False, showrivers=False, landcolor="#eef1f4", countrycolor="#c8cfd6",
                    coastlinecolor="#9aa5b1", center=dict(lat=0, lon=0), projection_scale=1,
                    lonaxis=dict(range=[-180, 180], showgrid=True, dtick=30, gridcolor="#dde3e9"),
                    lataxis=dict(range=[-90, 90], showgrid=True, dtick=30, gridcolor="#dde3e9"))
    return _finish(fig, title, height, None, None)


def show(fig: go.Figure, key: str | None = None) -> None:
    """Draw a figure full width (no Plotly logo)."""
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})


def clicked_points(selection) -> list:
    """The points of a chart's selection state (`st.session_state[key]` of an
    `st.plotly_chart(..., on_select="rerun")`); [] when nothing is selected."""
    try:
        return list(selection["selection"]["points"])
    except (KeyError, TypeError):
        return []


def species_label(codes: Sequence[str], names: dict[str, str]) -> list[str]:
    """"code — common name" labels for pickers."""
    return [f"{c} — {names[c]}" if names.get(c) else c for c in codes]
