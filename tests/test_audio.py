"""Audio I/O on the real recordings in ../shared and on broken files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from birdcore.audio.io import audio_info, fit_length, load_audio, write_audio
from birdcore.errors import AudioError


@pytest.mark.parametrize("name, rate, seconds", [
    ("birds_10s.wav", 32000, 10.13), ("opensoundscape_1min.wav", 32000, 60.0),
    ("spinetail.wav", 44100, 19.54), ("XC713870.mp3", 48000, 23.58),
])
def test_decode_real_files(real_audio_dir, name, rate, seconds):
    path = real_audio_dir / name
    info = audio_info(path)
    assert info.samplerate == rate
    assert info.duration == pytest.approx(seconds, abs=0.02)
    y = load_audio(path, sr=32000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) / 32000 == pytest.approx(seconds, abs=0.06)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.01


def test_window_read_matches_full_decode(real_audio_dir):
    path = real_audio_dir / "opensoundscape_1min.wav"
    full = load_audio(path)
    win = load_audio(path, offset=12.5, duration=5.0)
    assert len(win) == 160000
    np.testing.assert_allclose(win, full[400000:560000], atol=1e-6)


def test_resample_keeps_a_tone(tmp_path):
    sr = 44100
    t = np.arange(sr * 2) / sr
    write_audio(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), sr)
    y = load_audio(tmp_path / "tone.wav", sr=32000)
    assert len(y) == 64000
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 32000 / len(y) - 1000) < 2


def test_stereo_averaged(tmp_path):
    left = np.full(8000, 0.5, dtype=np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, -left * 0.5], axis=1), 8000)
    y = load_audio(tmp_path / "st.wav", sr=None)
    np.testing.assert_allclose(y, 0.125, atol=1e-3)


def test_ogg_roundtrip_and_window(tmp_path):
    y = (0.1 * np.random.default_rng(0).standard_normal(32000 * 7)).astype(np.float32)
    write_audio(tmp_path / "x.ogg", y)
    assert audio_info(tmp_path / "x.ogg").duration == pytest.approx(7.0)
    assert len(load_audio(tmp_path / "x.ogg", offset=6.0, duration=5.0)) == 32000  # short tail allowed
    with pytest.raises(AudioError, match="runs past the end"):
        load_audio(tmp_path / "x.ogg", offset=6.0, duration=5.0, allow_short=False)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(tmp_path / "x.ogg", offset=8.0)


def test_errors_name_file_and_problem(tmp_path):
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.ogg: file is empty"):
        load_audio(empty)
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(AudioError, match=r"junk\.ogg: cannot read audio header"):
        load_audio(junk)
    with pytest.raises(AudioError, match=r"missing\.wav: audio file not found"):
        load_audio(tmp_path / "missing.wav")
    hdr = tmp_path / "hdr.wav"
    sf.write(hdr, np.zeros(0, dtype=np.float32), 32000)
    with pytest.raises(AudioError, match=r"hdr\.wav: file holds no audio samples"):
        load_audio(hdr)


def test_truncated_ogg_is_an_error_not_zeros(tmp_path):
    y = (0.1 * np.sin(np.arange(32000 * 5) / 10)).astype(np.float32)
    write_audio(tmp_path / "full.ogg", y)
    data = (tmp_path / "full.ogg").read_bytes()
    (tmp_path / "cut.ogg").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.ogg"):
        load_audio(tmp_path / "cut.ogg")


def test_nan_samples_rejected(tmp_path):
    y = np.zeros(8000, dtype=np.float32)
    y[100] = np.nan
    sf.write(tmp_path / "nan.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: 1 samples are NaN"):
        load_audio(tmp_path / "nan.wav")


def test_fit_length():
    assert len(fit_length(np.ones(10, np.float32), 16)) == 16
    assert fit_length(np.ones(10, np.float32), 16)[-1] == 0
    assert len(fit_length(np.ones(10, np.float32), 4)) == 4
