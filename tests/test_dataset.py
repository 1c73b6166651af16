"""Data layer: the real BirdCLEF 2022 metadata, and every validation error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from birdcore.data.dataset import load_dataset
from birdcore.data.metadata import parse_time_minutes
from birdcore.errors import DatasetError

REAL_RATINGS = {"0.0": 570, "0.5": 30, "1.0": 155, "1.5": 152, "2.0": 575, "2.5": 724, "3.0": 1957,
                "3.5": 1765, "4.0": 3974, "4.5": 1632, "5.0": 3318}


def test_real_metadata_counts(real_data_dir):
    ds = load_dataset(real_data_dir)
    assert len(ds.metadata) == 14852
    assert ds.num_classes == 152
    assert len(ds.scored) == 21 and "akiapo" in ds.scored
    assert ds.summary()["rating_histogram"] == REAL_RATINGS
    assert ds.summary()["with_secondary_labels"] == 1478
    counts = ds.metadata["primary_label"].value_counts()
    assert counts.max() == 500 and counts.min() == 1 and counts.median() == 41.5  # README rounds to 42
    # Python-list strings were parsed into real lists.
    row = ds.metadata[ds.metadata["filename"] == "afrsil1/XC175522.ogg"].iloc[0]
    assert row["secondary_labels"] == ["houspa", "redava", "zebdov"]
    assert ds.metadata["type"].map(lambda v: isinstance(v, list)).all()
    # Odd times are kept as text, only the derived minutes are missing.
    odd = ds.metadata[ds.metadata["time"] == "?"]
    assert len(odd) == 487 and odd["time_minutes"].isna().all()
    # Taxonomy join (BOM stripped from the header).
    assert ds.common_name("akiapo") == "Akiapolaau"
    table = ds.species_table()
    assert table.loc[table.species == "skylar", "recordings"].item() == 500
    assert int(table["scored"].sum()) == 21


def test_targets_multi_hot(real_data_dir):
    ds = load_dataset(real_data_dir)
    rows = np.flatnonzero((ds.metadata["filename"] == "afrsil1/XC175522.ogg").to_numpy())
    y = ds.targets(secondary_weight=0.5, rows=rows)[0]
    idx = ds.species_index
    assert y[idx["afrsil1"]] == 1.0
    assert y[idx["houspa"]] == 0.5 and y[idx["redava"]] == 0.5 and y[idx["zebdov"]] == 0.5
    assert y.sum() == pytest.approx(2.5)


def test_metadata_only_folder_fails_only_for_audio(real_data_dir):
    ds = load_dataset(real_data_dir)
    assert not ds.has_train_audio
    with pytest.raises(DatasetError, match="train_audio.*not found"):
        ds.require_audio()
    with pytest.raises(DatasetError, match="no soundscape"):
        ds.require_soundscapes()


@pytest.mark.parametrize(
    "text, minutes",
    [("08:30", 510.0), ("8:05", 485.0), ("23:59", 1439.0), ("9:30am", 570.0), ("5:30 pm", 1050.0),
     ("12:00am", 0.0), ("?", np.nan), ("25:00", np.nan), ("xx:xx", np.nan), ("", np.nan), ("10:75", np.nan)],
)
def test_time_parsing(text, minutes):
    got = parse_time_minutes(pd.Series([text])).iloc[0]
    assert (np.isnan(got) and np.isnan(minutes)) or got == minutes


# ---- a tiny dataset written by the tests, then broken in every documented way ----------------

HEADER = ("primary_label,secondary_labels,type,latitude,longitude,scientific_name,common_name,author,"
          "license,rating,time,url,filename\n")


def _write_tiny(root: Path, rows: list[str] | None = None, audio: bool = True) -> Path:
    rows = rows or [
        "aaa1,[],['call'],10.0,20.0,Alpha one,Alpha,Ann,CC BY,4.0,08:00,u,aaa1/XC1.ogg",
        "aaa1,['bbb1'],\"['call', 'song']\",10.5,20.5,Alpha one,Alpha,Ann,CC BY,3.5,?,u,aaa1/XC2.ogg",
        "bbb1,[],[],-5.0,100.0,Beta one,Beta,Bob,CC BY,0.0,25:00,u,bbb1/XC3.ogg",
    ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    (root / "scored_birds.json").write_text(json.dumps(["bbb1"]))
    if audio:
        import soundfile as sf

        for r in rows:
            fn = r.rsplit(",", 1)[1]
            p = root / "train_audio" / fn
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, np.zeros(3200, dtype=np.float32) + 0.01, 32000, format="OGG", subtype="VORBIS")
    return root


def test_tiny_dataset_loads(tmp_path):
    ds = load_dataset(_write_tiny(tmp_path / "d"))
    assert ds.species == ["aaa1", "bbb1"]
    assert ds.scored == ["bbb1"]
    ds.require_audio()
    assert ds.metadata["time_minutes"].isna().sum() == 2
    assert ds.metadata.loc[1, "type"] == ["call", "song"]
    assert any("eBird_Taxonomy" in n for n in ds.notes)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"train_metadata\.csv not found"):
        load_dataset(tmp_path / "empty")


def test_empty_csv(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / "train_metadata.csv").write_text("")
    with pytest.raises(DatasetError, match=r"train_metadata\.csv.*empty"):
        load_dataset(root)
    (root / "train_metadata.csv").write_text(HEADER)
    with pytest.raises(DatasetError, match="header but no rows"):
        load_dataset(root)


def test_missing_column_named(tmp_path):
    root = _write_tiny(tmp_path / "d")
    df = pd.read_csv(root / "train_metadata.csv").drop(columns=["rating"])
    df.to_csv(root / "train_metadata.csv", index=False)
    with pytest.raises(DatasetError, match=r"train_metadata\.csv: .*lacks column\(s\) rating"):
        load_dataset(root)


def test_wrong_delimiter_hint(tmp_path):
    root = _write_tiny(tmp_path / "d")
    df = pd.read_csv(root / "train_metadata.csv")
    df.to_csv(root / "train_metadata.csv", index=False, sep=";")
    with pytest.raises(DatasetError, match="another delimiter"):
        load_dataset(root)


def test_secondary_only_species_gets_a_class_and_an_unknown_code_names_its_line(tmp_path):
    root = _write_tiny(tmp_path / "d", rows=[
        "aaa1,[],['call'],10.0,20.0,A,A,Ann,CC,4.0,08:00,u,aaa1/XC1.ogg",
        "aaa1,['zzz9'],['call'],10.0,20.0,A,A,Ann,CC,4.0,08:00,u,aaa1/XC2.ogg",
        "bbb1,[],['call'],10.0,20.0,B,B,Ann,CC,4.0,08:00,u,bbb1/XC3.ogg",
    ])
    ds = load_dataset(root)  # heard only in the background of a recording: still a class
    assert ds.species == ["aaa1", "bbb1", "zzz9"] and ds.targets()[1].tolist() == [1.0, 0.0, 1.0]
    (root / "eBird_Taxonomy_v2021.csv").write_text("SPECIES_CODE,PRIMARY_COM_NAME,SCI_NAME\naaa1,A,A a\nbbb1,B,B b\n")
    with pytest.raises(DatasetError, match=r"line 3, column secondary_labels: unknown species code zzz9"):
        load_dataset(root)


def test_malformed_list_string(tmp_path):
    root = _write_tiny(tmp_path / "d", rows=[
        "aaa1,\"['bbb1'\",['call'],10.0,20.0,A,A,Ann,CC,4.0,08:00,u,aaa1/XC1.ogg",
    ])
    with pytest.raises(DatasetError, match=r"line 2, column secondary_labels: .*not a list of strings"):
        load_dataset(root)


def test_list_string_is_never_executed(tmp_path):
    root = _write_tiny(tmp_path / "d", rows=[
        "aaa1,\"__import__('os').system('touch PWNED')\",['call'],1,2,A,A,Ann,CC,4.0,08:00,u,aaa1/XC1.ogg",
    ])
    with pytest.raises(DatasetError, match="not a list of strings"):
        load_dataset(root)
    assert not Path("PWNED").exists()


@pytest.mark.parametrize("col, value, match", [
    ("rating", "7.5", r"column rating: 7.5 is outside the valid range 0.0..5.0"),
    ("rating", "good", r"column rating: 'good' is not a number"),
    ("latitude", "123.0", r"column latitude: 123.0 is outside"),
    ("longitude", "-200", r"column longitude: -200.0 is outside"),
])
def test_out_of_range_values(tmp_path, col, value, match):
    root = _write_tiny(tmp_path / "d")
    df = pd.read_csv(root / "train_metadata.csv", dtype=str, keep_default_na=False)
    df.loc[1, col] = value
    df.to_csv(root / "train_metadata.csv", index=False)
    with pytest.raises(DatasetError, match=r"line 3, " + match):
        load_dataset(root)


def test_duplicated_filenames(tmp_path):
    root = _write_tiny(tmp_path / "d", rows=[
        "aaa1,[],['call'],1,2,A,A,Ann,CC,4.0,08:00,u,aaa1/XC1.ogg",
        "aaa1,[],['call'],1,2,A,A,Ann,CC,4.0,08:00,u,aaa1/XC1.ogg",
    ])
    with pytest.raises(DatasetError, match=r"1 duplicated filename\(s\), e.g. aaa1/XC1.ogg"):
        load_dataset(root)


def test_non_utf8_metadata(tmp_path):
    root = _write_tiny(tmp_path / "d")
    raw = (root / "train_metadata.csv").read_bytes().replace(b"Ann", b"J\xf6rg")
    (root / "train_metadata.csv").write_bytes(raw)
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(root)


def test_bom_and_extra_columns_accepted(tmp_path):
    root = _write_tiny(tmp_path / "d")
    df = pd.read_csv(root / "train_metadata.csv", dtype=str, keep_default_na=False)
    df["my_notes"] = "x"
    (root / "train_metadata.csv").write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode())
    ds = load_dataset(root)
    assert "my_notes" in ds.metadata.columns and ds.species == ["aaa1", "bbb1"]


def test_unknown_primary_label_against_taxonomy(tmp_path, real_data_dir):
    root = _write_tiny(tmp_path / "d")
    shutil.copy(real_data_dir / "eBird_Taxonomy_v2021.csv", root / "eBird_Taxonomy_v2021.csv")
    with pytest.raises(DatasetError, match=r"line 2, column primary_label: unknown species code aaa1"):
        load_dataset(root)


def test_all_missing_audio_reported_at_once(tmp_path):
    root = _write_tiny(tmp_path / "d")
    (root / "train_audio" / "aaa1" / "XC1.ogg").unlink()
    (root / "train_audio" / "bbb1" / "XC3.ogg").unlink()
    ds = load_dataset(root)  # metadata use still works
    assert sorted(ds.missing_audio()) == ["aaa1/XC1.ogg", "bbb1/XC3.ogg"]
    with pytest.raises(DatasetError, match=r"2 of 3 audio files .* missing: aaa1/XC1.ogg, bbb1/XC3.ogg"):
        ds.require_audio()


def test_bad_scored_birds(tmp_path):
    root = _write_tiny(tmp_path / "d")
    (root / "scored_birds.json").write_text('["bbb1", "nope1"]')
    with pytest.raises(DatasetError, match=r"scored_birds.json: scored species nope1"):
        load_dataset(root)
    (root / "scored_birds.json").write_text('["bbb1"')
    with pytest.raises(DatasetError, match=r"scored_birds.json: not valid JSON"):
        load_dataset(root)


def test_real_test_tables(real_data_dir):
    ds = load_dataset(real_data_dir)
    assert list(ds.test.columns) == ["row_id", "file_id", "bird", "end_time"]
    assert ds.test["end_time"].tolist() == [5, 10, 15]
    assert ds.sample_submission["row_id"].tolist() == ds.test["row_id"].tolist()
