"""BirdNET on any species set: `--species all|LIST|FILE`, `--taxonomy`, no dataset needed, the report of
species a dataset restriction drops, folder inputs with sub-folders, and `submit --model birdnet`.

Real recordings from ../shared (skipped when absent): XC713870.mp3 is an akiapo recording;
real-birds-wna10 holds 100 six-second xeno-canto clips of 10 North-American species.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.birdnet import require_birdnet

require_birdnet()  # before the imports that need the extra: a clear skip reason when it is absent

from birdcore.cli import main
from birdcore.errors import ConfigError
from birdcore.inference.birdnet_baseline import (
    birdnet_labels,
    birdnet_species,
    outside_message,
    predict_birdnet,
    read_species_option,
)
from birdcore.pretrained.label_map import (
    TAXONOMY_ENV,
    birdnet_to_ebird,
    codes_to_indices,
    taxonomy_names,
)
from tests.conftest import SHARED, require_shared


WNA10 = SHARED / "data" / "real-birds-wna10"
NOT_IN_BIRDNET = "dodo1"  # in eBird_Taxonomy_v2021.csv, no BirdNET class


@pytest.fixture(autouse=True)
def no_taxonomy_env(monkeypatch):
    monkeypatch.delenv(TAXONOMY_ENV, raising=False)


@pytest.fixture(scope="module")
def taxonomy() -> Path:
    return require_shared(SHARED / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv")


@pytest.fixture(scope="module")
def akiapo_mp3() -> Path:
    return require_shared(SHARED / "data" / "real-audio" / "XC713870.mp3")


@pytest.fixture(scope="module")
def wna10() -> pd.DataFrame:
    return pd.read_csv(require_shared(WNA10 / "recordings.csv"))


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _data_columns(path: Path) -> list[str]:
    return [c for c in pd.read_parquet(path).columns if c not in ("file_id", "end_time")]


# ---- no dataset: a file and a taxonomy are enough -----------------------------------------------

@pytest.mark.slow
def test_predict_one_file_with_taxonomy_and_no_dataset(tmp_path, capsys, taxonomy, akiapo_mp3):
    code, out, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--taxonomy", taxonomy,
                          "--out", tmp_path / "p")
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "p.parquet")
    assert list(table["end_time"]) == [5, 10, 15, 20, 25] and set(table["file_id"]) == {"XC713870"}
    species = table.drop(columns=["file_id", "end_time"])
    assert species.shape[1] > 6300  # every eBird code BirdNET maps to
    assert "akiapo" in species.max().sort_values(ascending=False).index[:3]
    assert "5 windows from 1 file(s)" in out
    assert "BirdNET heard" not in err  # nothing is dropped when every species is kept


def test_no_taxonomy_anywhere_is_one_clear_line(tmp_path, capsys, akiapo_mp3):
    code, out, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--out", tmp_path / "p")
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.startswith("birdcore:")]
    assert len(lines) == 1 and "--taxonomy" in lines[0] and f"${TAXONOMY_ENV}" in lines[0], err
    assert not (tmp_path / "p.parquet").exists()
    code, _, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--taxonomy", tmp_path / "nope.csv")
    assert code == 2 and "nope.csv: taxonomy file not found" in err


# ---- --species all | LIST | FILE ----------------------------------------------------------------

def test_species_option_column_sets(tmp_path, taxonomy):
    labels = birdnet_labels()
    every = list(codes_to_indices(birdnet_to_ebird(labels, taxonomy)))
    assert birdnet_species("all", taxonomy, labels=labels).codes == every
    assert birdnet_species(None, taxonomy, labels=labels).codes == every  # no dataset: all
    ds = birdnet_species(None, taxonomy, dataset_species=["houspa", "amerob"], labels=labels)
    assert ds.codes == ["houspa", "amerob"] and ds.source == "dataset" and ds.restricted
    assert ds.described == "the dataset's 2"

    listed = birdnet_species(f"akiapo, HOUSPA,{NOT_IN_BIRDNET},akiapo", taxonomy, labels=labels)
    assert listed.codes == ["akiapo", "houspa", NOT_IN_BIRDNET] and listed.source == "list"
    assert listed.not_in_birdnet == [NOT_IN_BIRDNET]
    assert NOT_IN_BIRDNET in listed.missing_message("NaN") and "NaN" in listed.missing_message("NaN")

    txt = tmp_path / "species.txt"
    txt.write_text("# my birds\namerob\nhouspa  # a comment\n\nyerwar\n", encoding="utf-8")
    assert birdnet_species(str(txt), taxonomy, labels=labels).codes == ["amerob", "houspa", "yerwar"]
    js = tmp_path / "scored_birds.json"
    js.write_text(json.dumps(["akiapo", "apapan"]), encoding="utf-8")
    got = birdnet_species(str(js), taxonomy, labels=labels, include=["iiwi"])
    assert got.codes == ["akiapo", "apapan", "iiwi"] and got.source == "file"

    with pytest.raises(ConfigError, match=r"not in eBird_Taxonomy_v2021.csv: notabird, zzz"):
        birdnet_species("akiapo,notabird,zzz", taxonomy, labels=labels)
    with pytest.raises(ConfigError, match="species file not found"):
        read_species_option(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"akiapo": 1}', encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON list"):
        read_species_option(str(bad))


@pytest.mark.slow
def test_predict_species_list_and_file_via_env_taxonomy(tmp_path, capsys, monkeypatch, taxonomy, akiapo_mp3):
    monkeypatch.setenv(TAXONOMY_ENV, str(taxonomy))  # the env var replaces --taxonomy
    code, _, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--species",
                        f"akiapo,houspa,{NOT_IN_BIRDNET}", "--out", tmp_path / "list")
    assert code == 0, err
    assert _data_columns(tmp_path / "list.parquet") == ["akiapo", "houspa", NOT_IN_BIRDNET]
    listed = pd.read_parquet(tmp_path / "list.parquet")
    assert listed[NOT_IN_BIRDNET].isna().all() and listed[["akiapo", "houspa"]].notna().all().all()
    assert listed["akiapo"].max() > 0.5  # the bird of the recording
    assert f"warning: BirdNET has no class for 1 of the 3 species: {NOT_IN_BIRDNET}" in err
    # the restricted run reports what it drops: this recording also holds Hawaii Creeper calls etc.
    assert "BirdNET heard" in err and "outside the 3 requested" in err and "crehon" in err

    species_file = tmp_path / "species.txt"
    species_file.write_text("crehon\nakiapo\n", encoding="utf-8")
    code, _, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--species", species_file,
                        "--out", tmp_path / "file")
    assert code == 0, err
    by_file = pd.read_parquet(tmp_path / "file.parquet")
    assert _data_columns(tmp_path / "file.parquet") == ["crehon", "akiapo"]
    np.testing.assert_array_equal(by_file["akiapo"].to_numpy(), listed["akiapo"].to_numpy())

    code, _, err = _run(capsys, "predict", "--model", "birdnet", akiapo_mp3, "--species", "akiapo,notabird")
    assert code == 2 and "notabird" in err and "not in eBird_Taxonomy_v2021.csv" in err


# ---- a dataset restriction drops species: say which ---------------------------------------------

def _fake_dataset(root: Path, taxonomy: Path, species: list[str]) -> Path:
    root.mkdir(parents=True)
    rows = "".join(f"{s},[],4.0,{s}/XC{i}.ogg\n" for i, s in enumerate(species))
    (root / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n" + rows)
    (root / "eBird_Taxonomy_v2021.csv").write_bytes(taxonomy.read_bytes())
    return root


@pytest.mark.slow
def test_dataset_restriction_reports_dropped_species(tmp_path, capsys, taxonomy, wna10, birdnet_model):
    data = _fake_dataset(tmp_path / "ds", taxonomy, ["blkpho", "houspa"])
    # one clip of each of the 10 species: 8 of them are outside the dataset's 2
    picks = wna10.groupby("ebird_code", sort=True).head(1)
    clips = [WNA10 / f for f in picks["filename"]]
    outside_truth = set(picks["ebird_code"]) - {"blkpho", "houspa"}

    result = predict_birdnet(clips, ["blkpho", "houspa"], taxonomy, model=birdnet_model, outside_threshold=0.5)
    assert result.classes == ["blkpho", "houspa"] and len(result.table) == len(clips)
    heard = result.outside
    assert list(heard.columns) == ["code", "name", "windows", "max_score"]
    assert (heard["windows"] >= 1).all() and (heard["max_score"] >= 0.5).all()
    assert list(heard["windows"]) == sorted(heard["windows"], reverse=True)
    assert not {"blkpho", "houspa"} & set(heard["code"])
    assert len(outside_truth & set(heard["code"])) >= 4, heard  # the clips' own species, mostly
    common = taxonomy_names(taxonomy)
    assert list(heard["name"]) == [common[c] for c in heard["code"]]
    assert common["towwar"] == "Townsend's Warbler" and common["yerwar"] == "Yellow-rumped Warbler"
    # the kept columns are exactly what a run restricted from the start gives
    plain = predict_birdnet(clips, ["blkpho", "houspa"], taxonomy, model=birdnet_model)
    assert plain.outside is None
    pd.testing.assert_frame_equal(result.table, plain.table)

    # the CLI: the dataset's species by default, the dropped ones on stderr with names and counts
    folder = tmp_path / "clips"
    folder.mkdir()
    for c in clips:
        (folder / c.name).symlink_to(c)
    code, _, err = _run(capsys, "predict", "--model", "birdnet", folder, "--data", data, "--out", tmp_path / "p")
    assert code == 0, err
    assert _data_columns(tmp_path / "p.parquet") == ["blkpho", "houspa"]
    line = next(ln for ln in err.splitlines() if "BirdNET heard" in ln)
    assert line == "birdcore: warning: " + outside_message(result, birdnet_species(None, taxonomy, dataset_species=[
        "blkpho", "houspa"]))
    assert "outside the dataset's 2 (windows ≥ 0.5)" in line and "pass --species all to keep them" in line
    top = heard.iloc[0]
    assert f"{top['code']} ({top['name']}) {top['windows']}," in line
    assert "birdnet:" in err  # the progress bar (tqdm on stderr)


def test_a_file_failing_mid_run_is_skipped_and_the_rest_finishes(tmp_path, taxonomy, birdnet_model):
    """Its header is fine (so no pre-check catches it) but it decodes to NaN: listed, not fatal."""
    rng = np.random.default_rng(1)
    good = [tmp_path / "a.wav", tmp_path / "c.wav"]
    for p in good:
        sf.write(p, (0.01 * rng.standard_normal(48000 * 2)).astype(np.float32), 48000)
    bad = tmp_path / "b.wav"
    sf.write(bad, np.array([0.1, np.nan] * 48000, np.float32), 48000, subtype="FLOAT")
    empty = tmp_path / "d.wav"
    empty.write_bytes(b"")
    calls = []
    result = predict_birdnet([good[0], bad, good[1], empty], ["akiapo"], taxonomy, model=birdnet_model,
                             progress=lambda done, total: calls.append((done, total)))
    assert list(result.table["file_id"]) == ["a", "c"] and result.classes == ["akiapo"]
    assert [Path(p).name for p, _ in result.skipped] == ["d.wav", "b.wav"]
    assert "NaN or infinite" in dict(result.skipped)[str(bad)] and "empty" in dict(result.skipped)[str(empty)]
    assert calls[-1] == (4, 4) and result.audio_seconds == pytest.approx(4.0)


# ---- folders with sub-folders --------------------------------------------------------------------

@pytest.mark.slow
def test_predict_folder_with_sub_folders_finds_every_file(tmp_path, capsys, taxonomy, akiapo_mp3):
    rng = np.random.default_rng(0)
    tree = tmp_path / "recordings"
    for rel in ["b.wav", "a/one.flac", "a/deeper/two.wav", "c/three.ogg", ".hidden/skip.wav"]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tree / rel, (0.01 * rng.standard_normal(32000 * 2)).astype(np.float32), 32000)
    (tree / "a" / "readme.txt").write_text("not audio")
    (tree / "c" / "XC713870.mp3").symlink_to(akiapo_mp3)
    code, out, err = _run(capsys, "predict", "--model", "birdnet", tree, "--species", "akiapo",
                          "--taxonomy", taxonomy, "--out", tmp_path / "p")
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "p.parquet")
    # sorted by path under the folder: a/deeper/two, a/one, b, c/XC713870, c/three; hidden skipped
    assert list(dict.fromkeys(table["file_id"])) == ["two", "one", "b", "XC713870", "three"]
    assert "9 windows from 5 file(s)" in out  # 4 two-second clips + the 5-window recording
    assert table.loc[table["file_id"] == "XC713870", "akiapo"].max() > 0.5


# ---- submit --model birdnet ----------------------------------------------------------------------

@pytest.mark.slow
def test_submit_birdnet_with_species_and_taxonomy_option(tmp_path, capsys, taxonomy, akiapo_mp3):
    """A dataset without its own taxonomy: --taxonomy maps BirdNET; test.csv's birds are scored
    even when --species leaves them out, a bird BirdNET lacks is False."""
    data = tmp_path / "ds"
    data.mkdir()
    (data / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n"
                                             f"akiapo,[],4.0,akiapo/XC1.ogg\n{NOT_IN_BIRDNET},[],4.0,x/XC2.ogg\n")
    (data / "test_soundscapes").mkdir()
    (data / "test_soundscapes" / "soundscape_1.mp3").symlink_to(akiapo_mp3)
    rows = [f"soundscape_1_{b}_{t},soundscape_1,{b},{t}" for t in (5, 10, 15, 20, 25) for b in ("akiapo", NOT_IN_BIRDNET)]
    (data / "test.csv").write_text("row_id,file_id,bird,end_time\n" + "\n".join(rows) + "\n")
    code, _, err = _run(capsys, "submit", "--model", "birdnet", "--data", data, "--out", tmp_path / "sub.csv")
    assert code == 2 and "--taxonomy" in err  # no taxonomy in the dataset, none given
    code, out, err = _run(capsys, "submit", "--model", "birdnet", "--data", data, "--taxonomy", taxonomy,
                          "--species", "crehon", "--out", tmp_path / "sub.csv")
    assert code == 0, err
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert list(sub["row_id"]) == [r.split(",")[0] for r in rows]
    target = dict(zip(sub["row_id"], sub["target"]))
    assert any(target[f"soundscape_1_akiapo_{t}"] for t in (5, 10, 15, 20, 25))
    assert not any(target[f"soundscape_1_{NOT_IN_BIRDNET}_{t}"] for t in (5, 10, 15, 20, 25))
    assert f"BirdNET has no class for 1 of the 3 species: {NOT_IN_BIRDNET}" in err and "0 in the submission" in err
    assert "wrote" in out and "10 rows" in out
