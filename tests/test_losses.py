"""Loss weighting math, checked against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from birdcore.config.data import DataConfig
from birdcore.config.train import LossConfig
from birdcore.training.losses import ClipLoss, class_weights, sample_weights


def _bce(z, y):
    p = 1 / (1 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_bce_with_class_and_sample_weights_by_hand():
    z = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    y = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    cw = np.array([1.0, 3.0])
    sw = torch.tensor([1.0, 0.25])
    got = ClipLoss(LossConfig(kind="bce"), cw)(z, y, sw).item()
    row0 = (1.0 * _bce(2.0, 1.0) + 3.0 * _bce(-1.0, 0.5)) / 2
    row1 = (1.0 * _bce(0.5, 0.0) + 3.0 * _bce(0.0, 1.0)) / 2
    assert got == pytest.approx((1.0 * row0 + 0.25 * row1) / 1.25, rel=1e-5)


def test_label_smoothing_by_hand():
    z = torch.tensor([[1.0]])
    got = ClipLoss(LossConfig(kind="bce", label_smoothing=0.2))(z, torch.tensor([[1.0]])).item()
    assert got == pytest.approx(_bce(1.0, 0.9), rel=1e-5)


def test_focal_downweights_easy_examples():
    easy = torch.tensor([[4.0]])
    hard = torch.tensor([[-1.0]])
    y = torch.tensor([[1.0]])
    bce, focal = ClipLoss(LossConfig(kind="bce")), ClipLoss(LossConfig(kind="focal", focal_gamma=2.0))
    p_easy = torch.sigmoid(easy).item()
    assert focal(easy, y).item() == pytest.approx(_bce(4.0, 1.0) * (1 - p_easy) ** 2, rel=1e-5)
    assert focal(easy, y).item() / bce(easy, y).item() < focal(hard, y).item() / bce(hard, y).item()


def test_softmax_ce_baseline_by_hand():
    z = torch.tensor([[1.0, 2.0, 0.0]])
    y = torch.tensor([[0.0, 1.0, 0.0]])
    got = ClipLoss(LossConfig(kind="ce", class_weights="none"))(z, y).item()
    expect = -(2.0 - math.log(math.exp(1) + math.exp(2) + 1))
    assert got == pytest.approx(expect, rel=1e-5)


def test_class_weights_inverse_sqrt():
    w = class_weights(np.array([100, 25, 4]), "inv_sqrt")
    raw = np.array([0.1, 0.2, 0.5])
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights(np.array([3, 0]), "none"), [1, 1])
    w0 = class_weights(np.array([4, 0, 16]), "inv_sqrt")
    assert w0[1] == pytest.approx(w0.max())


def test_sample_weights_from_rating():
    w = sample_weights(np.array([5.0, 2.5, 0.0]), DataConfig(rating_weight="linear", unrated_weight=0.6))
    np.testing.assert_allclose(w, [1.0, 0.5, 0.6])
    np.testing.assert_array_equal(sample_weights(np.array([1.0, 0.0]), DataConfig(rating_weight="none")), [1, 1])
