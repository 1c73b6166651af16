"""Bad-input corpus, JSON configs and label files: run configs (`load_run_config`), thresholds
(`load_thresholds`) and annotations (`read_annotations`) with unknown keys, wrong types,
out-of-range values, truncation, empty files and foreign encodings. Each raises its typed error
(ConfigError / DatasetError) naming the file and the field or line.
"""

from __future__ import annotations

import re

import pytest
from corpus.make_corpus import make_corpus, verify

from birdcore.config.base import apply_overrides
from birdcore.config.run import RunConfig, load_run_config
from birdcore.errors import ConfigError, DatasetError

CONFIG_ERRORS = [
    "config/unknown_key", "config/unknown_nested_key", "config/wrong_type_int", "config/wrong_type_bool",
    "config/wrong_type_section", "config/wrong_type_list", "config/out_of_range_lr", "config/out_of_range_clip",
    "config/out_of_range_fold", "config/nan_value", "config/infinite_value", "config/bad_choice",
    "config/inconsistent_rates", "config/truncated_json", "config/empty_file", "config/not_an_object",
    "config/non_utf8", "config/directory",
]
THRESHOLD_ERRORS = [
    "thresholds/unknown_key", "thresholds/missing_key", "thresholds/wrong_type", "thresholds/wrong_type_bool",
    "thresholds/out_of_range", "thresholds/negative", "thresholds/nan_threshold", "thresholds/unknown_species",
    "thresholds/wrong_schema", "thresholds/truncated_json", "thresholds/empty_file", "thresholds/not_an_object",
    "thresholds/non_utf8",
]
ANNOTATION_ERRORS = [
    "annotations/unknown_column", "annotations/missing_column", "annotations/wrong_type", "annotations/nan_time",
    "annotations/negative_start", "annotations/end_before_start", "annotations/unknown_species",
    "annotations/bad_timestamp", "annotations/wrong_field_count", "annotations/truncated", "annotations/empty_file",
    "annotations/non_utf8",
]
ANNOTATION_VALID = ["annotations/bom_blank_lines", "annotations/header_only"]
EXPECTED_TYPE = {"config": ConfigError, "thresholds": ConfigError, "annotations": DatasetError}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    cases = make_corpus(tmp_path_factory.mktemp("corpus"), groups=["config", "thresholds", "annotations"])
    return {c.name: c for c in cases}


def test_every_corpus_case_is_tested(corpus):
    assert sorted(corpus) == sorted(CONFIG_ERRORS + THRESHOLD_ERRORS + ANNOTATION_ERRORS + ANNOTATION_VALID)


@pytest.mark.parametrize("name", CONFIG_ERRORS + THRESHOLD_ERRORS + ANNOTATION_ERRORS)
def test_bad_file_raises_typed_error_naming_file_and_field(corpus, name):
    case = corpus[name]
    with pytest.raises(Exception) as err:
        case.load(case.path)
    expected = EXPECTED_TYPE[case.group]
    assert case.error is expected
    assert type(err.value) is expected, f"{type(err.value).__name__}: {err.value}"
    msg = str(err.value)
    assert str(case.path) in msg, msg
    assert re.search(case.problem, msg), f"expected /{case.problem}/ in: {msg}"


@pytest.mark.parametrize("name", ANNOTATION_VALID)
def test_odd_but_valid_labels_load(corpus, name):
    case = corpus[name]
    case.check(case.load(case.path))


@pytest.mark.parametrize("name", CONFIG_ERRORS + THRESHOLD_ERRORS + ANNOTATION_ERRORS + ANNOTATION_VALID)
def test_loading_never_changes_the_file(corpus, name):
    out = verify(corpus[name])
    assert out.handled, out.detail
    assert out.lost == 0


@pytest.mark.parametrize("override, field", [
    ("train.lr=NaN", "train.lr"), ("train.weight_decay=Infinity", "train.weight_decay"),
    ("augment.gain.max_db=-Infinity", "augment.gain.max_db"),
])
def test_cli_overrides_cannot_smuggle_non_finite_numbers(override, field):
    # `--set` parses values as JSON, whose Python reader accepts NaN/Infinity.
    with pytest.raises(ConfigError, match=re.escape(field) + r": expected a finite number"):
        apply_overrides(RunConfig(), [override])


def test_saved_run_config_round_trips(tmp_path):
    # The control for the corpus: a valid file of the same shape loads.
    import json

    from birdcore.config.base import to_dict

    path = tmp_path / "ok.json"
    path.write_text(json.dumps(to_dict(RunConfig(name="ok"))))
    assert load_run_config(str(path)).name == "ok"
