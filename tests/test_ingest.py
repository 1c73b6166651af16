"""`birdcore import`: every source kind on real recordings, the dataset it writes, bad inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from birdcore.annotation.store import save_window
from birdcore.audio.io import audio_info, write_audio
from birdcore.cli import main
from birdcore.data.dataset import load_dataset
from birdcore.data.metadata import NEGATIVE_LABEL
from birdcore.errors import DatasetError
from birdcore.ingest.importer import import_recordings
from birdcore.ingest.labels import LabelResolver
from tests.conftest import REAL_AUDIO, REAL_DATA, SHARED, require_shared

WNA10 = SHARED / "data" / "real-birds-wna10"
TAXONOMY = REAL_DATA / "eBird_Taxonomy_v2021.csv"


@pytest.fixture(scope="module")
def taxonomy() -> Path:
    return require_shared(TAXONOMY)


@pytest.fixture(scope="module")
def wna10() -> Path:
    return require_shared(WNA10 / "recordings.csv").parent


def _tone(seconds: float, sr: int = 16000, f: float = 2000.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------- labels
def test_labels_resolve_codes_scientific_and_common_names(taxonomy):
    r = LabelResolver(taxonomy, {"SP": "nocall", "CRER": "refspi1"})
    got = r.resolve(["blkpho", "Sayornis nigricans", "black_phoebe", "Black-Phoebe", "no bird", "SP", "crer"])
    assert set(got.values()) == {"blkpho", NEGATIVE_LABEL, "refspi1"}
    assert got["Sayornis nigricans"] == got["black_phoebe"] == "blkpho"


def test_unknown_labels_are_listed_at_once_with_close_matches(taxonomy):
    with pytest.raises(DatasetError) as exc:
        LabelResolver(taxonomy).resolve(["Black Phebe", "blkpho", "Sayornis nigrican"], {"Black Phebe": "x.csv:3"})
    msg = str(exc.value)
    assert "2 unknown label(s)" in msg and "'Black Phoebe'" in msg and "x.csv:3" in msg and "Sayornis nigricans" in msg


# --------------------------------------------------------------------------------------- sources
@pytest.mark.slow
def test_csv_of_real_clips_becomes_a_dataset_of_links(wna10, taxonomy, tmp_path):
    res = import_recordings([wna10 / "recordings.csv"], tmp_path / "ds", taxonomy=taxonomy)
    ds = load_dataset(tmp_path / "ds")
    assert res.rows == len(ds.metadata) == 100 and ds.num_classes == 10 and res.negatives == 0
    ds.require_audio()
    first = ds.audio_paths()[0]
    assert first.is_symlink() and first.resolve() == (wna10 / ds.metadata["source"].iloc[0].split("/real-birds-wna10/")[1]).resolve()
    assert ds.metadata["common_name"].iloc[0] and "xc_id" in ds.metadata.columns  # names + extra columns kept
    assert (tmp_path / "ds" / "eBird_Taxonomy_v2021.csv").is_file()


@pytest.mark.slow
def test_folder_per_label_with_names_and_negatives(wna10, taxonomy, tmp_path):
    root = tmp_path / "clips"
    for i, f in enumerate(sorted((wna10 / "audio").glob("*.mp3"))[:4]):
        d = root / ("Black Phoebe" if i < 2 else "Melozone_crissalis") / ("sub" if i == 3 else "")
        d.mkdir(parents=True, exist_ok=True)
        os.symlink(f, d / f.name)
    (root / "noise").mkdir()
    write_audio(root / "noise" / "wind.wav", 0.01 * np.random.default_rng(0).standard_normal(16000 * 6).astype(np.float32), 16000)
    import_recordings([root], tmp_path / "ds", taxonomy=taxonomy)
    ds = load_dataset(tmp_path / "ds")
    assert sorted(ds.metadata["primary_label"]) == ["blkpho", "blkpho", "caltow", "caltow", NEGATIVE_LABEL]
    assert ds.species == ["blkpho", "caltow"]  # the negative is no class
    y = ds.targets()
    assert y[(ds.metadata["primary_label"] == NEGATIVE_LABEL).to_numpy()].sum() == 0


def test_audacity_track_beside_a_real_recording_gives_labelled_windows(tmp_path):
    src = require_shared(REAL_AUDIO / "spinetail.txt")
    folder = tmp_path / "field"
    folder.mkdir()
    os.symlink(REAL_AUDIO / "spinetail.wav", folder / "spinetail.wav")
    os.symlink(src, folder / "spinetail.txt")
    res = import_recordings([folder], tmp_path / "ds", label_map={"CRER": "refspi1", "SP": "houspa"})
    meta = load_dataset(tmp_path / "ds").metadata
    windows = [(0, 5), (5, 10), (10, 15), (15, 20)]  # 19.5 s: the last window holds 4.5 s ≥ 1.5 s
    assert meta[["start_s", "end_s"]].to_numpy().tolist() == [list(w) for w in windows]
    boxes = [(float(a), float(b), lab) for a, b, lab in
             (ln.split("\t")[:3] for ln in src.read_text().splitlines() if ln and not ln.startswith("\\"))]

    def present(label, lo, hi):
        return any(lab == label and min(b, hi) - max(a, lo) >= min(0.5, (b - a) / 2) for a, b, lab in boxes)

    assert meta["primary_label"].tolist() == ["refspi1"] * 4  # the song fills more of each window than the calls
    assert meta["secondary_labels"].tolist() == [["houspa"] if present("SP", *w) else [] for w in windows]
    assert len(set(meta["filename"])) == 1 and res.files == 1  # one link to the recording, windows as spans


def test_raven_table_beside_a_real_recording_and_cut_mode(tmp_path):
    src = require_shared(REAL_AUDIO / "spinetail.txt")
    folder = tmp_path / "raven"
    folder.mkdir()
    os.symlink(REAL_AUDIO / "spinetail.wav", folder / "spinetail.wav")
    boxes = [ln.split("\t") for ln in src.read_text().splitlines() if ln and not ln.startswith("\\")]
    lines = ["Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies Code"]
    for i, (a, b, lab) in enumerate(boxes, start=1):
        if lab == "CRER":  # Raven lists each selection once per view; the waveform rows are skipped
            lines += [f"{i}\tSpectrogram 1\t1\t{a}\t{b}\t2500\t8800\trefspi1",
                      f"{i}\tWaveform 1\t1\t{a}\t{b}\t2500\t8800\trefspi1"]
    (folder / "spinetail.Table.1.selections.txt").write_text("\n".join(lines) + "\n")
    import_recordings([folder], tmp_path / "ds", mode="cut")
    ds = load_dataset(tmp_path / "ds")
    m = ds.metadata
    assert m["primary_label"].tolist() == ["refspi1"] * 4 and m["start_s"].isna().all()  # cut: one file per window
    durations = [round(audio_info(p).duration, 2) for p in ds.audio_paths()]
    assert durations == [5.0, 5.0, 5.0, round(audio_info(REAL_AUDIO / "spinetail.wav").duration - 15, 2)]
    assert not any(p.is_symlink() for p in ds.audio_paths())


def test_raven_negatives_and_secondary_labels(tmp_path):
    folder = tmp_path / "raven"
    folder.mkdir()
    write_audio(folder / "site1.wav", _tone(12.0), 16000)
    (folder / "site1.Table.1.selections.txt").write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tSpecies Code\n"
        "1\tSpectrogram 1\t1\t1.0\t3.0\t1000\t3000\tblkpho\n"
        "2\tSpectrogram 1\t1\t6.0\t9.5\t1000\t3000\tcaltow\n"
        "3\tSpectrogram 1\t1\t7.0\t8.0\t1000\t3000\tblkpho\n")
    import_recordings([folder], tmp_path / "ds")
    m = load_dataset(tmp_path / "ds").metadata
    assert m["primary_label"].tolist() == ["blkpho", "caltow", NEGATIVE_LABEL]
    assert m["secondary_labels"].tolist() == [[], ["blkpho"], []]  # 7–8 s blkpho inside the caltow window


def test_app_annotations_of_a_real_soundscape_become_checked_windows(tmp_path):
    data = tmp_path / "data"
    (data / "test_soundscapes").mkdir(parents=True)
    os.symlink(require_shared(REAL_AUDIO / "opensoundscape_1min.wav"), data / "test_soundscapes" / "os1.wav")
    labels = data / "annotations" / "labels.csv"
    save_window(labels, "os1", 0, 5, ["blkpho", "caltow"])
    save_window(labels, "os1", 5, 10, [])  # checked, nothing there; the rest never listened to
    save_window(labels, "os1", 55, 60, ["caltow"])
    import_recordings([labels], tmp_path / "ds")
    m = load_dataset(tmp_path / "ds").metadata
    assert m["primary_label"].tolist() == ["blkpho", NEGATIVE_LABEL, "caltow"]
    assert m["end_s"].tolist() == [5, 10, 60] and m["secondary_labels"].iloc[0] == ["caltow"]


# ------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("table, problem", [
    ("1.0\t0.5\tblkpho\n", "line 1, field end: 0.5 is before start 1.0"),
    ("1.0\t30.0\tblkpho\n", "line 1: selection 1–30 s is outside the recording"),
    ("1.0\t4.0\tblkpho\n3.0\t6.0\tblkpho\n", "lines 1 and 2: two 'blkpho' selections overlap"),
    ("", "has no selections"),
    ("1.0\t2.0\tBlack Phebe\n", "unknown label(s): 'Black Phebe'"),
])
def test_bad_selection_tables_name_file_and_line(tmp_path, table, problem):
    folder = tmp_path / "f"
    folder.mkdir()
    write_audio(folder / "rec.wav", _tone(10.0), 16000)
    (folder / "rec.txt").write_text(table)
    with pytest.raises(DatasetError) as exc:
        import_recordings([folder / "rec.txt"], tmp_path / "ds")
    assert problem in str(exc.value) and "rec.txt" in str(exc.value)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds.import-*"))  # nothing half-written


def test_csv_missing_files_are_all_listed_and_out_folder_is_never_overwritten(tmp_path):
    write_audio(tmp_path / "a.wav", _tone(6.0), 16000)
    (tmp_path / "t.csv").write_text("file,label\na.wav,blkpho\nb.wav,blkpho\nc.wav,caltow\n")
    with pytest.raises(DatasetError, match=r"2 listed audio file\(s\) not found: line 3: b.wav; line 4: c.wav"):
        import_recordings([tmp_path / "t.csv"], tmp_path / "ds")
    (tmp_path / "t.csv").write_text("file,label\na.wav,blkpho\n")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "mine.txt").write_text("keep")
    with pytest.raises(DatasetError, match="already exists"):
        import_recordings([tmp_path / "t.csv"], tmp_path / "ds")
    assert (tmp_path / "ds" / "mine.txt").read_text() == "keep"


def test_cli_import_reports_and_exits_2_on_bad_input(tmp_path, capsys):
    write_audio(tmp_path / "a.wav", _tone(6.0), 16000)
    (tmp_path / "t.csv").write_text("file,label\na.wav,blkpho\n")
    assert main(["import", str(tmp_path / "t.csv"), "--out", str(tmp_path / "ds")]) == 0
    assert "1 rows (0 negatives)" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "t.csv"), "--out", str(tmp_path / "ds2"), "--map", "oops"]) == 2
    assert "--map 'oops': expected NAME=CODE" in capsys.readouterr().err


def test_xeno_canto_style_columns_become_metadata(tmp_path):
    for n in ("a", "b"):
        write_audio(tmp_path / f"{n}.wav", _tone(6.0), 16000)
    (tmp_path / "xc.csv").write_text("file,species,q,lat,lng,recordist,station\n"
                                     "a.wav,blkpho,A,34.1,-118.2,Ann,s1\nb.wav,Melozone crissalis,no score,n/a,,Bo,s2\n")
    import_recordings([tmp_path / "xc.csv"], tmp_path / "ds", label_map={"Melozone crissalis": "caltow"})
    m = load_dataset(tmp_path / "ds").metadata
    assert m["rating"].tolist() == [5.0, 0.0] and m["latitude"].iloc[0] == pytest.approx(34.1)
    assert np.isnan(m["latitude"].iloc[1]) and m["author"].tolist() == ["Ann", "Bo"]
    assert m["station"].tolist() == ["s1", "s2"]  # extra columns kept: usable as data.group_by=station
