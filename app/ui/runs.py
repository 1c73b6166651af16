"""Helpers of the Training and Thresholds pages: where runs live, saved augmentation configs, and
the Plotly figures of run curves and threshold analysis.

The runs folder is `$BIRDCORE_RUNS`, else `<repo>/runs` (`runs_dir()`). Saved augmentation
configs are the JSON files the Preview page writes to `$BIRDCORE_HOME/augment/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go

from birdcore.app_settings import birdcore_home
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import from_dict, to_dict
from birdcore.errors import ConfigError

from .charts import BASE, HIGHLIGHT, MUTED, _finish

REPO_ROOT = Path(__file__).resolve().parents[2]
# One colour per line when several runs or metrics share a chart (colour-blind-safe set).
PALETTE = ("#3a7ca5", "#e4572e", "#2e933c", "#8e5ea2", "#f2a541", "#17becf", "#7f7f7f", "#bcbd22")
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
STATE_ICONS = {"queued": "⏳", "running": "▶️", "finished": "✅", "failed": "❌", "stopped": "⏹️"}
METRIC_LABELS = {"micro_f1": "micro F1", "macro_f1": "macro F1", "birdclef2022": "BirdCLEF 2022 (½(TPR+TNR))",
                 "cmap_pad5": "padded cmAP", "macro_auc": "macro ROC-AUC", "f1": "F1", "precision": "precision",
                 "recall": "recall (TPR)"}


def runs_dir() -> Path:
    """The folder holding run folders: `$BIRDCORE_RUNS`, else `<repo>/runs` (may not exist yet)."""
    env = os.environ.get("BIRDCORE_RUNS", "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "runs"


def augment_dir() -> Path:
    """Where the Preview page saves augmentation configs: `$BIRDCORE_HOME/augment`."""
    return birdcore_home() / "augment"


def augment_files() -> list[Path]:
    """Saved augmentation configs (`*.json`), by name."""
    d = augment_dir()
    return sorted(p for p in d.glob("*.json") if p.is_file()) if d.is_dir() else []


def load_augment_file(path: str | os.PathLike) -> dict[str, Any]:
    """A saved augmentation config as a validated `augment` dict (ConfigError names the file).

    Accepts the AugmentConfig fields at the top level or under an "augment" key (a saved config
    may carry a name or notes beside it).
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read augmentation config ({exc})") from None
    if isinstance(raw, dict) and isinstance(raw.get("augment"), dict):
        raw = raw["augment"]
    try:
        return to_dict(from_dict(AugmentConfig, raw, "augment"))
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


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
    return _finish(fig, title, height, xlabel, ylabel)


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


def histogram_figure(hist: pd.DataFrame, threshold: float, *, height: int = 300) -> go.Figure:
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
                 height: int = 300) -> go.Figure:
    """Per-class metrics against the threshold; the current threshold as a line and markers."""
    fig = go.Figure()
    for i, m in enumerate(metrics):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=curve["threshold"].tolist(), y=curve[m].tolist(), name=metric_label(m),
                                 mode="lines", line=dict(color=color, width=2)))
        if point.get(m) is not None and point[m] == point[m]:  # skip NaN
            fig.add_trace(go.Scatter(x=[point["threshold"]], y=[point[m]], mode="markers", showlegend=False,
                                     marker=dict(color=color, size=9), hoverinfo="skip"))
    fig.add_vline(x=point["threshold"], line=dict(color="black", dash="dash", width=1.5))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[-0.02, 1.02])
    return _finish(fig, "Metrics vs threshold", height, "threshold", None)


def pr_figure(pr: pd.DataFrame, point: dict[str, float], *, height: int = 300) -> go.Figure:
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


__all__ = ["runs_dir", "augment_dir", "augment_files", "load_augment_file", "metric_label", "lines",
           "loss_figure", "histogram_figure", "curve_figure", "pr_figure", "PALETTE", "STATE_COLORS", "STATE_ICONS",
           "MUTED"]
