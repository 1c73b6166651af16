"""K-fold cross-validation of a run config on a dataset, and of BirdNET's own scores on the same rows.

Every fold is an ordinary run folder (grouped folds, as `data.group_by` says); the out-of-fold
tables of all folds are pooled, so each row is scored once by a model that never saw its group.
`birdnet_scores` scores the same rows (each row's first window, as validation reads it) with
BirdNET as is. `summary` gives what the benchmark and the tests compare: macro ROC-AUC and top-1
accuracy (the argmax is the row's primary label; negatives are left out of accuracy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from birdcore.config.run import RunConfig
from birdcore.data.dataset import load_dataset
from birdcore.evaluation.curves import read_oof
from birdcore.evaluation.metrics import macro_roc_auc


@dataclass
class CvResult:
    """Pooled out-of-fold predictions of one model on a dataset's rows."""

    name: str
    filenames: list[str]
    classes: list[str]
    y_true: np.ndarray
    y_score: np.ndarray
    wall_s: float
    runs: list[Path] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """macro ROC-AUC, top-1 accuracy, rows, wall seconds."""
        has = self.y_true.sum(axis=1) > 0
        top1 = float(np.mean(self.y_true[has, np.argmax(self.y_score[has], axis=1)] > 0)) if has.any() else float("nan")
        return {"macro_auc": float(macro_roc_auc(self.y_true, self.y_score)), "top1": top1,
                "rows": int(len(self.y_true)), "wall_s": round(self.wall_s, 1)}

    def aligned(self, order: list[str]) -> "CvResult":
        """The same result with rows in `order` (filenames), to compare models row by row."""
        pos = {f: i for i, f in enumerate(self.filenames)}
        idx = [pos[f] for f in order]
        return replace(self, filenames=list(order), y_true=self.y_true[idx], y_score=self.y_score[idx])


def cross_validate(data_dir: str | Path, cfg: RunConfig, runs_dir: str | Path, name: str = "",
                   progress: Callable[[int, int], None] | None = None, folds: list[int] | None = None) -> CvResult:
    """Train one run per fold (`folds`, default 0 … n_folds−1) and pool their out-of-fold predictions."""
    from birdcore.training.launcher import prepare_run, run_in_process

    t0 = time.time()
    frames, runs = [], []
    todo = list(range(cfg.train.n_folds)) if folds is None else list(folds)
    n = len(todo)
    for k, fold in enumerate(todo):
        fold_cfg = replace(cfg, train=replace(cfg.train, fold=fold))
        run = prepare_run(data_dir, fold_cfg, runs_dir)
        status = run_in_process(run)
        if status.get("state") != "finished":
            raise RuntimeError(f"{run.path}: fold {fold} ended {status.get('state')}: {status.get('error')}")
        frames.append(pd.read_parquet(run.oof_path))
        runs.append(run.path)
        if progress is not None:
            progress(k + 1, n)
    oof = pd.concat(frames, ignore_index=True)
    tmp = Path(runs_dir) / f".pooled-{name or cfg.name}.parquet"
    oof.to_parquet(tmp, index=False)
    y_true, y_score, classes = read_oof(tmp)
    tmp.unlink()
    return CvResult(name or cfg.name, oof["filename"].tolist(), classes, y_true.astype(float), y_score,
                    time.time() - t0, runs)


def birdnet_scores(data_dir: str | Path, filenames: list[str], classes: list[str], window_s: float = 5.0,
                   threads: int | None = None) -> CvResult:
    """BirdNET's own scores for the first window of each listed row (no training), as a CvResult."""
    from birdcore.inference.birdnet_baseline import predict_birdnet

    t0 = time.time()
    ds = load_dataset(data_dir)
    row_of = {f: i for i, f in reversed(list(enumerate(ds.metadata["filename"])))}  # first row of a file
    rows = np.array([row_of[f] for f in filenames])
    y_true = (ds.targets(rows=rows)[:, [ds.species_index[c] for c in classes]] >= 0.5).astype(float)
    paths = [str(p) for p in np.asarray(ds.audio_paths(), dtype=object)[rows]]
    res = predict_birdnet(list(dict.fromkeys(paths)), classes, ds.root / "eBird_Taxonomy_v2021.csv",
                          window_s=window_s, fill_missing=0.0, threads=threads)
    table = res.table.assign(start=res.table["end_time"].astype(float) - window_s)
    by_window = table.set_index(["file_id", "start"])
    starts = ds.metadata["start_s"].to_numpy(float)[rows]
    scores = np.stack([by_window.loc[(Path(p).stem, 0.0 if np.isnan(s) else s), classes].to_numpy(float)
                       for p, s in zip(paths, starts)])
    return CvResult("BirdNET raw", list(filenames), list(classes), y_true, scores, time.time() - t0)
