"""The app's Vega-Lite chart builders (app/ui/charts.py, app/ui/runs.py): every spec is valid Vega-Lite
(checked against the schema that Altair, a Streamlit dependency, ships), draws the rows it is given in
their order, and keeps its data out of the spec so that a growing chart is updated in place."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "app"))

from ui import charts, runs  # noqa: E402


def validate(spec: dict) -> dict:
    """The spec as the browser gets it (datasets as rows), validated against Vega-Lite's JSON schema."""
    alt = pytest.importorskip("altair")
    as_sent = {k: v for k, v in spec.items() if k != "datasets"}
    as_sent["datasets"] = {k: json.loads(v.to_json(orient="records")) for k, v in spec["datasets"].items()}
    (alt.LayerChart if "layer" in as_sent else alt.Chart).from_dict(as_sent)  # raises on an invalid spec
    return as_sent


def shape(spec: dict) -> str:
    """The spec without its data: what decides whether the browser redraws the chart or only updates it."""
    return json.dumps({k: v for k, v in spec.items() if k != "datasets"}, sort_keys=True)


COUNTS = pd.DataFrame({"species": ["b", "a", "c"], "n": [30, 20, 1], "scored": [True, False, True],
                       "line": ["#1 b — Bee", "#2 a — Ay", "#3 c — Sea"], "note": ["x", "y", "z"]})


def test_a_bar_chart_keeps_the_frames_order_and_values():
    spec = charts.bar(COUNTS, "species", "n", title="t", hover="note", xlabel="species", ylabel="recordings")
    validate(spec)
    enc = spec["layer"][0]["encoding"]
    assert enc["x"]["sort"] == ["b", "a", "c"]  # the frame's order, not Vega-Lite's alphabetical one
    assert spec["datasets"]["bars"]["n"].tolist() == [30, 20, 1]
    assert {"field": "note", "type": "nominal", "title": "note"} in enc["tooltip"]
    horizontal = charts.bar(COUNTS, "species", "n", horizontal=True)
    assert horizontal["layer"][0]["encoding"]["y"]["field"] == "species" and horizontal["height"] == 120 + 26 * 3


def test_the_ranked_list_labels_every_line_and_reads_on_a_log_axis():
    spec = charts.ranked_bars(COUNTS, "line", "n", "scored", labels=("scored", "not scored"), log=True)
    validate(spec)
    bars, counts = spec["layer"]
    assert bars["encoding"]["y"]["sort"] == COUNTS["line"].tolist()  # first row on top
    assert bars["encoding"]["y"]["axis"]["labelOverlap"] is False  # no line's name dropped when crowded
    assert spec["datasets"]["rows"]["group"].tolist() == ["scored", "not scored", "scored"]
    x = bars["encoding"]["x"]
    assert x["scale"]["type"] == "log" and x["axis"]["values"] == [1, 10]  # powers of ten only
    assert 0.5 < x["scale"]["domain"][0] < 1  # one recording is a visible bar, not an empty row
    assert counts["mark"]["type"] == "text" and counts["encoding"]["text"]["field"] == "n"  # the count at the bar's end
    assert spec["height"] == 70 + charts.ROW_PX * 3
    only_scored = charts.ranked_bars(COUNTS[COUNTS["scored"]], "line", "n", "scored", labels=("scored", "not scored"))
    assert only_scored["layer"][0]["encoding"]["color"]["scale"]["domain"] == ["scored"]  # no empty legend entry


def test_box_heatmap_and_histogram_specs_carry_their_numbers():
    stats = pd.DataFrame({"species": ["a", "b"], "label": ["a — Ay", "b — Bee"], "min": [1, 2], "q1": [2, 3],
                          "median": [3, 3.5], "q3": [4, 4], "max": [5, 5], "mean": [3.1, 3.4]})
    box = charts.box_stats(stats, horizontal=True, labels="label", ylabel="rating")
    validate(box)
    marks = [layer["mark"]["type"] for layer in box["layer"]]
    assert marks == ["rule", "bar", "tick", "point"]  # whiskers, the box, its median, its mean
    assert box["layer"][1]["encoding"]["x"]["field"] == "q1" and box["layer"][1]["encoding"]["x2"]["field"] == "q3"
    assert box["layer"][0]["encoding"]["y"]["sort"] == ["a — Ay", "b — Bee"]

    matrix = pd.DataFrame([[0, 4], [4, 9]], index=["a", "b"], columns=["a", "b"])
    heat = charts.heatmap(matrix, title="Top 2", colorbar_title="recordings")
    validate(heat)
    cells = heat["datasets"]["cells"]
    assert cells.pivot(index="row", columns="column", values="value").equals(matrix.rename_axis(index="row",
                                                                                               columns="column"))
    assert heat["layer"][1]["transform"] == [{"filter": "datum.value > 0"}]  # zeros left blank

    bins = pd.DataFrame({"start": [0.0, 1.0], "end": [1.0, 2.0], "n": [3, 4]})
    hist = charts.histogram_bars(bins, "start", "end", "n")
    validate(hist)
    x = hist["layer"][0]["encoding"]["x"]
    assert x["bin"] == "binned" and hist["layer"][0]["encoding"]["x2"]["field"] == "end"  # bars upright, bin wide


def test_grouped_bars_and_lines():
    rates = pd.DataFrame({"species": ["a", "b"], "rate": [0.5, 0.25], "labelled_rate": [0.4, 0.3]})
    grouped = charts.grouped_bar(rates, "species", [("rate", "predicted", "#000000"),
                                                    ("labelled_rate", "labelled", "#999999"),
                                                    ("absent", "never drawn", "#ff0000")], percent=True)
    validate(grouped)
    rows = grouped["datasets"]["bars"]
    assert rows.groupby("series")["value"].sum().to_dict() == {"labelled": pytest.approx(0.7), "predicted": 0.75}
    assert grouped["layer"][0]["encoding"]["xOffset"]["sort"] == ["predicted", "labelled"]  # a missing column left out

    df = pd.DataFrame({"x": [1, 2, 3, 1, 2], "y": [0.1, 0.2, 0.3, 0.5, 0.4], "g": ["r1", "r1", "r1", "r2", "r2"]})
    spec = runs.epoch_axis(charts.lines(df, "x", "y", "g", names={"r1": "first"}, yrange=(0, 1)))
    validate(spec)
    data = spec["datasets"]["points"]
    assert data["series"].tolist() == ["first"] * 3 + ["r2"] * 2 and data["order"].tolist() == [0, 1, 2, 3, 4]
    enc = spec["layer"][0]["encoding"]
    assert enc["order"] == {"field": "order"}  # joined in the frame's order, not sorted by x
    assert enc["x"]["axis"] == {"tickMinStep": 1, "format": "d"}  # whole epochs only
    assert enc["y"]["scale"]["domain"] == [0.0, 1.0]


def test_a_growing_loss_chart_keeps_its_spec_so_the_browser_updates_it_in_place():
    def loss(n_steps: int, n_epochs: int) -> dict:
        steps = pd.DataFrame({"step": np.arange(1, n_steps + 1), "loss": np.linspace(1, 0.5, n_steps)})
        epochs = pd.DataFrame({"epoch": np.arange(n_epochs), "val_loss": np.linspace(0.9, 0.6, n_epochs)})
        return runs.loss_figure(steps, epochs, 10)

    early, later = loss(3, 0), loss(25, 2)
    validate(early), validate(later)
    assert shape(early) == shape(later)  # the same spec: only the data changed
    assert later["datasets"]["validation"]["step"].tolist() == [10, 20]  # at each epoch's last step
    assert later["datasets"]["validation"]["loss"].tolist() == [0.9, 0.6]
    assert early["datasets"]["validation"].empty and len(later["datasets"]["train"]) == 25


def test_threshold_charts_follow_the_threshold():
    hist = pd.DataFrame({"bin_start": [0.0, 0.5], "bin_end": [0.5, 1.0], "neg_share": [0.75, 0.25],
                         "pos_share": [0.0, 1.0], "negatives": [3, 1], "positives": [0, 2]})
    spec = runs.histogram_figure(hist, 0.3)
    validate(spec)
    rows = spec["datasets"]["bins"]
    assert rows.groupby("group")["rows"].sum().to_dict() == {"negatives": 4, "positives": 2}
    assert spec["layer"][1]["mark"]["type"] == "rule" and spec["datasets"]["threshold"]["x"].tolist() == [0.3]
    assert shape(spec) == shape(runs.histogram_figure(hist, 0.7))  # a moved threshold is new data, same spec

    curve = pd.DataFrame({"threshold": [0.0, 0.5, 1.0], "f1": [0.2, 0.8, 0.0], "precision": [0.1, 0.9, np.nan]})
    point = {"threshold": 0.5, "f1": 0.8, "precision": np.nan}
    spec = runs.curve_figure(curve, point, ["f1", "precision"])
    validate(spec)
    assert spec["datasets"]["current"].to_dict("records") == [{"threshold": 0.5, "value": 0.8, "metric": "F1"}]
    assert spec["layer"][2]["mark"]["type"] == "rule" and spec["datasets"]["threshold"]["x"].tolist() == [0.5]

    pr = pd.DataFrame({"recall": [1.0, 0.5, 0.5, 0.0], "precision": [0.4, 0.6, 0.8, 1.0],
                       "threshold": [0.1, 0.4, 0.6, 0.9]})
    spec = runs.pr_figure(pr, {"recall": 0.5, "precision": 0.6})
    validate(spec)
    assert spec["datasets"]["pr"]["order"].tolist() == [0, 1, 2, 3]  # the path turns back on itself: keep its order
    assert spec["layer"][0]["mark"]["interpolate"] == "step-after"
    assert len(runs.pr_figure(pr, {"recall": np.nan, "precision": np.nan})["datasets"]["current"]) == 0


def test_show_draws_a_copy_and_names_the_chart(monkeypatch):
    drawn, boxes = [], []
    monkeypatch.setattr(charts.st, "vega_lite_chart", lambda spec, **kw: drawn.append((spec, kw)))

    class Box:
        def __init__(self, key):
            boxes.append(key)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(charts.st, "container", lambda key=None: Box(key))
    spec = charts.bar(COUNTS, "species", "n")
    before = json.dumps({k: v for k, v in spec.items() if k != "datasets"}, sort_keys=True)
    charts.show(spec, key="k1")
    (sent, kw), = drawn
    assert boxes == ["k1"] and sent["usermeta"] == {"key": "k1"} and kw == {"width": "stretch"}
    sent["layer"][0]["encoding"]["x"]["title"] = "changed by Streamlit"
    assert shape(spec) == before and "usermeta" not in spec  # the cached spec is untouched
    assert sent["datasets"]["bars"] is spec["datasets"]["bars"]  # the data is shared, only read
