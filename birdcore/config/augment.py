"""Augmentation configuration: ONE object describes the whole training chain.

Order of application (see `birdcore.augment.pipeline`):
1. read window: `crop` picks the window of a long recording (start | center | random);
2. `extend`: a recording shorter than the window is padded with silence, or (with probability
   `extend.other_audio_ratio`) with a random stretch of other audio from the dataset;
3. waveform transforms, each with its own probability, in `wave_order` (audiomentations);
4. mel front end (not an augmentation; `MelConfig`);
5. spectrogram transforms on the batch in torch: `freq_mask`, `time_mask`, `spec_shift`,
   `flip`, `rotate`, then `clip`;
6. batch mixing (`mixup`, `cutmix`) on waveforms or mels (`mix_on`), labels mixed too.

Defaults follow what helped top BirdCLEF teams (reference notes): gain ±15 dB, Gaussian and pink
noise, background noise at 0–3 dB SNR (when a noise folder is given), SpecAugment p 0.3 with ≤ 3
frequency masks of ≤ 10 bins and ≤ 3 time masks of ≤ 20 frames, mixup p 0.5 with OR labels. Pitch
shift and time stretch are off (p 0): slow (~35 ms per 5-s clip each) and reported unhelpful;
rotation is off (it hurt); flip is off.

Every field is validated on construction: a negative probability, a min above its max, or an
unknown field/transform raises ConfigError naming the dotted field (e.g. `augment.gain.min_db`
when built with `from_dict(AugmentConfig, data, "augment")`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from birdcore.config.base import (
    ConfigError,
    check_choice,
    check_min_max,
    check_prob,
    check_range,
)

WAVE_TRANSFORMS = ("normalize", "background", "gaussian_noise", "color_noise", "pitch_shift",
                   "time_stretch", "gain")

__all__ = [
    "AugmentConfig", "CropConfig", "ExtendConfig", "NormalizeConfig", "BackgroundConfig",
    "GaussianNoiseConfig", "ColorNoiseConfig", "PitchShiftConfig", "TimeStretchConfig",
    "GainConfig", "MaskConfig", "SpecShiftConfig", "FlipConfig", "RotateConfig", "ClipConfig",
    "MixupConfig", "CutmixConfig", "WAVE_TRANSFORMS",
]


def _snr(p: float, lo: float, hi: float) -> None:
    check_prob("p", p)
    check_range("min_snr_db", lo, -40.0, 80.0)
    check_range("max_snr_db", hi, -40.0, 80.0)
    check_min_max("min_snr_db", lo, hi)


@dataclass
class CropConfig:
    """Which window of a longer recording is read: "start", "center" or "random" (uniform)."""

    mode: Literal["start", "center", "random"] = "random"

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ("start", "center", "random"))


@dataclass
class ExtendConfig:
    """Recordings shorter than the window: the clip is placed by `crop.mode` (start: at 0,
    center: centred, random: uniform offset) and the rest is silence, or — with probability
    `other_audio_ratio` — a random stretch of another recording (needs an `other` source;
    silence otherwise). The filler's labels are not added: the caller gets the filler's id back
    (`return_info=True`) and may add them."""

    other_audio_ratio: float = 0.0

    def __post_init__(self) -> None:
        check_prob("other_audio_ratio", self.other_audio_ratio)


@dataclass
class NormalizeConfig:
    """"peak": scale so max |x| = 1 (audiomentations `Normalize`); "standard": zero mean, unit std.
    Off by default: it would erase the absolute level that db80 features and gain augmentation use."""

    p: float = 0.0
    mode: Literal["peak", "standard"] = "peak"

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_choice("mode", self.mode, ("peak", "standard"))


@dataclass
class BackgroundConfig:
    """Mix a random stretch of a noise clip from `path` (a folder or file; audiomentations
    `AddBackgroundNoise`) at an SNR drawn uniformly in [min_snr_db, max_snr_db] (relative to the
    clip's RMS). Inactive while `path` is None."""

    p: float = 0.5
    path: str | None = None
    min_snr_db: float = 0.0
    max_snr_db: float = 3.0

    def __post_init__(self) -> None:
        _snr(self.p, self.min_snr_db, self.max_snr_db)


@dataclass
class GaussianNoiseConfig:
    """White Gaussian noise at an SNR drawn uniformly in dB (audiomentations `AddGaussianSNR`)."""

    p: float = 0.25
    min_snr_db: float = 5.0
    max_snr_db: float = 30.0

    def __post_init__(self) -> None:
        _snr(self.p, self.min_snr_db, self.max_snr_db)


@dataclass
class ColorNoiseConfig:
    """Coloured noise ("pink" −3 dB/octave, "brown" −6 dB/octave) at an SNR drawn uniformly in dB
    (audiomentations `AddColorNoise` with a fixed decay)."""

    p: float = 0.25
    color: Literal["pink", "brown"] = "pink"
    min_snr_db: float = 5.0
    max_snr_db: float = 30.0

    def __post_init__(self) -> None:
        _snr(self.p, self.min_snr_db, self.max_snr_db)
        check_choice("color", self.color, ("pink", "brown"))


@dataclass
class PitchShiftConfig:
    """Pitch shift by a uniform number of semitones, tempo kept (signalsmith stretch)."""

    p: float = 0.0
    min_semitones: float = -2.0
    max_semitones: float = 2.0

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("min_semitones", self.min_semitones, -24.0, 24.0)
        check_range("max_semitones", self.max_semitones, -24.0, 24.0)
        check_min_max("min_semitones", self.min_semitones, self.max_semitones)


@dataclass
class TimeStretchConfig:
    """Time stretch by a uniform rate (>1 = faster), pitch kept. The output keeps the input's
    length: a faster clip is zero-padded at the end, a slower one is cut (audiomentations
    `leave_length_unchanged=True`)."""

    p: float = 0.0
    min_rate: float = 0.9
    max_rate: float = 1.1

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("min_rate", self.min_rate, 0.1, 10.0)
        check_range("max_rate", self.max_rate, 0.1, 10.0)
        check_min_max("min_rate", self.min_rate, self.max_rate)


@dataclass
class GainConfig:
    """Multiply by a gain drawn uniformly in [min_db, max_db] (audiomentations `Gain`)."""

    p: float = 0.5
    min_db: float = -15.0
    max_db: float = 15.0

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("min_db", self.min_db, -60.0, 60.0)
        check_range("max_db", self.max_db, -60.0, 60.0)
        check_min_max("min_db", self.min_db, self.max_db)


@dataclass
class MaskConfig:
    """SpecAugment masks: with probability p per image, `count` masks of width uniform in
    [0, max_width] (bins or frames), filled with `fill` ("mean" of the image, or "zero")."""

    p: float = 0.3
    count: int = 3
    max_width: int = 10
    fill: Literal["mean", "zero"] = "mean"

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("count", self.count, 0, 100)
        check_range("max_width", self.max_width, 0, 10000)
        check_choice("fill", self.fill, ("mean", "zero"))


@dataclass
class SpecShiftConfig:
    """Roll the image along time by up to ±max_fraction of its width (circular), probability p."""

    p: float = 0.0
    max_fraction: float = 0.5

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("max_fraction", self.max_fraction, 0.0, 1.0)


@dataclass
class FlipConfig:
    """Reverse the image along time with probability p (off: calls are not time-symmetric)."""

    p: float = 0.0

    def __post_init__(self) -> None:
        check_prob("p", self.p)


@dataclass
class RotateConfig:
    """Rotate the image by a uniform angle in ±max_degrees (off: it hurt top teams)."""

    p: float = 0.0
    max_degrees: float = 5.0

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("max_degrees", self.max_degrees, 0.0, 180.0)


@dataclass
class ClipConfig:
    """Replace NaN by `min_value`, then clamp the normalised image to [min_value, max_value]:
    removes -inf / huge values from upstream bugs. The db80 image of real audio lies in about
    [-0.3, 1.5]; min-max images in [0, 1]."""

    enabled: bool = True
    min_value: float = -1.0
    max_value: float = 3.0

    def __post_init__(self) -> None:
        check_min_max("min_value", self.min_value, self.max_value)


@dataclass
class MixupConfig:
    """Per sample with probability p, mix with a random partner: x = w·x_i + (1−w)·x_j,
    w ~ Beta(alpha, alpha). Labels: "or" = element-wise max (union, the 2023 winners'
    OR-mixup) or "weighted" = w·y_i + (1−w)·y_j. alpha 2 keeps 97 % of weights in [0.1, 0.9],
    so an OR label rarely names a bird mixed in too quietly to hear."""

    p: float = 0.5
    alpha: float = 2.0
    mode: Literal["or", "weighted"] = "or"

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("alpha", self.alpha, 0.0, 100.0, lo_open=True)
        check_choice("mode", self.mode, ("or", "weighted"))


@dataclass
class CutmixConfig:
    """Per sample with probability p, replace a time band of fraction a ~ Beta(alpha, alpha) by
    the partner's same band; labels = (1−a)·y_i + a·y_j (mixed by area)."""

    p: float = 0.0
    alpha: float = 1.0

    def __post_init__(self) -> None:
        check_prob("p", self.p)
        check_range("alpha", self.alpha, 0.0, 100.0, lo_open=True)


@dataclass
class AugmentConfig:
    """The whole augmentation chain. `enabled=False` turns every random transform off (waveform,
    spectrogram, mixing and filling with other audio); the crop still follows `crop.mode`
    (`AugmentConfig.off()` also sets it to "center")."""

    enabled: bool = True
    crop: CropConfig = field(default_factory=CropConfig)
    extend: ExtendConfig = field(default_factory=ExtendConfig)
    wave_order: list[str] = field(default_factory=lambda: list(WAVE_TRANSFORMS))
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    gaussian_noise: GaussianNoiseConfig = field(default_factory=GaussianNoiseConfig)
    color_noise: ColorNoiseConfig = field(default_factory=ColorNoiseConfig)
    pitch_shift: PitchShiftConfig = field(default_factory=PitchShiftConfig)
    time_stretch: TimeStretchConfig = field(default_factory=TimeStretchConfig)
    gain: GainConfig = field(default_factory=GainConfig)
    freq_mask: MaskConfig = field(default_factory=lambda: MaskConfig(max_width=10))
    time_mask: MaskConfig = field(default_factory=lambda: MaskConfig(max_width=20))
    spec_shift: SpecShiftConfig = field(default_factory=SpecShiftConfig)
    flip: FlipConfig = field(default_factory=FlipConfig)
    rotate: RotateConfig = field(default_factory=RotateConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    mix_on: Literal["wave", "mel"] = "wave"
    mixup: MixupConfig = field(default_factory=MixupConfig)
    cutmix: CutmixConfig = field(default_factory=CutmixConfig)

    def __post_init__(self) -> None:
        for i, name in enumerate(self.wave_order):
            if name not in WAVE_TRANSFORMS:
                raise ConfigError(
                    f"wave_order[{i}]: {name!r} is not a waveform transform (known: {', '.join(WAVE_TRANSFORMS)})"
                )
        dup = sorted({n for n in self.wave_order if self.wave_order.count(n) > 1})
        if dup:
            raise ConfigError(f"wave_order: {dup[0]!r} is listed twice")
        check_choice("mix_on", self.mix_on, ("wave", "mel"))
        if self.mixup.p + self.cutmix.p > 1.0 + 1e-9:
            raise ConfigError(
                f"cutmix.p: mixup.p {self.mixup.p} + cutmix.p {self.cutmix.p} exceeds 1 (each sample"
                " gets at most one of them)"
            )

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all (validation / inference inputs); centre crop."""
        return cls(enabled=False, crop=CropConfig(mode="center"))
