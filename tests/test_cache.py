"""Decoded-audio cache: round trip, incremental rebuild, corrupt files listed in skipped.csv."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from helpers.synth import make_tone_dataset

from birdcore.audio import cache as cache_mod
from birdcore.audio.cache import build_cache, default_cache_dir, open_cache
from birdcore.audio.io import load_audio
from birdcore.augment.pipeline import load_training_clip
from birdcore.config.augment import AugmentConfig
from birdcore.data.dataset import load_dataset
from birdcore.errors import AudioError

SR = 32000


@pytest.fixture()
def dataset(tmp_path):
    return load_dataset(make_tone_dataset(tmp_path / "data", n_species=2, per_species=3, seconds=6.0))


def test_round_trip_within_int16_quantisation(dataset):
    calls = []
    root = build_cache(dataset, workers=1, progress=lambda done, total, fn: calls.append((done, total)))
    assert root == default_cache_dir(dataset.root, SR, "int16") and root.is_relative_to(dataset.root / ".birdcore_cache")
    assert calls[-1] == (6, 6)
    cache = open_cache(dataset.root)
    assert len(cache) == 6 and cache.skipped() == []
    for fn, path in zip(dataset.metadata["filename"], dataset.audio_paths()):
        full = load_audio(path, SR)
        assert cache.duration(fn) == pytest.approx(len(full) / SR)
        window = cache.read(fn, 1.5, 2.0)
        ref = load_audio(path, SR, offset=1.5, duration=2.0)
        scale = cache.files[fn]["scale"]
        assert window.dtype == np.float32 and window.shape == ref.shape
        assert np.abs(window - ref).max() <= scale / 32767 * 0.5 + 1e-7
    # the training loader reads the same window from a cache entry as from the file
    fn, path = dataset.metadata["filename"][0], dataset.audio_paths()[0]
    a = load_training_clip(cache.entry(fn), AugmentConfig.off(), 0, seconds=3.0)
    b = load_training_clip(path, AugmentConfig.off(), 0, seconds=3.0)
    assert a.shape == b.shape == (3 * SR,) and np.abs(a - b).max() < 1e-4
    with pytest.raises(AudioError, match="not in the audio cache"):
        cache.read("nope/XC0.ogg", 0, 1)


def test_float16_cache(dataset, tmp_path):
    root = build_cache(dataset, out_dir=tmp_path / "f16", dtype="float16", workers=1)
    cache = open_cache(root)
    fn, path = dataset.metadata["filename"][1], dataset.audio_paths()[1]
    ref = load_audio(path, SR)
    got = cache.read(fn)
    assert np.abs(got - ref).max() <= 1e-3 * max(1.0, np.abs(ref).max())


def test_rebuild_skips_cached_files_and_redoes_changed_ones(dataset, monkeypatch):
    build_cache(dataset, workers=1)
    encoded = []
    real = cache_mod._encode_one
    monkeypatch.setattr(cache_mod, "_encode_one", lambda args: encoded.append(args[0]) or real(args))
    build_cache(dataset, workers=1)
    assert encoded == []  # nothing decoded again
    changed = dataset.audio_paths()[2]
    y = load_audio(changed, SR)
    import soundfile as sf
    sf.write(changed, np.concatenate([y, y]), SR, format="OGG", subtype="VORBIS")  # new size + mtime
    build_cache(dataset, workers=1)
    assert encoded == [dataset.metadata["filename"][2]]
    assert open_cache(dataset.root).duration(dataset.metadata["filename"][2]) == pytest.approx(2 * len(y) / SR)


def test_corrupt_file_is_listed_in_skipped_csv_and_the_rest_proceeds(dataset):
    bad = dataset.audio_paths()[4]
    bad.write_bytes(b"OggS" + os.urandom(2000))  # garbage after an Ogg magic
    missing = dataset.audio_paths()[5]
    missing.unlink()
    root = build_cache(dataset, workers=2)  # the process-pool path
    with open(root / "skipped.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["filename"] for r in rows} == {dataset.metadata["filename"][4], dataset.metadata["filename"][5]}
    assert all(r["error"] for r in rows)
    cache = open_cache(root)
    assert len(cache) == 4 and dataset.metadata["filename"][4] not in cache
    fn, path = dataset.metadata["filename"][0], dataset.audio_paths()[0]
    assert np.abs(cache.read(fn) - load_audio(path, SR)).max() < 1e-4
