"""Plotly figures of audio and of a model's view of it: waveform, log-mel image, spectrogram with
window marks, species × window probabilities. Used by the Preview, Inspection and Annotation pages.

Each builder only decides looks; the numbers come from the engine (`birdcore.audio.display`,
`birdcore.analysis.inspection`, `birdcore.augment.preview`). Built with `plotly.graph_objects`,
like `charts`, and each in one constructor call where it can: the `update_*` chain costs ~10 ms
per figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from birdcore.audio.display import ENVELOPE_POINTS, envelope
from birdcore.audio.windows import WINDOW_S

from .charts import BASE, HIGHLIGHT

if TYPE_CHECKING:
    from birdcore.analysis.inspection import Spectrogram

# Preview: fixed side margins, wide enough for the axis labels and the spectrogram's colour bar, so
# that the waveform and the log-mel image below it share one time scale on screen.
PLOT_LEFT_PX, MEL_COLORBAR_PX = 64, 64
# Inspection: px for the y labels of both time charts (heatmap and spectrogram), so they line up.
TIME_LEFT_PX = 90


def hz_label(hz: float) -> str:
    """A short frequency label: "850", "1.2k"."""
    return f"{hz / 1000:.1f}k" if hz >= 1000 else f"{hz:.0f}"


def waveform_figure(y: np.ndarray, sr: int, offset: float, ymax: float, color: str,
                    points: int = ENVELOPE_POINTS) -> go.Figure:
    """The waveform as its min/max envelope in `points` buckets (a line through both), x = time in
    the recording (s) from `offset`, y within ±`ymax`."""
    t, v = envelope(y, sr, offset, points)
    n = len(y)
    return go.Figure(
        go.Scatter(x=t.astype(np.float32), y=v.astype(np.float32), mode="lines", line=dict(color=color, width=1),
                   hoverinfo="skip"),
        layout=dict(height=170, margin=dict(l=PLOT_LEFT_PX, r=MEL_COLORBAR_PX, t=10, b=10), showlegend=False,
                    xaxis=dict(title=dict(text="time (s)"), range=[offset, offset + n / sr]),
                    yaxis=dict(title=dict(text="amplitude"), range=[-ymax, ymax], zeroline=False)),
    )


def mel_figure(mel: np.ndarray, times: np.ndarray, freqs: np.ndarray, zrange: tuple[float, float]) -> go.Figure:
    """Log-mel image: x = frame times (s), y = mel bin centre frequencies (Hz), one row per bin.

    The y axis is categorical so every mel bin gets the same height (as the network sees the
    image); its ticks are the centre frequencies of a few bins.
    """
    labels = [f"{f:.0f}" for f in freqs]
    if len(set(labels)) < len(labels):
        labels = [f"{f:.1f}" for f in freqs]
    step = max(1, len(labels) // 8)
    ticks = list(range(0, len(labels) - step // 2, step)) + [len(labels) - 1]  # the top bin labelled too
    return go.Figure(
        go.Heatmap(z=np.asarray(mel, dtype=np.float32), x=times, y=labels, zmin=zrange[0], zmax=zrange[1],
                   colorscale="Viridis", colorbar=dict(thickness=10, len=0.9),
                   hovertemplate="%{x:.2f} s · %{y} Hz · %{z:.2f}<extra></extra>"),
        layout=dict(height=300, margin=dict(l=PLOT_LEFT_PX, r=MEL_COLORBAR_PX, t=10, b=10),
                    xaxis=dict(title=dict(text="time (s)")),
                    yaxis=dict(title=dict(text="frequency (Hz)"), type="category", tickmode="array",
                               tickvals=[labels[i] for i in ticks], ticktext=[hz_label(freqs[i]) for i in ticks])),
    )


def preview_figures(result, freqs: np.ndarray, offset: float) -> dict[str, tuple[go.Figure, go.Figure]]:
    """(waveform, log-mel) figures of the original ("orig") and the augmented ("aug") window of a
    `birdcore.augment.preview` result, on shared scales: one amplitude range, one colour range (so a
    gain shows as brightness). `freqs` = mel bin centres (Hz); times start at `offset` (s)."""
    sr = result.sample_rate
    times = offset + np.arange(result.original_mel.shape[1]) * result.hop_length / sr
    both = np.concatenate([result.original_mel.ravel(), result.augmented_mel.ravel()])
    zrange = (float(np.nanmin(both)), float(np.nanmax(both)))
    ymax = max(float(np.max(np.abs(result.original))), float(np.max(np.abs(result.augmented))), 1e-3) * 1.05
    return {key: (waveform_figure(wave, sr, offset, ymax, color), mel_figure(mel, times, freqs, zrange))
            for key, wave, mel, color in (("orig", result.original, result.original_mel, BASE),
                                          ("aug", result.augmented, result.augmented_mel, HIGHLIGHT))}


# Shapes are given to the layout in one list: `fig.add_vline`/`add_shape` re-validate the figure's
# shapes on every call (12 window bounds took 0.37 s of a page run).
def _vline(x: float, line: dict) -> dict:
    """A vertical line at `x` over the whole plot height (what `fig.add_vline` draws)."""
    return dict(type="line", xref="x", yref="y domain", x0=x, x1=x, y0=0, y1=1, line=line)


def _vrect(x0: float, x1: float, line: dict) -> dict:
    """A frame from `x0` to `x1` over the whole plot height (what `fig.add_vrect` draws)."""
    return dict(type="rect", xref="x", yref="y domain", x0=x0, x1=x1, y0=0, y1=1, line=line)


def spectrogram_figure(sp: Spectrogram, *, height: int = 320, left: int = TIME_LEFT_PX, db_decimals: int = 1,
                       bounds: Sequence[float] = (), selected: tuple[float, float] | None = None) -> go.Figure:
    """dB mel spectrogram (x = time in s, y = Hz), values rounded to `db_decimals`; dotted lines at
    the window `bounds` and the `selected` (start, end) window framed.

    The arrays go to Plotly as float32 numpy arrays, which it ships as binary typed arrays: as
    nested lists, Plotly validated and deep-copied every value in Python (2.0 s of the Inspection
    page's 3.4-s first run for a 60-s clip)."""
    fig = go.Figure(go.Heatmap(z=np.round(sp.db, db_decimals).astype(np.float32),
                               x=np.round(sp.times, 3).astype(np.float32),
                               y=np.round(sp.freqs, 1).astype(np.float32), colorscale="Magma",
                               colorbar=dict(title=dict(text="dB"), thickness=14),
                               hovertemplate=f"%{{x:.2f}} s, %{{y:.0f}} Hz: %{{z:.{db_decimals}f}} dB<extra></extra>"))
    shapes = [_vline(b, dict(color="white", width=1, dash="dot")) for b in bounds]
    if selected is not None:
        shapes.append(_vrect(selected[0], selected[1], dict(color="#7fdbff", width=3)))
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(title_text="time (s)")
    fig.update_yaxes(title_text="frequency (Hz)")
    fig.update_layout(height=height, margin=dict(l=left, r=10, t=10, b=10))
    return fig


def probability_heatmap(probs: pd.DataFrame, rows: list[str], truth: pd.DataFrame, selected: int,
                        names: dict[str, str]) -> go.Figure:
    """Species (`rows`) × window probabilities from a table with `start`, `end` and one column per
    species; cells `truth` says labelled present are outlined (the number stays readable); window
    `selected` framed.

    The heatmap's x are the window edges (n + 1 values), so even a one-window clip is drawn as wide
    as its window (Plotly draws a single centre as a 1-unit sliver). Every cell carries an
    invisible marker at its centre: heatmap traces do not report clicks, scatter points do
    (`st.plotly_chart(..., on_select="rerun")` then returns the clicked window's centre as x).
    """
    starts = probs["start"].astype(float).tolist()
    edges = starts + [starts[-1] + WINDOW_S] if starts else []
    centres = [s + WINDOW_S / 2 for s in starts]
    z = probs[rows].T.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(
        z=np.round(z, 4).tolist(), x=edges, y=rows, zmin=0, zmax=1, colorscale="Blues",
        text=[[f"{v:.2f}" if v >= 0.05 else "" for v in r] for r in np.nan_to_num(z)], texttemplate="%{text}",
        customdata=[[names.get(s, s)] * len(centres) for s in rows],
        hovertemplate="%{y} (%{customdata})<br>window %{x:.0f} s<br>p = %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text="p"), thickness=14), xgap=1, ygap=1))
    pos = [(c, s) for s in rows if s in truth.columns for c, t in zip(centres, truth[s].tolist()) if t == 1.0]
    row_of = {s: i for i, s in enumerate(rows)}
    # An outline per labelled cell; category axes take the row index as a number.
    shapes = [dict(type="rect", xref="x", yref="y", x0=c - WINDOW_S / 2 + 0.08, x1=c + WINDOW_S / 2 - 0.08,
                   y0=row_of[s] - 0.45, y1=row_of[s] + 0.45, line=dict(color=HIGHLIGHT, width=2.5),
                   name="labelled present") for c, s in pos]
    # The labelled cells as (invisible) points too: a legend entry, a hover text, and data to test.
    fig.add_trace(go.Scatter(x=[p[0] for p in pos], y=[p[1] for p in pos], mode="markers", name="labelled present",
                             marker=dict(symbol="square-open", size=14, color=HIGHLIGHT, line=dict(width=2.5),
                                         opacity=0),
                             showlegend=False, hovertemplate="%{y}: labelled present<extra></extra>"))
    if pos:  # the legend's sample: an outlined square (an invisible marker would show nothing)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="labelled present (outlined)",
                                 marker=dict(symbol="square-open", size=12, color=HIGHLIGHT, line=dict(width=2.5))))
    fig.add_trace(go.Scatter(x=[c for c in centres for _ in rows], y=[s for _ in centres for s in rows], mode="markers",
                             marker=dict(size=22, opacity=0), showlegend=False, hoverinfo="none", name="cells"))
    shapes.append(_vrect(selected * WINDOW_S, (selected + 1) * WINDOW_S, dict(color="black", width=2)))
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(title_text="time (s)", dtick=WINDOW_S, range=[0, edges[-1] if edges else WINDOW_S])
    fig.update_yaxes(type="category", autorange="reversed")
    # Same left margin as the spectrogram below, so the two time axes line up.
    fig.update_layout(height=min(140 + 26 * len(rows), 760), margin=dict(l=TIME_LEFT_PX, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
                      clickmode="event+select")
    return fig
