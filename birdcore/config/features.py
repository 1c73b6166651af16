"""Mel front-end configuration (placeholder; the front-end work fills it in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MelConfig:
    """Log-mel front end parameters."""

    sample_rate: int = 32000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 16000.0
    in_chans: int = 3
