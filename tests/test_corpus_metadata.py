"""Bad-input corpus, dataset metadata: each broken `train_metadata.csv` (or `scored_birds.json`)
raises DatasetError naming the file, and the line/column or the problem; odd but valid tables
(BOM, extra columns, `?` times, CRLF) load with the right values.

`tests/test_dataset.py` has the first hand-written cases; this is the systematic sweep, run
through `load_dataset` exactly as the CLI and the app call it.
"""

from __future__ import annotations

import re

import pytest
from corpus.make_corpus import make_corpus, verify

from birdcore.errors import DatasetError

ERROR_CASES = [
    "metadata/empty_file", "metadata/header_only", "metadata/missing_column", "metadata/wrong_delimiter",
    "metadata/non_utf8", "metadata/ragged_row", "metadata/duplicated_filenames", "metadata/unknown_primary",
    "metadata/unknown_secondary", "metadata/malformed_list", "metadata/list_not_strings", "metadata/malformed_type",
    "metadata/rating_too_high", "metadata/rating_negative", "metadata/rating_text", "metadata/rating_empty",
    "metadata/latitude_out_of_range", "metadata/longitude_out_of_range", "metadata/empty_primary_label",
    "metadata/scored_truncated_json",
]
VALID_CASES = ["metadata/extra_columns", "metadata/bom", "metadata/time_question_mark", "metadata/crlf_line_ends"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {c.name: c for c in make_corpus(tmp_path_factory.mktemp("corpus"), groups=["metadata"])}


def test_every_corpus_case_is_tested(corpus):
    assert sorted(corpus) == sorted(ERROR_CASES + VALID_CASES)
    assert all(not corpus[n].valid for n in ERROR_CASES) and all(corpus[n].valid for n in VALID_CASES)


@pytest.mark.parametrize("name", ERROR_CASES)
def test_bad_metadata_raises_dataset_error_naming_file_and_problem(corpus, name):
    case = corpus[name]
    with pytest.raises(Exception) as err:
        case.load(case.path)
    assert type(err.value) is DatasetError, f"{type(err.value).__name__}: {err.value}"
    msg = str(err.value)
    assert case.names in msg, msg  # the full path of the offending file
    assert re.search(case.problem, msg), f"expected /{case.problem}/ in: {msg}"


@pytest.mark.parametrize("name", VALID_CASES)
def test_odd_but_valid_metadata_loads(corpus, name):
    case = corpus[name]
    case.check(case.load(case.path))  # assertions: see the case's check in make_corpus.py


@pytest.mark.parametrize("name", ERROR_CASES + VALID_CASES)
def test_loading_never_changes_the_files(corpus, name):
    out = verify(corpus[name])
    assert out.handled, out.detail
    assert out.lost == 0


def test_delimiter_hint_only_when_it_helps(corpus):
    # A comma file with a genuinely ragged row must not be told "use commas".
    case = corpus["metadata/ragged_row"]
    with pytest.raises(DatasetError) as err:
        case.load(case.path)
    assert "delimiter" not in str(err.value)
