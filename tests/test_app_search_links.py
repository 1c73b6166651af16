""""Find similar windows" on the Inspection and Annotation pages (issue 14): `birdcore.archive.search.window_at`
on a synthetic archive (no BirdNET), and the link to the Search page (`?window=ID`) under AppTest, or the
caption saying the dataset has no archive (or not that window) yet.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.apptest import start_page
from streamlit.testing.v1 import AppTest
from test_inspection import (
    tiny_trained,  # one tiny model per session, shared with the engine tests
)

from birdcore.archive.layout import ArchiveLayout, Manifest, ensure_manifest
from birdcore.archive.search import window_at
from birdcore.archive.vector_store import write_shard
from birdcore.archive.window_table import commit_rows, empty_table
from birdcore.data.dataset import load_dataset

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
INSPECT = REPO / "app" / "pages" / "6_Inspection.py"
ANNOTATE = REPO / "app" / "pages" / "7_Annotation.py"
TIMEOUT = 120
FIRST_ID = 100  # window ids that are not row positions


def make_archive(root: Path, windows: list[tuple[str, float, float]], first_id: int = FIRST_ID) -> ArchiveLayout:
    """An archive of one random vector per (path, start_s, end_s), committed through the real shard + table path."""
    layout = ArchiveLayout(root)
    ensure_manifest(layout, Manifest(model_tag="test-model", dim=8))
    vecs = np.random.default_rng(0).standard_normal((len(windows), 8)).astype(np.float32)
    write_shard(layout, 0, vecs, "float32")
    rows = pd.DataFrame({"window_id": np.arange(first_id, first_id + len(windows)),
                         "path": [str(p) for p, _, _ in windows], "digest": "d",
                         "start_s": [a for _, a, _ in windows], "end_s": [b for _, _, b in windows],
                         "source": "src", "shard": 0, "row": np.arange(len(windows)),
                         "norm": np.linalg.norm(vecs, axis=1)})
    commit_rows(layout, empty_table(), rows, set())
    return layout


def grid(path: Path, seconds: float = 60.0, hop: float = 1.0) -> list[tuple[str, float, float]]:
    """Windows of 5 s every `hop` s, as BirdNET's archive grid."""
    return [(str(path), float(a), float(a) + 5.0) for a in np.arange(0.0, seconds - 4.0, hop)]


# ---- engine ----------------------------------------------------------------------------------------------------
def test_window_at_finds_the_window_by_resolved_path_and_start(tmp_path):
    rec = tmp_path / "rec" / "a.wav"
    rec.parent.mkdir()
    rec.write_bytes(b"x")
    other = tmp_path / "rec" / "b.wav"
    archive = tmp_path / "archive"
    make_archive(archive, grid(other, 20.0) + grid(rec, 20.0, hop=5.0))  # b: ids 100–115, a: 116–119 (0, 5, 10, 15 s)
    assert window_at(archive, rec, 0.0) == 116
    assert window_at(archive, rec, 10.0) == 118
    assert window_at(archive, rec, 12.5) == 118  # the window whose span holds it
    assert window_at(archive, other, 7.0) == 107  # hop 1 s: the one starting at it, not an earlier overlapping one
    assert window_at(archive, other, 7.4) == 107  # else the latest start before it
    assert window_at(archive, rec, 20.0) is None and window_at(archive, rec, 99.0) is None  # past the last window
    link = tmp_path / "link"
    os.symlink(rec.parent, link)
    assert window_at(archive, link / "a.wav", 5.0) == 117  # same file, other spelling
    assert window_at(archive, link / ".." / "rec" / "a.wav", 5.0) == 117
    assert window_at(archive, tmp_path / "rec" / "c.wav", 0.0) is None  # not in the archive
    assert window_at(tmp_path / "no-archive", rec, 0.0) is None
    (tmp_path / "empty").mkdir()
    assert window_at(tmp_path / "empty", rec, 0.0) is None  # a folder without a manifest
    ensure_manifest(ArchiveLayout(tmp_path / "empty"), Manifest(model_tag="test-model", dim=8))
    assert window_at(tmp_path / "empty", rec, 0.0) is None  # an archive with no window yet


# ---- pages -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data, runs = tiny_trained(tmp_path_factory)
    return data, runs


@pytest.fixture()
def dataset(trained, tmp_path, monkeypatch):
    """A copy of the tiny dataset per test (its archive lives inside it), the tiny model's runs folder."""
    data, runs = trained
    root = Path(shutil.copytree(data, tmp_path / "data", ignore=shutil.ignore_patterns("annotations", "archive")))
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(root))
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)  # the BirdNET extra is optional
    return load_dataset(root)


def start(script: Path, **state) -> AppTest:
    return start_page(script, TIMEOUT, **state)


def links(at: AppTest) -> list[tuple[str, str]]:
    return [(e.proto.label, e.proto.url) for e in at.get("link_button")]


def captions(at: AppTest) -> str:
    return " | ".join(str(e.value) for e in at.caption)


def test_inspection_links_the_selected_window_to_the_search_page(dataset):
    make_archive(dataset.root / "archive", grid(dataset.soundscapes[0]))
    at = start(INSPECT)
    assert links(at) == [("Find similar windows", f"Search?window={FIRST_ID}")]
    at.select_slider(key="insp_window").set_value(3).run()  # 15–20 s
    assert not at.exception and links(at) == [("Find similar windows", f"Search?window={FIRST_ID + 15}")]
    assert "no embedding archive" not in captions(at)


def test_inspection_without_archive_says_how_to_make_one(dataset):
    at = start(INSPECT)
    assert not links(at) and not at.error
    assert "no embedding archive yet" in captions(at) and "Embed this dataset" in captions(at)


def test_inspection_window_missing_from_the_archive_is_a_caption(dataset):
    make_archive(dataset.root / "archive", grid(dataset.soundscapes[0], 20.0))  # the first 20 s only
    at = start(INSPECT)
    assert links(at) == [("Find similar windows", f"Search?window={FIRST_ID}")]
    at.select_slider(key="insp_window").set_value(6).run()  # 30–35 s
    assert not links(at) and "this window is not in the archive" in captions(at)


def test_annotation_links_the_current_window(dataset, tmp_path):
    make_archive(dataset.root / "archive", grid(dataset.soundscapes[0]))
    at = start(ANNOTATE, ann_labels_path=str(tmp_path / "labels.csv"))
    assert links(at) == [("Find similar windows", f"Search?window={FIRST_ID}")]
    at.button(key="ann_next").click().run()  # 5–10 s
    assert not at.exception and links(at) == [("Find similar windows", f"Search?window={FIRST_ID + 5}")]


def test_annotation_without_archive_says_how_to_make_one(dataset, tmp_path):
    at = start(ANNOTATE, ann_labels_path=str(tmp_path / "labels.csv"))
    assert not links(at) and "no embedding archive yet" in captions(at)
