"""`ensure_demo_dataset` (`demo-data --if-missing`, run at every `make app` start) repairs the demo
folder without ever deleting or overwriting a file the demo did not write."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from birdcore.demo import (
    MARKER_NAME,
    ensure_demo_dataset,
    generate_demo_dataset,
    generator,
    install,
    is_complete_demo,
)
from birdcore.errors import BirdcoreError

SMALL = {"recordings_scale": 0.1, "n_soundscapes": 1, "n_unlabeled": 1}  # ~3 s to build on 2 cores


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A small seed-1 demo, built once; tests work on copies."""
    return generate_demo_dataset(tmp_path_factory.mktemp("pristine") / "demo", seed=1, **SMALL)


@pytest.fixture
def demo(pristine, tmp_path) -> Path:
    out = tmp_path / "demo"
    shutil.copytree(pristine, out)
    return out


def _add_user_files(demo: Path) -> dict[str, bytes]:
    """What a user of the app leaves in the demo folder: annotations, runs, notes, own recordings."""
    species_dir = min((demo / "train_audio").iterdir())
    recording = next(species_dir.glob("XC*.ogg")).read_bytes()
    files = {
        "annotations/labels.csv": b"file_id,start,end,label\nsoundscape_1,0,5,zzasc1\n",
        "annotations/raven/sel.txt": b"Selection\tBegin Time (s)\n1\t0.5\n",
        "runs/r1/config.json": b'{"name": "r1"}\n',
        "notes.txt": b"my notes\n",
        f"train_audio/{species_dir.name}/my_field_recording.ogg": recording,
        # named like a demo file, but the marker never listed it: the user's
        f"train_audio/{species_dir.name}/XC1.ogg": recording,
    }
    for rel, data in files.items():
        (demo / rel).parent.mkdir(parents=True, exist_ok=True)
        (demo / rel).write_bytes(data)
    return files


def _assert_unchanged(demo: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (demo / rel).read_bytes() == data, rel


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _demo_audio(demo: Path) -> list[Path]:
    """The training recordings the demo wrote (its marker lists them), not the user's."""
    listed = json.loads((demo / MARKER_NAME).read_text())["files"]
    return sorted(demo / rel for rel in listed if rel.startswith("train_audio/") and (demo / rel).exists())


def _assert_complete(demo: Path, seed: int) -> None:
    assert is_complete_demo(demo, seed, **SMALL)
    marker = json.loads((demo / MARKER_NAME).read_text())
    assert marker["seed"] == seed and "complete" not in marker and "earlier_files" not in marker
    meta = pd.read_csv(demo / "train_metadata.csv")
    assert all((demo / "train_audio" / f).is_file() for f in meta["filename"])
    assert set(marker["files"]) >= {f"train_audio/{f}" for f in meta["filename"]}
    for rel, sha in marker["files"].items():
        assert install.checksum(demo / rel) == sha, rel
    assert not list(demo.parent.glob(f".{demo.name}.tmp-*")), "temp build folder left behind"
    assert not list(demo.parent.glob(f".{demo.name}.old-*"))


@pytest.mark.slow
def test_repair_after_a_lost_file_keeps_user_files(demo):
    user = _add_user_files(demo)
    csv_before = (demo / "train_metadata.csv").read_bytes()
    lost = _demo_audio(demo)[3]
    lost.unlink()
    assert not is_complete_demo(demo, 1, **SMALL)
    assert ensure_demo_dataset(demo, seed=1, **SMALL) == demo.absolute()
    assert lost.is_file()
    _assert_unchanged(demo, user)
    _assert_complete(demo, seed=1)
    assert (demo / "train_metadata.csv").read_bytes() == csv_before


@pytest.mark.slow
def test_new_seed_replaces_old_demo_files_only(demo):
    user = _add_user_files(demo)
    old_audio = {p.relative_to(demo).as_posix() for p in _demo_audio(demo)}
    _demo_audio(demo)[0].unlink()
    ensure_demo_dataset(demo, seed=2, **SMALL)
    _assert_unchanged(demo, user)
    _assert_complete(demo, seed=2)
    new_audio = {p.relative_to(demo).as_posix() for p in _demo_audio(demo)}
    on_disk = {p.relative_to(demo).as_posix() for p in (demo / "train_audio").glob("*/*.ogg")}
    assert on_disk == new_audio | {r for r in user if r.endswith(".ogg")}, "seed-1 recordings removed"
    assert old_audio - new_audio, "the seeds write different recordings"


@pytest.mark.slow
def test_new_version_is_repaired_in_place(demo, monkeypatch):
    user = _add_user_files(demo)
    monkeypatch.setattr(generator, "DEMO_VERSION", generator.DEMO_VERSION + 1)
    assert not is_complete_demo(demo, 1, **SMALL)
    ensure_demo_dataset(demo, seed=1, **SMALL)
    _assert_unchanged(demo, user)
    _assert_complete(demo, seed=1)


def test_user_recordings_in_species_folders_do_not_trigger_a_rebuild(demo, monkeypatch):
    _add_user_files(demo)
    monkeypatch.setattr(generator, "_build", lambda *args: pytest.fail("complete dataset rebuilt"))
    assert is_complete_demo(demo, 1, **SMALL)
    ensure_demo_dataset(demo, seed=1, **SMALL)


@pytest.mark.slow
def test_edited_metadata_is_refused_and_nothing_changes(demo):
    _add_user_files(demo)
    with open(demo / "train_metadata.csv", "a", encoding="utf-8") as fh:
        fh.write("zzasc1,[],['song'],1.0,2.0,X,Y,me,CC,4.0,08:00,https://example.org/x,zzasc1/mine.ogg\n")
    _demo_audio(demo)[2].unlink()  # something to repair
    before = _snapshot(demo)
    with pytest.raises(BirdcoreError) as info:
        ensure_demo_dataset(demo, seed=1, **SMALL)
    msg = str(info.value)
    assert "train_metadata.csv (changed since the demo wrote it)" in msg and str(demo) in msg
    assert "--out" in msg and "--overwrite" in msg
    assert _snapshot(demo) == before
    assert sorted(p.name for p in demo.parent.iterdir()) == [".demo.lock", "demo"]


@pytest.mark.slow
def test_folder_where_a_demo_file_goes_is_refused(demo):
    lost = _demo_audio(demo)[1]
    lost.unlink()
    lost.mkdir()
    (lost / "keep.txt").write_text("mine")
    before = _snapshot(demo)
    with pytest.raises(BirdcoreError, match=r"XC\d+\.ogg \(a folder\)"):
        ensure_demo_dataset(demo, seed=1, **SMALL)
    assert _snapshot(demo) == before


@pytest.mark.slow
def test_crash_mid_repair_loses_nothing_and_next_start_completes(demo, monkeypatch):
    user = _add_user_files(demo)
    _demo_audio(demo)[0].unlink()
    real_install, calls = install._install_file, []

    def crash_on_fifth(src: Path, dest: Path) -> None:
        calls.append(dest)
        if len(calls) == 5:
            raise OSError("synthetic crash")
        real_install(src, dest)

    monkeypatch.setattr(install, "_install_file", crash_on_fifth)
    with pytest.raises(OSError, match="synthetic crash"):
        ensure_demo_dataset(demo, seed=2, **SMALL)
    _assert_unchanged(demo, user)
    assert not is_complete_demo(demo, 2, **SMALL) and not is_complete_demo(demo, 1, **SMALL)
    assert not list(demo.rglob("*.tmp")), "no half-written file"
    monkeypatch.setattr(install, "_install_file", real_install)
    ensure_demo_dataset(demo, seed=2, **SMALL)
    _assert_unchanged(demo, user)
    _assert_complete(demo, seed=2)


@pytest.mark.slow
def test_old_files_the_user_changed_are_kept(demo):
    old = _demo_audio(demo)[0]
    changed = old.read_bytes() + b"user edit"
    old.write_bytes(changed)
    ensure_demo_dataset(demo, seed=2, **SMALL)  # seed 2 never writes seed 1's XC ids
    assert old.read_bytes() == changed
    _assert_complete(demo, seed=2)


@pytest.mark.slow
def test_folder_marked_before_checksums_is_repaired_by_content(demo):
    user = _add_user_files(demo)
    marker = json.loads((demo / MARKER_NAME).read_text())
    del marker["files"]  # as DEMO_VERSION 1 wrote it
    (demo / MARKER_NAME).write_text(json.dumps(marker))
    assert is_complete_demo(demo, 1, **SMALL) is False, "the user's extra recordings change the count"
    ensure_demo_dataset(demo, seed=1, **SMALL)  # same seed: our files hold exactly what the build writes
    _assert_unchanged(demo, user)
    _assert_complete(demo, seed=1)


@pytest.mark.slow
def test_concurrent_starts_build_once(demo, monkeypatch):
    _demo_audio(demo)[0].unlink()
    builds, errors = [], []
    real_build = generator._build
    monkeypatch.setattr(generator, "_build", lambda *args: builds.append(args) or real_build(*args))

    def start() -> None:
        try:
            ensure_demo_dataset(demo, seed=1, **SMALL)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(builds) == 1
    _assert_complete(demo, seed=1)


@pytest.mark.slow
def test_overwrite_says_what_it_deletes(demo, caplog):
    _add_user_files(demo)
    with pytest.raises(BirdcoreError) as info:
        generate_demo_dataset(demo, seed=1, **SMALL)
    msg = str(info.value)
    assert "--overwrite (overwrite=True)" in msg and "deletes everything" in msg and "--if-missing" in msg
    with caplog.at_level(logging.WARNING, logger="birdcore.demo.generator"):
        generate_demo_dataset(demo, seed=1, overwrite=True, **SMALL)
    assert str(demo) in caplog.text and "deletes everything" in caplog.text
    assert not (demo / "notes.txt").exists() and not (demo / "annotations").exists()
    _assert_complete(demo, seed=1)


def test_foreign_folder_message_names_the_flag(tmp_path):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "data.csv").write_text("x")
    with pytest.raises(BirdcoreError) as info:
        ensure_demo_dataset(out, **SMALL)
    msg = str(info.value)
    assert str(out) in msg and "--overwrite (overwrite=True)" in msg and "sub/data.csv" in msg
    assert (out / "sub" / "data.csv").read_text() == "x"


def test_ogg_checksum_ignores_only_the_random_stream_serial(tmp_path):
    audio = np.sin(np.linspace(0, 2000, 3 * 32000)).astype("float32") * 0.3
    a, b, c = tmp_path / "a.ogg", tmp_path / "b.ogg", tmp_path / "c.ogg"
    generator._write_ogg(a, audio)
    generator._write_ogg(b, audio)
    louder = audio.copy()
    louder[1000:2000] *= 2
    generator._write_ogg(c, louder)
    assert a.read_bytes() != b.read_bytes(), "libsndfile picks a random serial per stream"
    assert install.checksum(a) == install.checksum(b)
    assert install.checksum(a) != install.checksum(c)
    (tmp_path / "cut.ogg").write_bytes(a.read_bytes()[:-100])  # a truncated stream: checksum of the raw bytes
    assert install.checksum(tmp_path / "cut.ogg") != install.checksum(a)
