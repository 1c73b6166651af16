"""Mel front-end and denoising configuration, with the two proven front-end lineages as presets.

Units: `sample_rate` in Hz, `n_fft`/`hop_length` in samples, `fmin`/`fmax` in Hz, `top_db` in dB.

Decibels are absolute (`ref=1.0`, as `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)` and
torchaudio's `AmplitudeToDB`): a full-scale tone sits near +30 dB and quiet background near
-60…-100 dB. `top_db` clamps each image from below at (its own maximum − top_db).

Normalisation (`normalization`):
- "db80" (default): `(dB + 80) / 80`, the 2022 1st-place input. It is a fixed affine map, so the
  absolute level survives: a window with no bird stays dark instead of being stretched to full
  contrast, the gain augmentation (±15 dB) actually changes the input, and the map is identical for
  every batch composition and trivially exportable. Values are not clipped to [0, 1].
- "minmax": `(dB - min) / (max - min)` per image, in [0, 1]. Invariant to recording gain (so gain
  augmentation is a no-op under it) but stretches pure-noise windows to full contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from birdcore.config.base import ConfigError, check_choice, check_range

__all__ = ["DEFAULT_SR", "MelConfig", "DenoiseConfig", "MEL_PRESETS", "mel_preset"]

# The engine's sample rate in Hz: BirdCLEF's recordings are 32 kHz, both front-end lineages below
# use it, and it is the default decode rate everywhere (`birdcore.audio.io` re-exports it). It
# lives here, in the config layer, because it is first of all `MelConfig.sample_rate`'s default
# and the config layer may not import the audio layer above it.
DEFAULT_SR = 32000


@dataclass
class MelConfig:
    """Log-mel front end parameters (defaults = the "hop512" lineage with db80 normalisation).

    - `power`: 2.0 = power spectrogram (what both lineages used), 1.0 = magnitude.
    - `top_db`: per-image dynamic-range floor in dB below the image maximum; None = no floor.
    - `in_chans`: 1, or 3 for ImageNet-pretrained backbones.
    - `channel_mode` (only with in_chans 3): "repeat" = the same image three times; "deltas" =
      (image, Δ, ΔΔ) with the HTK regression delta over ±`delta_width` frames on the normalised
      image (torchaudio's `ComputeDeltas` formula, not librosa's Savitzky–Golay `delta`).
    - A 5-s window gives `1 + 5 * sample_rate // hop_length` frames (313 at hop 512).
    - `sample_rate` is the one sample rate of a run (`RunConfig.sample_rate`): every training,
      validation and inference window is decoded at it, because the filterbank, the Nyquist
      check on `fmax` and the frame count — what the model hears — are all defined against it.
    """

    sample_rate: int = DEFAULT_SR
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 16000.0
    power: float = 2.0
    top_db: float | None = 80.0
    normalization: Literal["db80", "minmax"] = "db80"
    in_chans: int = 3
    channel_mode: Literal["repeat", "deltas"] = "repeat"
    delta_width: int = 2

    def __post_init__(self) -> None:
        check_range("sample_rate", self.sample_rate, 8000, 192000)
        check_range("n_fft", self.n_fft, 64, 16384)
        check_range("hop_length", self.hop_length, 1)
        if self.n_fft < self.hop_length:
            raise ConfigError(
                f"n_fft: {self.n_fft} is smaller than hop_length {self.hop_length} (samples between"
                " frames would be skipped)"
            )
        check_range("n_mels", self.n_mels, 8, 512)
        check_range("fmin", self.fmin, 0.0)
        if self.fmax > self.sample_rate / 2:
            raise ConfigError(
                f"fmax: {self.fmax} Hz is above the Nyquist frequency {self.sample_rate / 2} Hz of"
                f" sample_rate {self.sample_rate}"
            )
        if self.fmin >= self.fmax:
            raise ConfigError(f"fmin: {self.fmin} Hz must be below fmax {self.fmax} Hz")
        check_choice("power", self.power, (1.0, 2.0))
        if self.top_db is not None:
            check_range("top_db", self.top_db, 0.0, lo_open=True)
        check_choice("normalization", self.normalization, ("db80", "minmax"))
        check_choice("in_chans", self.in_chans, (1, 3))
        check_choice("channel_mode", self.channel_mode, ("repeat", "deltas"))
        check_range("delta_width", self.delta_width, 1, 10)

    def num_frames(self, num_samples: int) -> int:
        """Frames for a waveform of `num_samples` (centred STFT): 1 + num_samples // hop_length."""
        return 1 + int(num_samples) // self.hop_length


# The two lineages in birdclef-reference.md. "hop512": 2021 4th / 2025 2nd place; "hop320": 2022
# 1st place (sr 32000, n_fft 2048, hop 320, fmin 50, fmax 14000, 128 mels, (dB + 80) / 80).
MEL_PRESETS: dict[str, MelConfig] = {
    "hop512": MelConfig(),
    "hop320": MelConfig(hop_length=320, fmin=50.0, fmax=14000.0, normalization="db80"),
}


def mel_preset(name: str, **overrides: object) -> MelConfig:
    """A fresh copy of preset `name` ("hop512" | "hop320") with optional field overrides."""
    if name not in MEL_PRESETS:
        raise ConfigError(f"mel preset: {name!r} is not one of {', '.join(map(repr, MEL_PRESETS))}")
    try:
        return replace(MEL_PRESETS[name], **overrides)
    except TypeError as exc:
        raise ConfigError(f"mel preset {name}: {exc}") from None


@dataclass
class DenoiseConfig:
    """Spectral-gating noise reduction (`noisereduce`) applied to waveforms; off by default.

    Top teams did not report gains from denoising bird audio; it is here for inspection in the
    app and for experiments. Parameters map 1:1 onto `noisereduce.reduce_noise`:
    - `stationary`: True = one noise profile for the whole clip (fast); False = a running noise
      floor over `time_constant_s` seconds (handles changing wind/rain; ~10 % slower).
    - `prop_decrease`: fraction of the estimated noise removed (1.0 = all).
    - `n_std_thresh_stationary`: gate threshold in standard deviations above the noise mean.
    - `freq_mask_smooth_hz`, `time_mask_smooth_ms`: smoothing of the gate mask. noisereduce
      smooths over int(hz / (2·sr / n_fft)) bins; at 32 kHz with n_fft 1024 the 100 Hz default
      means no smoothing across frequency. noisereduce's own default (500 Hz = 8 bins) spreads
      the mask of a narrow-band call over its silent neighbours: measured on a 2-kHz tone burst
      in white noise it kept only 39 % of the tone's RMS, against 92 % at 100 Hz (noise-only
      RMS cut 6–8× in both). Values below 2·sr/n_fft Hz are rejected by noisereduce.
    - `n_fft`: STFT size of the gate (independent of the mel front end).
    """

    enabled: bool = False
    stationary: bool = True
    prop_decrease: float = 0.9
    n_std_thresh_stationary: float = 1.5
    time_constant_s: float = 2.0
    freq_mask_smooth_hz: float = 100.0
    time_mask_smooth_ms: float = 50.0
    n_fft: int = 1024

    def __post_init__(self) -> None:
        check_range("prop_decrease", self.prop_decrease, 0.0, 1.0)
        check_range("n_std_thresh_stationary", self.n_std_thresh_stationary, 0.0)
        check_range("time_constant_s", self.time_constant_s, 0.0, lo_open=True)
        check_range("freq_mask_smooth_hz", self.freq_mask_smooth_hz, 0.0)
        check_range("time_mask_smooth_ms", self.time_mask_smooth_ms, 0.0)
        check_range("n_fft", self.n_fft, 64, 16384)
