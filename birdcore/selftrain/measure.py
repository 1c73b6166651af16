"""What a round is measured by: its labelled validation score, its score on held-out soundscapes
(when the dataset has their truth), and the quality of the pseudo-labels it trained on (when the
unlabeled soundscapes' truth exists: the demo's `unlabeled_truth.csv`, read here only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from birdcore.data.dataset import BirdDataset
from birdcore.evaluation.metrics import compute_all
from birdcore.inference.catalog import ModelRef, load_model, predict_table
from birdcore.training.runs import RunFolder


def validation_scores(run: RunFolder) -> dict:
    """The best epoch's labelled-validation metrics (monitor, birdclef2022, macro AUC)."""
    st = run.status()
    best = st.get("best_epoch")
    rec = next((r for r in run.epoch_records() if r.get("epoch") == best), {})
    return {"val_score": st.get("best_score"), "val_monitor": st.get("monitor"),
            "val_birdclef2022": rec.get("birdclef2022"), "val_macro_auc": rec.get("macro_auc")}


def window_truth(ds: BirdDataset) -> tuple[pd.DataFrame, list[str]] | None:
    """Held-out soundscape truth as a window × bird 0/1 matrix (index file_id, end_time), or None
    when the dataset has no `test_labels.csv` with `test.csv`."""
    if ds.test is None or ds.test_labels is None or not ds.soundscapes:
        return None
    df = ds.test.merge(ds.test_labels, on="row_id", how="inner")
    if df.empty:
        return None
    df["target"] = df["target"].astype(bool).astype(np.int8)
    wide = df.pivot_table(index=["file_id", "end_time"], columns="bird", values="target", aggfunc="max").fillna(0)
    return wide, list(wide.columns)


def score_table(scores: pd.DataFrame, truth: pd.DataFrame, classes: list[str], threshold: float) -> dict:
    """BirdCLEF 2022 score (at `threshold`) and macro AUC of window `scores` against `truth`
    (both keyed by file_id, end_time) over the `classes` both hold; empty when none is shared."""
    shared = [c for c in classes if c in scores.columns and c in truth.columns]
    if not shared:
        return {}
    s = scores.copy()
    s["end_time"] = s["end_time"].astype(float)
    t = truth.reset_index()
    t["end_time"] = t["end_time"].astype(float)
    both = t[["file_id", "end_time", *shared]].merge(s[["file_id", "end_time", *shared]],
                                                      on=["file_id", "end_time"], suffixes=("_t", "_p"))
    if both.empty:
        return {}
    y = both[[f"{c}_t" for c in shared]].to_numpy(float)
    p = np.nan_to_num(both[[f"{c}_p" for c in shared]].to_numpy(float), nan=0.0)
    m = compute_all(y, p, shared, threshold=threshold)
    return {"birdclef2022": _r(m["birdclef2022"]), "macro_auc": _r(m["macro_auc"]), "windows": len(both)}


def heldout_scores(run: RunFolder, ds: BirdDataset, threshold: float | None = None) -> dict:
    """The run's model on the dataset's test soundscapes: {heldout_birdclef2022, heldout_macro_auc},
    empty when the dataset holds no truth for them. `threshold`: default the run's
    `train.monitor_threshold`."""
    truth = window_truth(ds)
    if truth is None:
        return {}
    wide, _ = truth
    cfg, _ = run.read_config()
    model = load_model(ModelRef("run", str(run.path), run.run_id))
    scores = predict_table([model], ds.soundscapes).table
    out = score_table(scores, wide, model.classes, cfg.train.monitor_threshold if threshold is None else threshold)
    return {f"heldout_{k}": v for k, v in out.items() if k != "windows"}


def label_quality(scores: pd.DataFrame, truth: pd.DataFrame | None, classes: list[str], floor: float) -> dict:
    """The teacher's scores on the unlabeled windows against their truth (measurement only):
    {teacher_unlabeled_auc, teacher_unlabeled_birdclef2022 at the floor}; empty without truth."""
    if truth is None:
        return {}
    out = score_table(scores, truth.set_index(["file_id", "end_time"]), classes, threshold=max(floor, 1e-6))
    return {f"teacher_unlabeled_{k}": v for k, v in out.items() if k != "windows"}


def _r(v) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)
