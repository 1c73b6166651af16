"""Loss and training-loop configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from birdcore.config.base import check_range


@dataclass
class LossConfig:
    """Loss on clip logits.

    - `kind`: "bce" (multi-label BCE with logits, the seed's winning choice), "focal" (focal BCE,
      `focal_gamma`), or "ce" (softmax cross-entropy on the primary label — the seed's starting
      baseline, kept for comparison).
    - `class_weights`: "none" or "inv_sqrt" (w_c ∝ count_c^-0.5, normalised to mean 1).
    - `label_smoothing`: targets become y·(1-ε) + ε/2 for BCE (ε/C spread for CE).
    - Per-sample weights come from `data.rating_weight`.
    """

    kind: Literal["bce", "focal", "ce"] = "bce"
    class_weights: Literal["none", "inv_sqrt"] = "inv_sqrt"
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0

    def __post_init__(self) -> None:
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.5)
        check_range("focal_gamma", self.focal_gamma, 0.0, 10.0)


@dataclass
class TrainConfig:
    """Optimisation, validation and run control.

    - Folds: stratified K-fold on `primary_label` (seeded); species with fewer recordings than
      `n_folds` stay in training for every fold. `fold` picks the validation fold; `fold = -1`
      trains on everything with no validation (no early stopping).
    - Early stopping on `monitor` (any key of `birdcore.evaluation.metrics.compute_all`, e.g. "micro_f1",
      "macro_f1", "birdclef2022") evaluated at `monitor_threshold`; stops after `patience` epochs
      without improvement.
    - `sampler`: "shuffle" or "class_balanced" (weights ∝ count^-0.5 per recording, drawn with
      replacement — "super important" for the 2023 winners).
    - `device`: "auto" = CUDA when present, else CPU. `amp` = mixed precision, CUDA only.
    - `num_workers`: DataLoader workers; -1 = pick for the machine (cores - 1, at most 8).
    - `max_train_batches`: cap per epoch (0 = no cap) — handy for smoke runs.

    CPU throughput (issue 17 item 5; figures from `benchmarks/bench_train.py --profile`, one
    thread, EfficientNet-Lite0 at 64 mels × 251 frames, batch 32, CPU-seconds so other load does
    not move them):
    - `channels_last`: the backbone and its input in NHWC memory format. oneDNN's convolutions
      run natively in it: forward+backward+AdamW 13.5 → 23 samples per CPU-s (1.7×), evaluation
      ~60 → ~95 clips per CPU-s. Numerically the same network (float summation order only).
    - `preload_audio_mb`: decode every recording of the run into RAM once before the first epoch
      when they fit in this many MB of float32 (0 = off; skipped when the decoded-audio cache of
      `birdcore cache` exists, which is already fast). Decoding an OGG window costs ~11 ms of CPU
      per 5-s clip, repeated every epoch (DataLoader workers are re-created per epoch and keep
      nothing); a RAM slice costs ~0.1 ms. The loader's worker processes are forked and share
      the arrays.
    - `val_cache_mb`: validation clips are fixed (first `clip_seconds` of each recording, no
      augmentation), so their mel images are computed once and kept when they fit in this many MB
      (0 = off); later validations run only the network, under `torch.inference_mode`. With the
      images cached, validating the demo's 43 clips costs ~0.5 CPU-s against ~11 CPU-s of
      training per epoch, so there is no "validate every N epochs" option: it would save ~4 % and
      make early stopping and the best checkpoint coarser.
    - `torch_threads`: intra-op threads of the training process; 0 = auto: on CPU the cores left
      after the `num_workers` loader processes (at least 1), on GPUs torch's default. Torch's
      default on CPU (every core) fights the loader workers: OpenMP threads spin at each barrier
      when one is descheduled — measured at batch 32 on the shared 2-core machine (load ~6):
      1 thread 11–14 samples/s, 2 threads 2.9–3.5 samples/s (see `loop.train_threads`).

    Measured and not adopted (so no fields): bf16 autocast on CPU (the machine has AMX) gave
    15.8–21.7 samples per CPU-s without channels-last and 14.7–15.9 with it, against 23 for fp32
    channels-last; `torch.compile` (inductor) had not finished compiling the first training step
    after 8.5 minutes (one thread, load ~9) — a demo run lasts about a minute. A precomputed-mel
    cache for training: with RAM-preloaded audio the whole input pipeline (read, waveform
    augmentations, mixup, mel, SpecAugment) is 14 % of a demo-cpu clip's CPU (8.7 of 62 ms; the
    network is the rest), so a mel cache could save at most that while dropping the waveform
    augmentations and moving the random crop onto images.
    """

    epochs: int = 20
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    n_folds: int = 5
    fold: int = 0
    patience: int = 5
    monitor: str = "micro_f1"
    monitor_threshold: float = 0.3
    sampler: Literal["shuffle", "class_balanced"] = "shuffle"
    device: str = "auto"
    amp: bool = True
    num_workers: int = -1
    max_train_batches: int = 0
    log_every_steps: int = 10
    seed: int = 42
    channels_last: bool = True
    preload_audio_mb: int = 0
    val_cache_mb: int = 512
    torch_threads: int = 0

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("eval_batch_size", self.eval_batch_size, 1)
        check_range("lr", self.lr, 0.0, 1.0, lo_open=True)
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("warmup_epochs", self.warmup_epochs, 0.0)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_range("grad_clip", self.grad_clip, 0.0)
        check_range("n_folds", self.n_folds, 2, 20)
        check_range("fold", self.fold, -1, self.n_folds - 1)
        check_range("patience", self.patience, 1)
        check_range("monitor_threshold", self.monitor_threshold, 0.0, 1.0)
        check_range("num_workers", self.num_workers, -1, 64)
        check_range("max_train_batches", self.max_train_batches, 0)
        check_range("log_every_steps", self.log_every_steps, 1)
        check_range("preload_audio_mb", self.preload_audio_mb, 0)
        check_range("val_cache_mb", self.val_cache_mb, 0)
        check_range("torch_threads", self.torch_threads, 0, 256)
        check_device_name(self.device)


def check_device_name(name: str) -> str:
    """`name` when it is auto, cpu, cuda or cuda:N; ConfigError naming the field `device` otherwise.

    Only the spelling is checked here; whether this machine has that device is decided when a run
    starts (`birdcore.models.device.resolve_device`)."""
    import re

    from birdcore.errors import ConfigError

    if not (isinstance(name, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", name)):
        raise ConfigError(f"device: {name!r} is not auto, cpu, cuda or cuda:N")
    return name
