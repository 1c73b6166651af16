"""Clip loaders for a run: what the datasets call to get a training / validation waveform.

Training: the augmentation pipeline's `load_training_clip` (crop + time extension + waveform
transforms), reading from the decoded-audio cache when `birdcore cache` built one (memory-mapped,
~10× faster than decoding ogg), else from the files. When a short clip is extended with another
recording, that recording's labels are added to the target (OR), as it is audible in the clip.
Validation: the first `clip_seconds` of each recording (deterministic; most xeno-canto
recordings start on the call).

Without a decoded-audio cache, `train.preload_audio_mb` > 0 decodes every recording into RAM once
(`preload_audio`) when they fit: the DataLoader's workers are re-created each epoch, so anything a
worker decodes is lost, while arrays loaded in the main process before the fork are shared.

`BatchAugment` runs on the training device: batch mixing (mixup/cutmix) before the front end when
`augment.mix_on == "wave"` (else after it), spectrogram augmentations after it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from birdcore.audio.io import audio_info, fit_length, load_audio
from birdcore.augment.batch_mix import mix_batch_info
from birdcore.augment.pipeline import apply_spec_augment, load_training_clip, waveform_pipeline
from birdcore.augment.window import SpanSource, as_source, span_name
from birdcore.config.features import DenoiseConfig
from birdcore.config.run import RunConfig
from birdcore.data.dataset import BirdDataset
from birdcore.features.denoise import maybe_denoise
from birdcore.training.data import RunData

ClipFn = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _open_cache(ds: BirdDataset, cfg: RunConfig):
    if not cfg.data.use_cache:
        return None
    from birdcore.audio.cache import open_cache

    try:
        return open_cache(ds.root, sr=cfg.sample_rate)
    except Exception:  # no cache built (the common case) or an unreadable one: decode files instead
        return None


class PreloadedAudio:
    """A whole recording decoded into RAM: a window source (`birdcore.augment.window.AudioSource`)
    whose reads are array slices. Reads equal `load_audio(path, sr, offset, duration)`: offsets
    and lengths are rounded to samples the same way."""

    def __init__(self, name: str, y: np.ndarray, sr: int) -> None:
        self.name, self.y, self.sample_rate = name, y, sr

    @property
    def duration(self) -> float:
        return len(self.y) / self.sample_rate

    def read(self, offset_s: float, duration_s: float | None) -> np.ndarray:
        from birdcore.errors import AudioError

        start = int(round(offset_s * self.sample_rate))
        if start < 0 or start >= len(self.y):
            raise AudioError(f"{self.name}: offset {offset_s:.3f} s is outside the recording ({self.duration:.3f} s)")
        stop = len(self.y) if duration_s is None else min(len(self.y), start + int(round(duration_s * self.sample_rate)))
        return self.y[start:stop].copy()  # a copy: augmentations may write their input


def preload_audio(paths: list[str], sr: int, budget_mb: float, workers: int = 2) -> dict[str, PreloadedAudio]:
    """{path: PreloadedAudio} for every distinct path that decodes, or {} when the decoded float32
    audio would exceed `budget_mb` (checked from the headers before decoding anything).

    Files that fail to decode are left out: reading them goes through `load_audio` as before and
    the training loop's skip-and-record path handles the error. Decoding runs on `workers` threads
    (libsndfile and soxr release the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    from birdcore.errors import AudioError

    unique = list(dict.fromkeys(paths))
    total = 0.0
    for p in unique:
        try:
            total += audio_info(p).duration * sr * 4 / 2**20
        except AudioError:
            continue
        if total > budget_mb:
            return {}

    def one(p: str):
        try:
            return p, load_audio(p, sr=sr)
        except AudioError:
            return p, None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return {p: PreloadedAudio(p, y, sr) for p, y in pool.map(one, unique) if y is not None}


def make_clip_loaders(cfg: RunConfig, data: RunData, ds: BirdDataset) -> tuple[ClipFn, ClipFn, "BatchAugment"]:
    """(train_clip, val_clip, batch_augment). Clip functions return (waveform, target row)."""
    sr = cfg.sample_rate
    secs = cfg.data.clip_seconds
    n = int(round(secs * sr))
    cache = _open_cache(ds, cfg)
    ram: dict[str, PreloadedAudio] = {}
    if cache is None and cfg.train.preload_audio_mb > 0:
        ram = preload_audio(data.paths, sr, cfg.train.preload_audio_mb)
    # Built here, in the main process, so the per-epoch (forked) loader workers inherit the built
    # transforms and their imports (audiomentations + librosa, ~1 s) instead of redoing them.
    waveform_pipeline(cfg.augment, sr)
    by_name = {name: r for r, name in enumerate(data.paths)}
    by_name.update({name: r for r, name in enumerate(data.filenames)})
    for r, span in enumerate(data.spans or []):  # a filler that is a span of a file names that span
        if span is not None:
            by_name.update({span_name(data.paths[r], *span): r, span_name(data.filenames[r], *span): r})

    def source(r: int):
        src = None
        if cache is not None:
            try:
                src = cache.entry(data.filenames[r])
            except (KeyError, FileNotFoundError, ValueError):
                pass  # not cached (e.g. it failed to decode when the cache was built): read the file
        if src is None:
            src = ram.get(data.paths[r]) or as_source(data.paths[r], sr)
        if data.spans and data.spans[r] is not None:
            src = SpanSource(src, *data.spans[r])
        return DenoisedSource(src, cfg.denoise) if cfg.denoise.enabled else src

    def other(rng: np.random.Generator):
        return source(int(rng.integers(len(data.paths))))

    def train_clip(r: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y, info = load_training_clip(source(r), cfg.augment, rng, seconds=secs, sr=sr, other=other, return_info=True)
        target = data.targets[r]
        filler = info.window.filler
        if filler is not None and filler in by_name:
            target = np.maximum(target, data.targets[by_name[filler]])
        return y, target

    def val_clip(r: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # noqa: ARG001
        span = data.spans[r] if data.spans else None
        start, dur = (0.0, secs) if span is None else (span[0], min(secs, span[1] - span[0]))
        pre = ram.get(data.paths[r])
        y = pre.read(start, dur) if pre is not None else load_audio(data.paths[r], sr=sr, offset=start, duration=dur)
        y = maybe_denoise(y, sr, cfg.denoise)
        return fit_length(y, n), data.targets[r]

    return train_clip, val_clip, BatchAugment(cfg, seed=cfg.train.seed)


class DenoisedSource:
    """A window source whose reads are noise-reduced (before any augmentation adds noise)."""

    def __init__(self, inner, cfg: DenoiseConfig) -> None:
        self.inner, self.cfg = inner, cfg
        self.name, self.sample_rate = inner.name, inner.sample_rate

    @property
    def duration(self) -> float:
        return self.inner.duration

    def read(self, offset_s: float, duration_s: float) -> np.ndarray:
        return maybe_denoise(self.inner.read(offset_s, duration_s), self.sample_rate, self.cfg)


class BatchAugment:
    """Batch-level augmentations on the training device, seeded per step for reproducibility."""

    def __init__(self, cfg: RunConfig, seed: int) -> None:
        self.cfg = cfg.augment
        self.seed = seed

    def _gen(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 100_003 + step)

    def _mix(self, x, target, sw, step):
        res = mix_batch_info(x, target, self.cfg, self._gen(step))
        # a mixed sample's loss weight mixes like its content (own share `weight`)
        w = res.weight.to(sw.device, sw.dtype)
        return res.x, res.y, w * sw + (1 - w) * sw[res.partner.to(sw.device)]

    def before_frontend(self, wave, target, sw, step: int):
        if self.cfg.enabled and self.cfg.mix_on == "wave":
            return self._mix(wave, target, sw, step)
        return wave, target, sw

    def after_frontend(self, mel, target, sw, step: int):
        if not self.cfg.enabled:
            return mel, target, sw
        if self.cfg.mix_on == "mel":
            mel, target, sw = self._mix(mel, target, sw, step)
        return apply_spec_augment(mel, self.cfg, self._gen(step + 7_919_113)), target, sw
