"""Error texts say what is really wrong: a link loop is not "not found", torch's paragraphs become
one whole sentence, a folder named like a recording is no recording, window options that cannot
work are refused by name, and a run that failed before training leaves no folder behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from birdcore.data.dataset import load_dataset
from birdcore.errors import AudioError, ConfigError, RunError, brief, not_found_message
from birdcore.inference.predict import PredictOptions, prediction_paths
from birdcore.training.checkpoint import load_checkpoint


def test_not_found_message_tells_link_loops_and_dangling_links_apart(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    (tmp_path / "file").write_text("x")
    assert "symbolic link loop" in not_found_message(tmp_path / "a", "audio file")
    assert "broken symbolic link" in not_found_message(tmp_path / "dangling", "audio file")
    assert "a part of its path is a file" in not_found_message(tmp_path / "file" / "x.ogg", "audio file")
    assert not_found_message(tmp_path / "nope.ogg", "audio file") == f"{tmp_path / 'nope.ogg'}: audio file not found"


def test_loading_audio_through_a_link_loop_says_so(tmp_path):
    from birdcore.audio.io import load_audio

    os.symlink(tmp_path / "y.ogg", tmp_path / "x.ogg")
    os.symlink(tmp_path / "x.ogg", tmp_path / "y.ogg")
    with pytest.raises(AudioError, match="x.ogg: audio file is a symbolic link loop"):
        load_audio(tmp_path / "x.ogg")


def test_brief_cuts_long_texts_at_a_word_or_sentence_boundary():
    long = "First sentence is here and it goes on for quite a while. " + "word " * 80
    out = brief(RuntimeError(long), limit=100)
    assert out == "First sentence is here and it goes on for quite a while."
    words = brief(RuntimeError("alpha " * 60), limit=50)
    assert words.endswith(" …") and all(w == "alpha" for w in words[:-2].split())
    assert brief(RuntimeError("")) == "RuntimeError"


class _Foreign:
    pass


def test_checkpoint_errors_are_whole_sentences(tmp_path):
    torch.save({"a": _Foreign()}, tmp_path / "foreign.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "foreign.pt").read_bytes()[:60])
    (tmp_path / "text.pt").write_text("hello world")
    (tmp_path / "noise.pt").write_bytes(bytes(range(256)))
    expected = {"foreign.pt": r"holds a Python object \(.*_Foreign\) that a safe load \(weights_only=True\) refuses",
                "cut.pt": r"cut off or not a PyTorch checkpoint",
                "text.pt": r"not a PyTorch checkpoint",
                "noise.pt": r"not a PyTorch checkpoint"}
    for name, pattern in expected.items():
        with pytest.raises(RunError, match=pattern) as info:
            load_checkpoint(tmp_path / name)
        text = str(info.value)
        assert str(tmp_path / name) in text and "\n" not in text and "Weights only load failed" not in text


def test_a_folder_named_like_a_recording_is_not_listed_as_a_soundscape(tmp_path):
    from helpers.synth import make_tone_dataset

    root = make_tone_dataset(tmp_path / "d", n_species=2, per_species=2, seconds=1.0)
    (root / "test_soundscapes").mkdir()
    sf.write(root / "test_soundscapes" / "real.ogg", np.zeros(32000, np.float32), 32000, format="OGG")
    (root / "test_soundscapes" / "folder.ogg").mkdir()
    assert [p.name for p in load_dataset(root).soundscapes] == ["real.ogg"]


@pytest.mark.parametrize("kwargs, pattern", [
    ({"window_s": 0}, r"window_s: 0(\.0)? must be > 0"),
    ({"window_s": float("nan")}, r"window_s: nan must be a finite number"),
    ({"hop_s": 6.0}, r"hop_s: 6.0 must be between 0.25 and window_s \(5.0\)"),
    ({"hop_s": 0.01}, r"hop_s: 0.01 must be between"),
    ({"context_s": 3.0}, r"context_s: 3.0 must be between window_s"),
    ({"context_s": 1e12}, r"context_s: 1000000000000.0 must be between"),
    ({"smoothing": [1.0, 1.0]}, r"odd number of weights"),
    ({"smoothing": [0.0, 0.0, 0.0]}, r"positive sum"),
    ({"batch_windows": 0}, r"batch_windows: 0 must be >= 1"),
])
def test_window_options_that_cannot_work_are_refused_by_field(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        PredictOptions(**kwargs)


def test_prediction_paths_put_files_inside_an_existing_folder(tmp_path):
    assert prediction_paths(tmp_path / "run.v2") == (tmp_path / "run.v2.parquet", tmp_path / "run.v2.csv")
    assert prediction_paths(tmp_path / "p.csv") == (tmp_path / "p.parquet", tmp_path / "p.csv")
    assert prediction_paths(tmp_path) == (tmp_path / "predictions.parquet", tmp_path / "predictions.csv")


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path, capsys):
    from helpers.synth import make_tone_dataset

    from birdcore.cli import main

    data = make_tone_dataset(tmp_path / "d", n_species=2, per_species=4, seconds=1.0)
    code = main(["train", "--data", str(data), "--runs", str(tmp_path / "runs"), "--set", "train.epochs=1",
                 "--set", 'model.pretrained_path="/no/such/weights.pth"'])
    err = capsys.readouterr().err
    assert code == 2 and "model.pretrained_path: /no/such/weights.pth not found" in err
    assert "was removed: nothing had been trained" in err
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_class_whose_every_recording_is_unreadable_is_refused():
    from birdcore.errors import DatasetError
    from birdcore.training.audio_check import check_lost_classes

    bad = [("b/1.ogg", "b/1.ogg: file is empty (0 bytes)"), ("b/2.ogg", "b/2.ogg: cut off"), ("a/1.ogg", "a/1: empty")]
    files, primary = ["a/1.ogg", "a/2.ogg", "b/1.ogg", "b/2.ogg", "c/1.ogg"], [0, 0, 1, 1, -1]
    with pytest.raises(DatasetError, match=r"every recording of 1 class\(es\) cannot be read: bbb \(2 file\(s\), e\.g\. b/1"):
        check_lost_classes(bad, files, primary, ["aaa", "bbb", "ccc"], Path("train_audio"))
    check_lost_classes(bad[2:], files, primary, ["aaa", "bbb", "ccc"], Path("train_audio"))  # aaa keeps a/2.ogg


@pytest.mark.slow
def test_training_stops_before_a_class_with_no_readable_audio(tmp_path, capsys):
    from helpers.synth import make_tone_dataset

    from birdcore.cli import main

    data = make_tone_dataset(tmp_path / "d", n_species=3, per_species=4, seconds=1.0)
    for f in (data / "train_audio" / "t2sp1").iterdir():
        f.write_bytes(b"")  # every recording of t2sp1 is empty
    code = main(["train", "--data", str(data), "--runs", str(tmp_path / "runs"), "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and "every recording of 1 class(es) cannot be read: t2sp1 (4 file(s)" in err
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_submission_for_a_bird_the_model_lacks_names_the_cli_flag():
    import pandas as pd

    from birdcore.errors import SubmissionError
    from birdcore.submission.table import build_submission

    test = pd.DataFrame({"row_id": ["s_aaa_5", "s_zzz_5"], "file_id": "s", "bird": ["aaa", "zzz"], "end_time": 5})
    probs = pd.DataFrame({"file_id": ["s"], "end_time": [5], "aaa": [0.9]})
    with pytest.raises(SubmissionError, match=r"name a bird that is not a model class .*`birdcore submit --missing false`"):
        build_submission(probs, test, 0.5, ["aaa"])
    sub = build_submission(probs, test, 0.5, ["aaa"], missing="false")
    assert sub["target"].tolist() == [True, False]


@pytest.mark.slow
def test_output_piped_into_a_reader_that_leaves_early_is_no_traceback(tmp_path):
    """`birdcore info DATA | head -1`: the reader closes the pipe after one line."""
    import subprocess
    import sys

    from helpers.synth import make_tone_dataset

    data = make_tone_dataset(tmp_path / "d", n_species=2, per_species=2, seconds=1.0)
    proc = subprocess.Popen([sys.executable, "-m", "birdcore", "info", str(data)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    proc.stdout.close()  # the reader is gone before the command prints its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err
