"""birdcore.analysis.inspection on a tiny trained model: probabilities, thresholds, truth, spectrogram, submission."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.synth import make_tone_dataset

from birdcore.analysis import inspection as ins
from birdcore.annotation import queue
from birdcore.annotation import store as ann
from birdcore.atomic_io import file_lock
from birdcore.config.features import MelConfig
from birdcore.data import uploads
from birdcore.data.dataset import load_dataset
from birdcore.errors import (
    AudioError,
    ConfigError,
    ModelError,
    RunError,
    SubmissionError,
)
from birdcore.evaluation.thresholds import Thresholds
from birdcore.inference import catalog
from birdcore.inference.predict import PredictOptions, predict_files
from birdcore.inference.scorers import load_scorer
from birdcore.submission import report
from birdcore.submission.table import (
    build_submission,
    validate_submission,
    write_submission,
)


def tiny_trained(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, runs folder) with one 2-epoch model; trained once per pytest session (shared with
    test_app_inspect_annotate_submit.py through the session's base temp folder)."""
    base = tmp_path_factory.getbasetemp() / "inspect-tiny"
    data, runs = base / "data", base / "runs"
    with file_lock(base / "train"):
        if not (base / "done").exists():
            from birdcore.config.run import load_run_config
            from birdcore.training.launcher import prepare_run, run_in_process

            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(runs, ignore_errors=True)
            make_tone_dataset(data, n_species=4, per_species=12, seconds=3.0, soundscapes=2)
            cfg = load_run_config("demo-cpu", ["train.epochs=2", "train.num_workers=0", "data.clip_seconds=2.0",
                                               "train.batch_size=12", "model.pretrained=false",
                                               'model.backbone="resnet10t"'])
            run = prepare_run(data, cfg, runs)
            assert run_in_process(run)["state"] == "finished"
            (base / "done").write_text("ok")
    return data, runs


# Every test that uses `tiny` is marked slow: the fixture trains a model (once per session).
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data, runs = tiny_trained(tmp_path_factory)
    ds = load_dataset(data)
    ref = catalog.find_models([runs], None, birdnet=False)[0]
    return ds, ref, catalog.load_model(ref, "torch")


@pytest.mark.slow
def test_find_models_lists_runs_exported_and_birdnet(tiny, tmp_path):
    ds, ref, _ = tiny
    assert ref.kind == "run" and (Path(ref.path) / "checkpoints" / "best.pt").is_file()
    (tmp_path / "runs" / "no-best").mkdir(parents=True)
    (tmp_path / "runs" / "no-best" / "config.json").write_text("{}")  # a run without best.pt is not offered
    exported = tmp_path / "models" / "m1"
    exported.mkdir(parents=True)
    (exported / "model.onnx").write_bytes(b"x")
    (exported / "bundle.json").write_text("{}")
    refs = catalog.find_models([tmp_path / "runs", Path(ref.path).parent], tmp_path / "models", birdnet=True)
    assert [r.kind for r in refs] == ["run", "exported", "birdnet"] and refs[1].path == str(exported)
    assert len({r.key for r in refs}) == 3


@pytest.mark.slow
def test_recording_probs_equal_the_predictor(tiny):
    ds, ref, model = tiny
    path = ds.soundscapes[0]
    probs = catalog.recording_probs([model], path)
    direct = predict_files([path], [load_scorer(ref.path)], PredictOptions()).table
    assert list(probs.columns) == ["start", "end", *model.classes] == ["start", "end", *ds.species]
    np.testing.assert_allclose(probs[model.classes].to_numpy(), direct[model.classes].to_numpy(), atol=1e-6)
    grid = ins.window_grid(path)
    assert len(grid) == len(probs) == 12
    assert probs["start"].tolist() == grid["start"].tolist() == [5.0 * i for i in range(12)]
    assert probs["end"].tolist() == grid["end"].tolist()


@pytest.mark.slow
def test_top_species_detections_and_thresholds(tiny):
    ds, _, model = tiny
    probs = catalog.recording_probs([model], ds.soundscapes[0])
    classes = model.classes
    thr = Thresholds(classes=classes, global_threshold=0.5, per_class={classes[0]: 0.0, classes[1]: 1.0})
    top = ins.top_species(probs, classes, thr, k=None)
    assert len(top) == 12 * len(classes)
    for start, g in top.groupby("start"):
        row = probs.loc[probs["start"] == start, classes].iloc[0]
        assert g["species"].tolist() == row.sort_values(ascending=False, kind="stable").index.tolist()
        assert g["prob"].tolist() == pytest.approx(sorted(row.tolist(), reverse=True))
    assert top.loc[top["species"] == classes[0], "detected"].all()  # threshold 0: always detected
    assert not top.loc[top["species"] == classes[1], "detected"].any()  # threshold 1: never (probs < 1)
    assert (top["threshold"] == top["species"].map(dict(zip(classes, thr.for_classes(classes))))).all()
    det = ins.detections(probs, classes, 0.3)
    for start, found in det.items():
        row = probs.loc[probs["start"] == start, classes].iloc[0]
        assert set(found) == {c for c in classes if row[c] >= 0.3}
    assert len(ins.top_species(probs, classes, 0.5, k=2)) == 24


@pytest.mark.slow
def test_uncertain_windows_rank_by_margin(tiny):
    ds, _, model = tiny
    table = catalog.predict_table([model], ds.soundscapes).table
    ranked = queue.uncertain_windows(table, model.classes, 0.2)
    assert len(ranked) == 24 and (np.diff(ranked["margin"].to_numpy()) >= 0).all()
    probs = table[model.classes].to_numpy()
    assert ranked["margin"].iat[0] == pytest.approx(np.abs(probs - 0.2).min(axis=1).min())
    first = ranked.iloc[0]
    skip = queue.uncertain_windows(table, model.classes, 0.2, exclude={(first["file_id"], first["start"], first["end"])},
                                 limit=5)
    assert len(skip) == 5 and (skip["file_id"].iat[0], skip["start"].iat[0]) != (first["file_id"], first["start"])


@pytest.mark.slow
def test_truth_matrix_from_labels_events_and_annotations(tiny, tmp_path):
    ds, _, _ = tiny
    fid = ds.soundscapes[0].stem
    starts = [5.0 * i for i in range(12)]
    mat, sources = ins.truth_matrix(fid, starts, ds.species, test=ds.test, labels=ds.test_labels)
    assert sources == ["test_labels.csv"]
    labels = dict(zip(ds.test_labels["row_id"], ds.test_labels["target"]))
    for s in starts:
        for sp in ds.species:
            want = labels.get(f"{fid}_{sp}_{int(s + 5)}")
            assert (np.isnan(mat.loc[s, sp]) if want is None else mat.loc[s, sp] == float(want))
    assert mat[ds.scored].notna().all().all() and mat.drop(columns=ds.scored).isna().all().all()

    events = pd.DataFrame({"file_id": [fid, fid], "species": ["t3sp1", "t2sp1"], "start": [6.0, 12.0],
                           "end": [8.0, 12.2]})
    mat, sources = ins.truth_matrix(fid, starts, ds.species, test=ds.test, events=events)
    assert sources == ["test_events.csv"] and mat.notna().all().all()  # events describe the whole file
    assert mat.loc[5.0, "t3sp1"] == 1 and mat.loc[10.0, "t2sp1"] == 1 and mat.to_numpy().sum() == 2

    saved = ann.save_window(tmp_path / "l.csv", fid, 5, 10, ["t0sp1"])
    mat, sources = ins.truth_matrix(fid, starts, ds.species, test=ds.test, labels=ds.test_labels, events=events,
                                    annotations=saved)
    assert sources == ["test_labels.csv", "test_events.csv", "annotations"]
    assert mat.loc[5.0].to_dict() == {"t0sp1": 1.0, "t1sp1": 0.0, "t2sp1": 0.0, "t3sp1": 0.0}  # a person overrides
    assert mat.loc[10.0, "t2sp1"] == 1.0


def test_read_events(tmp_path):
    assert ins.read_events(tmp_path / "none.csv") is None
    (tmp_path / "e.csv").write_text("file_id,species,start,end\nsc,a,1,x\n")
    with pytest.raises(Exception, match="line 2, column end"):
        ins.read_events(tmp_path / "e.csv")


@pytest.mark.slow
def test_spectrogram_axes_and_pooling(tiny):
    ds, _, model = tiny
    path = ds.soundscapes[0]
    mel = model.mel
    sp = ins.spectrogram(path, 10.0, 15.0, mel=mel, max_frames=None)
    assert sp.db.shape == (mel.n_mels, 1 + int(5 * mel.sample_rate) // mel.hop_length)
    assert sp.times[0] == 10.0 and sp.times[-1] <= 15.0
    assert (np.diff(sp.freqs) > 0).all() and mel.fmin < sp.freqs[0] and sp.freqs[-1] < mel.fmax
    whole = ins.spectrogram(path, mel=mel, max_frames=300)
    assert whole.db.shape[1] <= 300 and whole.times[-1] > 55 and whole.db.shape[1] == len(whole.times)
    assert whole.db.max() == pytest.approx(ins.spectrogram(path, mel=mel, max_frames=None).db.max())  # max-pooled
    assert ins.spectrogram(path, 0, 1).db.shape[0] == MelConfig().n_mels
    y, sr = ins.window_audio(path, 5.0, 10.0)
    assert sr == 32000 and len(y) == 5 * 32000


@pytest.mark.slow
def test_class_checks_and_broken_models(tiny, tmp_path):
    ds, ref, model = tiny
    assert catalog.check_classes(model.classes, ds.species) == ds.species
    with pytest.raises(ModelError, match="none of its 4 classes .* is a species of this dataset"):
        catalog.check_classes(model.classes, ["zz1", "zz2"])
    with pytest.raises(ModelError, match="species of test.csv are not model classes"):
        catalog.check_classes(model.classes[:2], ds.species, need=ds.species)
    broken = tmp_path / "broken"
    shutil.copytree(ref.path, broken, ignore=shutil.ignore_patterns("onnx"))
    (broken / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot load checkpoint"):
        catalog.load_model(catalog.ModelRef("run", str(broken), "broken"))
    cfg = json.loads((Path(ref.path) / "config.json").read_text())
    shutil.copy(Path(ref.path) / "checkpoints" / "best.pt", broken / "checkpoints" / "best.pt")
    (broken / "config.json").write_text(json.dumps({**cfg, "classes": cfg["classes"] + ["t9sp1"]}))
    with pytest.raises(ModelError):
        catalog.load_model(catalog.ModelRef("run", str(broken), "broken"))
    with pytest.raises(ModelError, match="eBird_Taxonomy_v2021.csv is missing"):  # the tone dataset has none
        catalog.load_model(catalog.BIRDNET_REF, species=ds.species, taxonomy_csv=ds.root / "eBird_Taxonomy_v2021.csv")
    with pytest.raises(ModelError, match="no model"):
        catalog.predict_table([], ds.soundscapes)
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS garbage")
    with pytest.raises(AudioError):
        catalog.recording_probs([model], bad)


@pytest.mark.slow
def test_submission_helpers(tiny, tmp_path):
    ds, _, model = tiny
    result = catalog.predict_table([model], ds.soundscapes)
    report.check_predictions(result)
    sub = build_submission(result.table, ds.test, 0.3, result.classes)
    data = report.submission_bytes(sub, ds.test)
    assert data == write_submission(tmp_path / "s.csv", sub, ds.test).read_bytes()
    rates = report.positive_rates(sub, ds.test)
    assert set(rates["species"]) == set(ds.test["bird"]) and rates["rows"].sum() == len(ds.test)
    assert rates["positives"].sum() == sub["target"].sum()
    with_truth = report.positive_rates(sub, ds.test, ds.test_labels).set_index("species")
    truth = ds.test.merge(ds.test_labels, on="row_id").groupby("bird")["target"].mean()
    assert with_truth["labelled_rate"].to_dict() == pytest.approx(truth.to_dict())
    back = report.read_submission_bytes(data)
    validate_submission(back, ds.test)
    broken = data.replace(b",True\n", b",yes\n", 1).replace(b",False\n", b",yes\n", 1)
    with pytest.raises(SubmissionError, match="not booleans"):
        validate_submission(report.read_submission_bytes(broken), ds.test)
    thr = Thresholds.from_bytes(json.dumps(Thresholds(classes=ds.species, global_threshold=0.2).to_dict()).encode())
    assert thr.global_threshold == 0.2
    with pytest.raises(ConfigError, match="up.json"):
        Thresholds.from_bytes(b"{nope", "up.json")


def test_store_upload(tmp_path):
    p = uploads.store_upload(b"RIFF1234", "My Clip.wav", tmp_path, max_mb=1)
    assert p.parent == tmp_path and p.name.startswith("My-Clip-") and p.suffix == ".wav"
    assert uploads.store_upload(b"RIFF1234", "My Clip.wav", tmp_path, max_mb=1) == p  # same content, same file
    with pytest.raises(ConfigError, match="upload limit"):
        uploads.store_upload(b"x" * 2_000_000, "big.ogg", tmp_path, max_mb=1)
    with pytest.raises(ConfigError, match="not an audio file"):
        uploads.store_upload(b"x", "notes.txt", tmp_path, max_mb=1)
