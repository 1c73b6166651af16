"""Decoded audio made ready to show or play: WAV bytes at the true level, a light waveform envelope,
a display level in dBFS.

For anything that shows a signal to a person — the app's Preview page, a notebook, a report — not
for training: nothing here changes what a model sees.
"""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf

from birdcore.audio.io import audio_stats

ENVELOPE_POINTS = 1500  # min/max pairs per waveform: enough for the eye, light to send to a browser
SILENCE_DBFS = -120.0   # what `level_dbfs` shows for digital silence instead of -inf


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """`y` as a 16-bit PCM WAV file in memory, at its true level.

    Samples beyond full scale are clipped to [-1, 1]; nothing is normalised, so a quiet signal
    stays quiet (a player given a float array, e.g. `st.audio`, scales it to full scale and hides
    the level — a gain augmentation would become inaudible).
    """
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(y), -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def envelope(y: np.ndarray, sr: int, offset: float = 0.0,
             points: int = ENVELOPE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, values) of a waveform decimated for drawing as one line.

    Up to `points` samples: the signal unchanged, at its sample times. Longer: the samples are cut
    into `points` (or fewer) buckets of k = ceil(len / points) samples (the last one padded with
    its final sample) and each bucket gives two values, its min then its max, both at the bucket's
    centre time — a line through them shows the signal's full extent, peaks included, at a cost
    independent of the length. Times start at `offset` (the window's start in the recording).
    """
    y = np.asarray(y)
    n = len(y)
    k = max(1, math.ceil(n / max(1, points)))
    if k == 1:
        return offset + np.arange(n) / sr, y
    rows = math.ceil(n / k)
    buckets = np.pad(y, (0, rows * k - n), mode="edge").reshape(rows, k)
    centre = offset + (np.arange(rows) * k + k / 2) / sr
    return np.repeat(centre, 2), np.stack([buckets.min(axis=1), buckets.max(axis=1)], axis=1).ravel()


def level_dbfs(y: np.ndarray, floor: float = SILENCE_DBFS) -> float:
    """RMS level of `y` in dBFS for display: never below `floor` (silence shows as -120, not -inf)."""
    return max(audio_stats(y).rms_dbfs, floor)


def image_rgb(values: np.ndarray, vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
              flip: bool = True) -> np.ndarray:
    """A 2-D array as an RGB uint8 picture (rows × columns × 3), one pixel per value, coloured by
    the Matplotlib colormap `cmap` over [vmin, vmax] (default: the array's range; NaN drawn at vmin).
    `flip` puts row 0 at the bottom, low frequencies low. For callers that draw on the picture
    before encoding it; `image_png` encodes it as is."""
    from matplotlib import colormaps  # matplotlib comes with noisereduce; imported only when drawing

    z = np.asarray(values, dtype=np.float32)
    lo = float(np.nanmin(z)) if vmin is None else float(vmin)
    hi = float(np.nanmax(z)) if vmax is None else float(vmax)
    scaled = np.nan_to_num((z - lo) / max(hi - lo, 1e-9), nan=0.0).clip(0.0, 1.0)
    rgb = (colormaps[cmap](scaled)[..., :3] * 255).astype(np.uint8)
    return rgb[::-1] if flip else rgb


def image_png(values: np.ndarray, vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
              flip: bool = True) -> bytes:
    """`image_rgb` of a 2-D array (e.g. a spectrogram: rows = frequency bins, columns = frames) as
    PNG bytes.

    For players that draw a moving cursor over the picture in the browser: an image is a few kB
    where the same spectrogram as a Plotly heatmap is hundreds.
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image_rgb(values, vmin, vmax, cmap, flip)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
