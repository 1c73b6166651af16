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
from birdcore.models.heads import LinearHead
from birdcore.training.audio_check import check_bad_fraction, record_skipped, scan_audio
from birdcore.training.checkpoint import load_checkpoint, save_checkpoint
from birdcore.training.data import select_run_data
from birdcore.training.folds import assign_folds
from birdcore.training.losses import ClipLoss, class_weights
from birdcore.training.oof import write_oof
from birdcore.training.runs import RunFolder, now_iso

EMBED_WINDOW_S = 5.0


def build_head(cfg: RunConfig, in_dim: int, num_classes: int) -> LinearHead:
    """The head network of a `birdnet_head` run."""
    return LinearHead(in_dim, num_classes, cfg.model.hidden_dim, cfg.model.dropout)


def embedding_cache_dir(data_root) -> str:
    return os.path.join(str(data_root), ".birdcore_cache", "birdnet_emb")


def train_embedding_head(run: RunFolder, resume: bool = False, progress=None, stop=None) -> dict:
    """Train a `birdnet_head` run (resume restarts from the last epoch checkpoint)."""
    from birdcore.pretrained import EmbeddingCache, load_birdnet

    cfg, extra = run.read_config()
    tc = cfg.train
    torch.manual_seed(tc.seed)
    ds = load_dataset(extra["data_dir"])
    ds.require_audio()
    data = select_run_data(ds, cfg)
    folds = assign_folds(np.asarray(data.primary_labels), tc.n_folds, tc.seed)
    val_rows = np.flatnonzero(folds == tc.fold) if tc.fold >= 0 else np.array([], dtype=np.int64)
    train_rows = np.setdiff1d(np.arange(len(data.paths)), val_rows)
    bad = scan_audio(data.paths, data.filenames)
    check_bad_fraction(bad, len(data.paths), ds.train_audio_dir)
    bad_names = {f for f, _ in bad}
    for f, err in bad if not resume else []:
        record_skipped(run.path, f, err, "scan")
    good = np.array([f not in bad_names for f in data.filenames])
    train_rows, val_rows = train_rows[good[train_rows]], val_rows[good[val_rows]]
    run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), device="cpu", epochs=tc.epochs,
                      monitor=tc.monitor, train_size=int(len(train_rows)), val_size=int(len(val_rows)),
                      world_size=1, error=None, traceback=None, finished_at=None, phase="embedding",
                      skipped=len(bad))
    t_emb = time.time()
    cache = EmbeddingCache(embedding_cache_dir(ds.root))
    index, emb = cache.get_or_compute([p for p, g in zip(data.paths, good) if g], window_s=EMBED_WINDOW_S,
                                      model=load_birdnet())
    emb = np.asarray(emb, dtype=np.float32)
    row_of = {p: r for r, p in enumerate(data.paths)}
    rec = index["path"].map(row_of).to_numpy()
    first = index["end_time"].to_numpy() == index.groupby("path")["end_time"].transform("min").to_numpy()
    tr_mask = np.isin(rec, train_rows)
    x_tr, r_tr = torch.from_numpy(emb[tr_mask]), rec[tr_mask]
    va_sel = np.isin(rec, val_rows) & first
    x_va, r_va = torch.from_numpy(emb[va_sel]), rec[va_sel]
    y_all = torch.from_numpy(data.targets)
    w_all = torch.from_numpy(data.weights)

    head = build_head(cfg, emb.shape[1], len(data.classes))
    opt = torch.optim.AdamW(head.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
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
                 "embedding_s": round(time.time() - t_emb, 2), "device": "cpu"})
    run.update_status(phase="training")
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
        head.eval()
        probs = None
        if len(x_va):
            with torch.no_grad():
                probs = torch.sigmoid(head(x_va)[0]).numpy()
            targets = (data.targets[r_va] >= 0.5).astype(np.float32)
            metrics = compute_all(targets, probs, data.classes, threshold=tc.monitor_threshold)
            record.update({k: (None if v is None or not np.isfinite(v) else round(float(v), 6)) for k, v in metrics.items()})
            score = metrics[tc.monitor] if np.isfinite(metrics[tc.monitor]) else -math.inf
        else:
            score = float(epoch)
        improved = score > best
        if improved:
            best, best_epoch, bad = score, epoch, 0
        else:
            bad += 1
        elapsed = time.time() - t0
        record.update({"best_epoch": best_epoch, "best_score": round(best, 6), "improved": improved,
                       "elapsed_s": round(elapsed, 2),
                       "eta_s": round(elapsed / (epoch + 1 - start_epoch) * (tc.epochs - epoch - 1), 1)})
        run.log(record)
        if improved:
            if probs is not None:
                write_oof(run, data, r_va, probs, targets, epoch)
            save_checkpoint(run.best_checkpoint, {"model": head.state_dict(), "epoch": epoch, "score": best,
                                                  "classes": data.classes, "in_dim": int(emb.shape[1])})
        save_checkpoint(run.last_checkpoint, {"model": head.state_dict(), "optimizer": opt.state_dict(),
                                              "epoch": epoch + 1, "step": step, "best_score": best,
                                              "best_epoch": best_epoch, "bad_epochs": bad,
                                              "metrics_size": run.metrics_size(), "classes": data.classes})
        run.update_status(epoch=epoch + 1, best_score=round(best, 6), best_epoch=best_epoch, eta_s=record["eta_s"])
        if progress:
            progress(record)
        if len(x_va) and bad >= tc.patience:
            break
    return run.update_status(state=state, finished_at=now_iso(), pid=None, phase=None)
