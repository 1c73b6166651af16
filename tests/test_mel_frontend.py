"""Mel front end (shape, librosa agreement, channels, ONNX) and denoising."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcore.audio.io import load_audio
from birdcore.config.base import from_dict
from birdcore.config.features import DenoiseConfig, MelConfig, mel_preset
from birdcore.errors import ConfigError
from birdcore.features.denoise import denoise, maybe_denoise
from birdcore.features.mel_frontend import MelFrontend, compute_mel, mel_filterbank
from birdcore.inference.onnx_graph import export_onnx

SR = 32000


def _tone(seconds: float, hz: float = 2000.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_five_seconds_at_hop512_is_128_by_313():
    fe = MelFrontend(MelConfig(in_chans=1))
    out = fe(torch.zeros(2, 5 * SR))
    assert out.shape == (2, 1, 128, 313)
    assert out.dtype == torch.float32
    assert MelConfig().num_frames(5 * SR) == 313
    assert MelFrontend(mel_preset("hop320"))(torch.zeros(1, 5 * SR)).shape == (1, 3, 128, 501)


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    for cfg in (mel_preset("hop512"), mel_preset("hop320")):
        ours = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
        ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
        assert np.abs(ours - ref).max() < 1e-7


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["hop512", "hop320"])
def test_db_matches_librosa_on_real_clip(real_audio_dir, preset):
    """Un-normalised dB vs librosa.melspectrogram + power_to_db(ref=1.0, top_db=80): < 0.01 dB."""
    librosa = pytest.importorskip("librosa")
    cfg = mel_preset(preset)
    y = load_audio(real_audio_dir / "spinetail.wav", sr=SR, duration=5.0)  # 44.1 kHz file, resampled
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, power=2.0)
    ref = librosa.power_to_db(S, ref=1.0, top_db=80.0)
    ours = compute_mel(y, cfg, stage="db")
    assert ours.shape == ref.shape
    assert ref.max() - ref.min() > 60  # a real clip with real dynamic range, not a trivial signal
    assert np.abs(ours - ref).max() < 0.01


def test_normalizations():
    y = torch.from_numpy(_tone(5.0))[None] + 0.01 * torch.randn(1, 5 * SR)
    db = MelFrontend(MelConfig()).db(y)
    fe80 = MelFrontend(MelConfig(in_chans=1, normalization="db80"))
    assert torch.allclose(fe80(y)[:, 0], (db + 80) / 80)
    mm = MelFrontend(MelConfig(in_chans=1, normalization="minmax"))(y)
    assert mm.min().item() == pytest.approx(0.0, abs=1e-6) and mm.max().item() == pytest.approx(1.0, abs=1e-6)
    # top_db floors each image at its own max - 80 dB: a pure tone's empty bins sit exactly there
    pure = MelFrontend(MelConfig()).db(torch.from_numpy(_tone(5.0))[None])
    assert (pure.amax() - pure.amin()).item() == pytest.approx(80.0, abs=1e-3)
    assert (db.amax() - db.amin()).item() <= 80.0 + 1e-3


def test_channels_repeat_and_deltas():
    y = torch.from_numpy(np.stack([_tone(5.0, 1000), _tone(5.0, 4000, 0.05)]))
    rep = MelFrontend(MelConfig(in_chans=3, channel_mode="repeat"))(y)
    assert rep.shape == (2, 3, 128, 313)
    assert torch.equal(rep[:, 0], rep[:, 1]) and torch.equal(rep[:, 0], rep[:, 2])
    fe = MelFrontend(MelConfig(in_chans=3, channel_mode="deltas"))
    d = fe(y)
    assert torch.equal(d[:, 0], rep[:, 0])
    # HTK delta of a ramp is its slope away from the edges; ΔΔ of a ramp is 0 there.
    ramp = (0.01 * torch.arange(50.0)).expand(1, 4, 50)
    assert torch.allclose(fe.delta(ramp)[..., 2:-2], torch.full((1, 4, 46), 0.01), atol=1e-6)
    assert torch.allclose(fe.delta(fe.delta(ramp))[..., 4:-4], torch.zeros(1, 4, 42), atol=1e-6)
    assert torch.allclose(d[:, 1], fe.delta(d[:, 0])) and torch.allclose(d[:, 2], fe.delta(d[:, 1]))


def test_batch_equals_single_clips():
    """Per-image statistics (top_db, minmax) must not leak across the batch."""
    fe = MelFrontend(MelConfig(normalization="minmax"))
    rng = np.random.default_rng(0)
    clips = [_tone(5.0, 1500, 0.5), (0.001 * rng.standard_normal(5 * SR)).astype(np.float32), _tone(5.0, 6000, 0.02)]
    batch = fe(torch.from_numpy(np.stack(clips)))
    for i, c in enumerate(clips):
        assert torch.allclose(batch[i], fe(torch.from_numpy(c)[None])[0], atol=1e-5)


def test_autocast_does_not_overflow():
    fe = MelFrontend(MelConfig())
    y = torch.from_numpy(_tone(5.0, 2000, 1.0))[None]  # full scale: |X|^2 ~ 3e5 would overflow fp16
    ref = fe(y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fe(y)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.allclose(out, ref)


def test_config_validation_names_the_field():
    cases = [({"fmin": 9000.0, "fmax": 8000.0}, "mel.fmin"), ({"fmax": 20000.0}, "mel.fmax"),
             ({"n_fft": 256, "hop_length": 512}, "mel.n_fft"), ({"in_chans": 2}, "mel.in_chans"),
             ({"normalization": "pcen"}, "mel.normalization"), ({"hop": 3}, "mel.hop")]
    for data, field in cases:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            from_dict(MelConfig, data, "mel")
    with pytest.raises(ConfigError, match="mel preset"):
        mel_preset("hop999")


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    fe = MelFrontend(MelConfig(in_chans=3, channel_mode="deltas")).eval()
    path = export_onnx(fe, torch.zeros(2, 5 * SR), tmp_path / "frontend.onnx", "wave", ["mel"],
                       {0: ("batch", 1, 4096), 1: ("samples", fe.cfg.n_fft, 10**8)})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    # A batch size and length different from the export example: the axes are dynamic.
    x = (0.1 * rng.standard_normal((3, 7 * SR)) + _tone(7.0)).astype(np.float32)
    out = sess.run(None, {"wave": x})[0]
    with torch.inference_mode():
        ref = fe(torch.from_numpy(x)).numpy()
    assert out.shape == ref.shape == (3, 3, 128, 438)
    assert np.abs(out - ref).max() < 1e-4


def test_denoise_reduces_noise_and_is_deterministic():
    """Tone bursts (0.15 s every second, bird-like) in white noise: noise removed, bursts kept."""
    t = np.arange(5 * SR) / SR
    on = (t % 1.0) < 0.15
    mid = ((t % 1.0) > 0.04) & ((t % 1.0) < 0.11)
    clean = (0.3 * np.sin(2 * np.pi * 2000 * t) * on).astype(np.float32)
    noisy = (clean + 0.05 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    out = denoise(noisy, SR, DenoiseConfig(enabled=True))
    assert out.shape == noisy.shape and out.dtype == np.float32
    rms = lambda z: float(np.sqrt(np.mean(z.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(out[~on]) < rms(noisy[~on]) / 4  # noise-only stretches: energy down > 16x
    assert rms(out[mid]) > 0.8 * rms(clean[mid])  # the bursts survive
    assert np.mean((out - clean) ** 2) < 0.2 * np.mean((noisy - clean) ** 2)
    assert np.array_equal(out, denoise(noisy, SR, DenoiseConfig(enabled=True)))
    assert maybe_denoise(noisy, SR, DenoiseConfig()) is noisy  # disabled by default


def test_denoise_config_validation():
    with pytest.raises(ConfigError, match=r"denoise\.prop_decrease"):
        from_dict(DenoiseConfig, {"prop_decrease": 1.5}, "denoise")
    with pytest.raises(ConfigError, match=r"denoise\.freq_mask_smooth_hz"):
        denoise(np.zeros(SR, np.float32), SR, DenoiseConfig(enabled=True, freq_mask_smooth_hz=10.0))
