"""Model configuration: timm backbone + classifier head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from birdcore.config.base import check_range


@dataclass
class ModelConfig:
    """Backbone and head.

    - `backbone`: any timm model name. Its input channels follow `mel.in_chans`.
    - `pretrained`: load ImageNet weights — from `pretrained_path` when set (a `.pth`/`.safetensors`
      state dict), else from the local timm/Hugging Face cache. Nothing downloads unless
      `allow_download` is true; offline without weights is a clear `ModelError` within seconds.
    - `head`: "sed" (attention SED head: clip-wise + frame-wise logits, as the top BirdCLEF
      solutions) or "linear" (global avg pool + linear, the simple baseline).
    - `freq_pool`: how the feature map's frequency axis is collapsed for the SED head.
    - `inference_prob`: "clip" = sigmoid(clip logit); "clip_max" = 0.75·clip + 0.25·max over time
      of the frame-wise probabilities (helped in BirdCLEF 2023).
    - `birdnet_prior` (`birdnet_head` family only): start each class BirdNET knows from BirdNET's own
      window score (`models.heads.BirdnetPriorHead`), so a few labels move it only where they
      disagree with BirdNET; false = a plain head on the embedding.
    """

    backbone: str = "tf_efficientnet_b0.ns_jft_in1k"
    pretrained: bool = True
    pretrained_path: str | None = None
    allow_download: bool = False
    head: Literal["sed", "linear"] = "sed"
    freq_pool: Literal["mean", "gem"] = "mean"
    hidden_dim: int | None = None
    dropout: float = 0.25
    drop_path_rate: float = 0.1
    inference_prob: Literal["clip", "clip_max"] = "clip"
    birdnet_prior: bool = True

    def __post_init__(self) -> None:
        if not self.backbone.strip():
            raise_config("backbone", "must name a timm model, e.g. tf_efficientnet_b0.ns_jft_in1k")
        check_range("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        check_range("drop_path_rate", self.drop_path_rate, 0.0, 1.0, hi_open=True)
        if self.hidden_dim is not None:
            check_range("hidden_dim", self.hidden_dim, 1)


def raise_config(field: str, msg: str) -> None:
    from birdcore.errors import ConfigError

    raise ConfigError(f"{field}: {msg}")
