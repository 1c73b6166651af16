"""birdcore.data.scratch: per-session temp copies of uploaded audio and their clean-up."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from birdcore.data.scratch import UPLOAD_PREFIX, remove_scratch, scratch_copy, sweep_scratch


@pytest.fixture(autouse=True)
def tmp_root(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))  # what tempfile.gettempdir() answers
    return root


def test_copy_lands_in_its_own_prefixed_folder_with_the_audio_suffix(tmp_root):
    a = scratch_copy(b"RIFF....WAVE", "My Song.WAV")
    b = scratch_copy(memoryview(b"OggS"), "x.ogg")
    assert a.read_bytes() == b"RIFF....WAVE" and b.read_bytes() == b"OggS"
    assert a.name == "upload.wav" and b.name == "upload.ogg"
    assert a.parent != b.parent
    for p in (a, b):
        assert p.parent.parent == tmp_root and p.parent.name.startswith(UPLOAD_PREFIX)


def test_copy_ignores_the_uploaded_name_beyond_a_known_suffix(tmp_root):
    odd = scratch_copy(b"data", "../../etc/passwd")
    assert odd.name == "upload.audio" and odd.parent.parent == tmp_root
    assert scratch_copy(b"data", "notes.txt").name == "upload.audio"


def test_remove_deletes_the_copy_folder_and_nothing_else(tmp_root, tmp_path):
    p = scratch_copy(b"x", "a.flac")
    assert remove_scratch(p) is True
    assert not p.parent.exists()
    assert remove_scratch(p) is True  # gone already: nothing to do, no error
    other = tmp_path / "mine" / "upload.wav"
    other.parent.mkdir()
    other.write_bytes(b"keep")
    assert remove_scratch(other) is False
    assert other.read_bytes() == b"keep"


def test_sweep_removes_only_stale_scratch_folders(tmp_root):
    old, fresh = scratch_copy(b"1", "a.wav"), scratch_copy(b"2", "b.wav")
    unrelated = tmp_root / "someone-else"
    unrelated.mkdir()
    day_ago = time.time() - 2 * 86400
    for folder in (old.parent, unrelated):
        os.utime(folder, (day_ago, day_ago))
    assert sweep_scratch() == 1
    assert not old.parent.exists() and fresh.is_file() and unrelated.is_dir()
    assert sweep_scratch(max_age_s=60, now=time.time() + 120) == 1  # `now` moved on: the fresh one is stale too
    assert not fresh.parent.exists()
