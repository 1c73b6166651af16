"""The app's Home and EDA pages under Streamlit's AppTest: content of the charts, not just presence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers.apptest import Vega, chart, chart_keys, charts_with_key, vega  # noqa: F401
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


def bars(chart: Vega) -> dict:
    """Category → value of a bar chart's first layer, read from the data the browser receives: the
    category is its nominal channel (a pre-binned histogram: the bin's start)."""
    layer = chart.layers[0]
    x, y = layer["encoding"]["x"], layer["encoding"]["y"]
    cat, val = (y, x) if y["type"] == "nominal" else (x, y)
    rows = chart.rows(layer["data"]["name"])
    return dict(zip(rows[cat["field"]], rows[val["field"]]))


def species_bars(chart: Vega) -> dict[str, float]:
    """Species code → value of the ranked species list (its lines read "#rank code — common name")."""
    return {label.split()[1]: v for label, v in bars(chart).items()}


def order(chart: Vega) -> list[str]:
    """The category lines of a horizontal chart, top to bottom, as drawn (the y channel's sort)."""
    return chart.encoding("y")["sort"]


def show_all(at: AppTest) -> AppTest:
    at.session_state["eda_rank_mode"] = "all"
    return at.run()


def tab(at: AppTest, name: str) -> AppTest:
    """Open the EDA tab `name` (a lazy tab: only the open one runs and draws)."""
    at.session_state["eda_tab"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


# ---- Home ------------------------------------------------------------------------------------
def test_home_tiny_dataset(tiny_dir, monkeypatch):
    at = run(HOME, tiny_dir, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recordings"] == "5" and metrics["Species"] == "3" and metrics["Scored species"] == "1"
    # Home's ratings chart is a picture (no Plotly on the first page): its caption says it in words.
    assert not charts_with_key(at, "home_ratings") and len(at.get("image")) == 1
    assert "1 not rated" in at.get("image")[0].proto.imgs[0].caption
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
    meta = pd.read_csv(real_data_dir / "train_metadata.csv")
    caption = at.get("image")[0].proto.imgs[0].caption
    assert caption == f"Most common rating 4.0 (3,974 recordings); {int((meta['rating'] == 0).sum()):,} not rated."
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

    at = show_all(run(EDA))  # the page file alone, no BIRDCORE_DATA: the demo dataset, audio included
    assert at.sidebar.text_input[0].value == str(demo_dir) and not at.error
    ds = load_dataset(demo_dir)
    assert species_bars(vega(at, "eda_species_counts")) == ds.metadata["primary_label"].value_counts().to_dict()
    tab(at, "Durations")
    assert sum(bars(vega(at, "eda_durations_hist")).values()) == len(ds.metadata)  # ≤ 500 files: read at once


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
    assert not at.metric and not chart_keys(at)
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

    at = tab(real_eda, "Species")
    assert not at.exception and not at.error
    ds = load_dataset(real_data_dir)
    assert len(bars(vega(at, "eda_species_counts"))) == 30  # the default view: top 30, every line labelled
    show_all(at)
    spec = vega(at, "eda_species_counts")
    counts = species_bars(spec)
    assert len(counts) == 152 and sum(counts.values()) == 14852 and counts["skylar"] == 500
    assert counts == ds.metadata["primary_label"].value_counts().to_dict()
    rows = spec.rows("rows")
    scored = rows.loc[rows["group"] == "scored", "line"]
    assert sorted(y.split()[1] for y in scored) == sorted(ds.scored)  # scored species highlighted …
    colour = spec.encoding("color")["scale"]
    # … in another colour
    assert colour["domain"] == ["scored", "not scored"] and colour["range"][0] != colour["range"][1]
    lines = order(spec)
    assert sorted(lines) == sorted(rows["line"]) and len(lines) == 152
    axis = spec.encoding("y")["axis"]
    assert axis["labelOverlap"] is False and axis["labelLimit"] >= 250  # all 152 lines labelled, none skipped or cut
    assert [counts[c.split()[1]] for c in lines] == sorted(counts.values(), reverse=True)  # ranked, most first
    assert lines[0].startswith("#1 ") and " — " in lines[0]  # rank, code and common name
    assert bars(vega(at, "eda_rating_hist"))["4.0"] == 3974
    tab(at, "Calls & times")
    assert bars(vega(at, "eda_types"))["call"] == 7265
    hours = bars(vega(at, "eda_hours"))
    missing = int(ds.metadata["time_minutes"].isna().sum())
    assert sum(hours.values()) == 14852 - missing and f"{missing} recordings without a usable time" in texts(at.caption)
    tab(at, "Places")
    places = chart(at, "eda_map")["data"]
    assert sum(sum(t["customdata"]) for t in places) == int(ds.metadata["latitude"].notna().sum())
    assert sum(len(t["lat"]) for t in places) < 6000  # merged per place: light for the browser
    tab(at, "Heard together")
    cooc = vega(at, "eda_cooc")
    assert cooc.layers[0]["mark"]["type"] == "rect" and cooc.rows("cells")["column"].nunique() == 15
    pairs = [d for d in at.dataframe if d.value.columns[0] == "species_a"][0].value
    assert tuple(pairs.iloc[0][["species_a", "species_b", "recordings"]]) == ("moudov", "normoc", 52)
    tab(at, "Durations")
    assert "metadata only" in texts(at.info)  # durations need train_audio
    # The recordings table ships one page of rows, not all 14,852 (which cost seconds per rerun).
    tab(at, "Recordings")
    table = [d for d in at.dataframe if "filename" in d.value.columns][0].value
    assert len(table) == 100 and table["filename"].tolist() == ds.metadata["filename"].head(100).tolist()
    assert "Rows 1–100 of 14,852, page 1 of 149." in texts(at.caption)
    assert not table.isin(["None", "nan", "NaN"]).any().any() and not table.isna().any().any()  # gaps read "—"
    at.number_input(key="eda_table_page").set_value(149).run()
    last = [d for d in at.dataframe if "filename" in d.value.columns][0].value
    assert last["filename"].tolist() == ds.metadata["filename"].tail(52).tolist()
    assert "Rows 14,801–14,852 of 14,852, page 149 of 149." in texts(at.caption)
    assert not last.isna().any().any() and (last["secondary_labels"] == "—").sum() > 0
    at.number_input(key="eda_table_page").set_value(1).run()


def test_eda_real_filters_change_every_chart(real_eda):
    at = tab(real_eda, "Recordings")
    at.session_state["eda_rank_mode"] = "top"
    at.number_input(key="eda_table_page").set_value(149).run()
    at.multiselect(key="eda_species").set_value(["skylar", "houspa"]).run()
    assert "Rows 901–1,000 of 1,000, page 10 of 10." in texts(at.caption)  # the last page left, not an error
    assert "1,000 of 14,852 recordings" in texts(at.caption)
    tab(at, "Places")
    assert sum(sum(t["customdata"]) for t in chart(at, "eda_map")["data"]) <= 1000
    tab(at, "Species")
    assert species_bars(vega(at, "eda_species_counts")) == {"skylar": 500, "houspa": 500}
    assert sum(bars(vega(at, "eda_rating_hist")).values()) == 1000

    at.slider(key="eda_rating").set_value((4.0, 5.0)).run()
    ratings = bars(vega(at, "eda_rating_hist"))
    assert all(v == 0 for k, v in ratings.items() if float(k) < 4.0) and sum(ratings.values()) > 0
    filtered = sum(bars(vega(at, "eda_species_counts")).values())
    assert filtered == sum(ratings.values()) < 1000

    at.multiselect(key="eda_species").set_value([]).run()
    at.checkbox(key="eda_scored_only").check().run()
    spec = vega(at, "eda_species_counts")
    assert set(spec.rows("rows")["group"]) == {"scored"} and len(bars(spec)) <= 21

    at.checkbox(key="eda_scored_only").uncheck()
    at.slider(key="eda_rating").set_value((0.0, 5.0))
    at.session_state["eda_rank_mode"] = "all"
    at.toggle(key="eda_log").set_value(True).run()
    spec = vega(at, "eda_species_counts")
    x = spec.encoding("x")
    assert x["scale"]["type"] == "log" and len(bars(spec)) == 152
    # Ticks at powers of ten only (1, 10, 100 …, not "5 2 100 5 2 10"), and the floor just under one
    # recording, so maupar's single recording is a visible bar rather than an empty row.
    assert x["axis"]["values"] == [1, 10, 100] and 0.5 < x["scale"]["domain"][0] < 1 < 500 < x["scale"]["domain"][1]
    assert species_bars(spec)["maupar"] == 1
    at.toggle(key="eda_log").set_value(False).run()


def test_eda_ranked_list_search_and_bottom_n(real_eda):
    at = tab(real_eda, "Species")
    at.session_state["eda_rank_mode"] = "top"
    at.run()
    at.number_input(key="eda_rank_n").set_value(10).run()
    spec = vega(at, "eda_species_counts")
    assert len(bars(spec)) == 10 and order(spec)[-1].startswith("#10 ")
    assert "10 of 152 species shown" in texts(at.caption)

    at.session_state["eda_rank_mode"] = "bottom"
    at.run()
    at.number_input(key="eda_rank_n").set_value(5).run()
    lines = order(vega(at, "eda_species_counts"))
    assert [o.split()[0] for o in lines] == ["#148", "#149", "#150", "#151", "#152"]
    assert lines[-1].split()[1] == "maupar"  # the rarest, still labelled with its rank

    at.session_state["eda_rank_mode"] = "all"
    at.text_input(key="eda_search").set_value("Hawaii").run()
    lines = order(vega(at, "eda_species_counts"))
    assert lines and all("hawaii" in o.lower() for o in lines)
    ranks = [int(o.split()[0][1:]) for o in lines]
    assert ranks == sorted(ranks) and max(ranks) > 100  # ranks of the full list, not renumbered
    # The per-species ratings follow the list: one labelled line per species shown (with a rating).
    box = vega(at, "eda_rating_species")
    assert box.encoding("y")["type"] == "nominal" and box.encoding("x")["field"] == "min"  # one box per line
    assert set(order(box)) <= {o.split(" ", 1)[1] for o in lines}
    assert len(order(box)) == len(box.rows("boxes")) >= len(lines) - 2

    at.text_input(key="eda_search").set_value("no such bird").run()
    assert "No species code or common name contains" in texts(at.info)
    at.text_input(key="eda_search").set_value("")
    at.session_state["eda_rank_mode"] = "top"
    at.run()
    at.number_input(key="eda_rank_n").set_value(30).run()


def test_eda_ratings_and_cooccurrence_label_every_row(real_eda):
    at = tab(real_eda, "Species")
    at.session_state["eda_rank_mode"] = "top"
    at.run()
    box = vega(at, "eda_rating_species")
    assert len(order(box)) == len(box.rows("boxes")) == 30 and box.encoding("y")["axis"]["labelOverlap"] is False
    tab(at, "Heard together")
    for n in (20, 30):
        at.select_slider(key="eda_cooc_n").set_value(n).run()
        heat = vega(at, "eda_cooc")
        assert heat.rows("cells")["column"].nunique() == n and len(heat.encoding("x")["sort"]) == n
        assert len(order(heat)) == n and f"Top {n} co-occurring" in heat.spec["title"]["text"]
        assert heat.encoding("x")["axis"]["labelOverlap"] is False  # every name written ("Top 15" showed 11)
    at.select_slider(key="eda_cooc_n").set_value(15).run()


def test_eda_map_local_outlines_and_scored_focus(real_eda):
    at = tab(real_eda, "Places")
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith("-eda_map")][0]
    config = json.loads(found.proto.config)
    assert config["topojsonURL"] == "app/static/topojson/"  # served by the app itself …
    assert "cdn.plot.ly" not in found.proto.spec + found.proto.config  # … never the CDN
    for res in ("110m", "50m"):
        topo = json.loads((REPO / "app" / "static" / "topojson" / f"world_{res}.json").read_text())
        assert {"land", "coastlines", "countries"} <= set(topo["objects"])
    assert "enableStaticServing = true" in (REPO / ".streamlit" / "config.toml").read_text()
    geo = chart(at, "eda_map")["layout"]["geo"]
    assert geo["showland"] is True and geo["showcoastlines"] is True  # outlines on by default now

    at.session_state["eda_map_view"] = "Scored species focus"
    at.run()
    geo = chart(at, "eda_map")["layout"]["geo"]
    lat, lon = geo["lataxis"]["range"], geo["lonaxis"]["range"]
    assert 15 < lat[0] < lat[1] < 26 and -165 < lon[0] < lon[1] < -150  # Hawaii, not the world
    assert geo["resolution"] == 50

    at.multiselect(key="eda_species").set_value(["skylar"]).run()
    at.session_state["eda_map_view"] = "Fit the filtered recordings"
    at.run()
    geo = chart(at, "eda_map")["layout"]["geo"]
    pts = [(la, lo) for t in chart(at, "eda_map")["data"] for la, lo in zip(t["lat"], t["lon"])]
    lat, lon = geo["lataxis"]["range"], geo["lonaxis"]["range"]
    assert all(lat[0] <= a <= lat[1] and lon[0] <= b <= lon[1] for a, b in pts)
    at.multiselect(key="eda_species").set_value([]).run()
    at.session_state["eda_map_view"] = "World"
    at.run()


def test_eda_toggles_are_remembered(tiny_dir, isolated_home, monkeypatch):
    at = run(EDA, tiny_dir, monkeypatch)
    assert at.toggle(key="eda_log").value is False
    at.toggle(key="eda_log").set_value(True).run()
    tab(at, "Places")
    assert at.toggle(key="eda_outlines").value is True
    at.toggle(key="eda_outlines").set_value(False).run()
    assert chart(at, "eda_map")["layout"]["geo"]["showland"] is False
    assert app_settings.load_settings(isolated_home / "app.json") == {"eda.log_scale": True, "eda.map_outlines": False}
    fresh = run(EDA, tiny_dir, monkeypatch)  # a new session
    assert fresh.toggle(key="eda_log").value is True
    assert vega(fresh, "eda_species_counts").encoding("x")["scale"]["type"] == "log"
    assert tab(fresh, "Places").toggle(key="eda_outlines").value is False


# ---- EDA on a small dataset with audio --------------------------------------------------------------
def test_eda_tiny_durations_and_table_click_through(tiny_dir, monkeypatch):
    monkeypatch.setenv("BIRDCORE_DATA", str(tiny_dir))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_EDA.py").run()  # as in the app: entered from Home
    assert not at.exception and not at.error
    tab(at, "Durations")
    durations = bars(vega(at, "eda_durations_hist"))
    assert sum(durations.values()) == 5 and durations[12.0] == 1  # the 12-s file, in bin 12–13 s
    assert "5 recordings, 0.0 h in total" in texts(at.caption)

    tab(at, "Recordings")
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
    at = tab(run(EDA, tiny_dir, monkeypatch), "Durations")
    assert not charts_with_key(at, "eda_durations_hist")
    at.button(key="eda_read_durations").click().run()
    assert sum(bars(vega(at, "eda_durations_hist")).values()) == 5
    again = tab(run(EDA, tiny_dir, monkeypatch), "Durations")  # a new session: the on-disk cache, no button
    assert sum(bars(vega(again, "eda_durations_hist")).values()) == 5
    assert not [b for b in again.button if b.key == "eda_read_durations"]


def test_eda_metadata_only_explains_durations(tmp_path, monkeypatch):
    at = tab(run(EDA, make_tiny_dataset(tmp_path / "meta", audio=False), monkeypatch), "Durations")
    info = texts(at.info)
    assert "train_audio/" in info and "metadata only" in info
    assert not charts_with_key(at, "eda_durations_hist")
    assert not [b for b in at.button if b.key == "eda_read_durations"]


def test_eda_broken_path_and_empty_filter(tmp_path, tiny_dir, monkeypatch):
    at = run(EDA, tmp_path / "nope", monkeypatch)
    assert "dataset folder not found" in texts(at.error) and not chart_keys(at)
    at = run(EDA, tiny_dir, monkeypatch)
    at.multiselect(key="eda_species").set_value(["zzbbb1"])
    at.slider(key="eda_rating").set_value((4.5, 5.0)).run()  # zzbbb1 has only an unrated recording
    assert not at.exception and "No recordings match" in texts(at.warning) and not chart_keys(at)


def test_eda_draws_only_the_open_tab(tiny_dir, monkeypatch):
    """The sections are lazy tabs: a filter change redraws the open tab's charts, not all ten."""
    drawn = chart_keys

    at = run(EDA, tiny_dir, monkeypatch)
    assert drawn(at) == ["eda_rating_hist", "eda_rating_species", "eda_species_counts"]
    # The first view's charts are Vega-Lite: a fresh load of EDA does not pay for Plotly's script (only
    # the map, in its own tab, is Plotly).
    assert not at.get("plotly_chart") and len(at.get("vega_lite_chart")) == 3
    assert [t.label for t in at.tabs] == ["Species", "Heard together", "Calls & times", "Places", "Durations",
                                          "Recordists & licences", "Recordings"]
    expected = {"Heard together": ["eda_cooc"], "Calls & times": ["eda_hours", "eda_types"], "Places": ["eda_map"],
                "Durations": ["eda_durations_hist"], "Recordists & licences": ["eda_authors", "eda_licenses"],
                "Recordings": []}
    for name, charts_there in expected.items():
        assert drawn(tab(at, name)) == charts_there, name
    assert [d for d in at.dataframe if "filename" in d.value.columns]  # the Recordings tab's table
    at.multiselect(key="eda_species").set_value(["zzccc1"]).run()  # a filter keeps the open tab
    assert at.session_state["eda_tab"] == "Recordings" and not chart_keys(at)
    table = [d for d in at.dataframe if "filename" in d.value.columns][0].value
    assert table["primary_label"].tolist() == ["zzccc1", "zzccc1"]
