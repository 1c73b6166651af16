"""The whole network: waveform → mel front end → backbone → head, in one module.

Keeping the front end inside the model means one exported file maps waveform → logits, and
training and inference can never disagree about features.
"""

from __future__ import annotations

import torch
from torch import nn

from birdcore.config.run import RunConfig
from birdcore.models.backbone import create_backbone
from birdcore.models.heads import LinearHead, SEDHead
from birdcore.models.outputs import clip_probability


class BirdModel(nn.Module):
    """`forward(wave (B, T)) -> (clip_logits (B, K), frame_logits (B, K, T'))`.

    `forward_mel(mel)` skips the front end (spectrogram augmentations and mixup run between the
    two during training). `predict_proba(wave)` applies `model.inference_prob`.
    """

    def __init__(self, frontend: nn.Module, backbone: nn.Module, head: nn.Module,
                 inference_prob: str = "clip") -> None:
        super().__init__()
        self.frontend = frontend
        self.backbone = backbone
        self.head = head
        self.inference_prob = inference_prob

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        return self.frontend(wave)

    def forward_mel(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.backbone.forward_features(mel)
        clip, frame, _ = self.head(feat)
        return clip, frame

    def forward(self, x: torch.Tensor, from_mel: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        # `from_mel` lets DistributedDataParallel wrap the mel path too (its gradient hooks only
        # run through `forward`).
        return self.forward_mel(x if from_mel else self.frontend(x))

    def predict_proba(self, wave: torch.Tensor) -> torch.Tensor:
        """Clip probabilities (B, K) as configured by `inference_prob`."""
        clip, frame = self(wave)
        return clip_probability(torch.sigmoid(clip), torch.sigmoid(frame), self.inference_prob)


def build_model(cfg: RunConfig, num_classes: int) -> BirdModel:
    """Build the network of `cfg` for `num_classes` classes (weights as `cfg.model` says)."""
    from birdcore.features.mel_frontend import MelFrontend

    frontend = MelFrontend(cfg.mel)
    backbone, channels = create_backbone(cfg.model, in_chans=cfg.mel.in_chans)
    m = cfg.model
    if m.head == "sed":
        head: nn.Module = SEDHead(channels, num_classes, m.hidden_dim, m.dropout, m.freq_pool)
    else:
        head = LinearHead(channels, num_classes, m.hidden_dim, m.dropout)
    return BirdModel(frontend, backbone, head, m.inference_prob)
