"""The active-learning loop (`birdcore.agile`): labels in the archive's annotation store, the review
queue, retrain through a `birdnet-head` run, re-scoring from stored vectors, and the exports.

Fast tests use an archive of synthetic vectors whose windows point at real (noise) WAV files, so
the labels, queue, refusals and every export (through the real import) run without BirdNET. Tests
marked `slow` run the whole loop on generated recordings with BirdNET (skipped without the extra).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdcore.agile import (
    LoopError,
    export_dataset,
    export_labels_table,
    export_raven,
    label_windows,
    latest_scores,
    read_loop_labels,
    read_rounds,
    retrain,
    review_queue,
)
from birdcore.annotation.store import read_annotations
from birdcore.archive.layout import ArchiveLayout, Manifest, ensure_manifest
from birdcore.archive.vector_store import write_shard
from birdcore.archive.window_table import commit_rows, empty_table, read_table
from birdcore.pretrained.birdnet import MODEL_TAG

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DIM = 64
WIN_PER_FILE = 6  # 30-s recordings: windows end at 5, 10, … 30 s


def _archive_with_files(root: Path, n_files: int = 10, seed: int = 0, planted: set[int] | None = None):
    """An archive over `n_files` real 30-s noise WAVs with synthetic vectors; windows in `planted`
    (window ids) lie in one cluster (the "species"), the rest elsewhere. Returns (archive, ids)."""
    rng = np.random.default_rng(seed)
    audio = root / "audio"
    audio.mkdir(parents=True)
    paths = []
    for i in range(n_files):
        p = audio / f"rec{i:02d}.wav"
        sf.write(p, (0.01 * rng.standard_normal(30 * 8000)).astype(np.float32), 8000)
        paths.append(str(p.resolve()))
    n = n_files * WIN_PER_FILE
    base = np.abs(rng.standard_normal((n, DIM))).astype(np.float32)
    centre = np.abs(rng.standard_normal(DIM)).astype(np.float32) * 3
    for w in planted or set():
        base[w] = centre + 0.3 * np.abs(rng.standard_normal(DIM))
    layout = ArchiveLayout(root / "archive")
    ensure_manifest(layout, Manifest(model_tag=MODEL_TAG, dim=DIM))
    write_shard(layout, 0, base, "float32")
    rows = pd.DataFrame({"window_id": np.arange(n), "path": [paths[j // WIN_PER_FILE] for j in range(n)],
                         "digest": "d", "start_s": [5.0 * (j % WIN_PER_FILE) for j in range(n)],
                         "end_s": [5.0 * (j % WIN_PER_FILE) + 5 for j in range(n)], "source": str(audio), "shard": 0,
                         "row": np.arange(n), "norm": np.linalg.norm(base, axis=1)})
    commit_rows(layout, empty_table(), rows, set())
    return layout.root, paths


@pytest.fixture(autouse=True)
def _no_taxonomy(monkeypatch):
    monkeypatch.delenv("BIRDCORE_EBIRD_TAXONOMY", raising=False)


# ---------------------------------------------------------------- labelling session (no BirdNET)

def test_labels_go_to_the_annotation_store_and_the_queue_skips_them(tmp_path):
    planted = {3, 9, 14, 21, 27, 33, 40, 46, 52}
    arc, paths = _archive_with_files(tmp_path, planted=planted)
    assert label_windows(arc, [3, 9, 14], "amerob", "positive") == 3
    assert label_windows(arc, [0, 1, 2], "amerob", "negative") == 3
    ann = read_annotations(arc / "labels.csv")  # the store's own reader: the app's format
    assert set(ann.loc[ann["species"] == "amerob", "file_id"]) == {"rec00", "rec01", "rec02"}
    assert (ann.loc[ann["species"] == "", "file_id"] == "rec00").all() and len(ann) == 6
    labels = read_loop_labels(arc)
    assert sorted(labels.loc[labels["label"] == "positive", "window_id"]) == [3, 9, 14]
    assert sorted(labels.loc[labels["label"] == "negative", "window_id"]) == [0, 1, 2]
    assert set(labels["path"]) <= set(paths)

    # before any round, no BirdNET species: scored by similarity to the positives
    q = review_queue(arc, "amerob", n=8, seed=1)
    assert q.attrs["source"] == "similarity"
    assert not set(q["window_id"]) & {0, 1, 2, 3, 9, 14}
    assert list(q.columns) == ["window_id", "path", "start_s", "end_s", "score", "why"]
    assert set(q["why"]) == {"top", "margin", "random"} and len(q) == 8
    top = q.loc[q["why"] == "top", "window_id"]
    assert set(top) <= planted  # the unlabelled planted windows come first
    # skip: not offered again for this species, nothing in the store
    assert label_windows(arc, [int(top.iloc[0])], "amerob", "skip") == 1
    assert int(top.iloc[0]) not in set(review_queue(arc, "amerob", n=50)["window_id"])
    assert len(read_annotations(arc / "labels.csv")) == 6


def test_negative_for_one_species_keeps_the_others(tmp_path):
    arc, _ = _archive_with_files(tmp_path, n_files=2)
    label_windows(arc, [4], "amerob", "positive")
    label_windows(arc, [4], "houspa", "positive")
    label_windows(arc, [4], "amerob", "negative")
    lab = read_loop_labels(arc).set_index(["window_id", "species"])["label"]
    assert lab[(4, "houspa")] == "positive" and lab[(4, "amerob")] == "negative"
    label_windows(arc, [4], "houspa", "negative")  # nothing left: the store's "checked, nothing there"
    ann = read_annotations(arc / "labels.csv")
    assert list(ann["species"]) == [""]


def test_unknown_windows_and_bad_labels_are_refused(tmp_path):
    arc, _ = _archive_with_files(tmp_path, n_files=1)
    with pytest.raises(LoopError, match="no window id.*999"):
        label_windows(arc, [1, 999], "amerob", "positive")
    with pytest.raises(LoopError, match="label 'maybe'"):
        label_windows(arc, [1], "amerob", "maybe")
    with pytest.raises(LoopError, match="species code"):
        label_windows(arc, [1], "am rob,x", "positive")
    assert not (arc / "labels.csv").exists()


def test_labels_survive_concurrent_saves(tmp_path):
    arc, _ = _archive_with_files(tmp_path, n_files=8)
    script = textwrap.dedent(f"""
        import sys
        from birdcore.agile import label_windows
        k = int(sys.argv[1])
        for w in range(k * 12, k * 12 + 12):
            label_windows({str(arc)!r}, [w], "amerob", "positive" if w % 2 else "negative", annotator=f"p{{k}}")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], cwd=REPO) for k in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    labels = read_loop_labels(arc)
    assert sorted(labels["window_id"]) == list(range(48))  # every process's every window, once
    assert (labels["label"] == np.where(labels["window_id"] % 2, "positive", "negative")).all()


def test_retrain_refuses_too_few_labels_naming_the_species(tmp_path):
    arc, _ = _archive_with_files(tmp_path, n_files=3)
    with pytest.raises(LoopError, match="no labels yet"):
        retrain(arc, tmp_path / "runs")
    label_windows(arc, [1], "amerob", "positive")
    label_windows(arc, [2, 3], "houspa", "positive")
    with pytest.raises(LoopError, match=r"amerob needs 1 more positive\(s\) \(has 1\)"):
        retrain(arc, tmp_path / "runs")
    label_windows(arc, [5], "amerob", "positive")
    label_windows(arc, [1, 5], "houspa", "positive")  # every saved window now holds houspa
    with pytest.raises(LoopError, match="houspa needs at least one negative") as err:
        retrain(arc, tmp_path / "runs", species=["houspa"])
    assert "amerob" not in str(err.value)
    assert not (tmp_path / "runs").exists() and read_rounds(arc).empty and latest_scores(arc) is None


# ---------------------------------------------------------------- exports (the real import, no BirdNET)

def test_exports_dataset_labels_table_and_raven(tmp_path):
    from birdcore.data.dataset import load_dataset
    from birdcore.ingest.sources import selection_table

    arc, paths = _archive_with_files(tmp_path, n_files=3)
    label_windows(arc, [1, 2, 8], "amerob", "positive")
    label_windows(arc, [2], "houspa", "positive")
    label_windows(arc, [0, 13], "amerob", "negative")

    ds = load_dataset(export_dataset(arc, tmp_path / "ds"))
    meta = ds.metadata
    assert len(meta) == 5 and set(ds.species) == {"amerob", "houspa"}
    assert (meta["primary_label"] == "nocall").sum() == 2
    assert sorted(meta["end_s"].astype(float)) == [5, 10, 10, 15, 15]
    assert {str(p.resolve()) for p in ds.audio_paths()} == set(paths[:3])  # links to the archive's audio

    table = pd.read_csv(export_labels_table(arc, tmp_path / "labels.csv"))
    got = dict(zip(table["row_id"], table["target"]))
    assert got["rec00_amerob_10"] and got["rec00_houspa_15"] and got["rec01_amerob_15"]
    assert not got["rec00_amerob_5"] and not got["rec02_amerob_10"] and not got["rec00_houspa_10"]
    assert len(table) == 10  # 5 labelled windows × 2 species

    files = export_raven(arc, tmp_path / "raven")
    assert [f.name for f in files] == ["rec00.Table.1.selections.txt", "rec01.Table.1.selections.txt"]
    head = files[0].read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert {"Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)"} <= set(head)
    entries = selection_table(files[0], Path(paths[0]))  # what `birdcore import` reads
    pos = {(e.start, e.end): e.labels for e in entries if e.labels}
    assert pos == {(5.0, 10.0): ["amerob"], (10.0, 15.0): ["amerob", "houspa"]} or \
        pos == {(5.0, 10.0): ["amerob"], (10.0, 15.0): ["houspa", "amerob"]}


def test_cli_label_queue_export(tmp_path, capsys):
    from birdcore.cli import main

    arc, _ = _archive_with_files(tmp_path, n_files=2)
    assert main(["label", "--archive", str(arc), "--species", "amerob", "--positive", "1,2", "--negative", "5-7"]) == 0
    assert "2 window(s) positive" in capsys.readouterr().out
    assert main(["queue", "--archive", str(arc), "--species", "amerob", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "scores  similarity" in out and len(out.strip().splitlines()) == 5
    assert main(["export-labels", "--archive", str(arc), "--labels-table", str(tmp_path / "t.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "t.csv")) == 5
    assert main(["label", "--archive", str(arc), "--species", "amerob"]) == 2
    assert "give --positive" in capsys.readouterr().err
    assert main(["label", "--archive", str(tmp_path / "nope"), "--species", "x", "--positive", "1"]) == 2
    assert main(["retrain", "--archive", str(arc), "--runs", str(tmp_path / "runs"), "--species", "houspa"]) == 2
    assert "houspa needs" in capsys.readouterr().err


# ---------------------------------------------------------------- the real loop (BirdNET)

def _birdnet_or_skip():
    from birdcore.pretrained import birdnet as bn

    if not bn.is_available():
        pytest.skip("BirdNET extra not installed (pip install .[birdnet])")


def _planted_recordings(folder: Path, n_files: int, seed: int) -> dict[tuple[str, float], bool]:
    """30-s recordings of noise + a background voice; species 0's voice planted in some windows.
    Returns (path, end_s) → planted."""
    sys.path.insert(0, str(TESTS))
    from helpers.synth import voice

    rng = np.random.default_rng(seed)
    sr = 32000
    truth = {}
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        y = 0.02 * rng.standard_normal(30 * sr).astype(np.float32)
        for w in range(6):
            seg = slice(w * 5 * sr, (w + 1) * 5 * sr)
            planted = bool(rng.random() < 0.3)
            if planted:
                y[seg] += voice(0, 5.0, sr, rng)
            elif rng.random() < 0.5:
                y[seg] += voice(int(rng.integers(2, 5)), 5.0, sr, rng)  # other "species": hard negatives
            truth[(str((folder / f"site{i:02d}.wav").resolve()), 5.0 * (w + 1))] = planted
        sf.write(folder / f"site{i:02d}.wav", y, sr)
    return truth


@pytest.mark.slow
def test_real_loop_on_audio(tmp_path):
    _birdnet_or_skip()
    from birdcore.archive import EmbedConfig, embed_archive
    from birdcore.data.dataset import load_dataset
    from birdcore.inference.scorers import load_scorer
    from birdcore.ingest.sources import selection_table

    truth = _planted_recordings(tmp_path / "audio", 10, seed=7)
    arc = tmp_path / "archive"
    embed_archive([tmp_path / "audio"], arc, EmbedConfig(build_index=False))
    table = read_table(ArchiveLayout(arc))
    y = np.array([truth[(p, e)] for p, e in zip(table["path"].astype(str), table["end_s"])])
    ids = table["window_id"].to_numpy()
    # as a user would: examples from different recordings (the grouped CV then has a fold for each)
    first = ~table["path"].astype(str).duplicated().to_numpy()
    per_file_pos = ~pd.Series(np.where(y, table["path"].astype(str), None)).duplicated().to_numpy() & y
    per_file_neg = ~pd.Series(np.where(~y, table["path"].astype(str), None)).duplicated().to_numpy() & ~y
    pos, neg = ids[per_file_pos][:4], ids[per_file_neg][:4]
    assert len(pos) == 4 and len(neg) == 4 and first.sum() == 10
    label_windows(arc, list(pos), "tone0", "positive")
    label_windows(arc, list(neg), "tone0", "negative")

    rnd = retrain(arc, tmp_path / "runs")
    assert rnd.round == 1 and (rnd.run_dir / "checkpoints" / "best.pt").is_file()
    scorer = load_scorer(rnd.run_dir)  # an ordinary run: Inspection, Thresholds, Submission read it
    assert scorer.info.classes == ["tone0"]
    from birdcore.errors import ModelError
    from birdcore.inference.export import export_onnx_model

    # a loop round exports like any run: BirdNET + the head in ONNX, for the Kaggle bundle
    # (tests/test_birdnet_head.py runs that bundle's infer.py against the run's own scores)
    out = export_onnx_model(rnd.run_dir, tmp_path / "onnx")
    assert (out / "head.onnx").is_file() and (out / "birdnet.tflite").is_file()
    with pytest.raises(ModelError, match="infer.py"):
        load_scorer(out)
    from birdcore.evaluation.curves import tune_run_thresholds

    _thr, summary = tune_run_thresholds(rnd.run_dir, save=False)  # the Thresholds page's engine call
    assert summary["classes"] == 1 and summary["recordings"] >= 6
    row = rnd.per_species.iloc[0]
    assert (row["positives"], row["negatives"]) == (4, 4)
    scores = latest_scores(arc).set_index("window_id")["tone0"]
    held = ~np.isin(ids, np.concatenate([pos, neg]))
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(y[held], scores.loc[ids[held]].to_numpy())
    assert auc > 0.9, auc
    # the head's score of a window through the run's own scorer agrees with the archive re-score
    p0, e0 = str(table["path"].iloc[0]), float(table["end_s"].iloc[0])
    from birdcore.audio.io import load_audio

    clip = load_audio(p0, sr=scorer.info.sample_rate)[int((e0 - 5) * scorer.info.sample_rate):int(e0 * scorer.info.sample_rate)]
    direct = float(scorer(clip[None, :])[0][0, 0])
    assert abs(direct - float(scores.loc[int(table["window_id"].iloc[0])])) < 0.02

    # round 2 from the queue
    q = review_queue(arc, "tone0", n=8)
    assert q.attrs["source"] == "head" and not set(q["window_id"]) & (set(pos) | set(neg))
    for w in q["window_id"]:
        label_windows(arc, [int(w)], "tone0", "positive" if y[ids == w][0] else "negative")
    rnd2 = retrain(arc, tmp_path / "runs")
    lines = [json.loads(x) for x in (arc / "loop" / "rounds.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [1, 2] and rnd2.run_dir != rnd.run_dir
    curve = read_rounds(arc)
    assert list(curve["round"]) == [1, 2] and curve["positives"].iloc[1] + curve["negatives"].iloc[1] == 16
    assert curve["auc_after"].notna().all()

    ds = load_dataset(export_dataset(arc, tmp_path / "ds"))
    assert len(ds.metadata) == 16
    files = export_raven(arc, tmp_path / "raven")
    for f in files:
        audio = tmp_path / "audio" / f"{f.name.split('.')[0]}.wav"
        got = {e.end for e in selection_table(f, audio) if e.labels}
        assert all(truth[(str(audio.resolve()), e)] for e in got)
