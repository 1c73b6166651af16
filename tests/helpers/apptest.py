"""Shared AppTest helpers for the app page tests."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from streamlit.testing.v1 import AppTest


def charts_with_key(at: AppTest, key: str) -> list:
    """The st.plotly_chart elements drawn with `key=key` (Streamlit suffixes the element id with it)."""
    return [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]


def chart(at: AppTest, key: str) -> dict:
    """The Plotly figure (as JSON) drawn with st.plotly_chart(..., key=key); fails when absent."""
    found = charts_with_key(at, key)
    assert found, f"no chart {key!r}; have {[c.proto.id.rsplit('-', 1)[-1] for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


def plotly_array(value) -> np.ndarray:
    """A Plotly JSON array as numpy: a plain list, or a typed array {"dtype", "bdata", "shape"} (how
    Plotly ships numpy arrays)."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            out = out.reshape([int(s) for s in str(value["shape"]).split(",")])
        return out
    return np.asarray(value)


def start_page(script: Path, timeout: float, query_params: dict | None = None, **state) -> AppTest:
    """Run page `script` once with `state` in its session state and `query_params` in its address;
    fails when the run raised."""
    at = AppTest.from_file(str(script), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    for k, v in (query_params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def app_on(data: Path, tmp_path: Path, monkeypatch) -> Path:
    """Point the app at dataset `data` with an empty runs folder and settings home of this test
    (`BIRDCORE_DATA`, `BIRDCORE_RUNS`, `BIRDCORE_HOME`); returns the runs folder."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setenv("BIRDCORE_DATA", str(data))
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    return runs


def texts(elements) -> str:
    """The values of AppTest elements (errors, captions, …) joined into one searchable string."""
    return " | ".join(str(e.value) for e in elements)
