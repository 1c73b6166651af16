"""The embedded demo dataset: Kaggle layout, sane values, determinism, learnability, safe writes."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal

from birdcore.demo import (
    DEMO_VERSION,
    MARKER_NAME,
    SPECIES,
    default_demo_dir,
    ensure_demo_dataset,
    generate_demo_dataset,
    generator,
    is_complete_demo,
    scenes,
)
from birdcore.errors import BirdcoreError

SR = 32000
SMALL = {"recordings_scale": 0.1, "n_soundscapes": 1, "n_unlabeled": 1}  # a quick dataset for the write/determinism tests


# Every test that uses `demo` or `meta` is marked slow: generating the full dataset takes ~30 s.
@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The default dataset (seed 0), generated once for the whole session."""
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", seed=0)


@pytest.fixture(scope="session")
def meta(demo) -> pd.DataFrame:
    return pd.read_csv(demo / "train_metadata.csv", keep_default_na=False)


def _read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_layout_files_exist(demo):
    for name in ("train_metadata.csv", "eBird_Taxonomy_v2021.csv", "scored_birds.json", "test.csv",
                 "sample_submission.csv", "test_labels.csv", "test_events.csv", MARKER_NAME):
        assert (demo / name).is_file(), name
    assert (demo / "train_audio").is_dir() and (demo / "test_soundscapes").is_dir()
    marker = json.loads((demo / MARKER_NAME).read_text())
    assert marker["version"] == DEMO_VERSION and marker["seed"] == 0
    assert not list(demo.parent.glob(".demo.tmp-*")), "temp build folder left behind"


@pytest.mark.slow
def test_metadata_header_matches_real_file(demo, real_data_dir):
    real = _read(real_data_dir / "train_metadata.csv")[0]
    assert _read(demo / "train_metadata.csv")[0] == real
    assert real.split(",") == generator.METADATA_COLUMNS


@pytest.mark.slow
def test_metadata_quoting_matches_real_style(demo, real_data_dir):
    # Kaggle's file is plain csv.writer output (minimal quoting, LF): re-serialising a row must give
    # the same text, for the real file and for ours.
    def reserialised(line: str) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(next(csv.reader([line])))
        return buf.getvalue().rstrip("\n")

    real_lines = _read(real_data_dir / "train_metadata.csv")[1:200]
    assert all(reserialised(line) == line for line in real_lines)
    ours = (demo / "train_metadata.csv").read_bytes()
    assert b"\r" not in ours and not ours.startswith(b"\xef\xbb\xbf")
    lines = ours.decode("utf-8").splitlines()[1:]
    assert all(reserialised(line) == line for line in lines)
    assert any(",[]," in line for line in lines)
    assert any(",\"['" in line for line in lines), "multi-item lists are quoted like the real file"


@pytest.mark.slow
def test_metadata_values(meta):
    codes = {s.code for s in SPECIES}
    assert set(meta["primary_label"]) == codes
    for col in ("secondary_labels", "type"):
        parsed = meta[col].map(ast.literal_eval)
        assert parsed.map(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)).all()
    types = meta["type"].map(ast.literal_eval)
    assert types.map(len).min() >= 1 and (types.map(len) >= 2).any()
    ratings = meta["rating"].astype(float)
    assert ratings.between(0.0, 5.0).all() and ((ratings * 2) % 1 == 0).all()
    assert (ratings == 0.0).sum() >= 2 and ratings.nunique() >= 6
    clock = meta["time"].str.fullmatch(r"\d\d:\d\d")
    assert 1 <= (~clock).sum() <= 3 and set(meta.loc[~clock, "time"]) <= {"?", "?:?"}
    assert meta["url"].str.fullmatch(r"https://example\.org/demo/XC\d+").all()
    ids = meta["url"].str.extract(r"(XC\d+)$")[0]
    assert (meta["filename"] == meta["primary_label"] + "/" + ids + ".ogg").all()
    assert meta["filename"].is_unique
    assert meta["license"].str.startswith("Creative Commons Attribution-").all()
    assert meta["author"].nunique() >= 5
    assert meta["latitude"].between(-90, 90).all() and meta["longitude"].between(-180, 180).all()
    # clustered: every recording lies near one of a few region centres, at most 2 regions a species
    centres = np.array([(lat, lon) for lat, lon, _ in generator.REGIONS.values()])
    points = meta[["latitude", "longitude"]].to_numpy(dtype=float)
    dist = np.abs(points[:, None, :] - centres[None, :, :]).max(axis=2)
    assert (dist.min(axis=1) < 3.0).all()
    regions = pd.Series(dist.argmin(axis=1)).groupby(meta["primary_label"].to_numpy()).nunique()
    assert len(centres) <= 6 and (regions <= 2).all()
    # rows sorted like Kaggle's: by species, then filename as text
    assert list(meta["filename"]) == sorted(meta["filename"])


@pytest.mark.slow
def test_secondary_labels_known_and_about_ten_percent(meta):
    codes = {s.code for s in SPECIES}
    secondary = meta["secondary_labels"].map(ast.literal_eval)
    for primary, labels in zip(meta["primary_label"], secondary):
        assert set(labels) <= codes and primary not in labels
    share = (secondary.map(len) > 0).mean()
    assert 0.05 <= share <= 0.2, share


def test_species_are_fictional(real_data_dir):
    real = pd.read_csv(real_data_dir / "eBird_Taxonomy_v2021.csv", encoding="utf-8-sig")
    real_codes = set(real["SPECIES_CODE"])
    real_names = set(real["PRIMARY_COM_NAME"].str.lower()) | set(real["SCI_NAME"].str.lower())
    assert 10 <= len(SPECIES) <= 16
    for s in SPECIES:
        assert re.fullmatch(r"zz[a-z]{3}\d", s.code), s.code
        assert s.code not in real_codes
        assert s.common_name.lower() not in real_names and s.scientific_name.lower() not in real_names
    assert len({s.code for s in SPECIES}) == len(SPECIES)
    assert len({s.voice.description for s in SPECIES}) == len(SPECIES), "each voice is distinct"


@pytest.mark.slow
def test_taxonomy_bom_header_and_species(demo, real_data_dir):
    raw = (demo / "eBird_Taxonomy_v2021.csv").read_bytes()
    real_raw = (real_data_dir / "eBird_Taxonomy_v2021.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and real_raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\r\n")[0] == real_raw.split(b"\r\n")[0]
    tax = pd.read_csv(demo / "eBird_Taxonomy_v2021.csv", encoding="utf-8-sig")
    assert list(tax.columns) == generator.TAXONOMY_COLUMNS
    assert {s.code for s in SPECIES} <= set(tax["SPECIES_CODE"])
    assert (tax["CATEGORY"] == "species").all() and tax["TAXON_ORDER"].is_unique


@pytest.mark.slow
def test_every_training_file_is_32k_mono_3_to_30_s(demo, meta):
    listed = {demo / "train_audio" / f for f in meta["filename"]}
    assert listed == set((demo / "train_audio").glob("*/*.ogg"))
    for path in sorted(listed):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (SR, 1, "OGG", "VORBIS"), path
        assert 3.0 <= info.duration <= 30.0, (path, info.duration)


@pytest.mark.slow
def test_counts_per_species_are_imbalanced_within_10_to_25(meta):
    counts = meta["primary_label"].value_counts()
    assert len(counts) == len(SPECIES)
    assert counts.between(10, 25).all(), counts.to_dict()
    assert counts.max() >= 2 * counts.min(), "a long tail, like the real data"


@pytest.mark.slow
def test_scored_birds(demo, meta):
    text = (demo / "scored_birds.json").read_text()
    scored = json.loads(text)
    assert isinstance(scored, list) and 6 <= len(scored) <= 8 and len(set(scored)) == len(scored)
    assert set(scored) <= {s.code for s in SPECIES}
    rarest = set(meta["primary_label"].value_counts().nsmallest(3).index)
    assert rarest & set(scored), "includes rare species"
    assert text == json.dumps(scored), "one-line JSON list like the real file"


@pytest.mark.slow
def test_soundscapes_are_60_s(demo):
    files = sorted((demo / "test_soundscapes").glob("*.ogg"))
    assert len(files) >= 6
    for path in files:
        assert re.fullmatch(r"soundscape_\d+\.ogg", path.name)
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (SR, 1)
        assert info.frames == 60 * SR


@pytest.mark.slow
def test_test_tables_are_consistent(demo):
    test = pd.read_csv(demo / "test.csv")
    sub = pd.read_csv(demo / "sample_submission.csv")
    labels = pd.read_csv(demo / "test_labels.csv")
    scored = json.loads((demo / "scored_birds.json").read_text())
    files = sorted(p.stem for p in (demo / "test_soundscapes").glob("*.ogg"))
    assert list(test.columns) == ["row_id", "file_id", "bird", "end_time"]
    assert list(sub.columns) == list(labels.columns) == ["row_id", "target"]
    assert len(test) == 12 * len(scored) * len(files)
    assert list(test["row_id"]) == list(sub["row_id"]) == list(labels["row_id"])
    assert test["row_id"].is_unique
    assert (test["row_id"] == test["file_id"] + "_" + test["bird"] + "_" + test["end_time"].astype(str)).all()
    assert sorted(test["file_id"].unique()) == files and set(test["bird"]) == set(scored)
    assert sorted(test["end_time"].unique()) == list(range(5, 65, 5))
    assert (sub["target"] == False).all()  # noqa: E712 - the column must hold booleans
    assert labels["target"].dtype == bool and 0.02 < labels["target"].mean() < 0.5


@pytest.mark.slow
def test_labels_follow_the_events(demo):
    test = pd.read_csv(demo / "test.csv")
    labels = pd.read_csv(demo / "test_labels.csv")
    events = pd.read_csv(demo / "test_events.csv")
    assert list(events.columns) == ["file_id", "species", "start", "end"]
    assert set(events["species"]) <= {s.code for s in SPECIES}
    assert set(events["species"]) - set(test["bird"]), "unscored species appear as distractors"
    assert ((events["start"] >= 0) & (events["end"] <= 60) & (events["end"] > events["start"])).all()
    expected = []
    for file_id, bird, end in zip(test["file_id"], test["bird"], test["end_time"]):
        mine = events[(events["file_id"] == file_id) & (events["species"] == bird)]
        overlap = np.minimum(mine["end"], end) - np.maximum(mine["start"], end - 5)
        expected.append(bool((overlap >= np.minimum(0.5, 0.5 * (mine["end"] - mine["start"]))).any()))
    assert list(labels["target"]) == expected
    # every scored bird is present somewhere, so every class can be scored
    assert set(test.loc[labels["target"], "bird"]) == set(test["bird"])
    for file_id, ev in events.groupby("file_id"):
        busy = [{s for s, a, b in zip(ev["species"], ev["start"], ev["end"]) if a < w + 5 and b > w}
                for w in range(0, 60, 5)]
        assert sum(not b for b in busy) >= 2, f"{file_id}: needs windows without any call"
        assert max(len(b) for b in busy) >= 2, f"{file_id}: needs a window with two species"
        assert ((ev["start"] // 5) != (ev["end"] // 5)).any(), f"{file_id}: needs a call across a boundary"


@pytest.mark.slow
def test_small_dataset_is_deterministic(tmp_path):
    a = generate_demo_dataset(tmp_path / "a", seed=3, **SMALL)
    b = generate_demo_dataset(tmp_path / "b", seed=3, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".ogg":  # container bytes hold a random stream serial; the audio must match
            assert np.array_equal(sf.read(a / rel)[0], sf.read(b / rel)[0]), rel
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    plan = [{k: v for k, v in row.items() if not k.startswith("_")} for row in generator._plan_recordings(4, 0.1)]
    other_seed = pd.DataFrame(plan, columns=generator.METADATA_COLUMNS).to_csv(index=False)
    assert other_seed != (a / "train_metadata.csv").read_text(), "another seed gives another dataset"


def _band_features(path: Path) -> np.ndarray:
    """Mean and spread over time of log energy in 24 log-spaced bands (150 Hz - 15 kHz)."""
    x, sr = sf.read(path, dtype="float32")
    freqs, _, spec = signal.stft(x, sr, nperseg=1024, noverlap=512, boundary=None, padded=False)
    band = np.digitize(freqs, np.geomspace(150, 15000, 25))
    power = np.abs(spec) ** 2
    logs = np.log(np.stack([power[band == i].sum(0) for i in range(1, 25)]) + 1e-10)
    return np.concatenate([logs.mean(1), logs.std(1)])


@pytest.mark.slow
def test_species_are_learnable_but_not_guessable(demo, meta):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.stack([_band_features(demo / "train_audio" / f) for f in meta["filename"]])
    y = meta["primary_label"].to_numpy(dtype=object)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    assert model.fit(x_tr, y_tr).score(x_te, y_te) >= 0.8
    shuffled = np.random.default_rng(0).permutation(y_tr)
    assert model.fit(x_tr, shuffled).score(x_te, y_te) <= 0.4


@pytest.mark.slow
def test_rating_tracks_recording_quality(demo, meta):
    # High ratings were synthesised with high SNR: the loud frames stand further above the quiet
    # ones. Unrated (0.0) recordings have a random SNR and are left out.
    from scipy.stats import spearmanr

    rated = meta[meta["rating"] > 0]
    spread = []
    for name in rated["filename"]:
        x, _ = sf.read(demo / "train_audio" / name, dtype="float32")
        frames = x[: len(x) // 512 * 512].reshape(-1, 512)
        level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        spread.append(np.percentile(level, 95) - np.percentile(level, 10))
    assert spearmanr(rated["rating"], spread).statistic >= 0.6


@pytest.mark.slow
def test_total_size_under_30_mb(demo):
    total = sum(p.stat().st_size for p in demo.rglob("*") if p.is_file())
    assert total < 30 * 1024 * 1024, total


@pytest.mark.slow
def test_ensure_is_a_noop_when_complete(demo):
    marker = demo / MARKER_NAME
    before = (demo.stat().st_ino, marker.stat().st_mtime_ns)
    start = time.perf_counter()
    assert ensure_demo_dataset(demo, seed=0) == demo
    assert time.perf_counter() - start < 1.0
    assert (demo.stat().st_ino, marker.stat().st_mtime_ns) == before
    assert is_complete_demo(demo, seed=0) and not is_complete_demo(demo, seed=1)


def test_ensure_regenerates_only_its_own_outdated_dataset(tmp_path, monkeypatch):
    builds = []
    monkeypatch.setattr(generator, "_build", lambda out, *args: builds.append(out))
    ensure_demo_dataset(tmp_path / "fresh")  # missing folder: build
    old = tmp_path / "old"
    old.mkdir()
    (old / MARKER_NAME).write_text(json.dumps({"version": DEMO_VERSION - 1, "seed": 0}))
    ensure_demo_dataset(old)  # our marker, older version: rebuild
    assert builds == [(tmp_path / "fresh").absolute(), old.absolute()]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(BirdcoreError, match="foreign"):  # somebody else's folder: never replaced
        ensure_demo_dataset(foreign)
    assert len(builds) == 2


@pytest.mark.slow
def test_overwrite_protection(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("data")
    with pytest.raises(BirdcoreError, match=re.escape(str(out))):
        generate_demo_dataset(out, **SMALL)
    assert (out / "precious.txt").read_text() == "data"
    generate_demo_dataset(out, overwrite=True, **SMALL)
    assert not (out / "precious.txt").exists() and (out / MARKER_NAME).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mine.lock", "mine"]


@pytest.mark.slow
def test_failed_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(scenes, "compose_soundscape", boom)
    with pytest.raises(RuntimeError):
        generate_demo_dataset(tmp_path / "ds", **SMALL)
    assert not (tmp_path / "ds").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".ds.lock"]


def test_default_demo_dir_is_in_the_repo():
    repo = Path(generator.__file__).resolve().parents[2]
    assert default_demo_dir() == repo / "data" / "demo"
    assert (repo / "birdcore" / "demo" / "generator.py").is_file()
