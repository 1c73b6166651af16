"""birdcore.audio.display: WAV bytes at the true level, the waveform envelope, the display level."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf

from birdcore.audio.display import ENVELOPE_POINTS, envelope, level_dbfs, wav_bytes

SR = 32000


def decode(data: bytes) -> tuple[np.ndarray, sf._SoundFileInfo]:
    info = sf.info(io.BytesIO(data))
    y, sr = sf.read(io.BytesIO(data), dtype="float64")
    assert sr == info.samplerate
    return y, info


def test_wav_bytes_is_16_bit_wav_at_the_true_level():
    t = np.arange(SR // 2) / SR
    quiet = (0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y, info = decode(wav_bytes(quiet, SR))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("WAV", "PCM_16", SR, 1, len(quiet))
    # Not scaled to full scale: a -40 dBFS tone stays at -40 dBFS (within 16-bit quantisation).
    assert np.max(np.abs(y)) == pytest.approx(0.01, abs=2 / 32768)
    np.testing.assert_allclose(y, quiet, atol=1 / 32768)


def test_wav_bytes_clips_beyond_full_scale_and_keeps_the_rate():
    y = np.array([0.0, 0.5, 1.7, -2.0, -0.25, 1.0], dtype=np.float32)
    out, info = decode(wav_bytes(y, 22050))
    assert info.samplerate == 22050
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, -1.0, -0.25, 1.0], atol=1 / 32768)


def test_envelope_short_signal_is_the_signal_at_its_sample_times():
    y = np.linspace(-1, 1, 100, dtype=np.float32)
    t, v = envelope(y, 1000, offset=2.0, points=100)
    np.testing.assert_array_equal(v, y)
    np.testing.assert_allclose(t, 2.0 + np.arange(100) / 1000)


def test_envelope_keeps_every_bucket_min_and_max_and_a_lone_spike():
    rng = np.random.default_rng(1)
    n = 10 * SR + 7  # not a multiple of the bucket size: the last bucket is padded with its final sample
    y = (0.1 * rng.standard_normal(n)).astype(np.float32)
    y[123_457] = 0.95   # one click: it must survive the decimation
    y[-1] = -0.8        # the last sample, in the padded bucket
    t, v = envelope(y, SR, offset=30.0)
    k = math.ceil(n / ENVELOPE_POINTS)
    rows = math.ceil(n / k)
    assert len(t) == len(v) == 2 * rows <= 2 * ENVELOPE_POINTS
    assert v.max() == pytest.approx(0.95) and v.min() == pytest.approx(y.min())
    lo, hi = v[0::2], v[1::2]
    for i in (0, rows // 2, rows - 1):
        bucket = y[i * k:(i + 1) * k]
        assert (lo[i], hi[i]) == (bucket.min(), bucket.max())
    # Both values of a bucket sit at its centre time; times rise and stay inside the window.
    np.testing.assert_array_equal(t[0::2], t[1::2])
    assert t[0] == pytest.approx(30.0 + (k / 2) / SR)
    assert np.all(np.diff(t[0::2]) > 0) and 30.0 < t[0] and t[-1] < 30.0 + (rows * k) / SR


def test_envelope_of_nothing_is_empty():
    t, v = envelope(np.zeros(0, dtype=np.float32), SR)
    assert len(t) == len(v) == 0


def test_level_dbfs_floors_silence_and_reads_a_sine():
    assert level_dbfs(np.zeros(1000, dtype=np.float32)) == -120.0
    assert level_dbfs(np.zeros(10, dtype=np.float32), floor=-90.0) == -90.0
    t = np.arange(SR) / SR
    assert level_dbfs(np.sin(2 * np.pi * 1000 * t)) == pytest.approx(-3.01, abs=0.01)  # RMS of a sine = 1/√2
    assert level_dbfs(0.1 * np.sin(2 * np.pi * 1000 * t)) == pytest.approx(-23.01, abs=0.01)
