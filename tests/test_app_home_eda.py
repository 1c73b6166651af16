"""The app's Home and EDA pages under Streamlit's AppTest: content of the charts, not just presence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.apptest import chart, charts_with_key  # noqa: F401
from streamlit.testing.v1 import AppTest

from birdcore import demo
from birdcore import settings as app_settings

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / "app" / "Home.py"
EDA = REPO / "app" / "pages" / "1_EDA.py"
PREVIEW = REPO / "app" / "pages" / "2_Preview.py"
TIMEOUT = 60  # generous: the 2 CPU cores are shared with other test runs

HEADER = ["primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
          "common_name", "author", "license", "rating", "time", "url", "filename"]
TINY = [  # primary, secondary, type, lat, lon, rating, time, seconds of audio
    ("zzaaa1", "['zzbbb1']", "['call']", "10.0", "20.0", "4.0", "08:30", 3.0),
    ("zzaaa1", "[]", "['song', 'call']", "11.0", "21.0", "3.5", "?", 5.0),
    ("zzbbb1", "['zzaaa1', 'zzccc1']", "['song']", "", "", "0.0", "17:00", 7.5),
    ("zzccc1", "[]", "['call']", "-5.0", "100.0", "5.0", "6:15 pm", 2.0),
    ("zzccc1", "['zzaaa1']", "['flight call']", "-5.5", "100.5", "2.5", "23:59", 12.0),
]


def make_tiny_dataset(root: Path, audio: bool = True) -> Path:
    """Five recordings of three made-up species in the Kaggle layout (train_audio only if `audio`)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "train_metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i, (prim, sec, typ, lat, lon, rating, time, seconds) in enumerate(TINY):
            name = f"{prim}/XC{i + 1}.ogg"
            w.writerow([prim, sec, typ, lat, lon, "Fictus", f"Bird {prim[2]}", "Ann", "CC BY 4.0", rating, time,
                        "", name])
            if audio:
                (root / "train_audio" / prim).mkdir(parents=True, exist_ok=True)
                sf.write(root / "train_audio" / name, np.zeros(int(seconds * 16000), dtype=np.float32), 16000,
                         format="OGG", subtype="VORBIS")
    (root / "scored_birds.json").write_text(json.dumps(["zzaaa1"]), encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Settings go to a temp $BIRDCORE_HOME; no dataset is preset unless a test sets BIRDCORE_DATA."""
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "birdcore-home"))
    monkeypatch.delenv("BIRDCORE_DATA", raising=False)
    return tmp_path / "birdcore-home"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="module")
def demo_dir():
    return demo.ensure_demo_dataset()  # <repo>/data/demo; generated once (~30 s), then reused


def run(script: Path, data: Path | str | None = None, monkeypatch=None) -> AppTest:
    if data is not None:
        monkeypatch.setenv("BIRDCORE_DATA", str(data))
    at = AppTest.from_file(str(script), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def bars(spec: dict) -> dict[str, float]:
    """Category → value over all bar traces of a figure."""
    out = {}
    for trace in spec["data"]:
        if trace.get("orientation") == "h":
            out.update(zip(trace["y"], trace["x"]))
        else:
            out.update(zip(trace["x"], trace["y"]))
    return out


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


# ---- Home ------------------------------------------------------------------------------------
def test_home_tiny_dataset(tiny_dir, monkeypatch):
    at = run(HOME, tiny_dir, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recordings"] == "5" and metrics["Species"] == "3" and metrics["Scored species"] == "1"
    ratings = bars(chart(at, "home_ratings"))
    assert ratings["0.0"] == 1 and ratings["4.0"] == 1 and sum(ratings.values()) == 5
    assert "all 5 recordings present" in texts(at.success)
    assert "test_soundscapes/: none" in texts(at.info)
    assert "eBird_Taxonomy_v2021.csv not found" in texts(at.caption)  # BirdDataset.notes
    assert "EDA" in [p.value for p in at.page_link]
    assert at.sidebar.text_input[0].value == str(tiny_dir)


def test_home_real_metadata(real_data_dir, monkeypatch):
    at = run(HOME, real_data_dir, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recordings"] == "14,852" and metrics["Species"] == "152" and metrics["Scored species"] == "21"
    assert metrics["With secondary labels"] == "1,478"
    assert bars(chart(at, "home_ratings"))["4.0"] == 3974
    assert "train_audio/: not found" in texts(at.warning)


def test_home_demo_is_the_default(demo_dir):
    from birdcore.data.dataset import load_dataset

    at = run(HOME)  # no BIRDCORE_DATA, no remembered folder → the demo dataset
    assert at.sidebar.text_input[0].value == str(demo_dir)
    s = load_dataset(demo_dir).summary()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recordings"] == f"{s['recordings']:,}" and metrics["Species"] == str(s["species"])
    assert "soundscape files" in texts(at.success)


def test_eda_runs_on_its_own_on_the_demo(demo_dir):
    from birdcore.data.dataset import load_dataset

    at = run(EDA)  # the page file alone, no BIRDCORE_DATA: the demo dataset, audio included
    assert at.sidebar.text_input[0].value == str(demo_dir) and not at.error
    ds = load_dataset(demo_dir)
    assert bars(chart(at, "eda_species_counts")) == ds.metadata["primary_label"].value_counts().to_dict()
    assert sum(bars(chart(at, "eda_durations_hist")).values()) == len(ds.metadata)  # ≤ 500 files: read at once


@pytest.mark.parametrize("kind", ["missing folder", "bad csv", "a file"])
def test_home_broken_path_shows_error_not_traceback(tmp_path, monkeypatch, kind):
    target = tmp_path / "broken"
    if kind == "bad csv":
        target.mkdir()
        (target / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n"
                                                   "zzaaa1,[],seven,a.ogg\n")
    elif kind == "a file":
        target.write_text("x")
    at = run(HOME, target, monkeypatch)
    message = texts(at.error)
    assert str(target) in message
    expected = {"missing folder": "not found", "bad csv": "line 2, column rating", "a file": "not a folder"}
    assert expected[kind] in message
    assert not at.metric and not at.get("plotly_chart")
    assert "EDA" in [p.value for p in at.page_link]  # navigation still offered


def test_typed_path_is_remembered_only_when_it_loads(tiny_dir, tmp_path, isolated_home, monkeypatch):
    at = run(HOME, tmp_path / "nowhere", monkeypatch)
    at.sidebar.text_input[0].set_value(str(tmp_path / "still-nowhere")).run()
    assert "not found" in texts(at.error)
    assert app_settings.load_settings(isolated_home / "app.json") == {}
    at.sidebar.text_input[0].set_value(str(tiny_dir)).run()
    assert not at.error and {m.label: m.value for m in at.metric}["Recordings"] == "5"
    assert app_settings.load_settings(isolated_home / "app.json")["dataset_path"] == str(tiny_dir)
    monkeypatch.delenv("BIRDCORE_DATA")
    fresh = run(HOME)  # a new session starts from the remembered folder
    assert fresh.sidebar.text_input[0].value == str(tiny_dir)


def test_home_offers_to_generate_missing_demo(tmp_path, monkeypatch, tiny_dir):
    target = tmp_path / "demo"
    made = []

    def fake_ensure(out_dir=None, seed=0):
        made.append(Path(out_dir))
        return make_tiny_dataset(Path(out_dir))

    monkeypatch.setattr(demo, "default_demo_dir", lambda: target)
    monkeypatch.setattr(demo, "ensure_demo_dataset", fake_ensure)
    at = run(HOME)
    buttons = [b for b in at.button if b.key == "home_make_demo"]
    assert buttons, texts(at.markdown)
    buttons[0].click().run()
    assert not at.exception and made == [target]
    assert {m.label: m.value for m in at.metric}["Recordings"] == "5"


# ---- EDA on the real metadata ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_eda(real_data_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("BIRDCORE_DATA", str(real_data_dir))
    at = AppTest.from_file(str(EDA), default_timeout=TIMEOUT).run()
    yield at
    mp.undo()


def test_eda_real_counts_match_metadata(real_eda, real_data_dir):
    from birdcore.data.dataset import load_dataset

    at = real_eda
    assert not at.exception and not at.error
    ds = load_dataset(real_data_dir)
    spec = chart(at, "eda_species_counts")
    counts = bars(spec)
    assert len(counts) == 152 and sum(counts.values()) == 14852 and counts["skylar"] == 500
    assert counts == ds.metadata["primary_label"].value_counts().to_dict()
    scored_trace = next(t for t in spec["data"] if t["name"] == "scored")
    other_trace = next(t for t in spec["data"] if t["name"] == "not scored")
    assert sorted(scored_trace["x"]) == sorted(ds.scored)  # scored species highlighted …
    assert scored_trace["marker"]["color"] != other_trace["marker"]["color"]  # … in another colour
    order = spec["layout"]["xaxis"]["categoryarray"]
    assert [counts[c] for c in order] == sorted(counts.values(), reverse=True)  # sorted, most first
    assert bars(chart(at, "eda_rating_hist"))["4.0"] == 3974
    assert bars(chart(at, "eda_types"))["call"] == 7265
    hours = bars(chart(at, "eda_hours"))
    missing = int(ds.metadata["time_minutes"].isna().sum())
    assert sum(hours.values()) == 14852 - missing and f"{missing} recordings without a usable time" in texts(at.caption)
    points = sum(len(t["lat"]) for t in chart(at, "eda_map")["data"])
    assert points == int(ds.metadata["latitude"].notna().sum())
    geo = chart(at, "eda_map")["layout"]["geo"]
    assert not geo.get("showland") and not geo.get("showcoastlines")  # no CDN outlines: renders offline
    cooc = chart(at, "eda_cooc")["data"][0]
    assert cooc["type"] == "heatmap" and len(cooc["x"]) == 15
    pairs = [d for d in at.dataframe if d.value.columns[0] == "species_a"][0].value
    assert tuple(pairs.iloc[0][["species_a", "species_b", "recordings"]]) == ("moudov", "normoc", 52)
    assert "metadata only" in texts(at.info)  # durations need train_audio
    assert len([d for d in at.dataframe if "filename" in d.value.columns][0].value) == 14852


def test_eda_real_filters_change_every_chart(real_eda):
    at = real_eda
    at.multiselect(key="eda_species").set_value(["skylar", "houspa"]).run()
    assert bars(chart(at, "eda_species_counts")) == {"skylar": 500, "houspa": 500}
    assert sum(bars(chart(at, "eda_rating_hist")).values()) == 1000
    assert sum(len(t["lat"]) for t in chart(at, "eda_map")["data"]) <= 1000
    assert "1,000 of 14,852 recordings" in texts(at.caption)

    at.slider(key="eda_rating").set_value((4.0, 5.0)).run()
    ratings = bars(chart(at, "eda_rating_hist"))
    assert all(v == 0 for k, v in ratings.items() if float(k) < 4.0) and sum(ratings.values()) > 0
    filtered = sum(bars(chart(at, "eda_species_counts")).values())
    assert filtered == sum(ratings.values()) < 1000

    at.multiselect(key="eda_species").set_value([]).run()
    at.checkbox(key="eda_scored_only").check().run()
    spec = chart(at, "eda_species_counts")
    assert {t["name"] for t in spec["data"]} == {"scored"} and len(bars(spec)) <= 21

    at.checkbox(key="eda_scored_only").uncheck()
    at.slider(key="eda_rating").set_value((0.0, 5.0))
    at.toggle(key="eda_log").set_value(True).run()
    spec = chart(at, "eda_species_counts")
    assert spec["layout"]["yaxis"]["type"] == "log" and len(bars(spec)) == 152


def test_eda_toggles_are_remembered(tiny_dir, isolated_home, monkeypatch):
    at = run(EDA, tiny_dir, monkeypatch)
    assert at.toggle(key="eda_log").value is False
    at.toggle(key="eda_log").set_value(True).run()
    at.toggle(key="eda_outlines").set_value(True).run()
    assert chart(at, "eda_map")["layout"]["geo"]["showland"] is True
    assert app_settings.load_settings(isolated_home / "app.json") == {"eda.log_scale": True, "eda.map_outlines": True}
    fresh = run(EDA, tiny_dir, monkeypatch)  # a new session
    assert fresh.toggle(key="eda_log").value is True
    assert chart(fresh, "eda_species_counts")["layout"]["yaxis"]["type"] == "log"


# ---- EDA on a small dataset with audio --------------------------------------------------------------
def test_eda_tiny_durations_and_table_click_through(tiny_dir, monkeypatch):
    monkeypatch.setenv("BIRDCORE_DATA", str(tiny_dir))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_EDA.py").run()  # as in the app: entered from Home
    assert not at.exception and not at.error
    durations = bars(chart(at, "eda_durations_hist"))
    assert sum(durations.values()) == 5 and durations[12.5] == 1  # the 12-s file, in bin 12–13 s
    assert "5 recordings, 0.0 h in total" in texts(at.caption)

    table = [d for d in at.dataframe if "filename" in d.value.columns][0].value
    at.session_state["eda_table"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert at.session_state["preview_filename"] == table.loc[2, "filename"] == "zzbbb1/XC3.ogg"
    links = [p.value for p in at.page_link]
    if PREVIEW.exists():
        assert any("zzbbb1/XC3.ogg" in label for label in links)
    else:
        assert "Preview page is not available" in texts(at.caption)


def test_eda_large_dataset_reads_durations_on_request(tiny_dir, tmp_path, monkeypatch):
    from birdcore.analysis import eda

    monkeypatch.setattr(eda, "AUTO_READ_MAX_FILES", 2)  # the tiny dataset now counts as "large"
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "fresh-home"))  # no duration cache yet
    at = run(EDA, tiny_dir, monkeypatch)
    assert not charts_with_key(at, "eda_durations_hist")
    at.button(key="eda_read_durations").click().run()
    assert sum(bars(chart(at, "eda_durations_hist")).values()) == 5
    again = run(EDA, tiny_dir, monkeypatch)  # a new session: straight from the on-disk cache, no button
    assert sum(bars(chart(again, "eda_durations_hist")).values()) == 5
    assert not [b for b in again.button if b.key == "eda_read_durations"]


def test_eda_metadata_only_explains_durations(tmp_path, monkeypatch):
    at = run(EDA, make_tiny_dataset(tmp_path / "meta", audio=False), monkeypatch)
    info = texts(at.info)
    assert "train_audio/" in info and "metadata only" in info
    assert not charts_with_key(at, "eda_durations_hist")
    assert not [b for b in at.button if b.key == "eda_read_durations"]


def test_eda_broken_path_and_empty_filter(tmp_path, tiny_dir, monkeypatch):
    at = run(EDA, tmp_path / "nope", monkeypatch)
    assert "dataset folder not found" in texts(at.error) and not at.get("plotly_chart")
    at = run(EDA, tiny_dir, monkeypatch)
    at.multiselect(key="eda_species").set_value(["zzbbb1"])
    at.slider(key="eda_rating").set_value((4.5, 5.0)).run()  # zzbbb1 has only an unrated recording
    assert not at.exception and "No recordings match" in texts(at.warning) and not at.get("plotly_chart")
