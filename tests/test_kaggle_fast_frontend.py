"""The Kaggle bundle's numpy mel front end (infer.py) computes birdcore's MelFrontend images."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from birdcore.config.base import to_dict
from birdcore.config.features import MelConfig
from birdcore.features.mel_frontend import MelFrontend
from birdcore.submission.kaggle_bundle import TEMPLATE, write_frontend_arrays


def _template():
    spec = importlib.util.spec_from_file_location("kaggle_infer", TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stand-alone script: importing it runs nothing (main() is guarded)
    return module


def _waves(sr: int, seconds: float = 5.0, n: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal((n, len(t)))
    x[0] += 0.3 * np.sin(2 * np.pi * (1500 + 400 * t) * t)  # a loud chirp
    x[1] *= 1e-3  # quiet: the top_db floor and the amin clamp matter
    x[2, : len(t) // 2] = 0.0  # half digital silence
    return x.astype(np.float32)


@pytest.mark.parametrize("overrides", [
    {},  # the default (birdclef2022 lineage): power 2, db80, 3 repeated channels
    {"normalization": "minmax", "in_chans": 1, "n_mels": 64, "hop_length": 320, "n_fft": 1024},
    {"channel_mode": "deltas", "power": 1.0, "top_db": None, "fmin": 50.0, "fmax": 14000.0},
])
def test_numpy_front_end_matches_mel_frontend(tmp_path, overrides):
    cfg = MelConfig(**overrides)
    infer = _template()
    with np.load(write_frontend_arrays(to_dict(cfg), tmp_path / "frontend.npz")) as arrays:
        front = infer.MelFrontEnd(to_dict(cfg), arrays)
    x = _waves(cfg.sample_rate)
    with torch.inference_mode():
        want = MelFrontend(cfg).eval()(torch.from_numpy(x)).numpy()
    got = front(x)
    assert got.dtype == np.float32 and got.shape == want.shape
    # float32 FFTs in two libraries: the images (≈ [0, 1]) agree to a few float32 ulps
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)
    if infer.scipy_fft is not None:  # and numpy's own FFT, the fallback without scipy
        infer.scipy_fft = None
        np.testing.assert_allclose(front(x), want, atol=2e-5, rtol=0)
    # the tolerance is tight enough to see a wrong recipe: the other normalisation fails it
    flipped = dict(to_dict(cfg), normalization="db80" if cfg.normalization == "minmax" else "minmax")
    with np.load(tmp_path / "frontend.npz") as arrays:
        assert np.abs(infer.MelFrontEnd(flipped, arrays)(x) - want).max() > 1e-2
