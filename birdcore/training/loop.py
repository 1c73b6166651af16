"""The training loop: AdamW + warm-up/cosine, clipping, AMP on CUDA, early stopping, resume, DDP.

Crash safety: everything an epoch produces is written at its end, in this order — epoch metrics
line, then `last.pt` (which records the size of `metrics.jsonl` at that moment), then the best
checkpoint + out-of-fold predictions (when improved), then the status. Resuming truncates
`metrics.jsonl` back to the size last.pt recorded, so a SIGKILL at any moment loses at most the
current epoch and never duplicates a metrics line; when the kill landed between last.pt and
best.pt / the OOF table, the epoch last.pt holds is the best one and resume rebuilds them from it.
SIGTERM sets a flag checked between steps: the run stops cleanly with state `stopped`.

`_train` reads as its steps: `_setup` (data, folds, loaders, model, optimiser, loss) → `_restore`
(resume) → per epoch `_train_epoch` (`_train_step` per batch) and `_close_epoch` (`_validate`, best
/ patience, `_write_epoch`) → `_finish`.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from birdcore.config.run import RunConfig
from birdcore.data.dataset import BirdDataset, load_dataset
from birdcore.evaluation.metrics import compute_all
from birdcore.models import build_model, clip_probability, resolve_device
from birdcore.training.audio_check import (
    check_bad_fraction,
    check_lost_classes,
    read_skipped,
    record_skipped,
    scan_audio,
)
from birdcore.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from birdcore.training.clips import BatchAugment, make_clip_loaders
from birdcore.training.data import (
    ClipDataset,
    EpochSampler,
    RunData,
    balanced_weights,
    select_run_data,
)
from birdcore.training.folds import describe_split, validation_split
from birdcore.training.losses import ClipLoss, class_weights
from birdcore.training.oof import write_oof
from birdcore.training.pseudo import (
    MixedDataset,
    MixedSampler,
    PseudoDataset,
    PseudoWindows,
    check_no_validation_audio,
    read_pseudo_windows,
)
from birdcore.training.run_lock import hold_for_rank
from birdcore.training.runs import RunFolder, now_iso

ProgressFn = Callable[[dict], None]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class _LoopState:
    epoch: int = 0              # epochs completed
    step: int = 0               # optimiser steps taken
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    elapsed: float = 0.0        # training seconds before this process (resumed runs)
    history: list = field(default_factory=list)


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = True


def auto_workers(requested: int) -> int:
    """-1 → cores − 1 (at most 8); 0 loads in the main process."""
    if requested >= 0:
        return requested
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def train_threads(requested: int, workers: int, device_type: str, world: int = 1) -> int:
    """Intra-op threads for the training process: `requested` when > 0; on CPU, 0 (auto) gives
    the cores left after the loader's worker processes (at least 1); 0 (torch's default) on GPUs.

    Why not torch's default (every core) on CPU: the workers need cores too, and OpenMP threads
    spin at every barrier when one of them is descheduled. Measured on the shared 2-core machine
    (load ~6), EfficientNet-Lite0 forward+backward at batch 32: 1 thread 11–14 samples/s (20–23 per
    CPU-s), 2 threads 2.9–3.5 samples/s (4–6 per CPU-s: most of the CPU went to spinning).
    """
    if requested > 0:
        return requested
    if device_type != "cpu":
        return 0
    return max(1, (os.cpu_count() or 1) // max(1, world) - workers)


def lr_at(step: int, total: int, warmup: int, base: float, min_ratio: float) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to `base * min_ratio` at `total`."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def train(run: RunFolder, resume: bool = False, progress: ProgressFn | None = None,
          install_signals: bool = True) -> dict:
    """Train (or resume) the run in `run`; returns the final status dict.

    One writer per run: the run's lock (`run_lock`) is taken first and held until the status is
    final, so a second writer gets RunError ("already being trained by pid N") before anything in
    the folder changes. Status is kept truthful: `running` while training, then `finished`,
    `stopped` (SIGTERM) or `failed` with the traceback. Exceptions are re-raised after being recorded.
    """
    with hold_for_rank(run.path):
        dist = _init_dist()
        stop = _StopFlag()
        if install_signals:
            stop.install()
        try:
            family = run.read_config()[0].family
            if family == "birdnet_head":
                from birdcore.training.embedding_head import train_embedding_head

                result = train_embedding_head(run, resume=resume, progress=progress, stop=lambda: stop.requested)
            else:
                result = _train(run, resume, progress, dist, stop)
        except BaseException as exc:
            if dist.main:
                state = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
                try:
                    run.update_status(state=state, finished_at=now_iso(), error=f"{type(exc).__name__}: {exc}",
                                      traceback=traceback.format_exc())
                except OSError:
                    pass  # e.g. the disk is full: the original error matters more than the status line
            raise
        finally:
            if dist.enabled and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        return result


def _init_dist() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return _Dist(rank=tdist.get_rank(), world=tdist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


@dataclass
class _Setup:
    """Everything `_train` builds before the first epoch (see `_setup`)."""

    cfg: RunConfig
    data: RunData
    device: torch.device
    train_rows: np.ndarray
    val_rows: np.ndarray
    train_ds: ClipDataset
    sampler: EpochSampler
    loader: DataLoader
    val_loader: DataLoader | None
    batch_aug: BatchAugment
    model: torch.nn.Module          # what the step calls: DDP-wrapped when distributed
    raw_model: torch.nn.Module      # the bare model: features, state dicts, evaluation
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_fn: ClipLoss
    use_amp: bool
    steps_per_epoch: int
    total_steps: int
    warmup: int
    pseudo: PseudoWindows | None = None  # pseudo-labelled windows trained beside the labelled rows
    val_cache: "_ValCache | None" = None  # validation mel images, computed once (train.val_cache_mb)
    profile: dict = field(default_factory=dict)  # start-up seconds by stage (bench_train --profile)


def _train(run: RunFolder, resume: bool, progress: ProgressFn | None, dist: _Dist, stop: _StopFlag) -> dict:
    """Set up, restore, then epochs until done, stopped (SIGTERM) or stopped early (patience)."""
    cfg, extra = run.read_config()
    threads_before = torch.get_num_threads()
    try:
        return _train_run(run, cfg, extra, resume, progress, dist, stop)
    finally:
        torch.set_num_threads(threads_before)  # `_setup` may change it; callers (tests, the app) keep theirs


def _train_run(run: RunFolder, cfg: RunConfig, extra: dict, resume: bool, progress: ProgressFn | None,
               dist: _Dist, stop: _StopFlag) -> dict:
    s = _setup(run, cfg, extra, resume, dist)
    st, repair_best = _restore(run, s, resume, dist)
    if dist.main:
        _announce_start(run, s, st, dist)
    if repair_best:
        _repair_best(run, s, st)
    t_process = time.time()
    final_state = "finished"
    while st.epoch < cfg.train.epochs:
        epoch = st.epoch
        record = _train_epoch(run, s, st, epoch, progress, dist, stop)
        if record is None:
            final_state = "stopped"
            break
        st.epoch = epoch + 1
        stop_early = _close_epoch(run, s, st, epoch, record, t_process, progress) if dist.main else False
        if _agree_stop_early(stop_early, dist):
            break
    return _finish(run, final_state, dist)


# ---- set-up ------------------------------------------------------------------------------------

def _setup(run: RunFolder, cfg: RunConfig, extra: dict, resume: bool, dist: _Dist) -> _Setup:
    """Seeds, device, rows, loaders, model, optimiser, loss and the step schedule."""
    tc = cfg.train
    torch.manual_seed(tc.seed + dist.rank)
    np.random.seed(tc.seed + dist.rank)
    device = resolve_device(tc.device, dist.local_rank if dist.enabled else None)
    threads = train_threads(tc.torch_threads, auto_workers(tc.num_workers), device.type, dist.world)
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    ds, data, train_rows, val_rows = _select_rows(run, cfg, extra, resume, dist)
    t1 = time.perf_counter()
    train_ds, sampler, loader, val_loader, batch_aug, pseudo = _make_loaders(run, cfg, ds, data, train_rows, val_rows,
                                                                             device, dist)
    t2 = time.perf_counter()
    model = build_model(cfg, len(data.classes)).to(device)
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    t3 = time.perf_counter()
    raw_model = model
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(raw_model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    use_amp = tc.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = ClipLoss(cfg.loss, class_weights(data.counts, cfg.loss.class_weights)).to(device)
    steps_per_epoch = len(loader) if tc.max_train_batches == 0 else min(len(loader), tc.max_train_batches)
    return _Setup(cfg=cfg, data=data, device=device, train_rows=train_rows, val_rows=val_rows,
                  train_ds=train_ds, sampler=sampler, loader=loader, val_loader=val_loader, batch_aug=batch_aug,
                  model=model, raw_model=raw_model, opt=opt, scaler=scaler, loss_fn=loss_fn, use_amp=use_amp,
                  steps_per_epoch=steps_per_epoch, total_steps=steps_per_epoch * tc.epochs,
                  warmup=int(round(tc.warmup_epochs * steps_per_epoch)), pseudo=pseudo,
                  val_cache=_ValCache(tc.val_cache_mb * 2**20) if tc.val_cache_mb > 0 else None,
                  profile={"select_rows_s": t1 - t0, "loaders_s": t2 - t1, "model_s": t3 - t2})


def _select_rows(run: RunFolder, cfg: RunConfig, extra: dict, resume: bool,
                 dist: _Dist) -> tuple[BirdDataset, RunData, np.ndarray, np.ndarray]:
    """The dataset, the run's rows, and its training / validation rows without undecodable files."""
    tc = cfg.train
    ds = load_dataset(extra["data_dir"])
    ds.require_audio()
    data = select_run_data(ds, cfg)
    if extra.get("classes") and list(extra["classes"]) != data.classes:
        from birdcore.errors import RunError

        raise RunError(f"{run.config_path}: the dataset's classes no longer match the run's classes")

    train_rows, val_rows = validation_split(data.primary_labels, data.groups, tc.n_folds, tc.fold, tc.seed)
    bad = scan_audio(data.paths, data.filenames)
    check_bad_fraction(bad, len(set(data.paths)), ds.train_audio_dir)
    check_lost_classes(bad, data.filenames, data.primary, data.classes, ds.train_audio_dir)
    if bad:
        bad_names = {f for f, _ in bad}
        if dist.main and not resume:
            for f, err in bad:
                record_skipped(run.path, f, err, "scan")
        keep = np.array([f not in bad_names for f in data.filenames])
        train_rows, val_rows = train_rows[keep[train_rows]], val_rows[keep[val_rows]]
    return ds, data, train_rows, val_rows


def _make_loaders(run: RunFolder, cfg: RunConfig, ds: BirdDataset, data: RunData, train_rows: np.ndarray,
                  val_rows: np.ndarray, device: torch.device, dist: _Dist):
    """(train dataset, sampler, train loader, validation loader or None, batch augmentation,
    pseudo-labelled windows or None).

    Pseudo-labelled windows (`cfg.pseudo`) join the training side only: the validation loader is
    built from `val_rows`, labelled rows, whatever the table holds."""
    tc = cfg.train
    train_clip, val_clip, batch_aug = make_clip_loaders(cfg, data, ds)
    train_ds = ClipDataset(data, train_rows, train_clip, tc.seed, skip_log=run.path)
    weights = balanced_weights(data.primary[train_rows], data.counts) if tc.sampler == "class_balanced" else None
    sampler = EpochSampler(len(train_rows), tc.seed, weights, dist.rank, dist.world)
    pseudo = None
    if cfg.pseudo.enabled:
        pseudo = read_pseudo_windows(cfg.pseudo.labels, data.classes)
        check_no_validation_audio(pseudo, [data.paths[r] for r in val_rows])

        def labelled_clip(rng: np.random.Generator):  # training rows only: validation audio never mixes in
            return train_clip(int(train_rows[rng.integers(len(train_rows))]), rng)

        train_ds = MixedDataset(train_ds, PseudoDataset(pseudo, cfg, tc.seed, labelled_clip))
        sampler = MixedSampler(EpochSampler(len(train_rows), tc.seed, weights), len(train_rows), len(pseudo),
                               int(round(cfg.pseudo.ratio * len(train_rows))), tc.seed, cfg.pseudo.only,
                               dist.rank, dist.world)
    n_items = len(train_rows) if pseudo is None else len(sampler) * dist.world
    workers = auto_workers(tc.num_workers)
    loader = DataLoader(train_ds, batch_size=tc.batch_size, sampler=sampler, num_workers=workers,
                        drop_last=n_items >= 2 * tc.batch_size * dist.world,
                        persistent_workers=False, pin_memory=device.type == "cuda")
    val_loader = None
    if len(val_rows) and dist.main:
        val_ds = ClipDataset(data, val_rows, val_clip, tc.seed, skip_log=run.path, substitute=False,
                             clip_samples=int(round(cfg.data.clip_seconds * cfg.sample_rate)))
        val_loader = DataLoader(val_ds, batch_size=tc.eval_batch_size, shuffle=False, num_workers=workers)
    return train_ds, sampler, loader, val_loader, batch_aug, pseudo


# ---- resume ------------------------------------------------------------------------------------

def _restore(run: RunFolder, s: _Setup, resume: bool, dist: _Dist) -> tuple[_LoopState, bool]:
    """(loop state, whether best.pt / the OOF table must be rebuilt from last.pt).

    Resuming loads last.pt (weights, optimiser, scaler, RNG) and truncates `metrics.jsonl` back to
    the size last.pt recorded; a fresh start empties it. Stray temp files go first either way.
    """
    st = _LoopState()
    if dist.main:
        run.remove_stray_temps()  # temp files of writes a kill interrupted; never read as data
    repair_best = False
    if resume and run.last_checkpoint.exists():
        ck = load_checkpoint(run.last_checkpoint, map_location=s.device)
        s.raw_model.load_state_dict(ck["model"])
        s.opt.load_state_dict(ck["optimizer"])
        s.scaler.load_state_dict(ck["scaler"])
        st = _LoopState(epoch=ck["epoch"], step=ck["step"], best_score=ck["best_score"],
                        best_epoch=ck["best_epoch"], bad_epochs=ck["bad_epochs"], elapsed=ck["elapsed"])
        set_rng_state(ck["rng"])
        if dist.main:
            run.truncate_metrics(ck["metrics_size"])
            # last.pt is written before best.pt / the OOF table: a crash between them leaves the
            # best epoch's files stale. That epoch is the one last.pt holds, so rebuild them from it.
            repair_best = st.best_epoch == st.epoch - 1 and _best_epoch_on_disk(run) != st.best_epoch
    elif dist.main:
        run.truncate_metrics(0)
    return st, repair_best


def _announce_start(run: RunFolder, s: _Setup, st: _LoopState, dist: _Dist) -> None:
    """Status `running`, and the `start` metrics line on a fresh run (main process only)."""
    tc = s.cfg.train
    n_train, n_val = int(len(s.train_rows)), int(len(s.val_rows))
    run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), device=str(s.device),
                      epoch=st.epoch, epochs=tc.epochs, monitor=tc.monitor, error=None, traceback=None,
                      train_size=n_train, val_size=n_val, world_size=dist.world,
                      validation=describe_split(s.data.groups, s.cfg.data.group_by, tc.n_folds, tc.fold, n_train, n_val),
                      finished_at=None, skipped=len(read_skipped(run.path)), **_pseudo_status(s))
    if st.epoch == 0:
        run.log({"kind": "start", "train_size": n_train, "val_size": n_val, "classes": len(s.data.classes),
                 "steps_per_epoch": s.steps_per_epoch, "device": str(s.device), "torch_threads": torch.get_num_threads(),
                 "setup_s": {k: round(v, 2) for k, v in s.profile.items()}, **_pseudo_status(s)})


def _pseudo_status(s: _Setup) -> dict:
    """What the status and the start line say about pseudo-labelled windows (nothing when off)."""
    if s.pseudo is None:
        return {}
    return {"pseudo_windows": len(s.pseudo), "pseudo_teacher": s.cfg.pseudo.teacher or "+".join(s.pseudo.teachers),
            "pseudo_labels": str(s.pseudo.path), "pseudo_only": s.cfg.pseudo.only}


def _repair_best(run: RunFolder, s: _Setup, st: _LoopState) -> None:
    """Rewrite best.pt and the OOF table from the restored (best) epoch's weights."""
    probs, targets, ok = None, None, None
    if s.val_loader is not None:
        probs, targets, _, ok = _evaluate(s.raw_model, s.val_loader, s.loss_fn, s.device, s.use_amp,
                                          s.val_cache, s.cfg.train.channels_last)
    _save_best(run, s.raw_model, s.data, s.val_rows, probs, targets, ok, st.best_epoch, st.best_score)


# ---- one epoch of training ---------------------------------------------------------------------

def _train_epoch(run: RunFolder, s: _Setup, st: _LoopState, epoch: int, progress: ProgressFn | None,
                 dist: _Dist, stop: _StopFlag) -> dict | None:
    """One pass over the training loader: the epoch's record (training part), None when stopped."""
    tc = s.cfg.train
    s.sampler.set_epoch(epoch)
    s.train_ds.epoch = epoch
    s.model.train()
    t0 = time.time()
    seen, loss_sum, n_batches = 0, 0.0, 0
    window_t, window_n = time.time(), 0
    wait, t_ready = 0.0, time.perf_counter()  # seconds the step waited for the loader (input-bound share)
    for b, batch in enumerate(s.loader):
        wait += time.perf_counter() - t_ready
        if tc.max_train_batches and b >= tc.max_train_batches:
            break
        if _should_stop(stop, dist):
            return None
        loss, lr, n = _train_step(s, st, batch)
        n_batches += 1
        seen += n
        window_n += n
        loss_sum += float(loss.detach())
        # The first step too: a watcher sees a loss within seconds, not after `log_every_steps` steps.
        if dist.main and (st.step % tc.log_every_steps == 0 or b == 0 or b == s.steps_per_epoch - 1):
            now = time.time()
            rec = {"kind": "step", "epoch": epoch, "step": st.step, "loss": round(float(loss.detach()), 5),
                   "lr": lr, "samples_per_s": round(window_n * dist.world / max(now - window_t, 1e-6), 2)}
            run.log(rec)
            window_t, window_n = now, 0
            if progress:
                progress(rec)
        t_ready = time.perf_counter()
    train_time = time.time() - t0
    return {"kind": "epoch", "epoch": epoch, "train_loss": round(loss_sum / max(n_batches, 1), 5),
            "train_samples_per_s": round(seen * dist.world / max(train_time, 1e-6), 2),
            "epoch_time_s": round(train_time, 2), "data_wait_s": round(wait, 2)}


def _train_step(s: _Setup, st: _LoopState, batch) -> tuple[torch.Tensor, float, int]:
    """One optimiser step on `batch`: (loss, learning rate, batch size after augmentation)."""
    tc = s.cfg.train
    wave, target, sw = batch
    lr = lr_at(st.step, s.total_steps, s.warmup, tc.lr, tc.min_lr_ratio)
    for g in s.opt.param_groups:
        g["lr"] = lr
    wave, target, sw = wave.to(s.device, non_blocking=True), target.to(s.device), sw.to(s.device)
    with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.use_amp):
        wave, target, sw = s.batch_aug.before_frontend(wave, target, sw, st.step)
        mel, target, sw = model_input(s.raw_model.frontend, s.batch_aug, wave, target, sw, st.step,
                                      tc.channels_last)
        # Through the (DDP-)wrapped module so gradient sync hooks run.
        clip, _ = s.model(mel, from_mel=True)
        loss = s.loss_fn(clip, target, sw)
    s.opt.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    if tc.grad_clip > 0:
        s.scaler.unscale_(s.opt)
        torch.nn.utils.clip_grad_norm_(s.raw_model.parameters(), tc.grad_clip)
    s.scaler.step(s.opt)
    s.scaler.update()
    st.step += 1
    return loss, lr, len(wave)


def model_input(frontend, batch_aug: BatchAugment, wave: torch.Tensor, target: torch.Tensor, sw: torch.Tensor,
                step: int, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's training input: mel front end, then `batch_aug.after_frontend` (mel-domain
    mixing, SpecAugment), in channels-last memory format when asked.

    With one channel or "repeat" channels the augmentations run on the one-channel image and the
    copies are made after: the same values as augmenting the copies (every channel of an image
    gets the same masks, shift and mix, and the random draws depend only on batch, height and
    width), a third of the work, and one copy straight into the final memory format. Measured on
    32 × 128 × 313 images, one thread: SpecAugment 16.5 → 7.9 ms. "deltas" channels differ after
    masking, so they are built first, as before.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    c = frontend.cfg
    if c.in_chans == 3 and c.channel_mode == "deltas":
        mel = frontend(wave)
        mel, target, sw = batch_aug.after_frontend(mel, target, sw, step)
        return mel.contiguous(memory_format=fmt), target, sw
    image = frontend.normalize(frontend.db(wave)).unsqueeze(1)
    image, target, sw = batch_aug.after_frontend(image, target, sw, step)
    return image.expand(-1, c.in_chans, -1, -1).contiguous(memory_format=fmt), target, sw


# ---- validation, early stopping, end-of-epoch writes -------------------------------------------

def _close_epoch(run: RunFolder, s: _Setup, st: _LoopState, epoch: int, record: dict, t_process: float,
                 progress: ProgressFn | None) -> bool:
    """Validate, update best / patience, write the epoch's files (main process); True = stop early."""
    tc = s.cfg.train
    score, probs, targets, ok = _validate(s, st, record)
    improved = score > st.best_score or s.val_loader is None  # no validation: the latest epoch is the model
    if improved:
        st.best_score, st.best_epoch, st.bad_epochs = score, epoch, 0
    else:
        st.bad_epochs += 1
    stop_early = s.val_loader is not None and st.bad_epochs >= tc.patience
    elapsed = st.elapsed + (time.time() - t_process)
    per_epoch = elapsed / max(st.epoch, 1)
    record.update({"best_epoch": st.best_epoch, "best_score": _r(st.best_score), "improved": improved,
                   "elapsed_s": round(elapsed, 1),
                   "eta_s": 0.0 if stop_early else round(per_epoch * (tc.epochs - st.epoch), 1)})
    _write_epoch(run, s, st, epoch, record, elapsed, improved, probs, targets, ok)
    if progress:
        progress(record)
    return stop_early


def _validate(s: _Setup, st: _LoopState, record: dict) -> tuple[float, np.ndarray | None, np.ndarray | None,
                                                                 np.ndarray | None]:
    """(monitored score, probabilities, targets, decoded-rows mask); adds the metrics to `record`.

    Without validation rows (train.fold=-1) there is no score: -inf, reported as none.
    """
    if s.val_loader is None:
        return -math.inf, None, None, None
    tc = s.cfg.train
    t0 = time.time()
    probs, targets, val_loss, ok = _evaluate(s.raw_model, s.val_loader, s.loss_fn, s.device, s.use_amp,
                                             s.val_cache, tc.channels_last)
    record["val_time_s"] = round(time.time() - t0, 2)
    metrics = compute_all(targets[ok], probs[ok], s.data.classes, threshold=tc.monitor_threshold)
    record.update({"val_loss": round(val_loss, 5), **{k: _r(v) for k, v in metrics.items()}})
    score = metrics[tc.monitor]
    score = -math.inf if score is None or not np.isfinite(score) else float(score)
    return score, probs, targets, ok


def _write_epoch(run: RunFolder, s: _Setup, st: _LoopState, epoch: int, record: dict, elapsed: float,
                 improved: bool, probs, targets, ok) -> None:
    """The epoch's files, in crash-safe order: metrics line, last.pt, best.pt + OOF, status."""
    run.log(record)
    # last.pt first: it holds this epoch's weights, so resume can rebuild best.pt and the
    # OOF table if a crash lands between these writes (see `_restore`)
    save_checkpoint(run.last_checkpoint, {
        "model": s.raw_model.state_dict(), "optimizer": s.opt.state_dict(), "scaler": s.scaler.state_dict(),
        "epoch": st.epoch, "step": st.step, "best_score": st.best_score, "best_epoch": st.best_epoch,
        "bad_epochs": st.bad_epochs, "elapsed": elapsed, "rng": rng_state(),
        "metrics_size": run.metrics_size(), "classes": s.data.classes})
    if improved:
        _save_best(run, s.raw_model, s.data, s.val_rows, probs, targets, ok, epoch, st.best_score)
    run.update_status(epoch=st.epoch, best_score=_r(st.best_score), best_epoch=st.best_epoch,
                      eta_s=record["eta_s"], last_epoch_time_s=record["epoch_time_s"],
                      skipped=len(read_skipped(run.path)))


def _agree_stop_early(stop_early: bool, dist: _Dist) -> bool:
    """The main process's early-stop decision, shared with every rank."""
    if dist.enabled:
        flag = torch.tensor([1 if stop_early else 0])
        torch.distributed.broadcast(flag, 0)
        stop_early = bool(flag.item())
    return stop_early


def _finish(run: RunFolder, final_state: str, dist: _Dist) -> dict:
    """The final status: `finished` or `stopped` (main process writes it)."""
    if dist.main:
        fields = {"state": final_state, "finished_at": now_iso(), "pid": None}
        if final_state == "finished":
            fields["eta_s"] = 0.0
        return run.update_status(**fields)
    return {"state": final_state}


def _should_stop(stop: _StopFlag, dist: _Dist) -> bool:
    if not dist.enabled:
        return stop.requested
    flag = torch.tensor([1 if stop.requested else 0])
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


class _ValCache:
    """Validation batches as (mel image (B, n_mels, frames), target, weight), kept after the first
    validation when they fit in `limit` bytes.

    Validation clips are fixed (no augmentation, deterministic crop) and the front end has no
    parameters, so the images never change: later validations skip decoding and the mel front end
    and run only the network. One channel is kept (`to_channels` is applied per batch), a third of
    the "repeat" input's memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list | None = None  # filled by the first complete validation
        self.full = False                 # over the limit: never cache, always recompute

    def take(self, batches: list) -> None:
        size = sum(x.numel() * x.element_size() for x, _, _ in batches)
        if size <= self.limit:
            self.batches = batches
        else:
            self.full = True


def _val_batches(model, loader, device, cache: _ValCache | None):
    """Yield (image on `device`, target, weight) per validation batch, from `cache` when filled."""
    if cache is not None and cache.batches is not None:
        for image, target, sw in cache.batches:
            yield image.to(device), target, sw
        return
    keep = [] if cache is not None and not cache.full else None
    fe = model.frontend
    for wave, target, sw in loader:
        image = fe.normalize(fe.db(wave.to(device)))
        if keep is not None:
            keep.append((image.cpu(), target, sw))
        yield image, target, sw
    if keep is not None:
        cache.take(keep)


@torch.inference_mode()
def _evaluate(model, loader, loss_fn, device, use_amp, cache: _ValCache | None = None,
              channels_last: bool = False) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Validation probabilities, binary targets, mean loss, and the mask of rows that decoded.

    `cache` (see `_ValCache`) keeps the validation mel images after the first call; the network
    then runs on them directly. Same outputs as `model(wave)`: the front end is
    `to_channels(normalize(db(wave)))`, split here only to keep the one-channel image.
    """
    model.eval()
    probs, targets, losses, n, ok = [], [], 0.0, 0, []
    for image, target, sw in _val_batches(model, loader, device, cache):
        ok.append((sw >= 0).numpy())
        target = target.to(device)
        x = model.frontend.to_channels(image)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            clip, frame = model(x, from_mel=True)
            loss = loss_fn(clip, target)
        p = clip_probability(torch.sigmoid(clip.float()), torch.sigmoid(frame.float()), model.inference_prob)
        probs.append(p.cpu().numpy())
        targets.append((target >= 0.5).float().cpu().numpy())
        losses += float(loss) * len(x)
        n += len(x)
    model.train()
    return np.concatenate(probs), np.concatenate(targets), losses / max(n, 1), np.concatenate(ok)


def _best_epoch_on_disk(run: RunFolder) -> int | None:
    if not run.best_checkpoint.exists():
        return None
    try:
        return int(load_checkpoint(run.best_checkpoint)["epoch"])
    except Exception:  # unreadable best.pt: rebuild it
        return None


def _save_best(run: RunFolder, model, data: RunData, val_rows, probs, targets, ok, epoch: int, score: float) -> None:
    """The best epoch's files: OOF predictions (validation rows that decoded) and best.pt."""
    if probs is not None:
        write_oof(run, data, val_rows[ok], probs[ok], targets[ok], epoch)
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": epoch, "score": score,
                                          "classes": data.classes})


def _r(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, 6) if np.isfinite(v) else None
