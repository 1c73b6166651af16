"""Bad-input corpus, audio: every broken file raises AudioError naming the file and the problem;
odd but valid files (stereo, 8/96 kHz, 0.2 s, 30 min, silence) load and are handled correctly.

The files are generated at test time by `tests/corpus/make_corpus.py` (see its docstring).
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from corpus.make_corpus import SR, make_corpus, verify

from birdcore.audio.io import (
    audio_info,
    audio_stats,
    check_audio,
    load_audio,
    write_audio,
)
from birdcore.errors import AudioError

ERROR_CASES = [
    "audio/empty_file", "audio/truncated_ogg", "audio/truncated_ogg_page_boundary", "audio/truncated_ogg_header",
    "audio/random_bytes", "audio/wav_header_no_data", "audio/wav_truncated", "audio/wav_zero_frames",
    "audio/nan_samples", "audio/inf_samples", "audio/directory",
]
VALID_CASES = ["audio/stereo_44k", "audio/rate_8k", "audio/rate_96k", "audio/short_0.2s", "audio/all_silence",
               "audio/long_30min"]


# Every test that uses `corpus` is marked slow: encoding its 30-min Ogg file takes ~15 s.
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {c.name: c for c in make_corpus(tmp_path_factory.mktemp("corpus"), groups=["audio"])}


@pytest.mark.slow
def test_every_corpus_case_is_tested(corpus):
    # a case added to the corpus but not to these lists would silently go untested
    assert sorted(corpus) == sorted(ERROR_CASES + VALID_CASES)
    assert all(not corpus[n].valid for n in ERROR_CASES) and all(corpus[n].valid for n in VALID_CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", ERROR_CASES)
def test_bad_audio_raises_audio_error_naming_file_and_problem(corpus, name):
    case = corpus[name]
    with pytest.raises(Exception) as err:
        case.load(case.path)
    assert type(err.value) is AudioError, f"{type(err.value).__name__}: {err.value}"
    msg = str(err.value)
    assert str(case.path) in msg, msg
    assert re.search(case.problem, msg), f"expected /{case.problem}/ in: {msg}"


@pytest.mark.slow
@pytest.mark.parametrize("name", VALID_CASES)
def test_odd_but_valid_audio_is_handled(corpus, name):
    case = corpus[name]
    case.check(case.load(case.path))  # assertions: see the case's check in make_corpus.py


@pytest.mark.slow
@pytest.mark.parametrize("name", ERROR_CASES + VALID_CASES)
def test_loading_never_changes_the_file(corpus, name):
    # verify() hashes the case's folder before and after the load
    out = verify(corpus[name])
    assert out.handled, out.detail
    assert out.lost == 0


@pytest.mark.slow
def test_check_audio_finds_file_level_problems_without_decoding(corpus, monkeypatch):
    # The pre-scan (no decoding) catches everything but bad sample values, which need a decode.
    def no_decode(*a, **k):
        raise AssertionError("check_audio decoded samples")

    monkeypatch.setattr(sf.SoundFile, "read", no_decode)
    for name in ERROR_CASES:
        case = corpus[name]
        if name in ("audio/nan_samples", "audio/inf_samples"):
            assert check_audio(case.path).frames == SR
            continue
        with pytest.raises(AudioError, match=case.problem):
            check_audio(case.path)
    for name in VALID_CASES:
        assert check_audio(corpus[name].path).frames > 0


@pytest.mark.slow
def test_short_clip_cannot_fill_a_strict_window(corpus):
    path = corpus["audio/short_0.2s"].path
    with pytest.raises(AudioError, match=re.escape(str(path)) + r": window 0\.000\+5\.000 s runs past the end"):
        load_audio(path, duration=5.0, allow_short=False)


@pytest.mark.slow
def test_long_file_other_windows_and_end(corpus):
    path = corpus["audio/long_30min"].path
    before = load_audio(path, offset=1490.0, duration=5.0)  # silence just before the marker
    assert len(before) == 5 * SR and np.abs(before).max() < 1e-3
    tail = load_audio(path, offset=1797.5, duration=5.0)  # the last 2.5 s: shorter, no error
    assert len(tail) == int(2.5 * SR)
    with pytest.raises(AudioError, match=r"offset 1800\.000 s is past the end \(1800\.000 s\)"):
        load_audio(path, offset=1800.0, duration=5.0)


def test_audio_stats_levels():
    t = np.arange(SR) / SR
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    s = audio_stats(sine)
    assert s.peak == pytest.approx(1.0, abs=1e-3) and s.rms_dbfs == pytest.approx(-3.01, abs=0.02)
    assert not s.silent and 0 < s.clipped_fraction < 0.05
    quiet = audio_stats(0.00005 * sine)  # -86 dBFS: below the silence line
    assert quiet.silent and quiet.clipped_fraction == 0
    assert audio_stats(np.zeros(10)).rms_dbfs == float("-inf")


@pytest.mark.parametrize("subtype, rate, seconds", [
    ("VORBIS", 32000, 0.05), ("VORBIS", 32000, 7.3), pytest.param("VORBIS", 44100, 61.0, marks=pytest.mark.slow),
    ("OPUS", 48000, 3.0),
])
def test_truncation_check_has_no_false_positives(tmp_path, subtype, rate, seconds):
    # The end-of-stream check must pass every complete file, short or long, Vorbis or Opus.
    rng = np.random.default_rng(int(seconds * 100))
    y = (0.3 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    path = tmp_path / f"ok.{'opus' if subtype == 'OPUS' else 'ogg'}"
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format="OGG", subtype=subtype) as fh:
        for i in range(0, len(y), 1 << 18):  # blocks: see test_write_audio_long_ogg_does_not_crash
            fh.write(y[i:i + (1 << 18)])
    assert len(load_audio(path, sr=None)) == pytest.approx(len(y), abs=0.01 * rate)
    write_audio(tmp_path / "via_write_audio.ogg", y, rate)
    assert len(load_audio(tmp_path / "via_write_audio.ogg", sr=None)) == len(y)


@pytest.mark.slow
def test_write_audio_long_ogg_does_not_crash(tmp_path):
    # libsndfile 1.2 segfaults when one write call gives the Vorbis encoder >= 2**21 frames
    # (65.5 s at 32 kHz); write_audio writes in blocks. Run in a child so a regression shows up
    # as a failed test, not as a dead test session.
    out = tmp_path / "70s.ogg"
    code = ("import sys, numpy as np; from birdcore.audio.io import write_audio;"
            "write_audio(sys.argv[1], 0.1 * np.random.default_rng(0).standard_normal(70 * 32000))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert audio_info(out).frames == 70 * SR
    assert len(load_audio(out, offset=64.0, duration=5.0)) == 5 * SR


def test_streamed_wav_with_placeholder_size_is_not_called_truncated(tmp_path):
    # Recorders that stream WAV write 0xFFFFFFFF as the data size; that is "unknown", not a lie.
    pcm = (0.1 * np.sin(np.arange(8000) / 5) * 32767).astype("<i2").tobytes()
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFFFF))
    (tmp_path / "streamed.wav").write_bytes(header + pcm)
    try:
        info = sf.info(str(tmp_path / "streamed.wav"))
    except Exception as exc:  # pragma: no cover - depends on the libsndfile build
        pytest.skip(f"libsndfile cannot open streamed WAVs here: {exc}")
    y = load_audio(tmp_path / "streamed.wav", sr=None)
    assert len(y) == info.frames == 8000
