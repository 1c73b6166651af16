"""Augmentation chain: each transform's measurable effect, seeding, validation, preview."""

from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from birdcore.augment.batch_mix import CUTMIX, MIXUP, NONE, mix_batch, mix_batch_info, union_targets
from birdcore.augment.pipeline import (
    WaveformPipeline,
    apply_spec_augment,
    load_training_clip,
)
from birdcore.augment.preview import preview
from birdcore.augment.spectrogram import spec_augment
from birdcore.augment.window import read_window
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import from_dict
from birdcore.config.features import MelConfig
from birdcore.errors import ConfigError

SR = 32000
ALL_WAVE_OFF = {k: {"p": 0.0} for k in ("normalize", "background", "gaussian_noise", "color_noise",
                                        "pitch_shift", "time_stretch", "gain")}


def cfg_with(**sections) -> AugmentConfig:
    """Every waveform transform off except the given sections (dicts of fields)."""
    data = {k: dict(v) for k, v in ALL_WAVE_OFF.items()}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    return from_dict(AugmentConfig, data, "augment")


def tone(seconds: float, hz: float = 1000.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)))


def dominant_hz(y: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spec)])


class ArraySource:
    """An in-memory recording (the window reader's source protocol)."""

    def __init__(self, y: np.ndarray, name: str = "array") -> None:
        self.y, self.name, self.sample_rate = y, name, SR

    @property
    def duration(self) -> float:
        return len(self.y) / SR

    def read(self, offset_s: float, duration_s: float) -> np.ndarray:
        s = int(round(offset_s * SR))
        return self.y[s:s + int(round(duration_s * SR))]


# ---- spectrogram transforms ---------------------------------------------------------------------

def test_freq_mask_sets_exactly_the_band_to_the_image_mean():
    cfg = cfg_with(freq_mask={"p": 1.0, "count": 1, "max_width": 12, "fill": "mean"}, time_mask={"p": 0.0})
    x = torch.rand(4, 3, 128, 313)
    report = [[] for _ in range(4)]
    out = spec_augment(x, cfg, torch.Generator().manual_seed(0), report)
    for i in range(4):
        (fired,) = report[i]
        (lo, hi), = fired.params["bands"]
        band = torch.zeros(128, dtype=torch.bool)
        band[lo:hi] = True
        masked = out[i][:, band]
        assert torch.all(masked == masked.flatten()[0])  # one fill value ...
        assert masked.flatten()[0].item() == pytest.approx(x[i].mean().item(), abs=1e-6)  # ... the mean
        assert torch.equal(out[i][:, ~band], x[i][:, ~band])
    assert not torch.equal(out, x)  # 4 images × width ≥ 0: at least one band is non-empty


def test_time_mask_zero_fill_and_input_untouched():
    cfg = cfg_with(freq_mask={"p": 0.0}, time_mask={"p": 1.0, "count": 2, "max_width": 20, "fill": "zero"})
    x = torch.rand(3, 1, 64, 100) + 1.0
    before = x.clone()
    report = [[] for _ in range(3)]
    out = spec_augment(x, cfg, torch.Generator().manual_seed(3), report)
    assert torch.equal(x, before)  # out of place
    for i in range(3):
        cols = torch.zeros(100, dtype=torch.bool)
        for lo, hi in report[i][0].params["bands"]:
            cols[lo:hi] = True
        assert torch.all(out[i][..., cols] == 0)
        assert torch.equal(out[i][..., ~cols], x[i][..., ~cols])


def test_spec_augment_probability_zero_changes_nothing_and_clip_removes_extremes():
    cfg = cfg_with(freq_mask={"p": 0.0}, time_mask={"p": 0.0})
    x = torch.rand(2, 3, 16, 20)
    assert torch.equal(apply_spec_augment(x, cfg), x)
    bad = x.clone()
    bad[0, 0, 0, 0], bad[0, 1, 2, 3], bad[1, 2, 5, 5], bad[1, 0, 1, 1] = float("-inf"), float("nan"), 1e9, float("inf")
    out = apply_spec_augment(bad, cfg)
    assert torch.isfinite(out).all()
    assert out.min() >= cfg.clip.min_value and out.max() <= cfg.clip.max_value
    assert out[1, 2, 5, 5] == cfg.clip.max_value and out[0, 0, 0, 0] == cfg.clip.min_value


def test_spec_shift_flip_rotate():
    x = torch.rand(2, 1, 32, 50)
    cfg = cfg_with(freq_mask={"p": 0.0}, time_mask={"p": 0.0}, spec_shift={"p": 1.0, "max_fraction": 0.3})
    report = [[], []]
    out = spec_augment(x, cfg, torch.Generator().manual_seed(1), report)
    for i in range(2):
        k = report[i][0].params["frames"]
        assert torch.equal(out[i], torch.roll(x[i], k, dims=-1))
    flip = spec_augment(x, cfg_with(freq_mask={"p": 0.0}, time_mask={"p": 0.0}, flip={"p": 1.0}))
    assert torch.equal(flip, x.flip(-1))
    rot = spec_augment(x, cfg_with(freq_mask={"p": 0.0}, time_mask={"p": 0.0}, rotate={"p": 1.0, "max_degrees": 10}),
                       torch.Generator().manual_seed(0))
    assert rot.shape == x.shape and not torch.allclose(rot, x)
    assert AugmentConfig().rotate.p == 0.0 and AugmentConfig().flip.p == 0.0  # off by default


# ---- batch mixing ---------------------------------------------------------------------------------

def test_weighted_mixup_mixes_inputs_and_labels_by_the_weight():
    cfg = cfg_with(mixup={"p": 1.0, "mode": "weighted", "alpha": 1.0})
    x = torch.randn(6, 400)
    y = torch.zeros(6, 6)
    y[torch.arange(6), torch.arange(6)] = 1.0
    y[0, 3] = 0.5  # a secondary label
    r = mix_batch_info(x, y, cfg, torch.Generator().manual_seed(0))
    assert torch.all(r.kind == MIXUP)
    for i in range(6):
        j, w = int(r.partner[i]), float(r.weight[i])
        assert j != i and 0 < w < 1
        assert torch.allclose(r.x[i], w * x[i] + (1 - w) * x[j], atol=1e-6)
        assert torch.allclose(r.y[i], w * y[i] + (1 - w) * y[j], atol=1e-6)
        assert float(r.y[i].sum()) == pytest.approx(w * float(y[i].sum()) + (1 - w) * float(y[j].sum()), abs=1e-5)


def test_or_mixup_labels_are_the_union():
    cfg = cfg_with(mixup={"p": 1.0, "mode": "or"})
    y = torch.eye(5)
    y[2, 4] = 0.5
    r = mix_batch_info(torch.randn(5, 100), y, cfg, torch.Generator().manual_seed(1))
    for i in range(5):
        j = int(r.partner[i])
        assert torch.equal(r.y[i], torch.maximum(y[i], y[j]))
        assert r.y[i, i] == 1 and r.y[i, j] == 1


def test_unknown_targets_stay_unknown_unless_the_partner_holds_the_class():
    nan = float("nan")
    a = torch.tensor([[nan, nan, 0.0, 0.7]])
    b = torch.tensor([[1.0, 0.0, nan, 0.2]])
    got = union_targets(a, b)
    assert got[0, 0] == 1.0 and got[0, 3] == pytest.approx(0.7)  # the partner holds class 0
    assert torch.isnan(got[0, 1]) and torch.isnan(got[0, 2])  # absent on one side, unknown on the other
    # through a whole batch: "or" mixup keeps the rule, weighted mixes keep NaN, nothing becomes 0
    y = torch.tensor([[nan, 1.0], [1.0, 0.0]])
    r = mix_batch_info(torch.randn(2, 50), y, cfg_with(mixup={"p": 1.0, "mode": "or"}), torch.Generator().manual_seed(0))
    assert r.y[0, 0] == 1.0 and r.y[1, 0] == 1.0 and (r.y[:, 1] == 1.0).all()
    w = mix_batch_info(torch.randn(2, 50), y, cfg_with(mixup={"p": 1.0, "mode": "weighted"}),
                       torch.Generator().manual_seed(0))
    assert torch.isnan(w.y[:, 0]).all() and torch.isfinite(w.y[:, 1]).all()


def test_cutmix_copies_a_time_band_and_mixes_labels_by_area():
    cfg = cfg_with(mixup={"p": 0.0}, cutmix={"p": 1.0, "alpha": 1.0})
    x = torch.randn(4, 2, 8, 200)
    y = torch.eye(4)
    r = mix_batch_info(x, y, cfg, torch.Generator().manual_seed(2))
    assert torch.all(r.kind == CUTMIX)
    for i in range(4):
        j = int(r.partner[i])
        s, e = (int(v) for v in r.band[i])
        frac = (e - s) / 200
        assert torch.equal(r.x[i][..., s:e], x[j][..., s:e])
        assert torch.equal(r.x[i][..., :s], x[i][..., :s]) and torch.equal(r.x[i][..., e:], x[i][..., e:])
        assert r.y[i, i].item() == pytest.approx(1 - frac) and r.y[i, j].item() == pytest.approx(frac)
        assert r.weight[i].item() == pytest.approx(1 - frac)


def test_mix_probability_and_seed():
    cfg = cfg_with(mixup={"p": 0.5})
    x, y = torch.randn(400, 10), torch.eye(400)
    r = mix_batch_info(x, y, cfg, torch.Generator().manual_seed(0))
    frac = float((r.kind == MIXUP).float().mean())
    assert 0.4 < frac < 0.6
    assert torch.equal(r.x[r.kind == NONE], x[r.kind == NONE])
    a = mix_batch(x, y, cfg, torch.Generator().manual_seed(5))
    b = mix_batch(x, y, cfg, torch.Generator().manual_seed(5))
    c = mix_batch(x, y, cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


# ---- waveform transforms ------------------------------------------------------------------------

def test_gain_changes_rms_by_the_sampled_db():
    cfg = cfg_with(gain={"p": 1.0, "min_db": -15.0, "max_db": 15.0})
    y = tone(1.0)
    for seed in range(3):
        out, fired = WaveformPipeline(cfg, SR)(y, seed)
        (f,) = fired
        assert f.name == "gain" and -15 <= f.params["gain_db"] <= 15
        assert 20 * np.log10(rms(out) / rms(y)) == pytest.approx(f.params["gain_db"], abs=1e-3)


def test_gaussian_noise_gives_the_sampled_snr():
    cfg = cfg_with(gaussian_noise={"p": 1.0, "min_snr_db": 5.0, "max_snr_db": 30.0})
    y = tone(5.0)
    seen = []
    for seed in range(3):
        out, (f,) = WaveformPipeline(cfg, SR)(y, seed)
        snr = 20 * np.log10(rms(y) / rms(out - y))
        assert 5.0 <= f.params["snr_db"] <= 30.0
        assert snr == pytest.approx(f.params["snr_db"], abs=0.1)
        seen.append(f.params["snr_db"])
    assert len(set(np.round(seen, 3))) == 3


def test_pink_noise_is_low_heavy_at_the_sampled_snr():
    cfg = cfg_with(color_noise={"p": 1.0, "color": "pink", "min_snr_db": 10.0, "max_snr_db": 10.0})
    y = tone(5.0)
    out, (f,) = WaveformPipeline(cfg, SR)(y, 0)
    noise = out - y
    assert 20 * np.log10(rms(y) / rms(noise)) == pytest.approx(10.0, abs=0.2)
    spec = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / SR)
    low = spec[(freqs > 100) & (freqs < 200)].mean()
    high = spec[(freqs > 6400) & (freqs < 12800)].mean()
    assert 10 * np.log10(low / high) > 12  # -3 dB/octave over 6 octaves ≈ -18 dB


def test_pitch_shift_moves_a_pure_tone_by_the_sampled_semitones():
    cfg = cfg_with(pitch_shift={"p": 1.0, "min_semitones": -3.0, "max_semitones": 3.0})
    y = tone(1.0, 1000.0)
    out, (f,) = WaveformPipeline(cfg, SR)(y, 4)
    st = f.params["num_semitones"]
    assert abs(st) > 0.3  # a visible shift with this seed
    assert len(out) == len(y)
    expected = 1000.0 * 2 ** (st / 12)
    assert dominant_hz(out[4000:-4000]) == pytest.approx(expected, rel=0.01)


def test_time_stretch_keeps_length_and_stretches_content():
    """Length is kept (zero-padded / cut); a 1-s burst ends at 1/rate s."""
    cfg = cfg_with(time_stretch={"p": 1.0, "min_rate": 0.8, "max_rate": 1.25})
    t = np.arange(2 * SR) / SR
    y = (0.5 * np.sin(2 * np.pi * 1000 * t) * (t < 1.0)).astype(np.float32)
    for seed in (0, 1):
        out, (f,) = WaveformPipeline(cfg, SR)(y, seed)
        assert len(out) == len(y)
        env = np.convolve(np.abs(out), np.ones(320) / 320, "same")
        end = np.flatnonzero(env > 0.5 * env.max())[-1] / SR
        assert end == pytest.approx(1.0 / f.params["rate"], abs=0.03)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # audioread, imported by librosa.load
def test_background_noise_from_a_folder(tmp_path):
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    sf.write(noise_dir / "rain.wav", 0.1 * np.random.default_rng(0).standard_normal(3 * SR), SR)
    cfg = cfg_with(background={"p": 1.0, "path": str(noise_dir), "min_snr_db": 0.0, "max_snr_db": 3.0})
    y = tone(2.0)
    out, (f,) = WaveformPipeline(cfg, SR)(y, 0)
    assert f.name == "background" and f.params["noise_file_path"].endswith("rain.wav")
    assert 0.0 <= f.params["snr_db"] <= 3.0
    assert 20 * np.log10(rms(y) / rms(out - y)) == pytest.approx(f.params["snr_db"], abs=0.2)
    with pytest.raises(ConfigError, match=r"augment\.background\.path"):
        WaveformPipeline(cfg_with(background={"p": 1.0, "path": str(tmp_path / "empty")}), SR)


def test_seeded_determinism_and_global_state_untouched():
    cfg = cfg_with(gaussian_noise={"p": 1.0}, color_noise={"p": 1.0}, gain={"p": 1.0})
    src = ArraySource(tone(12.0) + 0.01 * np.random.default_rng(0).standard_normal(12 * SR).astype(np.float32))
    random.seed(123)
    np.random.seed(123)
    expect_py, expect_np = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    a = load_training_clip(src, cfg, 7)
    b = load_training_clip(src, cfg, np.random.default_rng(7))
    c = load_training_clip(src, cfg, 8)
    assert (random.random(), np.random.random()) == (expect_py, expect_np)  # globals restored
    assert a.shape == (5 * SR,) and np.array_equal(a, b) and not np.allclose(a, c)


# ---- read window: crop and time extension ----------------------------------------------------------

def test_crop_modes():
    y = np.arange(20 * SR, dtype=np.float32)  # sample value = index: the offset is readable
    src = ArraySource(y)
    n = 5 * SR
    w, info = read_window(src, 5.0, SR, "start", np.random.default_rng(0))
    assert w[0] == 0 and len(w) == n and info.offset_s == 0
    w, info = read_window(src, 5.0, SR, "center", np.random.default_rng(0))
    assert w[0] == (20 * SR - n) // 2 and np.array_equal(w, y[int(w[0]):int(w[0]) + n])
    starts = [read_window(src, 5.0, SR, "random", np.random.default_rng(s))[0][0] for s in range(20)]
    assert read_window(src, 5.0, SR, "random", np.random.default_rng(3))[0][0] == starts[3]  # seeded
    assert len(set(starts)) > 15 and min(starts) >= 0 and max(starts) <= 15 * SR


def test_time_extension_silence_or_other_audio_by_ratio():
    short = ArraySource(np.full(SR, 0.25, dtype=np.float32), "short")
    other = [ArraySource(np.full(10 * SR, -0.5, dtype=np.float32), "other")]
    w, info = read_window(short, 5.0, SR, "start", np.random.default_rng(0), other, other_ratio=0.0)
    assert info.extended == "silence" and np.all(w[:SR] == 0.25) and np.all(w[SR:] == 0)
    w, info = read_window(short, 5.0, SR, "center", np.random.default_rng(0), other, other_ratio=1.0)
    pos = int(info.clip_start_s * SR)
    assert info.extended == "other" and info.filler == "other" and pos == 2 * SR
    assert np.all(w[pos:pos + SR] == 0.25) and np.all(w[:pos] == -0.5) and np.all(w[pos + SR:] == -0.5)
    kinds = [read_window(short, 5.0, SR, "random", np.random.default_rng(s), other, 0.3)[1].extended
             for s in range(300)]
    assert 0.2 < kinds.count("other") / 300 < 0.4
    # load_training_clip honours the ratio from the config
    cfg = cfg_with(extend={"other_audio_ratio": 1.0})
    y, ci = load_training_clip(short, cfg, 0, other=other, return_info=True)
    assert ci.window.extended == "other" and np.count_nonzero(y == -0.5) == 4 * SR


# ---- config ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, field", [
    ({"gain": {"p": -0.1}}, "augment.gain.p"),
    ({"gain": {"min_db": 10.0, "max_db": 5.0}}, "augment.gain.min_db"),
    ({"gaussian_noise": {"min_snr_db": 30.0, "max_snr_db": 5.0}}, "augment.gaussian_noise.min_snr_db"),
    ({"freq_mask": {"p": 1.5}}, "augment.freq_mask.p"),
    ({"reverb": {"p": 0.5}}, "augment.reverb"),
    ({"gain": {"p": 0.5, "max": 3}}, "augment.gain.max"),
    ({"wave_order": ["gain", "reverb"]}, r"augment.wave_order\[1\]"),
    ({"crop": {"mode": "middle"}}, "augment.crop.mode"),
    ({"mixup": {"p": 0.8}, "cutmix": {"p": 0.5}}, "augment.cutmix.p"),
])
def test_config_validation_names_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        from_dict(AugmentConfig, data, "augment")


def test_default_config_follows_the_reference():
    c = AugmentConfig()
    assert (c.gain.min_db, c.gain.max_db) == (-15.0, 15.0)
    assert c.gaussian_noise.p > 0 and c.color_noise.p > 0 and c.color_noise.color == "pink"
    assert c.freq_mask.p == c.time_mask.p == 0.3 and c.freq_mask.max_width == 10 and c.time_mask.max_width == 20
    assert c.mixup.p == 0.5 and c.mixup.mode == "or"
    assert c.pitch_shift.p == 0.0 and c.time_stretch.p == 0.0
    assert (c.background.min_snr_db, c.background.max_snr_db) == (0.0, 3.0)


# ---- preview ----------------------------------------------------------------------------------------

def test_preview_reports_fired_transforms_with_params(real_audio_dir):
    cfg = cfg_with(gain={"p": 1.0}, gaussian_noise={"p": 1.0}, freq_mask={"p": 1.0}, time_mask={"p": 0.0})
    r = preview(real_audio_dir / "birds_10s.wav", cfg, MelConfig(), seed=11, offset=2.0, duration=5.0)
    names = [f.name for f in r.fired]
    assert names == ["gaussian_noise", "gain", "freq_mask"]
    gain = r.fired[1].params
    assert -15 <= gain["gain_db"] <= 15
    assert rms(r.augmented) > 0 and r.original.shape == r.augmented.shape == (5 * SR,)
    assert r.original_mel.shape == r.augmented_mel.shape == (128, 313)
    assert r.sample_rate == SR and r.hop_length == 512 and r.seconds > 0
    assert not np.allclose(r.original_mel, r.augmented_mel)
    again = preview(real_audio_dir / "birds_10s.wav", cfg, MelConfig(), seed=11, offset=2.0, duration=5.0)
    assert np.array_equal(again.augmented, r.augmented) and np.array_equal(again.augmented_mel, r.augmented_mel)
    # the preview's waveform path is the training path: same transforms, same seed → same output
    same, fired = WaveformPipeline(cfg, SR)(r.original, np.random.default_rng(11))
    assert np.array_equal(same, r.augmented) and [f.name for f in fired] == names[:2]
