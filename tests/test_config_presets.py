"""One sample rate per run (`mel.sample_rate`), old config.json files with the retired
`data.sample_rate`, and run presets built from the mel presets by name."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from birdcore.config.base import apply_overrides, from_dict, to_dict
from birdcore.config.features import DEFAULT_SR, MEL_PRESETS, mel_preset
from birdcore.config.run import PRESETS, RunConfig, load_run_config, preset
from birdcore.errors import ConfigError, RunError
from birdcore.training.runs import RunFolder

ENGINE = Path(__file__).resolve().parents[1] / "birdcore"


def _old_config(data_sr, mel_sr=None) -> dict:
    """A config.json as runs saved it while DataConfig still had `sample_rate`."""
    d = to_dict(RunConfig())
    d["data"] = {"sample_rate": data_sr, **d["data"]}
    if mel_sr is not None:
        d["mel"]["sample_rate"] = mel_sr
    return d


# ---- one sample rate --------------------------------------------------------------------------

def test_the_run_rate_is_the_mel_rate():
    cfg = RunConfig()
    assert cfg.sample_rate == cfg.mel.sample_rate == DEFAULT_SR == 32000
    assert "sample_rate" not in to_dict(cfg)["data"] and "sample_rate" not in to_dict(cfg)
    assert apply_overrides(cfg, ["mel.sample_rate=48000"]).sample_rate == 48000


def test_audio_layer_uses_the_same_default_rate():
    from birdcore.audio import io

    assert io.DEFAULT_SR is DEFAULT_SR


def test_old_run_folder_with_equal_rates_loads(tmp_path):
    run_dir = tmp_path / "run-old"
    run_dir.mkdir()
    old = {**_old_config(32000), "data_dir": str(tmp_path), "classes": ["a", "b"]}
    (run_dir / "config.json").write_text(json.dumps(old, indent=2))
    cfg, extra = RunFolder(run_dir).read_config()
    assert cfg == RunConfig() and cfg.sample_rate == 32000
    assert extra == {"data_dir": str(tmp_path), "classes": ["a", "b"]}


def test_old_config_with_equal_non_default_rates_keeps_that_rate(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(_old_config(48000, mel_sr=48000)))
    assert load_run_config(p).sample_rate == 48000
    assert from_dict(RunConfig, _old_config(32000.0)).sample_rate == 32000  # JSON may write 32000.0


@pytest.mark.parametrize("data_sr, mel_sr, shown", [(48000, None, 32000), (32000, 48000, 48000)])
def test_disagreeing_rates_name_both_fields(tmp_path, data_sr, mel_sr, shown):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(_old_config(data_sr, mel_sr)))
    with pytest.raises(ConfigError, match=rf"mel\.sample_rate: {shown} differs from data\.sample_rate {data_sr}"):
        load_run_config(p)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(p.read_text())
    with pytest.raises(RunError, match=r"mel\.sample_rate: .* data\.sample_rate"):
        RunFolder(run_dir).read_config()


def test_old_rate_of_the_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data\.sample_rate: expected an integer, got 'fast'"):
        from_dict(RunConfig, _old_config("fast"))


def test_no_sample_rate_literal_in_engine_code():
    """32000 is written once (DEFAULT_SR); docstrings and comments may say it. The Kaggle script is
    stand-alone (it must not import birdcore) and keeps its own."""
    found = []
    for path in ENGINE.rglob("*.py"):
        if path.name == "kaggle_infer_template.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value == 32000:
                found.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno}")
    assert found == ["birdcore/config/features.py:" + str(_line_of_default_sr())]


def _line_of_default_sr() -> int:
    text = (ENGINE / "config" / "features.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(text, 1) if line.startswith("DEFAULT_SR = "))


# ---- run presets from mel presets -------------------------------------------------------------

def test_every_run_preset_names_a_mel_preset():
    for name, p in PRESETS.items():
        assert p["mel_preset"] in MEL_PRESETS, name


@pytest.mark.parametrize("name, mel", [
    ("birdclef2022", mel_preset("hop512")),
    ("birdnet-head", mel_preset("hop512")),
    ("demo-cpu", mel_preset("hop320", n_mels=64, hop_length=640, n_fft=1024)),
])
def test_run_preset_mel_is_its_mel_preset(name, mel):
    assert preset(name).mel == mel
    assert preset(name).sample_rate == mel.sample_rate


def test_run_presets_repeat_no_mel_preset_value():
    """A run preset's own `mel` entries are departures from its mel preset, never copies of it."""
    for name, p in PRESETS.items():
        base = to_dict(mel_preset(p["mel_preset"]))
        same = {k: v for k, v in p.get("mel", {}).items() if base[k] == v}
        assert same == {}, f"{name} repeats {same} from mel preset {p['mel_preset']}"


def test_run_preset_round_trips_through_config_json(tmp_path):
    for name in PRESETS:
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(to_dict(preset(name))))
        assert load_run_config(p) == preset(name)
