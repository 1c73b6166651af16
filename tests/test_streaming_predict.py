"""Streamed inference (blocks of audio) gives exactly the whole-file results, in bounded memory.

The reference is the whole-file path: `load_audio` + `score_recording` (every window cut at once
by `cut_windows`). The streamed path decodes tiny blocks (a fraction of a window), so block edges
fall inside windows, hops and contexts, and the results must still be bit-identical. The scorer
is a fixed random projection of every sample to frame-wise outputs: one sample out of place
changes its output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdcore.audio.blocks import read_blocks
from birdcore.audio.io import load_audio
from birdcore.audio.window_stream import WindowStream
from birdcore.audio.windows import cut_windows
from birdcore.errors import AudioError
from birdcore.inference.base import ScorerInfo
from birdcore.inference.predict import (
    PredictOptions,
    predict_files,
    score_file,
    score_recording,
)

SR = 4000  # the model's rate: small, so every test file is short to score
K = 5
FRAMES = 8


class ProjectionScorer:
    """`waves (B, L) -> (clip (B, K), frames (B, K, FRAMES))`: sigmoid of fixed random projections
    of each eighth of the input; position-sensitive, so a shifted or zeroed sample shows."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.batches: list[int] = []
        self.info = ScorerInfo(Path(f"projection-{seed}"), [f"sp{k}" for k in range(K)], SR, 1.0, "clip", "test")

    def __call__(self, waves: np.ndarray):
        waves = np.asarray(waves, dtype=np.float32)
        self.batches.append(len(waves))
        rng = np.random.default_rng((self.seed, waves.shape[1]))
        chunks = np.array_split(np.arange(waves.shape[1]), FRAMES)
        frame = np.stack([waves[:, c] @ rng.standard_normal((len(c), K)).astype(np.float32) for c in chunks], axis=-1)
        frame = 1 / (1 + np.exp(-0.05 * frame))
        return frame.mean(axis=-1), frame


def write(path: Path, seconds: float, sr: int = SR, channels: int = 1, seed: int = 1, **kw) -> Path:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.2 * rng.standard_normal((n, channels))
    sf.write(str(path), y.astype(np.float32), sr, **kw)
    return path


# window 1 s at 4 kHz = 4000 samples; block_s 0.137 s of the file: edges land everywhere.
CASES = {
    "plain": dict(),
    "hop_quarter": dict(hop_s=0.25),
    "hop_uneven": dict(hop_s=0.4),
    "context": dict(context_s=2.5),
    "context_odd_pad": dict(context_s=1.7),
    "smoothing": dict(smoothing=[0.25, 0.5, 0.25]),
    "context_hop_smooth5": dict(context_s=3.0, hop_s=0.5, smoothing=[0.1, 0.2, 0.4, 0.2, 0.1]),
    "hop_smoothing": dict(hop_s=0.75, smoothing=[0.2, 0.6, 0.2]),
}


def options(**kw) -> PredictOptions:
    return PredictOptions(window_s=1.0, min_last_s=0.5, batch_windows=3, **kw)


def whole_file(path: Path, scorers, opts) -> np.ndarray:
    return score_recording(load_audio(path, sr=SR), SR, scorers, opts)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seconds", [7.3, 7.7, 8.0, 0.3])  # partial last window dropped / kept, exact, < 1 window
def test_streamed_equals_whole_file(tmp_path, case, seconds):
    path = write(tmp_path / "rec.wav", seconds, subtype="FLOAT")
    opts = options(**CASES[case])
    streamed_scorer, whole_scorer = ProjectionScorer(), ProjectionScorer()
    got, n_samples = score_file(path, SR, [streamed_scorer], opts, block_s=0.137)
    want = whole_file(path, [whole_scorer], opts)
    assert n_samples == int(round(seconds * SR))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert streamed_scorer.batches == whole_scorer.batches  # the model sees the same batches


@pytest.mark.parametrize("file_sr, channels, fmt", [
    (SR, 2, dict(subtype="FLOAT")),             # stereo: channels mixed per block
    (6000, 1, dict(subtype="FLOAT")),           # downsampled per block (soxr stream)
    (3000, 3, dict(subtype="PCM_16")),          # upsampled, 3 channels
    (11025, 2, dict(format="OGG", subtype="VORBIS")),
    (SR, 1, dict(format="FLAC")),
])
def test_streamed_equals_whole_file_channels_rates_formats(tmp_path, file_sr, channels, fmt):
    suffix = {"OGG": ".ogg", "FLAC": ".flac"}.get(fmt.get("format"), ".wav")
    path = write(tmp_path / f"rec{suffix}", 9.6, sr=file_sr, channels=channels, **fmt)
    scorers = [ProjectionScorer(0), ProjectionScorer(1)]  # an ensemble
    for case in ("plain", "context_hop_smooth5"):
        opts = options(**CASES[case])
        got, n_samples = score_file(path, SR, scorers, opts, block_s=0.0913)
        want = whole_file(path, scorers, opts)
        np.testing.assert_array_equal(got, want)
        assert n_samples == len(load_audio(path, sr=SR))


def test_blocks_concatenate_to_load_audio(tmp_path):
    path = write(tmp_path / "rec.wav", 5.01, sr=44100, channels=2)
    for block_s in (0.01, 0.5, 60.0):
        blocks = list(read_blocks(path, sr=SR, block_s=block_s))
        np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, sr=SR))
    assert len(list(read_blocks(path, sr=SR, block_s=0.5))) >= 10


def test_window_stream_cuts_like_cut_windows_for_any_block_sizes():
    rng = np.random.default_rng(3)
    y = rng.standard_normal(int(6.6 * SR)).astype(np.float32)
    for kw in (dict(), dict(hop_s=0.3), dict(context_s=2.2)):
        inputs, owners = cut_windows(y, SR, 1.0, min_last_s=0.5, **kw)
        for sizes in ([1], [997, 1, 4000, 13], [len(y)]):
            edges = np.cumsum(np.resize(sizes, len(y)))
            blocks = np.split(y, edges[edges < len(y)])
            stream = WindowStream(blocks, SR, 1.0, min_last_s=0.5, **kw)
            got = list(stream)
            assert [w for _, w in got] == list(owners)
            np.testing.assert_array_equal(np.stack([x for x, _ in got]), inputs)
            assert stream.n_samples == len(y) and stream.n_windows == owners.max() + 1


def test_stream_scores_before_reading_the_whole_file():
    """Bounded memory: the first input comes out after a couple of blocks, not after the whole file."""
    read = []

    def blocks():
        for i in range(1000):  # 1000 × 0.5 s
            read.append(i)
            yield np.full(SR // 2, i, np.float32)

    stream = iter(WindowStream(blocks(), SR, 1.0, context_s=2.0))
    first, owner = next(stream)
    assert owner == 0 and len(read) <= 3
    for _ in range(100):
        next(stream)
    assert len(read) <= 2 * 101 + 4  # windows 0…100 end at 101 s, their contexts 0.5 s later


def test_predict_files_streamed_table_skips_bad_files(tmp_path):
    good = [write(tmp_path / "a.wav", 4.6), write(tmp_path / "b.ogg", 3.2, sr=8000, channels=2, format="OGG",
                                                  subtype="VORBIS", seed=2)]
    nan = tmp_path / "nan.wav"  # NaN samples 2 s in: found in a later block, mid-stream
    y = np.zeros(4 * SR, np.float32)
    y[2 * SR + 7] = np.nan
    sf.write(str(nan), y, SR, subtype="FLOAT")
    cut = tmp_path / "cut.flac"  # cut off: fewer samples than the header promises
    raw = write(tmp_path / "full.flac", 6.0, format="FLAC").read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    files = [good[0], nan, cut, good[1]]
    opts = options(**CASES["context_hop_smooth5"])
    res = predict_files(files, [ProjectionScorer()], opts, block_s=0.25)
    assert [Path(p).name for p, _ in res.skipped] == ["nan.wav", "cut.flac"]
    assert "NaN" in res.skipped[0][1] and str(nan) in res.skipped[0][1]
    assert str(cut) in res.skipped[1][1]
    assert list(res.table.file_id.unique()) == ["a", "b"]
    for p in good:
        rows = res.table[res.table.file_id == p.stem]
        np.testing.assert_array_equal(rows[res.classes].to_numpy(), whole_file(p, [ProjectionScorer()], opts))
        np.testing.assert_allclose(rows.end_time, np.arange(1, len(rows) + 1))
    assert res.audio_seconds == pytest.approx(4.6 + 3.2, abs=1e-3)
    whole_blocks = predict_files(files, [ProjectionScorer()], opts)  # default block size
    assert whole_blocks.table.equals(res.table) and whole_blocks.skipped == res.skipped


def test_read_blocks_raises_naming_the_file_mid_stream(tmp_path):
    y = np.zeros(4 * SR, np.float32)
    y[3 * SR] = np.inf
    path = tmp_path / "inf.wav"
    sf.write(str(path), y, SR, subtype="FLOAT")
    blocks = read_blocks(path, sr=SR, block_s=0.5)
    assert len(next(blocks)) == SR // 2  # the good start streams out first
    with pytest.raises(AudioError, match=r"inf\.wav.*NaN or infinite"):
        list(blocks)
    with pytest.raises(AudioError, match="missing.wav"):
        next(read_blocks(tmp_path / "missing.wav"))
