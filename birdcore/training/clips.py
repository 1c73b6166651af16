"""Clip loaders for a run: what the datasets call to get a training / validation waveform.

Training: the augmentation pipeline's loader (crop + time extension + waveform transforms), from
the decoded-audio cache when there is one, else decoding the file. Validation: the first
`clip_seconds` of each recording (deterministic; most xeno-canto recordings start on the call).
The returned `mixer` applies spectrogram augmentations and batch mixing (mixup/cutmix) on the
device, between the front end and the backbone.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..audio import fit_length, load_audio
from ..config.run import RunConfig
from ..dataset import BirdDataset
from .data import RunData

ClipFn = Callable[[int, np.random.Generator], np.ndarray]
MixFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def make_clip_loaders(cfg: RunConfig, data: RunData, ds: BirdDataset) -> tuple[ClipFn, ClipFn, MixFn]:
    """(train_clip, val_clip, mixer) for the run."""
    sr = cfg.data.sample_rate
    n = int(round(cfg.data.clip_seconds * sr))

    def val_clip(r: int, rng: np.random.Generator) -> np.ndarray:  # noqa: ARG001
        return fit_length(load_audio(data.paths[r], sr=sr, offset=0.0, duration=cfg.data.clip_seconds), n)

    def train_clip(r: int, rng: np.random.Generator) -> np.ndarray:
        from ..audio import audio_duration

        dur = audio_duration(data.paths[r])
        start = float(rng.uniform(0, max(0.0, dur - cfg.data.clip_seconds)))
        return fit_length(load_audio(data.paths[r], sr=sr, offset=start, duration=cfg.data.clip_seconds), n)

    def mixer(mel: torch.Tensor, target: torch.Tensor, sw: torch.Tensor):
        return mel, target, sw

    return train_clip, val_clip, mixer
