"""Helpers of the Training and Thresholds pages: where runs live, labels, and the Vega-Lite charts of
run curves and threshold analysis (built with `charts`).

The runs folder is `$BIRDCORE_RUNS`, else `<repo>/runs` (`runs_dir()`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import charts
from .charts import BASE, HIGHLIGHT, PALETTE, Spec, field, lines

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
# Material icons ship with Streamlit (emoji need a system font that headless browsers often lack).
STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
               "finished": ":material/check_circle:", "failed": ":material/error:", "stopped": ":material/stop_circle:"}
METRIC_LABELS = {"micro_f1": "micro F1", "macro_f1": "macro F1", "birdclef2022": "BirdCLEF 2022",
                 "cmap_pad5": "padded cmAP", "macro_auc": "macro ROC-AUC", "train_loss": "train loss",
                 "val_loss": "validation loss"}
# The per-class curves of the threshold page (columns of birdcore.evaluation.curves.threshold_curve).
CURVE_LABELS = {"f1": "F1", "birdclef2022": "½(TPR+TNR)", "precision": "precision", "recall": "recall"}


def runs_dir() -> Path:
    """The folder holding run folders: `$BIRDCORE_RUNS`, else `<repo>/runs` (may not exist yet)."""
    env = os.environ.get("BIRDCORE_RUNS", "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "runs"


def metric_label(name: str) -> str:
    """Display name of a metric key ("birdclef2022" → "BirdCLEF 2022")."""
    return METRIC_LABELS.get(name, name)


def epoch_axis(chart: Spec) -> Spec:
    """Whole epochs only on the x axis (a plain axis would put ticks at 1.2, 1.4 … for two epochs)."""
    return charts.x_axis(chart, tickMinStep=1, format="d")


# ---- figures -----------------------------------------------------------------------------------
def loss_figure(steps: pd.DataFrame, epochs: pd.DataFrame, steps_per_epoch: int | None, *,
                height: int = 300) -> Spec:
    """Training loss per logged step, and the per-epoch validation loss placed at each epoch's
    last step (when the steps per epoch are known).

    Both layers are always there (an empty one draws nothing), so while a run goes on only the data
    changes and the browser updates the chart in place instead of drawing it anew."""
    empty = pd.DataFrame({"step": pd.Series(dtype="int64"), "loss": pd.Series(dtype="float64"), "series": ""})
    train = steps[["step", "loss"]].assign(series="train (step)") if not steps.empty else empty
    val = empty
    if steps_per_epoch and not epochs.empty and "val_loss" in epochs:
        ep = epochs.dropna(subset=["val_loss"])
        val = pd.DataFrame({"step": ((ep["epoch"] + 1) * steps_per_epoch).astype("int64"),
                            "loss": ep["val_loss"].astype(float), "series": "validation (epoch)"})
    colour = charts.colour_by("series", ["train (step)", "validation (epoch)"], [BASE, HIGHLIGHT])
    tip = [field("series", "nominal", "series"), field("step", title="step"), field("loss", title="loss", format=".4f")]
    enc = {"x": field("step", title="step"), "y": field("loss", title="loss", scale={"zero": False}),
           "color": colour, "tooltip": tip}
    return charts.spec([{"data": {"name": "train"}, "mark": {"type": "line", "strokeWidth": 1.5}, "encoding": enc},
                        {"data": {"name": "validation"}, "mark": {"type": "line", "strokeWidth": 2,
                                                                  "point": {"size": 49}}, "encoding": enc}],
                       {"train": train.reset_index(drop=True), "validation": val.reset_index(drop=True)},
                       title="Loss", height=height)


def histogram_figure(hist: pd.DataFrame, threshold: float, *, height: int = 340) -> Spec:
    """Overlaid score histograms of a class's positive and negative rows (share of each group),
    with the threshold as a vertical line."""
    parts = [pd.DataFrame({"bin_start": hist["bin_start"], "bin_end": hist["bin_end"], "share": hist[share].fillna(0),
                           "rows": hist[count], "group": name})
             for share, count, name in (("neg_share", "negatives", "negatives"),
                                        ("pos_share", "positives", "positives"))]
    bins = pd.concat(parts, ignore_index=True)
    bars = {"data": {"name": "bins"}, "mark": {"type": "bar", "opacity": 0.6, "binSpacing": 0},
            "encoding": {"x": field("bin_start", title="score", bin="binned", scale={"domain": [0, 1]}),
                         "x2": {"field": "bin_end"},
                         "y": field("share", title="share of the group", axis={"format": ".0%"}, stack=None),
                         "color": charts.colour_by("group", ["negatives", "positives"], [BASE, HIGHLIGHT]),
                         "tooltip": [field("group", "nominal", "group"), field("bin_start", title="from", format=".3f"),
                                     field("rows", title="rows"), field("share", title="share", format=".0%")]}}
    return charts.spec([bars, charts.rule_at("threshold")], {"bins": bins, "threshold": charts.rule_data(threshold)},
                       title="Scores of positives vs negatives",
                       height=height)


def curve_figure(curve: pd.DataFrame, point: dict[str, float], metrics: Sequence[str], *,
                 height: int = 340) -> Spec:
    """Per-class metrics against the threshold; the current threshold as a line and markers."""
    names = [CURVE_LABELS.get(m, m) for m in metrics]
    long = pd.concat([pd.DataFrame({"threshold": curve["threshold"], "value": curve[m], "metric": n})
                      for m, n in zip(metrics, names)], ignore_index=True)
    here = pd.DataFrame([{"threshold": point["threshold"], "value": point[m], "metric": n}
                         for m, n in zip(metrics, names) if point.get(m) is not None and point[m] == point[m]],
                        columns=["threshold", "value", "metric"])
    enc = {"x": field("threshold", title="threshold", scale={"domain": [0, 1]}),
           "y": field("value", title=None, scale={"domain": [-0.02, 1.02]}),
           "color": charts.colour_by("metric", names, PALETTE),
           "tooltip": [field("metric", "nominal", "metric"), field("threshold", title="threshold", format=".3f"),
                       field("value", title="value", format=".3f")]}
    chart = charts.spec([{"data": {"name": "curves"}, "mark": {"type": "line", "strokeWidth": 2}, "encoding": enc},
                         {"data": {"name": "current"}, "mark": {"type": "point", "filled": True, "size": 81},
                          "encoding": enc},
                         charts.rule_at("threshold")],
                        {"curves": long, "current": here, "threshold": charts.rule_data(point["threshold"])},
                        title="Metrics vs threshold", height=height)
    chart["config"]["legend"] = {"orient": "bottom", "title": None}
    return chart


def pr_figure(pr: pd.DataFrame, point: dict[str, float], *, height: int = 340) -> Spec:
    """Precision–recall curve with the current operating point."""
    path = pr[["recall", "precision", "threshold"]].reset_index(drop=True).assign(order=lambda d: range(len(d)))
    here = pd.DataFrame([{"recall": point.get("recall"), "precision": point.get("precision")}]).dropna()
    unit = {"domain": [-0.02, 1.02]}
    x, y = field("recall", title="recall", scale=unit), field("precision", title="precision", scale=unit)
    curve = {"data": {"name": "pr"},
             "mark": {"type": "line", "color": BASE, "strokeWidth": 2, "interpolate": "step-after",
                      "point": {"size": 16, "color": BASE}},
             "encoding": {"x": x, "y": y, "order": {"field": "order"},
                          "tooltip": [field("threshold", title="threshold", format=".3f"),
                                      field("recall", title="recall", format=".2f"),
                                      field("precision", title="precision", format=".2f")]}}
    current = {"data": {"name": "current"}, "mark": {"type": "point", "shape": "cross", "color": HIGHLIGHT,
                                                      "filled": True, "size": 160},
               "encoding": {"x": x, "y": y}}
    return charts.spec([curve, current], {"pr": path, "current": here}, title="Precision–recall", height=height)


__all__ = ["runs_dir", "metric_label", "epoch_axis", "lines", "loss_figure", "histogram_figure",
           "curve_figure", "pr_figure", "PALETTE", "STATE_COLORS", "STATE_ICONS", "CURVE_LABELS"]
