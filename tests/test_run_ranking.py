"""Which run a model picker starts on, and the run-page helpers (config diff, delete), on fake run
folders: no training, so these run in well under a second."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from birdcore.analysis import run_compare
from birdcore.config.run import load_run_config
from birdcore.errors import RunError
from birdcore.inference import catalog
from birdcore.training import run_lock
from birdcore.training.runs import RunFolder, create_run


def fake_run(runs: Path, name: str, state: str, score: float | None, *, weights: bool = True,
             overrides: tuple[str, ...] = (), data_dir: Path | None = None) -> RunFolder:
    """A run folder as the trainer leaves it, without training: config, status, an empty best.pt."""
    cfg = load_run_config("demo-cpu", [f'name="{name}"', *overrides])
    run = create_run(runs, cfg, data_dir or runs.parent, ["a", "b"])
    run.update_status(state=state, best_score=score, epoch=1, best_epoch=0 if score is not None else None)
    if weights:
        run.best_checkpoint.write_bytes(b"")
    time.sleep(0.01)
    return run


@pytest.fixture()
def runs(tmp_path) -> dict[str, RunFolder]:
    d = tmp_path / "runs"
    return {
        "good": fake_run(d, "good", "finished", 0.61),
        "best": fake_run(d, "best", "finished", 0.91),
        "failed": fake_run(d, "failed", "failed", 0.95),   # the highest score, but it failed
        "zero": fake_run(d, "zero", "stopped", 0.0),       # stopped at epoch 1 with F1 0
        "empty": fake_run(d, "empty", "finished", None),   # no score at all
        "stopped": fake_run(d, "stopped", "stopped", 0.7),
        "noweights": fake_run(d, "noweights", "finished", 0.99, weights=False),
    }


def test_pickers_default_to_the_best_finished_run_with_its_score_in_the_label(runs, tmp_path):
    refs = catalog.find_models([tmp_path / "runs"], None, birdnet=False)
    order = [Path(r.path).name for r in refs]
    want = [runs[k].run_id for k in ("best", "good", "stopped")]
    assert order[:3] == want  # finished by score, then the stopped run with a real score
    assert runs["noweights"].run_id not in order  # nothing to score with
    i = catalog.default_index(refs)
    assert i == 0 and refs[i].label == f"{runs['best'].run_id} · micro F1 0.910"
    bad = {runs[k].run_id for k in ("failed", "zero", "empty")}
    assert all(not r.usable for r in refs if Path(r.path).name in bad)
    assert "(failed)" in next(r.label for r in refs if Path(r.path).name == runs["failed"].run_id)
    assert "no score yet" in next(r.label for r in refs if Path(r.path).name == runs["empty"].run_id)

    ranked = run_compare.rank_runs(run_compare.runs_table(tmp_path / "runs")[0])
    ranked = ranked[ranked["run_id"] != runs["noweights"].run_id]  # the table does not look at weights
    assert ranked["run_id"].tolist()[:3] == want and ranked["usable"].sum() == 3
    assert ranked["label"].iat[0] == refs[0].label


def test_no_default_when_only_bad_runs_or_birdnet(tmp_path):
    d = tmp_path / "runs"
    fake_run(d, "failed", "failed", 0.8)
    fake_run(d, "zero", "stopped", 0.0)
    refs = catalog.find_models([d], None, birdnet=True)
    assert len(refs) == 3 and refs[-1] == catalog.BIRDNET_REF
    assert catalog.default_index(refs) is None  # never a failed run, an F1-0 run or BirdNET
    exported = tmp_path / "models" / "m1"
    exported.mkdir(parents=True)
    (exported / "model.onnx").write_bytes(b"")
    (exported / "bundle.json").write_text("{}")
    refs = catalog.find_models([d], tmp_path / "models", birdnet=False)
    assert refs[catalog.default_index(refs)].kind == "exported"
    assert catalog.default_index([]) is None


def test_config_diff_names_only_the_fields_that_differ(tmp_path):
    d = tmp_path / "runs"
    a = fake_run(d, "a", "finished", 0.5, overrides=("train.lr=0.001", "train.epochs=3"))
    b = fake_run(d, "b", "finished", 0.6, overrides=("train.lr=0.002", "train.epochs=3"))
    diff = run_compare.config_diff(a, b)
    assert list(diff.columns) == ["field", a.run_id, b.run_id]
    assert set(diff["field"]) == {"name", "train.lr"}
    row = diff.set_index("field").loc["train.lr"]
    assert (row[a.run_id], row[b.run_id]) == ("0.001", "0.002")
    assert run_compare.config_diff(a, a).empty


def test_delete_run_refuses_a_run_being_trained(tmp_path):
    d = tmp_path / "runs"
    run = fake_run(d, "r", "finished", 0.5)
    with run_lock.hold(run.path), pytest.raises(RunError, match="being trained"):  # as the trainer holds it
        run_compare.delete_run(run)
    assert run.path.is_dir()
    run_compare.delete_run(run)
    assert not run.path.exists()


def test_epoch_progress_from_the_last_step():
    steps = pd.DataFrame({"epoch": [0, 1], "step": [10, 13], "loss": [1.0, 0.9]})
    assert run_compare.epoch_progress(steps, 10) == (1, 0.3)
    assert run_compare.epoch_progress(steps.iloc[:0], 10) is None
    assert run_compare.epoch_progress(steps, None) is None


def test_a_training_clips_labels_mark_every_window_and_annotations_override_them():
    from birdcore.analysis import inspection as ins

    meta = pd.DataFrame({"filename": ["a/XC1.ogg", "b/XC2.ogg"], "primary_label": ["a", "b"],
                         "secondary_labels": [["c"], "['a', 'c']"]})
    assert ins.clip_labels(meta, "a/XC1.ogg") == ["a", "c"]
    assert ins.clip_labels(meta, "b/XC2.ogg") == ["b", "a", "c"]  # the text form of the list too
    assert ins.clip_labels(meta, "missing.ogg") == []
    truth, sources = ins.truth_matrix("XC1", [0.0, 5.0], ["a", "b", "c"], clip_species=["a", "c", "zzz"])
    assert truth["a"].tolist() == [1.0, 1.0] and truth["c"].tolist() == [1.0, 1.0]
    assert truth["b"].isna().all() and sources == ["train_metadata.csv (whole clip)"]  # others: unknown
