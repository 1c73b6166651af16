"""Saved augmentation configs (`birdcore.augment.presets_store`): round trip, names, broken files."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from birdcore.augment import presets_store as store
from birdcore.config.augment import AugmentConfig, GainConfig, MaskConfig
from birdcore.config.base import from_dict, to_dict
from birdcore.errors import ConfigError


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def custom() -> AugmentConfig:
    return replace(AugmentConfig(), gain=GainConfig(p=1.0, min_db=-3.0, max_db=6.0),
                   freq_mask=MaskConfig(p=0.8, count=2, max_width=7, fill="zero"), wave_order=["gain", "normalize"])


def test_round_trip_and_listing(home):
    cfg = custom()
    path = store.save("strong noise", cfg)
    assert path == home / "augment" / "strong noise.json" and path.is_file()
    assert json.loads(path.read_text(encoding="utf-8")) == to_dict(cfg)  # the Training page's format
    assert store.load("strong noise") == cfg
    assert store.load(path) == cfg  # by path too
    assert store.load("strong noise.json") == cfg  # ".json" is dropped from names
    assert from_dict(AugmentConfig, json.loads(path.read_text()), "augment") == cfg

    store.save("Alpha", AugmentConfig())
    assert store.list_presets() == ["Alpha", "strong noise"]
    store.save("Alpha", cfg)  # same name: replaced
    assert store.load("Alpha") == cfg and store.list_presets() == ["Alpha", "strong noise"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    assert store.delete("Alpha") and not store.delete("Alpha")
    assert store.list_presets() == ["strong noise"]


def test_list_is_empty_without_folder(home):
    assert store.list_presets() == []
    assert not (home / "augment").exists()


@pytest.mark.parametrize("name", ["", "   ", "../evil", "a/b", "a\\b", "..", "x..y", ".hidden", "-dash",
                                  "semi;colon", "x" * 101, ".json"])
def test_bad_names_are_refused(name, home):
    with pytest.raises(ConfigError, match="name"):
        store.save(name, AugmentConfig())
    with pytest.raises(ConfigError, match="name"):
        store.load(name)
    assert not (home.parent / "evil.json").exists()
    assert not (home / "augment").exists() or not list((home / "augment").iterdir())


def test_unicode_and_punctuation_names(home):
    for name in ("Grünspecht v2", "mix_0.5 (OR)", "a+b"):
        store.save(name, AugmentConfig())
        assert store.load(name) == AugmentConfig()
    assert len(store.list_presets()) == 3


def test_missing_file(home):
    with pytest.raises(ConfigError, match=r"nothing\.json: augmentation config not found"):
        store.load("nothing")


def test_truncated_json_names_the_file(home):
    path = store.save("cut", custom())
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        store.load("cut")
    msg = str(err.value)
    assert str(path) in msg and "invalid JSON at line" in msg


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["gain"].update(bogus=1), "augment.gain.bogus: unknown field"),
    (lambda d: d.update(speed=2), "augment.speed: unknown field"),
    (lambda d: d["gain"].update(min_db=10.0, max_db=5.0), "augment.gain.min_db: min 10.0 is greater than max 5.0"),
    (lambda d: d["time_mask"].update(p="often"), "augment.time_mask.p: expected a number"),
    (lambda d: d.update(wave_order=["gain", "reverb"]), "augment.wave_order[1]"),
])
def test_invalid_content_names_file_and_field(home, edit, field):
    path = store.save("edited", AugmentConfig())
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        store.load("edited")
    assert str(err.value).startswith(f"{path}: ") and field in str(err.value)


def test_not_a_mapping_and_wrapped_form(home):
    folder = home / "augment"
    folder.mkdir(parents=True)
    (folder / "list.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list\.json: augment: expected a mapping"):
        store.load("list")
    (folder / "wrapped.json").write_text(json.dumps({"augment": to_dict(custom())}), encoding="utf-8")
    assert store.load("wrapped") == custom()


def test_augment_config_from_dict():
    assert store.augment_config_from_dict({}) == AugmentConfig()
    assert store.augment_config_from_dict({"gain": {"p": 1.0}}).gain.p == 1.0
    with pytest.raises(ConfigError, match=r"^augment\.gain\.max_db: 99\.0 must be <= 60"):
        store.augment_config_from_dict({"gain": {"max_db": 99.0}})


def test_save_refuses_non_config(home):
    with pytest.raises(ConfigError, match="expected an AugmentConfig"):
        store.save("x", {"gain": {}})  # type: ignore[arg-type]
