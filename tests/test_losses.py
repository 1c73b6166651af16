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


@pytest.mark.parametrize("kind", ["bce", "focal", "ce"])
def test_unknown_targets_add_nothing_and_get_no_gradient(kind):
    # NaN = a pseudo-label teacher with no opinion on that class: the element must neither count
    # nor pull its logit anywhere, while the known elements are scored as usual.
    z = torch.tensor([[2.0, -1.0, 0.5], [0.5, 0.0, -2.0]], requires_grad=True)
    y = torch.tensor([[1.0, float("nan"), 0.0], [0.0, 1.0, float("nan")]])
    loss_fn = ClipLoss(LossConfig(kind=kind, label_smoothing=0.1))
    loss = loss_fn(z, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert z.grad[0, 1] == 0 and z.grad[1, 2] == 0
    assert (z.grad[0, [0, 2]] != 0).all() and (z.grad[1, [0, 1]] != 0).all()
    # the value does not depend on the unknown logits
    z2 = z.detach().clone()
    z2[0, 1], z2[1, 2] = 9.0, -9.0
    assert loss_fn(z2, y).item() == pytest.approx(loss.item(), rel=1e-6)


def test_unknown_targets_bce_by_hand():
    # BCE divides by K (not by the known count): a known class weighs the same in every row
    z = torch.tensor([[2.0, -1.0]])
    got = ClipLoss(LossConfig(kind="bce"))(z, torch.tensor([[1.0, float("nan")]])).item()
    assert got == pytest.approx(_bce(2.0, 1.0) / 2, rel=1e-5)
    ce = ClipLoss(LossConfig(kind="ce", class_weights="none"))
    z3 = torch.tensor([[1.0, 2.0, 0.0]])
    got_ce = ce(z3, torch.tensor([[0.0, 1.0, float("nan")]])).item()
    assert got_ce == pytest.approx(-(2.0 - math.log(math.exp(1) + math.exp(2))), rel=1e-5)


def _fit_linear(x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> torch.nn.Linear:
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = ClipLoss(LossConfig(kind="bce"))
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.slow
def test_a_class_the_teacher_does_not_know_is_learned_from_the_labelled_rows():
    # Class k sounds when feature k > 0.5. 24 labelled rows know all three classes; 400
    # pseudo-labelled rows come from a teacher that knows classes 0 and 1 only. Masked (NaN),
    # class 2 is learned from the labelled rows; taught as 0 (what the table said before), the
    # 400 rows teach "class 2 is absent" and the model misses most of its calls.
    g = torch.Generator().manual_seed(1)
    x = torch.rand(424, 3, generator=g) * 2 - 0.5
    truth = (x > 0.5).float()
    pseudo = truth.clone()
    pseudo[24:, 2] = float("nan")
    zeros = torch.nan_to_num(pseudo, nan=0.0)
    x_test = torch.rand(500, 3, generator=g) * 2 - 0.5
    positive = x_test[:, 2] > 0.5
    recall = {}
    for name, y in (("masked", pseudo), ("zeros", zeros)):
        p = torch.sigmoid(_fit_linear(x, y)(x_test)).detach()
        recall[name] = float((p[positive, 2] > 0.5).float().mean())
        assert float(((p[:, :2] > 0.5) == (x_test[:, :2] > 0.5)).float().mean()) > 0.95  # known classes learned
    assert recall["masked"] >= 0.8 and recall["zeros"] <= 0.3, recall
