"""The augmentation chain as the training code calls it (and the preview, through the same code).

Per clip, in DataLoader workers (NumPy):
    y = load_training_clip(source, aug_cfg, rng, seconds=5.0, sr=32000)
        = read window (crop / time extension) → waveform transforms (`WaveformPipeline`)
Per batch, on the training device (torch):
    mel = frontend(waves)                                  # birdcore.features.MelFrontend
    mel = apply_spec_augment(mel, aug_cfg, generator)      # SpecPipeline
    x, y = mix_batch(waves or mel, targets, aug_cfg, generator)   # per aug_cfg.mix_on

Determinism: a clip's result depends only on (source, config, rng state); seed the rng per
(epoch, index) — e.g. `np.random.default_rng([seed, epoch, index])` — to make an epoch
reproducible regardless of worker count. Spectrogram and mixing draw from a `torch.Generator`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from birdcore.audio.io import DEFAULT_SR
from birdcore.augment.batch_mix import MixResult, mix_batch, mix_batch_info
from birdcore.augment.spectrogram import apply_spec_augment, spec_augment
from birdcore.augment.waveform import Fired, SeededTransform, build_wave_transforms, keep_global_state
from birdcore.augment.window import OtherAudio, SourceLike, Window, read_window
from birdcore.config.augment import AugmentConfig

__all__ = [
    "WaveformPipeline", "SpecPipeline", "BatchMixer", "load_training_clip", "ClipInfo",
    "apply_spec_augment", "mix_batch", "mix_batch_info", "MixResult", "Fired", "as_rng",
]


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (as is), an int seed, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class WaveformPipeline:
    """The configured waveform transforms (p > 0), applied in `cfg.wave_order`.

    `__call__(y, rng)` returns (augmented float32 waveform, list of `Fired`). The length is
    preserved by every transform (time stretch keeps length, see `TimeStretchConfig`).
    """

    def __init__(self, cfg: AugmentConfig, sr: int = DEFAULT_SR) -> None:
        self.cfg = cfg
        self.sr = sr
        self.transforms: list[SeededTransform] = build_wave_transforms(cfg, sr)

    def __call__(self, y: np.ndarray, rng: np.random.Generator | int | None) -> tuple[np.ndarray, list[Fired]]:
        rng = as_rng(rng)
        fired: list[Fired] = []
        y = np.asarray(y, dtype=np.float32)
        # One save/restore of the global random states for the chain, not one per transform.
        with keep_global_state():
            for t in self.transforms:
                y, f = t(y, self.sr, rng)
                if f is not None:
                    fired.append(f)
        return y, fired


class SpecPipeline:
    """Spectrogram transforms of `cfg` on a batch: `__call__(mel, generator)` → new tensor."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, mel: torch.Tensor, generator: torch.Generator | None = None,
                 report: list[list[Fired]] | None = None) -> torch.Tensor:
        return spec_augment(mel, self.cfg, generator, report)


class BatchMixer:
    """mixup / cutmix of `cfg` on a batch: `__call__(x, targets, generator)` → `MixResult`."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator | None = None) -> MixResult:
        return mix_batch_info(x, targets, self.cfg, generator)


class ClipInfo:
    """What `load_training_clip` did: the window (`Window`) and the fired waveform transforms."""

    def __init__(self, window: Window, fired: list[Fired]) -> None:
        self.window = window
        self.fired = fired

    def __repr__(self) -> str:
        return f"ClipInfo(window={self.window!r}, fired={self.fired!r})"


_PIPELINES: dict[tuple[str, int], WaveformPipeline] = {}


def waveform_pipeline(cfg: AugmentConfig, sr: int) -> WaveformPipeline:
    """The waveform chain of `cfg` at rate `sr`, built once per process and reused."""
    # One pipeline per (config, rate) per process: building AddBackgroundNoise scans its folder.
    key = (repr(cfg), sr)
    p = _PIPELINES.get(key)
    if p is None:
        if len(_PIPELINES) > 16:
            _PIPELINES.clear()
        p = _PIPELINES[key] = WaveformPipeline(cfg, sr)
    return p


def load_training_clip(
    source: SourceLike,
    cfg: AugmentConfig,
    rng: np.random.Generator | int | None,
    *,
    seconds: float = 5.0,
    sr: int = DEFAULT_SR,
    other: OtherAudio | None = None,
    return_info: bool = False,
) -> Any:
    """One training clip: float32 (round(seconds·sr),) after crop, time extension and waveform augs.

    - `source`: a path (decoded from disk, only the window), a `birdcore.audio.cache.CacheEntry`
      (`CachedAudio.entry(filename)`, memory-mapped), or any `AudioSource`.
    - `rng`: NumPy Generator or int seed; the same state gives an identical clip.
    - `other`: recordings to fill short clips with (list of sources/paths, or `rng -> source`);
      used with probability `cfg.extend.other_audio_ratio` (only when `cfg.enabled`).
    - `return_info=True` returns (clip, ClipInfo) — e.g. to add the filler's labels.
    Raises AudioError when the source cannot be read.
    """
    rng = as_rng(rng)
    ratio = cfg.extend.other_audio_ratio if cfg.enabled else 0.0
    y, window = read_window(source, seconds, sr, cfg.crop.mode, rng, other=other, other_ratio=ratio)
    y, fired = waveform_pipeline(cfg, sr)(y, rng)
    return (y, ClipInfo(window, fired)) if return_info else y
