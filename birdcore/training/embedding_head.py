"""The `birdnet_head` model family: a small head trained on BirdNET V2.4 embeddings.

Same run folder, losses, folds, metrics, out-of-fold predictions and thresholds as the CNN runs,
so every CLI command and app page works with it unchanged. Training samples are all 5-s windows
of the training recordings (each labelled with its recording's targets, as the CNN's random crops
are); validation uses each recording's first window, like the CNN's start crop. Embeddings are
computed once per dataset and cached (`DATA/.birdcore_cache/birdnet_emb/`), so a second run only
trains the head — seconds on a CPU.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from birdcore.config.run import RunConfig
from birdcore.data.dataset import load_dataset
from birdcore.evaluation.metrics import compute_all
from birdcore.models.heads import BirdnetPriorHead, LinearHead
from birdcore.training.audio_check import (
    check_bad_fraction,
    check_lost_classes,
    record_skipped,
    scan_audio,
)
from birdcore.training.checkpoint import load_checkpoint, save_checkpoint
from birdcore.training.data import select_run_data
from birdcore.training.folds import describe_split, validation_split
from birdcore.training.losses import ClipLoss, class_weights
from birdcore.training.oof import write_oof
from birdcore.training.runs import RunFolder, now_iso

EMBED_WINDOW_S = 5.0


def build_head(cfg: RunConfig, in_dim: int, num_classes: int, class_index: list[list[int]] | None = None):
    """The head network of a `birdnet_head` run: `BirdnetPriorHead` when `class_index` (per class,
    the BirdNET labels mapping to it) is given — a checkpoint records it — else `LinearHead`."""
    if class_index is None:
        return LinearHead(in_dim, num_classes, cfg.model.hidden_dim, cfg.model.dropout)
    known = torch.tensor([bool(idx) for idx in class_index])
    return BirdnetPriorHead(in_dim, num_classes, known, cfg.model.hidden_dim, cfg.model.dropout)


def head_inputs(emb: np.ndarray, prior: np.ndarray, class_index: list[list[int]] | None) -> torch.Tensor:
    """What the head reads: the embedding, followed by BirdNET's logits when it starts from BirdNET."""
    x = emb if class_index is None else np.concatenate([emb, prior], axis=1)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _optimizer(head, tc) -> torch.optim.Optimizer:
    prior = list(head.prior_parameters()) if isinstance(head, BirdnetPriorHead) else []
    ids = {id(p) for p in prior}
    rest = [p for p in head.parameters() if id(p) not in ids]
    groups = [{"params": rest, "weight_decay": tc.weight_decay}]
    if prior:  # BirdNET's calibration must not decay towards 0 (that would switch BirdNET off)
        groups.append({"params": prior, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=tc.lr)


def windows_of_rows(index, paths: list[str], spans: list | None, window_s: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which embedded windows belong to which dataset row: (window positions, rows, is-first).

    A whole-file row owns every window of its file; a row standing for a span owns the windows
    that overlap the span by at least half (of the window or the span, when shorter), else the one
    overlapping it most — the same windows its labels were made for. `is-first` marks each row's
    first window (validation reads only that one, like the CNN's start crop).
    """
    by_path = {p: np.asarray(pos) for p, pos in index.groupby("path", sort=False).indices.items()}
    ends_all = index["end_time"].to_numpy(dtype=float)
    win, rows, first = [], [], []
    for r, p in enumerate(paths):
        pos = by_path.get(p)
        if pos is None or not len(pos):
            continue
        pos = pos[np.argsort(ends_all[pos], kind="stable")]
        span = spans[r] if spans else None
        if span is not None:
            ends = ends_all[pos]
            overlap = np.minimum(ends, span[1]) - np.maximum(ends - window_s, span[0])
            take = pos[overlap >= min(window_s, span[1] - span[0]) / 2]
            pos = take if len(take) else pos[[int(np.argmax(overlap))]]
        win += pos.tolist()
        rows += [r] * len(pos)
        first += [True] + [False] * (len(pos) - 1)
    return np.asarray(win, np.int64), np.asarray(rows, np.int64), np.asarray(first, bool)


def _validate(head, x_va: torch.Tensor, y_va: np.ndarray, classes: list[str], tc
              ) -> tuple[np.ndarray, np.ndarray, dict, float]:
    """(probabilities, 0/1 targets, rounded metrics, monitored score) of `head` on the validation windows."""
    head.eval()
    with torch.no_grad():
        probs = torch.sigmoid(head(x_va)[0]).numpy()
    targets = (y_va >= 0.5).astype(np.float32)
    metrics = compute_all(targets, probs, classes, threshold=tc.monitor_threshold)
    score = metrics[tc.monitor] if np.isfinite(metrics[tc.monitor]) else -math.inf
    return probs, targets, {k: (None if v is None or not np.isfinite(v) else round(float(v), 6))
                            for k, v in metrics.items()}, score


def _embedding_progress(run: RunFolder):
    """`progress(done, total)` for the embedding phase: the run's status says how far it is (at most
    every 2 s, so a large dataset does not rewrite status.json per file); the app and `runs` show it."""
    last = [0.0]

    def update(done: int, total: int) -> None:
        if time.time() - last[0] >= 2.0 or done == total:
            last[0] = time.time()
            run.update_status(phase=f"embedding {done}/{total} recordings")

    return update


def _score(v: float) -> float | None:
    return round(float(v), 6) if np.isfinite(v) else None


def train_embedding_head(run: RunFolder, resume: bool = False, progress=None, stop=None) -> dict:
    """Train a `birdnet_head` run (resume restarts from the last epoch checkpoint)."""
    from birdcore.pretrained import EmbeddingCache, load_birdnet
    from birdcore.pretrained.head_features import birdnet_class_index, window_features
    from birdcore.pretrained.label_map import find_taxonomy

    cfg, extra = run.read_config()
    tc = cfg.train
    torch.manual_seed(tc.seed)
    ds = load_dataset(extra["data_dir"])
    ds.require_audio()
    data = select_run_data(ds, cfg)
    train_rows, val_rows = validation_split(data.primary_labels, data.groups, tc.n_folds, tc.fold, tc.seed)
    bad = scan_audio(data.paths, data.filenames)
    check_bad_fraction(bad, len(set(data.paths)), ds.train_audio_dir)
    check_lost_classes(bad, data.filenames, data.primary, data.classes, ds.train_audio_dir)
    bad_names = {f for f, _ in bad}
    for f, err in bad if not resume else []:
        record_skipped(run.path, f, err, "scan")
    good = np.array([f not in bad_names for f in data.filenames])
    train_rows, val_rows = train_rows[good[train_rows]], val_rows[good[val_rows]]
    run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), device="cpu", epochs=tc.epochs,
                      monitor=tc.monitor, train_size=int(len(train_rows)), val_size=int(len(val_rows)),
                      validation=describe_split(data.groups, cfg.data.group_by, tc.n_folds, tc.fold,
                                                len(train_rows), len(val_rows)),
                      world_size=1, error=None, traceback=None, finished_at=None, phase="embedding",
                      skipped=len(bad))
    t_emb = time.time()
    model = load_birdnet()
    paths = list(dict.fromkeys(p for p, g in zip(data.paths, good) if g))
    chunks = EmbeddingCache().get_chunks(paths, window_s=EMBED_WINDOW_S, model=model,
                                         progress=_embedding_progress(run))
    own = ds.root / "eBird_Taxonomy_v2021.csv"  # the dataset's own copy, else $BIRDCORE_EBIRD_TAXONOMY
    taxonomy = own if own.is_file() else find_taxonomy(None)
    class_index = None
    if cfg.model.birdnet_prior and taxonomy is not None:
        class_index = birdnet_class_index(model, data.classes, taxonomy)
        if not any(class_index):
            class_index = None  # BirdNET knows none of these species: nothing to start from
    index, emb, prior = window_features(chunks, class_index or [[] for _ in data.classes], model, EMBED_WINDOW_S, paths)
    x_all = head_inputs(emb, prior, class_index)
    win, rec, first = windows_of_rows(index, data.paths, data.spans, EMBED_WINDOW_S)
    tr_mask = np.isin(rec, train_rows)
    x_tr, r_tr = x_all[torch.from_numpy(win[tr_mask])], rec[tr_mask]
    va_sel = np.isin(rec, val_rows) & first
    x_va, r_va = x_all[torch.from_numpy(win[va_sel])], rec[va_sel]
    y_all = torch.from_numpy(data.targets)
    w_all = torch.from_numpy(data.weights)

    head = build_head(cfg, emb.shape[1], len(data.classes), class_index)
    opt = _optimizer(head, tc)
    loss_fn = ClipLoss(cfg.loss, class_weights(data.counts, cfg.loss.class_weights))
    start_epoch, best, best_epoch, bad, step = 0, -math.inf, -1, 0, 0
    if resume and run.last_checkpoint.exists():
        ck = load_checkpoint(run.last_checkpoint)
        head.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, best, best_epoch, bad, step = ck["epoch"], ck["best_score"], ck["best_epoch"], ck["bad_epochs"], ck["step"]
        run.truncate_metrics(ck["metrics_size"])
    else:
        run.truncate_metrics(0)
        run.log({"kind": "start", "train_size": int(len(train_rows)), "val_size": int(len(val_rows)),
                 "classes": len(data.classes), "train_windows": int(len(x_tr)),
                 "embedding_s": round(time.time() - t_emb, 2), "device": "cpu",
                 "birdnet_prior_classes": sum(map(bool, class_index or []))})
    run.update_status(phase="training")
    if isinstance(head, BirdnetPriorHead) and len(x_va) and start_epoch == 0:
        # Training starts from BirdNET itself, so BirdNET is the first candidate: an epoch must beat
        # it on validation to replace it, and a run whose labels only hurt keeps BirdNET's scores.
        probs, targets, metrics, best = _validate(head, x_va, data.targets[r_va], data.classes, tc)
        best_epoch = -1
        write_oof(run, data, r_va, probs, targets, best_epoch)
        save_checkpoint(run.best_checkpoint, {"model": head.state_dict(), "epoch": best_epoch, "score": best,
                                              "classes": data.classes, "in_dim": int(emb.shape[1]),
                                              "birdnet_index": class_index})
        run.log({"kind": "birdnet_prior", **metrics})
        run.update_status(best_score=_score(best), best_epoch=best_epoch)
    gen = torch.Generator().manual_seed(tc.seed)
    t0 = time.time()
    state = "finished"
    for epoch in range(start_epoch, tc.epochs):
        if stop is not None and stop():
            state = "stopped"
            break
        head.train()
        gen.manual_seed(tc.seed * 1000 + epoch)
        order = torch.randperm(len(x_tr), generator=gen)
        total, seen, te = 0.0, 0, time.time()
        for s in range(0, len(order), tc.batch_size):
            idx = order[s: s + tc.batch_size]
            rows = torch.from_numpy(r_tr[idx.numpy()])
            loss = loss_fn(head(x_tr[idx])[0], y_all[rows], w_all[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            total += loss.item() * len(idx)
            seen += len(idx)
        record = {"kind": "epoch", "epoch": epoch, "train_loss": round(total / max(seen, 1), 5),
                  "train_samples_per_s": round(seen / max(time.time() - te, 1e-6), 1),
                  "epoch_time_s": round(time.time() - te, 3)}
        run.log({"kind": "step", "epoch": epoch, "step": step, "loss": record["train_loss"],
                 "lr": tc.lr, "samples_per_s": record["train_samples_per_s"]})
        probs = None
        if len(x_va):
            probs, targets, metrics, score = _validate(head, x_va, data.targets[r_va], data.classes, tc)
            record.update(metrics)
        else:  # no validation (fold = -1): the last epoch is the model; no score to report
            score = -math.inf
        improved = score > best or not len(x_va)
        if improved:
            best, best_epoch, bad = score, epoch, 0
        else:
            bad += 1
        elapsed = time.time() - t0
        record.update({"best_epoch": best_epoch, "best_score": _score(best), "improved": improved,
                       "elapsed_s": round(elapsed, 2),
                       "eta_s": round(elapsed / (epoch + 1 - start_epoch) * (tc.epochs - epoch - 1), 1)})
        run.log(record)
        if improved:
            if probs is not None:
                write_oof(run, data, r_va, probs, targets, epoch)
            save_checkpoint(run.best_checkpoint, {"model": head.state_dict(), "epoch": epoch, "score": best,
                                                  "classes": data.classes, "in_dim": int(emb.shape[1]),
                                                  "birdnet_index": class_index})
        save_checkpoint(run.last_checkpoint, {"model": head.state_dict(), "optimizer": opt.state_dict(),
                                              "epoch": epoch + 1, "step": step, "best_score": best,
                                              "best_epoch": best_epoch, "bad_epochs": bad,
                                              "metrics_size": run.metrics_size(), "classes": data.classes})
        run.update_status(epoch=epoch + 1, best_score=_score(best), best_epoch=best_epoch, eta_s=record["eta_s"])
        if progress:
            progress(record)
        if len(x_va) and bad >= tc.patience:
            break
    return run.update_status(state=state, finished_at=now_iso(), pid=None, phase=None)
