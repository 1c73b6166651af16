"""birdcore.analysis.eda (the numbers behind the EDA charts) and birdcore.settings."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdcore import settings as app_settings
from birdcore.analysis import eda
from birdcore.data.dataset import load_dataset
from birdcore.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
HEADER = ["primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
          "common_name", "author", "license", "rating", "time", "url", "filename"]
# primary, secondary, type, lat, lon, author, licence, rating, time, seconds of audio
TINY = [
    ("zzaaa1", "['zzbbb1']", "['call']", "10.0", "20.0", "Ann", "CC BY 4.0", "4.0", "08:30", 3.0),
    ("zzaaa1", "[]", "['Song', 'call', 'call']", "11.0", "21.0", "Bob", "CC BY 4.0", "3.5", "?", 5.0),
    ("zzbbb1", "['zzaaa1', 'zzccc1']", "['song']", "", "", "Ann", "CC BY-SA 4.0", "0.0", "17:00", 7.5),
    ("zzccc1", "[]", "['call']", "-5.0", "100.0", "Cy", "CC BY 4.0", "5.0", "6:15 pm", 2.0),
    ("zzccc1", "['zzaaa1']", "['flight call']", "-5.5", "100.5", "Cy", "CC BY 4.0", "2.5", "23:59", 12.0),
]
NAMES = {"zzaaa1": "Alpha Bird", "zzbbb1": "Beta Bird", "zzccc1": "Gamma Bird"}
REAL_RATINGS = {0.0: 570, 0.5: 30, 1.0: 155, 1.5: 152, 2.0: 575, 2.5: 724, 3.0: 1957, 3.5: 1765, 4.0: 3974,
                4.5: 1632, 5.0: 3318}


def make_tiny_dataset(root: Path, audio: bool = True) -> Path:
    """Five recordings of three made-up species in the Kaggle layout (train_audio only if `audio`)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "train_metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i, (prim, sec, typ, lat, lon, author, lic, rating, time, seconds) in enumerate(TINY):
            name = f"{prim}/XC{i + 1}.ogg"
            w.writerow([prim, sec, typ, lat, lon, f"Fictus {prim[2]}", NAMES[prim], author, lic, rating, time,
                        f"https://example.org/{i + 1}", name])
            if audio:
                path = root / "train_audio" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                t = np.arange(int(seconds * 16000)) / 16000
                sf.write(path, (0.2 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32), 16000,
                         format="OGG", subtype="VORBIS")
    (root / "scored_birds.json").write_text(json.dumps(["zzaaa1"]), encoding="utf-8")
    return root


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    return load_dataset(make_tiny_dataset(tmp_path / "tiny"))


@pytest.fixture(scope="module")
def real(real_data_dir):
    return load_dataset(real_data_dir)


# ---- filtering -------------------------------------------------------------------------------
def test_filter_recordings(tiny):
    assert eda.filter_recordings(tiny, eda.EdaFilter()) is tiny.metadata  # default: no copy
    by_species = eda.filter_recordings(tiny, eda.EdaFilter(species=("zzccc1",)))
    assert by_species["filename"].tolist() == ["zzccc1/XC4.ogg", "zzccc1/XC5.ogg"]
    assert eda.filter_recordings(tiny, eda.EdaFilter(scored_only=True))["primary_label"].unique().tolist() == ["zzaaa1"]
    rated = eda.filter_recordings(tiny, eda.EdaFilter(rating_range=(3.5, 4.5)))
    assert sorted(rated["rating"]) == [3.5, 4.0]  # inclusive at both ends
    both = eda.filter_recordings(tiny, eda.EdaFilter(species=("zzccc1",), rating_range=(3.0, 5.0)))
    assert both["filename"].tolist() == ["zzccc1/XC4.ogg"]
    assert eda.filter_recordings(tiny, eda.EdaFilter(species=("zzbbb1",), scored_only=True)).empty


# ---- species, ratings --------------------------------------------------------------------------
def test_species_counts_order_names_and_scored(tiny):
    c = eda.species_counts(tiny.metadata, tiny.scored)
    assert c["species"].tolist() == ["zzaaa1", "zzccc1", "zzbbb1"]  # most first, ties by code
    assert c["recordings"].tolist() == [2, 2, 1]
    assert c["scored"].tolist() == [True, False, False]
    assert c["common_name"].tolist() == ["Alpha Bird", "Gamma Bird", "Beta Bird"]


def test_rating_histogram_keeps_empty_bins(tiny):
    h = eda.rating_histogram(tiny.metadata)
    assert h["rating"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert dict(zip(h["rating"], h["recordings"])) == {0.0: 1, 0.5: 0, 1.0: 0, 1.5: 0, 2.0: 0, 2.5: 1, 3.0: 0,
                                                      3.5: 1, 4.0: 1, 4.5: 0, 5.0: 1}


def test_rating_by_species_leaves_out_unrated(tiny):
    s = eda.rating_by_species(tiny.metadata).set_index("species")
    assert list(s.index) == ["zzaaa1", "zzccc1"]  # zzbbb1 has only an unrated recording
    assert s.loc["zzaaa1", ["recordings", "mean", "min", "max"]].tolist() == [2, 3.75, 3.5, 4.0]
    assert s.loc["zzccc1", "median"] == pytest.approx(3.75)
    with_unrated = eda.rating_by_species(tiny.metadata, include_unrated=True)
    assert "zzbbb1" in set(with_unrated["species"])
    assert eda.rating_by_species(tiny.metadata, top_n=1)["species"].tolist() == ["zzaaa1"]


# ---- co-occurrence -----------------------------------------------------------------------------
def test_cooccurrence_pairs_and_matrix(tiny):
    pairs = eda.cooccurrence_pairs(tiny.metadata)
    got = {(a, b): n for a, b, n in pairs.itertuples(index=False)}
    assert got == {("zzaaa1", "zzbbb1"): 2, ("zzaaa1", "zzccc1"): 2, ("zzbbb1", "zzccc1"): 1}
    assert pairs["recordings"].tolist() == [2, 2, 1]
    m = eda.cooccurrence_matrix(tiny.metadata, top_n=3)
    assert list(m.index) == list(m.columns) == ["zzaaa1", "zzbbb1", "zzccc1"]
    assert (m.to_numpy() == m.to_numpy().T).all() and (np.diag(m.to_numpy()) == 0).all()
    assert m.at["zzaaa1", "zzccc1"] == 2 and m.at["zzbbb1", "zzccc1"] == 1
    none = eda.filter_recordings(tiny, eda.EdaFilter(species=("zzaaa1",), rating_range=(3.5, 3.5)))
    assert eda.cooccurrence_pairs(none).empty and eda.cooccurrence_matrix(none).empty


# ---- types, time, places, people, table ----------------------------------------------------------
def test_type_counts_normalised_and_once_per_recording(tiny):
    t = eda.type_counts(tiny.metadata)
    assert dict(zip(t["type"], t["recordings"])) == {"call": 3, "song": 2, "flight call": 1}
    assert t["type"].tolist()[0] == "call"


def test_time_of_day_and_locations(tiny):
    hist, missing = eda.time_of_day_histogram(tiny.metadata)
    assert missing == 1 and len(hist) == 24
    assert {h: n for h, n in zip(hist["hour"], hist["recordings"]) if n} == {8: 1, 17: 1, 18: 1, 23: 1}
    pts, no_coords = eda.locations(tiny.metadata, tiny.scored)
    assert no_coords == 1 and len(pts) == 4
    assert pts.loc[pts["species"] == "zzaaa1", "scored"].all()
    assert not pts.loc[pts["species"] != "zzaaa1", "scored"].any()


def test_top_values_and_table(tiny):
    a = eda.top_values(tiny.metadata, "author")
    assert a["author"].tolist() == ["Ann", "Cy", "Bob"] and a["recordings"].tolist() == [2, 2, 1]
    assert eda.top_values(tiny.metadata, "license", top_n=1)["recordings"].tolist() == [4]
    table = eda.recordings_table(tiny.metadata)
    assert list(table.columns) == eda.TABLE_COLUMNS
    assert table.loc[2, "secondary_labels"] == "zzaaa1, zzccc1" and table.loc[1, "type"] == "Song, call, call"


def test_short_license_names():
    assert eda.short_license("Creative Commons Attribution-NonCommercial-ShareAlike 4.0") == "CC BY-NC-SA 4.0"
    assert eda.short_license("Creative Commons Attribution-ShareAlike 3.0") == "CC BY-SA 3.0"
    assert eda.short_license("Public domain") == "Public domain"


def test_real_license_counts(real):
    lic = eda.license_counts(real.metadata)
    assert dict(zip(lic["short"], lic["recordings"])) == {"CC BY-NC-SA 4.0": 12742, "CC BY-NC-SA 3.0": 1960,
                                                          "CC BY-SA 4.0": 102, "CC BY-SA 3.0": 48}


# ---- durations ---------------------------------------------------------------------------------
def test_durations_read_cached_and_invalidated(tiny, tmp_path):
    assert eda.cached_durations(tiny) is None  # nothing read yet
    calls = []
    d = eda.read_durations(tiny, progress=lambda done, total: calls.append((done, total)))
    assert d["duration_s"].round(2).tolist() == [3.0, 5.0, 7.5, 2.0, 12.0]
    assert (d["error"] == "").all() and calls[-1] == (5, 5)
    cache = eda.duration_cache_path(tiny)
    assert cache.is_file() and cache.parent == tmp_path / "home" / "cache"  # under $BIRDCORE_HOME
    again = eda.cached_durations(tiny)
    pd.testing.assert_frame_equal(again, d)
    # A changed file invalidates its entry; a deleted one reads as missing.
    target = tiny.train_audio_dir / "zzaaa1/XC1.ogg"
    sf.write(target, np.zeros(16000 * 4, dtype=np.float32), 16000, format="OGG", subtype="VORBIS")
    assert eda.cached_durations(tiny) is None
    (tiny.train_audio_dir / "zzccc1/XC4.ogg").unlink()
    d2 = eda.read_durations(tiny)
    assert d2.loc[0, "duration_s"] == pytest.approx(4.0, abs=0.01)
    assert d2.loc[3, "error"] == "missing" and np.isnan(d2.loc[3, "duration_s"])
    # A corrupt file is reported with the audio layer's message, not raised.
    (tiny.train_audio_dir / "zzccc1/XC5.ogg").write_bytes(b"not audio at all")
    d3 = eda.read_durations(tiny)
    assert "cannot read audio header" in d3.loc[4, "error"]
    s = eda.duration_summary(d3, tiny.metadata)
    assert (s["files"], s["readable"], s["missing"], s["unreadable"]) == (5, 3, 1, 1)


def test_duration_histogram_and_summary(tiny):
    d = eda.read_durations(tiny)
    h = eda.duration_histogram(d, tiny.metadata)
    assert h["recordings"].sum() == 5 and h["seconds"].iloc[0] == "0–1"
    assert {s: n for s, n in zip(h["start_s"], h["recordings"]) if n} == {2.0: 1, 3.0: 1, 5.0: 1, 7.0: 1, 12.0: 1}
    only_c = eda.filter_recordings(tiny, eda.EdaFilter(species=("zzccc1",)))
    assert eda.duration_histogram(d, only_c)["recordings"].sum() == 2
    s = eda.duration_summary(d, only_c)
    assert s["total_s"] == pytest.approx(14.0, abs=0.02) and s["max_s"] == pytest.approx(12.0, abs=0.01)


def test_durations_need_train_audio(tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    ds = load_dataset(make_tiny_dataset(tmp_path / "meta_only", audio=False))
    assert eda.cached_durations(ds) is None
    with pytest.raises(DatasetError, match="metadata only"):
        eda.read_durations(ds)


# ---- the real BirdCLEF 2022 metadata --------------------------------------------------------------
def test_real_species_counts(real):
    c = eda.species_counts(real.metadata, real.scored)
    assert len(c) == 152 and c["recordings"].sum() == 14852
    assert c.set_index("species").at["skylar", "recordings"] == 500
    assert int(c["scored"].sum()) == 21 and c["recordings"].is_monotonic_decreasing


def test_real_ratings_types_times(real):
    h = eda.rating_histogram(real.metadata)
    assert dict(zip(h["rating"], h["recordings"])) == REAL_RATINGS
    hist, missing = eda.time_of_day_histogram(real.metadata)
    assert missing == int(real.metadata["time_minutes"].isna().sum()) and hist["recordings"].sum() + missing == 14852
    t = eda.type_counts(real.metadata, top_n=3)
    assert t["type"].tolist() == ["call", "song", "flight call"]
    assert t["recordings"].iloc[0] == int(real.metadata["type"].map(lambda v: "call" in [x.lower() for x in v]).sum())


def test_real_cooccurrence_matches_brute_force(real):
    pairs = eda.cooccurrence_pairs(real.metadata, top_n=5)
    labels = [{p, *s} for p, s in zip(real.metadata["primary_label"], real.metadata["secondary_labels"])]
    for a, b, n in pairs.itertuples(index=False):
        assert n == sum(1 for ls in labels if a in ls and b in ls)
    assert (pairs.iloc[0]["species_a"], pairs.iloc[0]["species_b"]) == ("moudov", "normoc")
    m = eda.cooccurrence_matrix(real.metadata, top_n=15)
    assert m.shape == (15, 15) and m.at["apapan", "iiwi"] == 51


def test_real_filter_is_fast(real):
    import time

    t0 = time.perf_counter()
    meta = eda.filter_recordings(real, eda.EdaFilter(scored_only=True, rating_range=(3.0, 5.0)))
    for fn in (eda.species_counts, eda.rating_histogram, eda.rating_by_species, eda.cooccurrence_pairs,
               eda.cooccurrence_matrix, eda.type_counts, eda.time_of_day_histogram, eda.locations,
               eda.recordings_table):
        fn(meta)
    assert time.perf_counter() - t0 < 0.5
    assert set(meta["primary_label"]) <= set(real.scored) and meta["rating"].min() >= 3.0


# ---- app settings ----------------------------------------------------------------------------
def test_app_settings_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "bh"))
    assert app_settings.settings_path() == tmp_path / "bh" / "app.json"
    assert app_settings.load_settings() == {} and app_settings.get_setting("x", 7) == 7
    app_settings.update_settings({"dataset_path": "/data/a", "eda.log_scale": True})
    app_settings.update_settings({"dataset_path": "/data/b"})
    assert json.loads((tmp_path / "bh" / "app.json").read_text()) == {"dataset_path": "/data/b", "eda.log_scale": True}
    app_settings.update_settings({"eda.log_scale": None})  # None deletes
    assert app_settings.load_settings() == {"dataset_path": "/data/b"}
    assert not [p for p in (tmp_path / "bh").iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_app_settings_default_home_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.delenv("BIRDCORE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert app_settings.settings_path() == tmp_path / ".birdcore" / "app.json"
    bad = tmp_path / "bad.json"
    for text in ("{not json", "[1, 2]", ""):
        bad.write_text(text)
        assert app_settings.load_settings(bad) == {}  # never stops the app
    bad.write_text('{"keep": 1}')
    with pytest.raises(TypeError):
        app_settings.update_settings({"x": object()}, path=bad)
    assert json.loads(bad.read_text()) == {"keep": 1}  # untouched by a failed update


def test_engine_imports_without_streamlit():
    code = ("import sys; sys.modules['streamlit'] = None; sys.modules['plotly'] = None;"
            " import birdcore.analysis.eda, birdcore.settings; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_ranking_search_bottom_and_ranks_of_the_full_list():
    import pandas as pd

    counts = pd.DataFrame({"species": ["aaa1", "bbb1", "ccc1", "ddd1"], "common_name": ["Hawaii Amakihi", "", "Owl", None],
                           "recordings": [9, 5, 2, 1], "scored": [True, False, False, True]})
    top = eda.species_ranking(counts, mode="top", n=2)
    assert top["rank"].tolist() == [1, 2] and top["label"].tolist() == ["aaa1 — Hawaii Amakihi", "bbb1"]
    assert eda.species_ranking(counts, mode="bottom", n=2)["species"].tolist() == ["ccc1", "ddd1"]
    found = eda.species_ranking(counts, query="OWL", mode="all")
    assert found["species"].tolist() == ["ccc1"] and found["rank"].tolist() == [3]
    assert eda.species_ranking(counts, query="ddd", mode="top", n=1)["rank"].tolist() == [4]
    with pytest.raises(ValueError):
        eda.species_ranking(counts, mode="middle")


def test_clusters_keep_every_recording_and_focus_finds_the_shared_region():
    import pandas as pd

    rows = []
    for i, sp in enumerate(["h1", "h2", "h3", "w1"]):  # three live on one island, w1 everywhere
        rows += [(sp, 19.5 + 0.01 * i, -155.5 + 0.01 * i)] * 3
    rows += [("w1", 51.0, 0.0), ("w1", -33.9, 151.2), ("w1", 40.7, -74.0), ("x1", None, None)]
    meta = pd.DataFrame(rows, columns=["primary_label", "latitude", "longitude"]).assign(
        common_name="", filename=[f"f{i}.ogg" for i in range(len(rows))])
    clusters, missing = eda.location_clusters(meta, ["h1", "h2", "h3", "w1"], cell_deg=1.0)
    assert missing == 1 and clusters["recordings"].sum() == len(meta) - 1 and len(clusters) == 4
    lat0, lat1, lon0, lon1 = eda.focus_extent(meta, ["h1", "h2", "h3", "w1"])
    assert 17 < lat0 < 19.5 < lat1 < 22 and -158 < lon0 < -155.5 < lon1 < -153  # the island, not the world
    assert eda.focus_extent(meta, ["nobody"]) is None
    box = eda.points_extent(clusters)
    assert box[0] < -33.9 and box[1] > 51.0 and box[2] < -155.5 and box[3] > 151.2


def test_display_table_writes_a_dash_for_every_gap():
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({"a": ["x", None, ""], "b": [1.5, np.nan, 2.0], "c": [1, 2, 3]})
    out = eda.display_table(df)
    assert out["a"].tolist() == ["x", "—", "—"] and out["b"].tolist() == ["1.5", "—", "2"]
    assert out["c"].tolist() == [1, 2, 3] and df["a"].isna().sum() == 1  # the input is left alone


def test_table_page_slices_clamps_and_counts_pages():
    import pandas as pd

    df = pd.DataFrame({"n": range(250)}, index=range(1000, 1250))
    rows, page, pages = eda.table_page(df, 3, rows=100)
    assert (page, pages) == (3, 3) and rows["n"].tolist() == list(range(200, 250))
    assert rows.index.tolist() == list(range(50))  # reindexed: a grid selection is a row of this page
    assert eda.table_page(df, 99, rows=100)[1] == 3 and eda.table_page(df, 0, rows=100)[1] == 1
    empty, page, pages = eda.table_page(df.iloc[:0], 5)
    assert empty.empty and (page, pages) == (1, 1)
