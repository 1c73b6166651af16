"""Preview of the augmentation chain on one clip (the app's augmentation page, tests).

Runs the same functions as training — `read_window`'s time extension, `WaveformPipeline`,
`MelFrontend`, `spec_augment` — on one window chosen by the caller (`offset`, `duration`) rather
than by `crop.mode`, so the user sees the part they picked. Batch mixing needs a batch and is not
shown. Optional denoising runs first on the augmented path and is reported as a fired transform;
the original stays raw.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from birdcore.audio.io import fit_length, load_audio
from birdcore.augment.pipeline import waveform_pipeline
from birdcore.augment.spectrogram import spec_augment
from birdcore.augment.waveform import Fired
from birdcore.config.augment import AugmentConfig
from birdcore.config.features import DenoiseConfig, MelConfig
from birdcore.features.denoise import denoise as run_denoise
from birdcore.features.mel_frontend import MelFrontend

__all__ = ["PreviewResult", "preview"]


@dataclass
class PreviewResult:
    """Original vs augmented window of one clip.

    Waveforms: float32 (samples,) at `sample_rate`. Mel images: float32 (n_mels, frames), the
    network's first input channel (normalised per `MelConfig.normalization`); the augmented one
    includes the spectrogram transforms. `fired`: transforms that fired, in order, with their
    sampled parameters. `seconds`: wall time of the whole preview.
    """

    original: np.ndarray
    augmented: np.ndarray
    original_mel: np.ndarray
    augmented_mel: np.ndarray
    sample_rate: int
    hop_length: int
    fired: list[Fired] = field(default_factory=list)
    seconds: float = 0.0


_FRONTENDS: dict[str, MelFrontend] = {}


def _frontend(cfg: MelConfig) -> MelFrontend:
    fe = _FRONTENDS.get(repr(cfg))
    if fe is None:
        fe = _FRONTENDS[repr(cfg)] = MelFrontend(cfg).eval()
    return fe


def preview(
    clip_or_path: np.ndarray | str | os.PathLike,
    aug_cfg: AugmentConfig,
    mel_cfg: MelConfig,
    seed: int,
    offset: float = 0.0,
    duration: float = 5.0,
    denoise: DenoiseConfig | None = None,
) -> PreviewResult:
    """Augment the window [offset, offset + duration) s of a clip and return both versions.

    `clip_or_path`: a path (decoded at `mel_cfg.sample_rate`) or a mono waveform already at that
    rate. A window running past the end is padded with silence (as training's time extension
    does). The same `seed` gives the same result. Raises AudioError for unreadable files.
    """
    t0 = time.perf_counter()
    sr = mel_cfg.sample_rate
    n = int(round(duration * sr))
    if isinstance(clip_or_path, np.ndarray):
        start = int(round(offset * sr))
        y = np.asarray(clip_or_path, dtype=np.float32)[start:start + n]
    else:
        y = load_audio(clip_or_path, sr=sr, offset=offset, duration=duration)
    original = fit_length(np.ascontiguousarray(y, dtype=np.float32), n)

    rng = np.random.default_rng(seed)
    fired: list[Fired] = []
    work = original
    if denoise is not None and denoise.enabled:
        work = run_denoise(work, sr, denoise)
        fired.append(Fired("denoise", {"stationary": denoise.stationary, "prop_decrease": denoise.prop_decrease}))
    augmented, wave_fired = waveform_pipeline(aug_cfg, sr)(work, rng)
    fired.extend(wave_fired)

    fe = _frontend(mel_cfg)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    with torch.inference_mode():
        batch = torch.from_numpy(np.stack([original, augmented]))
        mels = fe(batch)
        report: list[list[Fired]] = [[]]
        aug_mel = spec_augment(mels[1:], aug_cfg, gen, report)
    fired.extend(report[0])
    return PreviewResult(
        original=original,
        augmented=augmented,
        original_mel=mels[0, 0].numpy().copy(),
        augmented_mel=aug_mel[0, 0].numpy().copy(),
        sample_rate=sr,
        hop_length=mel_cfg.hop_length,
        fired=fired,
        seconds=time.perf_counter() - t0,
    )
