"""Shared AppTest helpers for the app page tests."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from streamlit.testing.v1 import AppTest


CHART_KINDS = ("plotly_chart", "vega_lite_chart")


def _key(element) -> str:
    # Streamlit suffixes a Plotly chart's element id with its key; a Vega-Lite chart without selections
    # has no id, and `charts.show` writes its key into the spec's usermeta.
    if element.proto.id:
        return element.proto.id.rsplit("-", 1)[-1]
    return json.loads(element.proto.spec).get("usermeta", {}).get("key", "")


def charts_with_key(at: AppTest, key: str) -> list:
    """The chart elements (Plotly or Vega-Lite) drawn with `key=key`."""
    return [c for kind in CHART_KINDS for c in at.get(kind) if _key(c) == key]


def chart_keys(at: AppTest) -> list[str]:
    """The keys of every chart (Plotly or Vega-Lite) on the page, sorted."""
    return sorted(_key(c) for kind in CHART_KINDS for c in at.get(kind))


def chart(at: AppTest, key: str) -> dict:
    """The Plotly figure (as JSON) drawn with st.plotly_chart(..., key=key); fails when absent."""
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert found, f"no Plotly chart {key!r}; have {chart_keys(at)}"
    return json.loads(found[0].proto.spec)


class Vega:
    """A Vega-Lite chart as the browser receives it: `spec` (the JSON Streamlit sends) and `data`
    (its named datasets, decoded from the Arrow bytes Streamlit sends, as DataFrames)."""

    def __init__(self, proto):
        import pyarrow as pa

        self.spec = json.loads(proto.spec)
        self.data = {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in proto.datasets}

    @property
    def layers(self) -> list[dict]:
        return self.spec.get("layer", [self.spec])

    def rows(self, name: str | None = None):
        """Dataset `name` (the only one when None)."""
        return self.data[name] if name is not None else next(iter(self.data.values()))

    def encoding(self, channel: str, layer: int = 0) -> dict:
        return self.layers[layer]["encoding"][channel]

    def series(self, x: str, y: str, by: str = "series") -> dict[str, dict[str, list]]:
        """Each value of column `by` (a line, a legend entry) over all datasets → its {"x": …, "y": …}
        values in the data's order."""
        out: dict[str, dict[str, list]] = {}
        for df in self.data.values():
            if by not in df or x not in df:
                continue
            for name, part in df.groupby(by, sort=False):
                found = out.setdefault(str(name), {"x": [], "y": []})
                found["x"] += part[x].tolist()
                found["y"] += part[y].tolist()
        return out

    def rule_x(self) -> list[float]:
        """Where the chart's vertical rules (threshold lines) stand."""
        return [x for layer in self.layers if layer.get("mark", {}).get("type") == "rule"
                for x in self.rows(layer["data"]["name"])[layer["encoding"]["x"]["field"]]]


def vega(at: AppTest, key: str) -> Vega:
    """The Vega-Lite chart drawn with st.vega_lite_chart(..., key=key); fails when absent."""
    found = [c for c in at.get("vega_lite_chart") if _key(c) == key]
    assert found, f"no Vega-Lite chart {key!r}; have {chart_keys(at)}"
    return Vega(found[0].proto)


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
