"""The Inspection page's Plotly-free views (app/ui/figures.py): the probability grid's Styler, the
grid's click → window, and the whole-recording spectrogram picture (size, bound lines, highlight,
time past the audio)."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from ui import figures  # noqa: E402

from birdcore.analysis.inspection import Spectrogram  # noqa: E402

FRAME, BOUND = (127, 219, 255), (200, 200, 200)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def spec(seconds: float, frames_per_s: int = 10, bins: int = 8) -> Spectrogram:
    """A spectrogram of `seconds` of audio whose every value is loud (so dimming is visible)."""
    n = int(seconds * frames_per_s)
    db = np.tile(np.linspace(-20.0, 0.0, bins)[:, None], (1, n)).astype(np.float32)
    return Spectrogram(db, np.arange(n) / frames_per_s, np.linspace(100, 8000, bins))


def test_picture_size_bounds_highlight_and_padding():
    # 10 s of audio scored as three 5-s windows: the last runs past the audio (zero-padded)
    pic = decode(figures.spectrogram_picture(spec(10.0), (0.0, 15.0), bounds=[5.0, 10.0, 15.0],
                                             selected=(5.0, 10.0), width=300, height=60))
    assert pic.shape == (60, 300, 3)
    assert (pic[:, 200] == BOUND).all() and (pic[:, 299] == BOUND).all()
    assert all((pic[:, x] == FRAME).all() for x in (100, 101, 198, 199))
    # the chosen window at full brightness, the first one dimmed to 40 %, past the audio black
    np.testing.assert_array_equal((pic[:, 150].astype(float) * 0.4).astype(np.uint8), pic[:, 50])
    assert pic[:, 150].max() > 200
    assert (pic[:, 210:298] == 0).all()
    # low frequencies at the bottom: the quietest bin (row 0 of db) is the darkest, in the last row
    assert pic[-1, 150].sum() < pic[0, 150].sum()


def test_a_thumbnail_has_its_fixed_size_and_low_frequencies_low():
    pic = decode(figures.thumbnail_png(spec(5.0), width=120, height=40))
    assert pic.shape == (40, 120, 3)  # whatever the spectrogram's own size (8 bins × 50 frames)
    # row 0 of db (the quietest, -20 dB) at the bottom: darker there than at the top (0 dB)
    assert pic[-1].astype(int).sum() < pic[0].astype(int).sum()


def test_one_window_clip_fills_the_picture():
    """A 3-s training clip is one 5-s window: the window spans the whole width, nothing dimmed."""
    pic = decode(figures.spectrogram_picture(spec(3.0), (0.0, 5.0), bounds=[5.0], selected=(0.0, 5.0),
                                             width=500, height=40))
    assert pic.shape == (40, 500, 3)
    assert (pic[:, [0, 1, 498, 499]] == np.array(FRAME, np.uint8)).all()
    assert pic[:, 2:298].sum(axis=2).min() > 0 and (pic[:, 302:498] == 0).all()  # 3 s of audio, then padding


def test_probability_grid_values_marks_and_colours():
    probs = pd.DataFrame({"start": [0.0, 5.0], "end": [5.0, 10.0], "a1": [0.0, 1.0], "b1": [0.5, np.nan]})
    truth = pd.DataFrame({"a1": [np.nan, 1.0], "b1": [1.0, 0.0]}, index=pd.Index([0.0, 5.0], name="start"))
    styler = figures.probability_grid(probs, ["a1", "b1"], truth, {"a1": "Alpha", "b1": "b1"})
    table = styler.data
    assert list(table.index) == ["a1 — Alpha", "b1"] and list(table.columns) == ["0–5 s", "5–10 s"]
    np.testing.assert_array_equal(table.to_numpy(), [[0.0, 1.0], [0.5, np.nan]])
    html = styler.to_html()
    cells = dict(re.findall(r'id="T_\w+_(row\d_col\d)"[^>]*>([^<]*)<', html))
    assert cells == {"row0_col0": "0.00", "row0_col1": "1.00 ✓", "row1_col0": "0.50 ✓", "row1_col1": ""}
    # vmin 0 / vmax 1: 0 is the palest blue, 1 the darkest, with light text on it
    colours = {k: (bg, fg) for k, bg, fg in re.findall(
        r"#T_\w+_(row\d_col\d)[^{]*\{\s*background-color: (#\w+);\s*color: (#\w+)", html)}
    assert colours["row0_col0"] == ("#f7fbff", "#000000") and colours["row0_col1"] == ("#08306b", "#f1f1f1")


def test_grid_click_and_headers():
    cols = ["0–5 s", "5–10 s", "10–15 s"]
    assert figures.grid_headers(cols, 1) == {"0–5 s": "0–5 s", "5–10 s": "▶ 5–10 s", "10–15 s": "10–15 s"}
    assert figures.clicked_window({"selection": {"rows": [], "columns": [], "cells": [(3, "10–15 s")]}},
                                  cols) == (2, "3|10–15 s")
    for state in (None, {}, {"selection": {"cells": []}}, {"selection": {"cells": [(0, "species")]}}):
        assert figures.clicked_window(state, cols) is None


@pytest.mark.parametrize("times,width,want", [([0.0, 2.5, 5.0, 7.0], 100, [0, 50, 100, 100])])
def test_time_columns(times, width, want):
    assert figures.time_columns(times, (0.0, 5.0), width).tolist() == want
