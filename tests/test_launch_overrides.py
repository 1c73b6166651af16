"""birdcore.training.launcher: a preset plus form values → `--set` overrides → RunConfig (the Training page's path)."""

from __future__ import annotations

import json

import pytest

from birdcore.config.augment import AugmentConfig
from birdcore.config.base import from_dict, to_dict
from birdcore.config.run import preset
from birdcore.errors import ConfigError
from birdcore.training.launcher import config_values, run_config, run_overrides

PRESET = "demo-cpu"  # its model.pretrained_path is a local weights file of its own backbone


def test_config_values_reads_dotted_fields():
    cfg = preset(PRESET)
    got = config_values(cfg, ["name", "train.epochs", "model.backbone", "loss.kind"])
    assert got == {"name": cfg.name, "train.epochs": cfg.train.epochs, "model.backbone": cfg.model.backbone,
                   "loss.kind": cfg.loss.kind}
    with pytest.raises(AttributeError):
        config_values(cfg, ["train.no_such_field"])


def test_overrides_are_json_values_then_augment_then_extra_lines():
    strong = from_dict(AugmentConfig, {"gain": {"p": 1.0, "min_db": -3.0, "max_db": 3.0}}, "augment")
    out = run_overrides(PRESET, {"name": 'my "run"', "train.epochs": 3, "train.lr": 1e-4, "model.pretrained": False},
                        augment=strong, extra="train.num_workers=0\n\n  # a comment\n  data.clip_seconds=2.0  \n")
    assert out == ['name="my \\"run\\""', "train.epochs=3", "train.lr=0.0001", "model.pretrained=false",
                   f"augment={json.dumps(to_dict(strong))}", "train.num_workers=0", "data.clip_seconds=2.0"]
    assert run_overrides(PRESET, {}, augment=to_dict(strong)) == [f"augment={json.dumps(to_dict(strong))}"]
    assert run_overrides(PRESET, {}, extra=["a=1", "", "#b=2"]) == ["a=1"]


def test_another_backbone_drops_the_presets_weights_file():
    own = preset(PRESET).model.backbone
    assert preset(PRESET).model.pretrained_path  # the premise: this preset names a weights file
    assert "model.pretrained_path=null" not in run_overrides(PRESET, {"model.backbone": own})
    assert run_overrides(PRESET, {"model.backbone": "resnet10t"}) == ['model.backbone="resnet10t"',
                                                                      "model.pretrained_path=null"]
    cfg = run_config(PRESET, {"model.backbone": "resnet10t"})
    assert cfg.model.backbone == "resnet10t" and cfg.model.pretrained_path is None
    assert run_config(PRESET, {"model.backbone": own}).model.pretrained_path == preset(PRESET).model.pretrained_path


def test_run_config_applies_values_and_extra_lines_win():
    strong = from_dict(AugmentConfig, {"gain": {"p": 1.0, "min_db": -3.0, "max_db": 3.0}}, "augment")
    cfg = run_config(PRESET, {"train.epochs": 50, "train.batch_size": 8, "data.secondary_weight": 0.25},
                     augment=strong, extra="train.batch_size=12")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.secondary_weight) == (50, 12, 0.25)
    assert to_dict(cfg.augment) == to_dict(strong)
    assert cfg.model == preset(PRESET).model  # untouched fields keep the preset's values


def test_run_config_names_the_field_that_does_not_fit():
    with pytest.raises(ConfigError, match="train.epochs"):
        run_config(PRESET, {"train.epochs": -1})
    with pytest.raises(ConfigError, match="no_such"):
        run_config(PRESET, {}, extra="train.no_such=1")
