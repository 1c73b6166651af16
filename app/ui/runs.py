"""Helpers of the Training and Thresholds pages: where runs live, labels, and the Plotly figures of
run curves and threshold analysis.

The runs folder is `$BIRDCORE_RUNS`, else `<repo>/runs` (`runs_dir()`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from .charts import BASE, HIGHLIGHT, _finish

REPO_ROOT = Path(__file__).resolve().parents[2]
# One colour per line when several runs or metrics share a chart (colour-blind-safe set).
PALETTE = ("#3a7ca5", "#e4572e", "#2e933c", "#8e5ea2", "#f2a541", "#17becf", "#7f7f7f", "#bcbd22")
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
# Material icons ship with Streamlit (emoji need a system font that headless browsers often lack).
STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
               "finished": ":material/check_circle:", "failed": ":material/error:", "stopped": ":material/stop_circle:"}
METRIC_LABELS = {"micro_f1": "micro F1", "macro_f1": "macro F1", "birdclef2022": "BirdCLEF 2022",
                 "cmap_pad5": "padded cmAP", "macro_auc": "macro ROC-AUC", "train_loss": "train loss",
                 "val_loss": "validation loss"}
# The per-class curves of the threshold page (columns of birdcore.evaluation.curves.threshold_curve).
CURVE_LABELS = {"f1": "F1", "birdclef2022": "½(TPR+TNR)", "precision": "precision", "recall": "recall"}
# Below the x axis title, pinned to the figure's bottom edge (room made with a larger bottom margin).
LEGEND_BELOW = dict(orientation="h", yref="container", y=0.0, yanchor="bottom", xanchor="left", x=0.0)
LEGEND_MARGIN = 100


def runs_dir() -> Path:
    """The folder holding run folders: `$BIRDCORE_RUNS`, else `<repo>/runs` (may not exist yet)."""
    env = os.environ.get("BIRDCORE_RUNS", "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "runs"


def metric_label(name: str) -> str:
    """Display name of a metric key ("birdclef2022" → "BirdCLEF 2022")."""
    return METRIC_LABELS.get(name, name)


def epoch_axis(fig: go.Figure) -> go.Figure:
    """Whole epochs only on the x axis (Plotly would put ticks at 1.2, 1.4 … for two epochs)."""
    fig.update_xaxes(tickmode="linear", tick0=1, dtick=1, tickformat="d")
    return fig


# ---- figures -----------------------------------------------------------------------------------
def lines(df: pd.DataFrame, x: str, y: str, group: str | None = None, *, title: str | None = None,
          height: int = 300, xlabel: str | None = None, ylabel: str | None = None, markers: bool = True,
          names: dict[str, str] | None = None, yrange: Sequence[float] | None = None) -> go.Figure:
    """One line per value of `group` (or a single line), points in the frame's order."""
    fig = go.Figure()
    groups = [(None, df)] if group is None else list(df.groupby(group, sort=False))
    for i, (key, part) in enumerate(groups):
        name = (names or {}).get(key, key) if key is not None else y
        fig.add_trace(go.Scatter(x=part[x].tolist(), y=part[y].tolist(), name=str(name),
                                 mode="lines+markers" if markers else "lines",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2), marker=dict(size=6)))
    if yrange is not None:
        fig.update_yaxes(range=list(yrange))
    fig.update_layout(showlegend=group is not None)
    fig = _finish(fig, title, height, xlabel, ylabel)
    if group is not None and len(groups) > 2:  # several long names: a legend row above would hit the title
        fig.update_layout(legend=LEGEND_BELOW, margin=dict(b=LEGEND_MARGIN))
    return fig


def loss_figure(steps: pd.DataFrame, epochs: pd.DataFrame, steps_per_epoch: int | None, *,
                height: int = 300) -> go.Figure:
    """Training loss per logged step, and the per-epoch validation loss placed at each epoch's
    last step (when the steps per epoch are known)."""
    fig = go.Figure()
    if not steps.empty:
        fig.add_trace(go.Scatter(x=steps["step"].tolist(), y=steps["loss"].tolist(), name="train (step)",
                                 mode="lines", line=dict(color=BASE, width=1.5)))
    if steps_per_epoch and not epochs.empty and "val_loss" in epochs:
        ep = epochs.dropna(subset=["val_loss"])
        fig.add_trace(go.Scatter(x=((ep["epoch"] + 1) * steps_per_epoch).tolist(), y=ep["val_loss"].tolist(),
                                 name="validation (epoch)", mode="lines+markers",
                                 line=dict(color=HIGHLIGHT, width=2), marker=dict(size=7)))
    return _finish(fig, "Loss", height, "step", "loss")


def histogram_figure(hist: pd.DataFrame, threshold: float, *, height: int = 340) -> go.Figure:
    """Overlaid score histograms of a class's positive and negative rows (share of each group),
    with the threshold as a vertical line."""
    width = (hist["bin_end"] - hist["bin_start"]).tolist()
    mid = ((hist["bin_start"] + hist["bin_end"]) / 2).tolist()
    fig = go.Figure()
    for share, count, name, color in (("neg_share", "negatives", "negatives", BASE),
                                      ("pos_share", "positives", "positives", HIGHLIGHT)):
        fig.add_trace(go.Bar(x=mid, y=hist[share].fillna(0).tolist(), width=width, name=name, marker_color=color,
                             opacity=0.6, customdata=hist[count].tolist(),
                             hovertemplate="%{x:.3f}: %{customdata} rows (%{y:.0%})<extra>" + name + "</extra>"))
    fig.update_layout(barmode="overlay")
    fig.add_vline(x=threshold, line=dict(color="black", dash="dash", width=1.5))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(tickformat=".0%")
    return _finish(fig, "Scores of positives vs negatives", height, "score", "share of the group")


def curve_figure(curve: pd.DataFrame, point: dict[str, float], metrics: Sequence[str], *,
                 height: int = 340) -> go.Figure:
    """Per-class metrics against the threshold; the current threshold as a line and markers."""
    fig = go.Figure()
    for i, m in enumerate(metrics):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=curve["threshold"].tolist(), y=curve[m].tolist(), name=CURVE_LABELS.get(m, m),
                                 mode="lines", line=dict(color=color, width=2)))
        if point.get(m) is not None and point[m] == point[m]:  # skip NaN
            fig.add_trace(go.Scatter(x=[point["threshold"]], y=[point[m]], mode="markers", showlegend=False,
                                     marker=dict(color=color, size=9), hoverinfo="skip"))
    fig.add_vline(x=point["threshold"], line=dict(color="black", dash="dash", width=1.5))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[-0.02, 1.02])
    fig = _finish(fig, "Metrics vs threshold", height, "threshold", None)
    fig.update_layout(legend=LEGEND_BELOW, margin=dict(b=LEGEND_MARGIN))
    return fig


def pr_figure(pr: pd.DataFrame, point: dict[str, float], *, height: int = 340) -> go.Figure:
    """Precision–recall curve with the current operating point."""
    fig = go.Figure(go.Scatter(x=pr["recall"].tolist(), y=pr["precision"].tolist(), mode="lines+markers",
                               line=dict(color=BASE, width=2, shape="hv"), marker=dict(size=4), name="PR",
                               customdata=pr["threshold"].tolist(),
                               hovertemplate="threshold %{customdata:.3f}<br>recall %{x:.2f}, precision %{y:.2f}"
                                             "<extra></extra>"))
    if point.get("recall") == point.get("recall") and point.get("precision") == point.get("precision"):
        fig.add_trace(go.Scatter(x=[point["recall"]], y=[point["precision"]], mode="markers", name="current",
                                 marker=dict(color=HIGHLIGHT, size=12, symbol="x")))
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_yaxes(range=[-0.02, 1.02])
    fig.update_layout(showlegend=False)
    return _finish(fig, "Precision–recall", height, "recall", "precision")


__all__ = ["runs_dir", "metric_label", "epoch_axis", "lines", "loss_figure", "histogram_figure",
           "curve_figure", "pr_figure", "PALETTE", "STATE_COLORS", "STATE_ICONS", "CURVE_LABELS"]
