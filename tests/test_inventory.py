"""`birdcore info FOLDER` on a plain folder of recordings, and the recursive audio listing that
`predict FOLDER` uses: real files written with soundfile, plus the real xeno-canto clips in ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdcore.audio.inventory import (
    duplicate_names,
    find_audio_files,
    summarise_folder,
    summary_lines,
)
from birdcore.cli import main
from tests.conftest import SHARED, require_shared


def _tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (0.2 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    return y if channels == 1 else np.stack([y] * channels, axis=1)


@pytest.fixture
def folder(tmp_path) -> Path:
    """root/ a.wav (2 s, 32 kHz mono), b.flac (4 s, 44.1 kHz stereo), notes.txt, broken.wav (garbage),
    empty.ogg (0 bytes); sub/ c.ogg (6 s, 48 kHz mono), sub/deeper/d.wav (8 s, 16 kHz mono),
    sub/cut.wav (a WAV cut in the middle); .hidden/e.wav (left out)."""
    root = tmp_path / "recordings"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    sf.write(root / "a.wav", _tone(2, 32000), 32000)
    sf.write(root / "b.flac", _tone(4, 44100, channels=2), 44100)
    sf.write(root / "sub" / "c.ogg", _tone(6, 48000), 48000)
    sf.write(root / "sub" / "deeper" / "d.wav", _tone(8, 16000), 16000)
    sf.write(root / ".hidden" / "e.wav", _tone(1, 16000), 16000)
    sf.write(root / "sub" / "cut.wav", _tone(3, 16000), 16000)
    data = (root / "sub" / "cut.wav").read_bytes()
    (root / "sub" / "cut.wav").write_bytes(data[: len(data) // 2])
    (root / "broken.wav").write_bytes(b"this is not audio at all" * 10)
    (root / "empty.ogg").write_bytes(b"")
    (root / "notes.txt").write_text("field notes")
    return root


def test_find_audio_files_recurses_sorted_and_skips_hidden(folder):
    rel = [p.relative_to(folder).as_posix() for p in find_audio_files(folder)]
    assert rel == ["a.wav", "b.flac", "broken.wav", "empty.ogg", "sub/c.ogg", "sub/cut.wav", "sub/deeper/d.wav"]
    assert find_audio_files(folder) == find_audio_files(folder)  # deterministic
    (folder / "sub" / "a.flac").write_bytes(b"")
    assert {s: [p.relative_to(folder).as_posix() for p in ps]
            for s, ps in duplicate_names(find_audio_files(folder)).items()} == {"a": ["a.wav", "sub/a.flac"]}


def test_summarise_folder_counts_from_headers(folder):
    calls = []
    s = summarise_folder(folder, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (7, 7)
    assert s["files"] == 7 and s["readable"] == 4 and s["unreadable"] == 3
    assert s["total_duration_s"] == pytest.approx(20.0)
    assert s["median_duration_s"] == pytest.approx(5.0)  # median of 2, 4, 6, 8
    assert (s["min_duration_s"], s["max_duration_s"]) == (pytest.approx(2.0), pytest.approx(8.0))
    assert s["sample_rates"] == {"16000": 1, "32000": 1, "44100": 1, "48000": 1}
    assert s["channels"] == {"1": 3, "2": 1}
    assert s["formats"] == {".wav": 4, ".ogg": 2, ".flac": 1}  # unreadable files counted too
    assert s["folders"] == {".": 4, "sub": 3}
    bad = {b["path"]: b["error"] for b in s["unreadable_files"]}
    assert set(bad) == {"broken.wav", "empty.ogg", "sub/cut.wav"}
    assert "cannot read audio header" in bad["broken.wav"]
    assert bad["empty.ogg"] == "file is empty (0 bytes)"
    assert bad["sub/cut.wav"].startswith("truncated")
    assert s["other_files"] == {".txt": 1}
    assert summarise_folder(folder, show_unreadable=1)["unreadable_files"] == s["unreadable_files"][:1]
    json.dumps(s)  # JSON-ready


def test_info_on_a_plain_folder(folder, capsys):
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "no train_metadata.csv" in out
    assert "7 audio files (4 readable, 3 unreadable) in 1 sub-folder" in out
    assert "total 20.0 s, median 5.0 s (shortest 2.0 s, longest 8.0 s)" in out
    assert "16000 Hz: 1, 32000 Hz: 1, 44100 Hz: 1, 48000 Hz: 1" in out
    assert "mono: 3, stereo: 1" in out and ".wav: 4, .ogg: 2, .flac: 1" in out
    assert "unreadable   sub/cut.wav: truncated" in out and "unreadable   empty.ogg: file is empty" in out
    assert "other files  1 not audio by extension (.txt: 1)" in out
    assert main(["info", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == summarise_folder(folder)


def test_info_keeps_the_dataset_summary_and_rejects_an_empty_folder(tmp_path, capsys):
    ds = tmp_path / "ds"
    (ds / "train_audio" / "houspa").mkdir(parents=True)
    sf.write(ds / "train_audio" / "houspa" / "XC1.ogg", _tone(3, 32000), 32000)
    (ds / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\nhouspa,[],4.0,houspa/XC1.ogg\n")
    assert main(["info", str(ds)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset ") and "species      1" in out and "no train_metadata.csv" not in out
    empty = tmp_path / "nothing"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("x")
    assert main(["info", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no train_metadata.csv and no audio files" in err and len(err.strip().splitlines()) == 1


def test_info_on_real_recordings():
    root = require_shared(SHARED / "data" / "real-birds-wna10")
    s = summarise_folder(root)
    assert s["files"] == s["readable"] == 100 and s["unreadable"] == 0
    assert s["formats"] == {".mp3": 100} and s["folders"] == {"audio": 100}
    assert 5.0 <= s["min_duration_s"] <= s["median_duration_s"] <= s["max_duration_s"] <= 6.5
    assert set(s["sample_rates"]) <= {"44100", "48000"} and sum(s["sample_rates"].values()) == 100
    assert s["other_files"].get(".csv") == 1  # recordings.csv
    lines = summary_lines(s)
    assert lines[1].startswith("recordings   100 audio files (100 readable, 0 unreadable) in 1 sub-folder")
