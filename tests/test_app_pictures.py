"""What keeps Plotly off a page's first load: the picture charts (app/ui/pictures.py, PNGs whose bars
really have the values' heights) and the Plotly warm-up (app/ui/warmup.py; its browser test is in
tests/browser/test_plotly_warmup.py)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "app"))

from ui import palette, pictures, warmup  # noqa: E402


def _bar_heights(png: bytes, color: str) -> list[int]:
    """Height in pixels of each run of columns painted in `color` (one run per bar), left to right."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    target = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    painted = (np.abs(rgb - target).sum(axis=2) <= 6)
    per_column = painted.sum(axis=0)
    heights, run = [], []
    for h in per_column:
        if h:
            run.append(h)
        elif run:
            heights.append(int(np.median(run)))
            run = []
    if run:
        heights.append(int(np.median(run)))
    return heights


def test_bar_png_draws_each_bar_at_its_value_in_order():
    png = pictures.bar_png(["a", "b", "c", "d"], [10, 0, 40, 20], width_px=400, height_px=200, title="t")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (400, 200)
    heights = _bar_heights(png, palette.BASE)
    assert len(heights) == 3  # the zero bar paints nothing; the others in the given order
    assert heights[1] == pytest.approx(4 * heights[0], rel=0.08)
    assert heights[2] == pytest.approx(2 * heights[0], rel=0.08)


def test_bar_png_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 categories but 2 values"):
        pictures.bar_png(["a", "b", "c"], [1, 2])


def test_the_warmup_imports_streamlits_own_chart_chunks_vega_lite_first():
    import streamlit

    chunks = [warmup.chunk(p) for p in warmup.CHUNKS]
    static = Path(streamlit.__file__).parent / "static"
    assert all(c and (static / c).is_file() for c in chunks), chunks  # this Streamlit has each, once
    assert warmup.chunk("PlotlyChart.*.js") == chunks[-1] and "PlotlyChart." in chunks[-1]
    html = warmup.script(chunks)
    names = [c.rsplit("/", 1)[-1] for c in chunks]
    assert json.dumps(chunks) in html and json.dumps(names) in html  # beside the main script, else the base
    assert warmup.chunk("NoSuchChart.*.js") is None
