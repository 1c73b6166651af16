"""Figures of audio and of a model's view of it: waveform, log-mel image, spectrogram with window
marks (Plotly), and, for the Inspection page, the species × window probabilities as a styled
table and the whole recording's spectrogram as a picture. Used by the Preview, Inspection and
Annotation pages.

Each builder only decides looks; the numbers come from the engine (`birdcore.audio.display`,
`birdcore.analysis.inspection`, `birdcore.augment.preview`). Plotly figures (the zoomable views with
a dB readout) are built with `plotly.graph_objects`, each in one constructor call where it can: the
`update_*` chain costs ~10 ms per figure. The Inspection page shows no Plotly chart at all: the
browser loads Plotly's 4.7-MB script only for a page that has one (~1.7 s on 2 cores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from birdcore.audio.display import ENVELOPE_POINTS, envelope, image_rgb

from .charts import BASE, HIGHLIGHT

if TYPE_CHECKING:
    from birdcore.analysis.inspection import Spectrogram

# Preview: fixed side margins, wide enough for the axis labels and the spectrogram's colour bar, so
# that the waveform and the log-mel image below it share one time scale on screen.
PLOT_LEFT_PX, MEL_COLORBAR_PX = 64, 64
# `spectrogram_figure`'s default left margin: room for its frequency labels.
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


CHECK = "✓"       # appended to a grid cell that is labelled present
SELECTED = "▶ "   # put before the chosen window's column header


def window_labels(starts: Sequence[float], ends: Sequence[float]) -> list[str]:
    """Window names as the page shows them: "0–5 s", "5–10 s", …"""
    return [f"{float(a):g}–{float(b):g} s" for a, b in zip(starts, ends)]


def species_labels(rows: Sequence[str], names: dict[str, str]) -> list[str]:
    """"code — common name" row labels (the code alone when the name is unknown)."""
    return [f"{c} — {names[c]}" if names.get(c) and names[c] != c else c for c in rows]


def probability_grid(probs: pd.DataFrame, rows: list[str], truth: pd.DataFrame, names: dict[str, str]):
    """Species (`rows`, in that order) × window probabilities as a pandas Styler for `st.dataframe`.

    `probs` has `start`, `end` and one column per species (one row per window); `truth` is
    `inspection.truth_matrix`'s (index = window start, 1.0 = labelled present). The table keeps
    the probabilities as numbers (index = "code — name", columns = `window_labels`); the Styler
    shows them with 2 decimals, "✓" after a labelled-present one, on a white-to-blue background
    over [0, 1] (text turns light on dark cells). A mark in the text, not a border: Streamlit's
    grid draws a cell's background and text colour but no CSS border.
    """
    cols = window_labels(probs["start"], probs["end"])
    table = pd.DataFrame(probs[rows].to_numpy(dtype=float).T, columns=cols,
                         index=pd.Index(species_labels(rows, names), name="species"))
    styler = table.style.format("{:.2f}", na_rep="").background_gradient(cmap="Blues", vmin=0.0, vmax=1.0, axis=None)
    present = truth.reindex(index=probs["start"].astype(float).tolist(), columns=rows).to_numpy().T == 1.0
    # A Styler formats label subsets, not a mask: one call per species with labelled windows (a few,
    # where a call per cell or per window cost ~3 ms each, 0.4 s for a long recording).
    for label, hits in zip(table.index, present):
        if hits.any():
            styler.format(f"{{:.2f}} {CHECK}", subset=pd.IndexSlice[[label], [c for c, h in zip(cols, hits) if h]],
                          na_rep=CHECK)
    return styler


def grid_headers(columns: Sequence[str], selected: int) -> dict[str, str]:
    """Column name → header shown: the `selected` window's marked with "▶ ". Headers, not names,
    change, so a clicked cell's column name (what the selection state holds) stays a window label."""
    return {c: (SELECTED + c if j == selected else c) for j, c in enumerate(columns)}


def clicked_window(selection, columns: Sequence[str]) -> tuple[int, str] | None:
    """The (window index, cell) of an `st.dataframe(..., selection_mode="single-cell")` state
    (`st.session_state[key]`) when its selected cell is a window's; None otherwise (nothing
    selected, or a species-name cell)."""
    try:
        cells = list(selection["selection"]["cells"])
    except (KeyError, TypeError):
        return None
    if not cells:
        return None
    row, col = cells[0]
    return (list(columns).index(col), f"{row}|{col}") if col in columns else None


DIM = 0.4                 # brightness left to the windows around the chosen one
BOUND_RGB = (200, 200, 200)  # thin line at each window bound
FRAME_RGB = (127, 219, 255)  # the chosen window's edges (#7fdbff, as the Plotly spectrogram's frame)


def time_columns(times: Sequence[float], span: tuple[float, float], width: int) -> np.ndarray:
    """The picture column (0 … `width`) of each time in s, `span` = (start, end) drawn across `width`."""
    t0, t1 = span
    return np.clip(np.round((np.asarray(times, dtype=float) - t0) / max(t1 - t0, 1e-9) * width), 0, width).astype(int)


def thumbnail_png(sp: Spectrogram, width: int = 384, height: int = 150) -> bytes:
    """A window's spectrogram as a small picture of a fixed size (magma, low frequencies low), for lists
    of windows (Search's hits and review queue). A few kB each; a Plotly heatmap per row made the page
    load Plotly's script and draw up to ten charts after each search."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_rgb(sp.db, cmap="magma")).resize((width, height), Image.Resampling.BILINEAR).save(
        buf, format="PNG")
    return buf.getvalue()


def spectrogram_picture(sp: Spectrogram, span: tuple[float, float], *, bounds: Sequence[float] = (),
                        selected: tuple[float, float] | None = None, width: int = 1200,
                        height: int = 240) -> bytes:
    """The dB mel spectrogram `sp` as a `width` × `height` PNG (magma, low frequencies at the
    bottom; each mel bin the same height) covering `span` = (start, end) s, whatever its length:
    a 5-s clip fills the width like a 10-min recording. Time past the audio's end (a last window
    that is zero-padded when scored) stays black.

    A 1-px grey line at each window bound in `bounds` (s); the `selected` (start, end) window at full
    brightness between 2-px light-blue edges, the rest dimmed. Colours come from
    `birdcore.audio.display.image_rgb`, as the window players' pictures; a picture is light to send
    and to draw where a Plotly heatmap would need Plotly's script in the browser.
    """
    from PIL import Image

    rgb = image_rgb(sp.db, cmap="magma")
    times = np.asarray(sp.times, dtype=float)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    # Nearest frame for each picture column's centre time; columns past the last frame are black.
    t = span[0] + (np.arange(width) + 0.5) / width * (span[1] - span[0])
    frame = np.searchsorted(times, t, side="right") - 1
    inside = (frame >= 0) & (t < times[-1] + step) if len(times) else np.zeros(width, bool)
    rows = (np.arange(height) * rgb.shape[0] // height)  # nearest mel bin per picture row
    out = np.zeros((height, width, 3), np.uint8)
    out[:, inside] = rgb[rows][:, frame[inside]]
    if selected is not None:
        a, b = time_columns(selected, span, width)
        keep = np.zeros(width, bool)
        keep[a:b] = True
        out[:, ~keep] = (out[:, ~keep] * DIM).astype(np.uint8)
    for x in time_columns(bounds, span, width):
        out[:, min(x, width - 1)] = BOUND_RGB
    if selected is not None and b > a:
        for x in (a, a + 1, b - 2, b - 1):
            out[:, min(max(x, 0), width - 1)] = FRAME_RGB
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")
    return buf.getvalue()
