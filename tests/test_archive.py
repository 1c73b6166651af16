"""The embedding archive (`birdcore.archive`): window table, vector shards, index, embed, search, CLI.

Fast tests use synthetic vectors, or a stand-in for BirdNET (`fake_compute`: a deterministic vector
per window of audio content) passed to the real embedding cache, so every step of `embed_archive`
but the network itself runs. Tests marked `slow` run BirdNET (skipped without the extra) or a
subprocess killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdcore.archive import EmbedConfig, embed_archive, search_archive
from birdcore.archive import vector_index as vi
from birdcore.archive.layout import ArchiveLayout, Manifest, ensure_manifest
from birdcore.archive.vector_store import shard_ids_on_disk, write_shard
from birdcore.archive.window_table import commit_rows, empty_table, read_table
from birdcore.atomic_io import file_lock
from birdcore.audio.windows import window_count
from birdcore.pretrained.birdnet import MODEL_TAG
from birdcore.pretrained.embedding_cache import EmbeddingCache

DIM = 1024
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


# ---------------------------------------------------------------- helpers (also used by the kill driver)

def fake_compute(paths, sr=None, window_s=5.0, hop_s=1.0, *, min_last_s=1.5, batch_size=16, num_threads=2,
                 model=None, progress=None, delay=0.0):
    """A stand-in for `birdnet.embed_chunks`: per window, a unit vector seeded by the window's samples
    (same audio → same vector), repeated as 3 chunks so the window mean equals it."""
    out = []
    for i, p in enumerate(paths):
        y, rate = sf.read(str(p), dtype="float32", always_2d=False)
        n = window_count(len(y), rate, window_s, min_last_s)
        win = round(window_s * rate)
        vecs = []
        for w in range(n):
            seed = int.from_bytes(hashlib.blake2b(y[w * win:(w + 1) * win].tobytes(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            vecs.append(np.abs(v))  # post-ReLU-like: non-negative, as BirdNET embeddings are
        chunks = np.repeat(np.stack(vecs), 3, axis=0)
        out.append((n, chunks, np.repeat(np.arange(n), 3)))
        if delay:
            time.sleep(delay)
        if progress:
            progress(i + 1, len(paths))
    return out


def write_wav(path: Path, seconds: float, seed: int, sr: int = 16000) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr)
    return path


def synthetic_archive(root: Path, vectors: np.ndarray, per_shard: int = 1000) -> ArchiveLayout:
    """An archive of `vectors` written through the real shard + table commit path (no audio)."""
    layout = ArchiveLayout(root)
    ensure_manifest(layout, Manifest(model_tag=MODEL_TAG, dim=vectors.shape[1]))
    table = empty_table()
    for shard, s in enumerate(range(0, len(vectors), per_shard)):
        part = vectors[s:s + per_shard]
        write_shard(layout, shard, part, "float16")
        n = len(part)
        rows = pd.DataFrame({"window_id": np.arange(s, s + n), "path": [f"/rec/{(s + j) // 12}.wav" for j in range(n)],
                             "digest": "d", "start_s": [5.0 * ((s + j) % 12) for j in range(n)],
                             "end_s": [5.0 * ((s + j) % 12) + 5 for j in range(n)], "source": "/rec", "shard": shard,
                             "row": np.arange(n),
                             "norm": np.linalg.norm(part.astype(np.float16).astype(np.float32), axis=1)})
        table = commit_rows(layout, table, rows, set())
    return layout


def clustered(n: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    return centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def fake_cache(tmp_path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "emb-cache", compute_fn=fake_compute)


def ids_are_clean(archive: Path) -> pd.DataFrame:
    """The committed table, after checking no window id repeats and every shard on disk is named by it."""
    layout = ArchiveLayout(archive)
    table = read_table(layout)
    assert not table["window_id"].duplicated().any()
    assert not table[["path", "start_s"]].duplicated().any()
    assert set(shard_ids_on_disk(layout)) == set(table["shard"].unique())
    return table


needs_faiss = pytest.mark.skipif(vi.faiss_module() is None, reason="faiss-cpu not installed (approximate index)")


# ---------------------------------------------------------------- table, shards, index (synthetic vectors)

def test_exact_search_returns_the_planted_neighbour(tmp_path):
    vecs = np.abs(np.random.default_rng(1).standard_normal((2500, DIM))).astype(np.float32)
    layout = synthetic_archive(tmp_path / "arc", vecs)
    query = vecs[1234] + 0.01 * np.random.default_rng(2).standard_normal(DIM).astype(np.float32)
    res = search_archive(layout.root, query, k=5, exact=True)
    assert res.method == "exact" and res.exact
    assert int(res.hits["window_id"].iloc[0]) == 1234
    assert res.hits["score"].iloc[0] > 0.999
    assert res.hits["score"].is_monotonic_decreasing and len(res.hits) == 5
    # the hit carries its file and span from the table
    top = res.hits.iloc[0]
    assert top["path"] == f"/rec/{1234 // 12}.wav" and top["end_s"] - top["start_s"] == 5


@needs_faiss
def test_approximate_search_recall_at_10(tmp_path, monkeypatch):
    monkeypatch.setattr(vi, "FLAT_BELOW", 500)  # a few thousand vectors: force the IVF index, not the flat one
    vecs = clustered(2000)
    layout = synthetic_archive(tmp_path / "arc", vecs)
    rng = np.random.default_rng(3)
    queries = vecs[rng.choice(len(vecs), 20, replace=False)] + 0.3 * rng.standard_normal((20, DIM)).astype(np.float32)
    stored = vecs.astype(np.float16).astype(np.float32)
    cos = (queries @ stored.T) / np.outer(np.linalg.norm(queries, axis=1), np.linalg.norm(stored, axis=1))
    truth = np.argsort(-cos, axis=1)[:, :10]  # exact top 10, computed here, not by the code under test
    recalls = []
    for q, want in zip(queries, truth):
        approx = search_archive(layout.root, q, k=10)
        assert approx.method == "approximate" and "IVF" in approx.detail
        recalls.append(len(set(approx.hits["window_id"]) & set(want.tolist())) / 10)
    assert np.mean(recalls) >= 0.9
    exact = search_archive(layout.root, queries[0], k=10, exact=True)
    assert exact.hits["window_id"].tolist() == truth[0].tolist()
    assert vi.read_index_meta(layout).kind == "ivf"


@needs_faiss
def test_corrupt_or_missing_index_is_detected_and_rebuilt(tmp_path):
    vecs = np.abs(np.random.default_rng(4).standard_normal((300, DIM))).astype(np.float32)
    layout = synthetic_archive(tmp_path / "arc", vecs)
    first = search_archive(layout.root, vecs[7], k=3)
    assert any("built" in n for n in first.notes)  # no index yet: built on first use, and said so
    meta = vi.read_index_meta(layout)
    path = layout.index_dir / meta.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(data))
    vi._VERIFIED.clear()  # a new process would not have verified it either
    res = search_archive(layout.root, vecs[7], k=3)
    assert any("rebuilt" in n and "checksum" in n for n in res.notes), res.notes
    assert int(res.hits["window_id"].iloc[0]) == 7 and res.hits["score"].iloc[0] > 0.999
    assert not search_archive(layout.root, vecs[7], k=3).notes  # repaired: the next search is quiet
    (layout.index_dir / vi.read_index_meta(layout).file).unlink()
    res = search_archive(layout.root, vecs[8], k=3)
    assert any("rebuilt" in n and "missing" in n for n in res.notes), res.notes
    assert int(res.hits["window_id"].iloc[0]) == 8


def test_without_faiss_search_is_exact_and_says_why(tmp_path, fake_cache, monkeypatch):
    monkeypatch.setattr(vi, "faiss_module", lambda: None)
    write_wav(tmp_path / "rec" / "a.wav", 12, seed=1)
    r = embed_archive([tmp_path / "rec"], tmp_path / "arc", cache=fake_cache)
    assert r.index.state == "unavailable" and any("faiss-cpu is not installed" in line for line in r.lines())
    res = search_archive(tmp_path / "arc", tmp_path / "rec" / "a.wav", k=2, cache=fake_cache)
    assert res.method == "exact" and any("faiss-cpu is not installed" in n for n in res.notes)
    assert res.hits["start_s"].tolist()[0] == 0 and res.hits["score"].iloc[0] > 0.999
    assert not (tmp_path / "arc" / "index").exists()


def test_index_record_mismatch_is_rebuilt_by_sync(tmp_path):
    if vi.faiss_module() is None:
        pytest.skip("faiss-cpu not installed")
    vecs = np.abs(np.random.default_rng(5).standard_normal((50, DIM))).astype(np.float32)
    layout = synthetic_archive(tmp_path / "arc", vecs)
    manifest = ensure_manifest(layout, Manifest(model_tag=MODEL_TAG, dim=DIM))
    table = read_table(layout)
    assert vi.sync_index(layout, manifest, table).state == "built"
    assert vi.sync_index(layout, manifest, table).state == "ok"
    meta_path = layout.index_dir / vi.META
    meta_path.write_text(meta_path.read_text().replace(f'"count": {len(table)}', '"count": 49'))
    report = vi.sync_index(layout, manifest, table)
    assert report.state == "rebuilt" and "49" in report.reason


# ---------------------------------------------------------------- embed (BirdNET stand-in), incremental, crash safety

def test_embed_is_incremental_and_replaces_changed_files(tmp_path, fake_cache):
    src = tmp_path / "rec"
    for i, secs in enumerate([12, 7, 21]):
        write_wav(src / ("deep" if i == 2 else ".") / f"r{i}.wav", secs, seed=i)
    arc = tmp_path / "arc"
    seen = []
    r1 = embed_archive([src], arc, EmbedConfig(files_per_batch=2), cache=fake_cache,
                       progress=lambda d, t: seen.append((d, t)))
    # the window rule of inference: a partial last window counts from 1.5 s (12 s → 3, 7 s → 2, 21 s → 4)
    assert (r1.files_embedded, r1.windows_added) == (3, 3 + 2 + 4)
    assert seen[-1] == (3, 3)
    table = ids_are_clean(arc)
    assert sorted(table.groupby("path").size().tolist()) == [2, 3, 4]
    r2 = embed_archive([src], arc, cache=fake_cache)
    assert (r2.files_embedded, r2.windows_added, r2.files_unchanged) == (0, 0, 3)
    write_wav(src / "r3.wav", 10, seed=3)
    r3 = embed_archive([src], arc, cache=fake_cache)
    assert (r3.files_embedded, r3.windows_added) == (1, 2)
    write_wav(src / "r1.wav", 16, seed=9)  # changed content at the same path
    r4 = embed_archive([src], arc, cache=fake_cache)
    assert (r4.files_embedded, r4.files_changed, r4.windows_added, r4.windows_removed) == (1, 1, 3, 2)
    table = ids_are_clean(arc)
    assert len(table) == r4.windows_total
    assert table.loc[table["path"].str.endswith("r1.wav"), "end_s"].tolist() == [5, 10, 15]
    if vi.faiss_module() is not None:  # the index dropped the replaced windows and holds the new ones
        assert r4.index.state == "updated" and (r4.index.added, r4.index.removed) == (3, 2)
        assert vi.read_index_meta(ArchiveLayout(arc)).count == len(table)


@needs_faiss
def test_search_says_when_the_index_lags_the_table(tmp_path, fake_cache):
    src = tmp_path / "rec"
    write_wav(src / "a.wav", 10, seed=1)
    arc = tmp_path / "arc"
    embed_archive([src], arc, cache=fake_cache)
    write_wav(src / "b.wav", 15, seed=2)
    embed_archive([src], arc, EmbedConfig(build_index=False), cache=fake_cache)  # as if killed before the index step
    query = search_archive(arc, np.ones(DIM), k=50)
    assert any("lacks the 3 newest windows" in n for n in query.notes), query.notes
    assert len(query.hits) == 2  # the index's windows only
    assert len(search_archive(arc, np.ones(DIM), k=50, exact=True).hits) == 5
    r = embed_archive([src], arc, cache=fake_cache)
    assert r.windows_added == 0 and r.index.state == "updated" and r.index.added == 3
    query = search_archive(arc, np.ones(DIM), k=50)
    assert not query.notes and len(query.hits) == 5


@pytest.mark.slow  # writes and decodes Ogg Vorbis: ~2.5 s
def test_embed_a_dataset_folder_reads_train_audio_and_soundscapes(tmp_path, fake_cache):
    from helpers.synth import make_tone_dataset

    data = make_tone_dataset(tmp_path / "data", n_species=2, per_species=3, seconds=6.0, soundscapes=1)
    r = embed_archive([data], tmp_path / "arc", cache=fake_cache)
    table = ids_are_clean(tmp_path / "arc")
    assert r.files_found == r.files_embedded == 2 * 3 + 1 and not r.missing
    assert table["path"].str.contains("/train_audio/").any() and table["path"].str.contains("/test_soundscapes/").any()
    assert set(table["source"]) == {str(data)}
    soundscape = table[table["path"].str.contains("/test_soundscapes/")]
    assert soundscape["end_s"].tolist()[:3] == [5, 10, 15] and len(soundscape) == 12  # the 1-minute grid


def test_uncommitted_shard_is_discarded_on_restart(tmp_path, fake_cache):
    src = tmp_path / "rec"
    for i in range(4):
        write_wav(src / f"r{i}.wav", 11, seed=i)
    clean = embed_archive([src], tmp_path / "clean", cache=fake_cache)
    arc = tmp_path / "arc"
    layout = ArchiveLayout(arc)
    embed_archive([src / "r0.wav", src / "r1.wav"], arc, cache=fake_cache)
    # A run killed after writing its shard but before committing the table: the shard is on disk,
    # no table row names it; plus a temp file a kill left mid-write.
    write_shard(layout, 99, np.ones((5, DIM), np.float32), "float16")
    (layout.shards / ".shard-000100.npy.abc.npy.tmp").write_bytes(b"torn")
    r = embed_archive([src], arc, cache=fake_cache)
    assert r.orphans_discarded == 2
    assert not layout.shard_path(99).exists()
    table = ids_are_clean(arc)
    assert len(table) == clean.windows_total == r.windows_total
    assert r.windows_added == clean.windows_total - 4  # r0, r1 (2 windows each) were committed


def test_kill_between_shard_and_commit_leaves_no_duplicates(tmp_path, fake_cache, monkeypatch):
    """The commit step dies (as a SIGKILL would) after the shard of batch 2 is written."""
    import birdcore.archive.embed as emb

    src = tmp_path / "rec"
    for i in range(5):
        write_wav(src / f"r{i}.wav", 9, seed=10 + i)
    real_commit, calls = emb.commit_rows, []

    def dying_commit(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_commit(*a, **k)

    monkeypatch.setattr(emb, "commit_rows", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        embed_archive([src], tmp_path / "arc", EmbedConfig(files_per_batch=2), cache=fake_cache)
    layout = ArchiveLayout(tmp_path / "arc")
    assert len(shard_ids_on_disk(layout)) == 2 and len(read_table(layout)) == 4  # batch 2: shard, no rows
    monkeypatch.setattr(emb, "commit_rows", real_commit)
    r = embed_archive([src], tmp_path / "arc", EmbedConfig(files_per_batch=2), cache=fake_cache)
    assert r.orphans_discarded == 1 and r.files_unchanged == 2 and r.files_embedded == 3
    assert len(ids_are_clean(tmp_path / "arc")) == 10


def test_two_embeds_on_one_archive_do_not_interleave(tmp_path, fake_cache):
    write_wav(tmp_path / "rec" / "a.wav", 6, seed=1)
    arc = tmp_path / "arc"
    arc.mkdir()
    done = threading.Event()
    with file_lock(ArchiveLayout(arc).lock):  # another embed holds the archive
        t = threading.Thread(target=lambda: (embed_archive([tmp_path / "rec"], arc, cache=fake_cache), done.set()))
        t.start()
        time.sleep(0.5)
        assert not done.is_set() and not (arc / "windows.parquet").exists()
    t.join(30)
    assert done.is_set() and len(read_table(ArchiveLayout(arc))) == 1


def test_embed_reports_bad_sources_and_unreadable_files(tmp_path, fake_cache):
    from birdcore.errors import BirdcoreError

    with pytest.raises(BirdcoreError, match="no such file"):
        embed_archive([tmp_path / "nope"], tmp_path / "arc", cache=fake_cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BirdcoreError, match="no audio files"):
        embed_archive([tmp_path / "empty"], tmp_path / "arc", cache=fake_cache)
    write_wav(tmp_path / "rec" / "good.wav", 6, seed=1)
    (tmp_path / "rec" / "bad.wav").write_bytes(b"RIFF not really")
    r = embed_archive([tmp_path / "rec"], tmp_path / "arc", cache=EmbeddingCache(tmp_path / "c2"))
    assert r.files_embedded == 1 and len(r.skipped) == 1 and r.skipped[0][0].endswith("bad.wav")
    with pytest.raises(BirdcoreError, match="not an archive"):
        search_archive(tmp_path / "rec", np.ones(DIM))


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli():
    import birdcore.cli as cli_mod

    return cli_mod  # `embed` and `search` are registered through its _EXTRA_COMMANDS


@pytest.mark.parametrize("argv, message", [
    (["search", "--archive", "a", "--query", "q.wav", "-k", "0"], "-k: 0 must be >= 1"),
    (["search", "--archive", "a", "--query", "q.wav", "--start", "-1"], "--start: -1 must be >= 0"),
    (["search", "--archive", "a", "--query", "q.wav", "--end", "0"], "--end: 0 must be > 0"),
    (["embed", "x", "--archive", "a", "--threads", "0"], "--threads: 0 must be >= 1"),
    (["embed", "x", "--archive", "a", "--threads", "two"], "--threads: 'two' is not an integer"),
])
def test_cli_refuses_bad_numbers_at_parse_time(cli, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_embed_then_search(cli, capsys, tmp_path, monkeypatch):
    import birdcore.pretrained.embedding_cache as ec

    monkeypatch.setattr(ec, "embed_chunks", fake_compute)  # the CLI's default cache then uses the stand-in
    src = tmp_path / "rec"
    for i in range(3):
        write_wav(src / f"r{i}.wav", 10, seed=i)
    assert cli.main(["embed", str(src), "--archive", str(tmp_path / "arc")]) == 0
    out = capsys.readouterr().out
    assert "6 added" in out and "0 skipped as unchanged" in out and "audio s/s" in out
    assert cli.main(["embed", str(src), "--archive", str(tmp_path / "arc")]) == 0
    assert "0 added" in (out := capsys.readouterr().out) and "3 skipped as unchanged" in out
    code = cli.main(["search", "--archive", str(tmp_path / "arc"), "--query", str(src / "r1.wav"),
                     "--start", "5", "--end", "10", "-k", "3", "--exact"])
    out = capsys.readouterr().out
    assert code == 0 and "exact" in out
    lines = out.splitlines()
    first_hit = lines[next(i for i, line in enumerate(lines) if line.strip().startswith("rank")) + 1]
    assert first_hit.split()[0] == "1" and float(first_hit.split()[1]) > 0.999 and first_hit.endswith("r1.wav")
    assert first_hit.split()[2] == "5"
    assert cli.main(["search", "--archive", str(tmp_path / "arc"), "--query", str(src / "r1.wav"),
                     "--start", "8", "--end", "3"]) == 2
    assert "must be before" in capsys.readouterr().err
    assert cli.main(["search", "--archive", str(tmp_path / "arc"), "--query", str(src / "r1.wav"),
                     "--start", "30", "--end", "40"]) == 2
    assert "beyond the recording" in capsys.readouterr().err


# ---------------------------------------------------------------- a real SIGKILL (subprocess)

_DRIVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import test_archive as t
import birdcore.archive.embed as emb
from birdcore.archive import EmbedConfig, embed_archive
from birdcore.pretrained.embedding_cache import EmbeddingCache
from pathlib import Path
real, n = emb.commit_rows, []
def commit(*a, **k):
    n.append(1)
    if len(n) == 2:  # batch 2's shard is on disk, its rows are not: the worst moment to die
        Path(sys.argv[4]).write_text("ready")
        time.sleep(120)
    return real(*a, **k)
emb.commit_rows = commit
cache = EmbeddingCache(sys.argv[5], compute_fn=lambda *a, **k: t.fake_compute(*a, delay=0.05, **k))
embed_archive([sys.argv[2]], sys.argv[3], EmbedConfig(files_per_batch=2), cache=cache)
"""


@pytest.mark.slow
def test_sigkill_mid_embed_resumes_without_duplicates(tmp_path, fake_cache):
    src = tmp_path / "rec"
    for i in range(7):
        write_wav(src / f"r{i}.wav", 6 + 3 * i, seed=20 + i)
    clean = embed_archive([src], tmp_path / "clean", EmbedConfig(files_per_batch=2), cache=fake_cache)
    arc, ready = tmp_path / "arc", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(TESTS), str(src), str(arc), str(ready),
                             str(tmp_path / "cache2")], env=env, cwd=str(REPO))
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), "the driver never reached batch 2"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    layout = ArchiveLayout(arc)
    assert len(shard_ids_on_disk(layout)) == 2 and len(read_table(layout)) > 0  # an orphan shard is on disk
    r = embed_archive([src], arc, EmbedConfig(files_per_batch=2), cache=EmbeddingCache(tmp_path / "cache2",
                                                                                       compute_fn=fake_compute))
    assert r.orphans_discarded == 1 and r.files_unchanged == 2
    table = ids_are_clean(arc)
    assert len(table) == clean.windows_total
    want = ids_are_clean(tmp_path / "clean")
    key = ["path", "start_s"]
    assert table[key].sort_values(key).to_numpy().tolist() == want[key].sort_values(key).to_numpy().tolist()


_BIRDNET_DRIVER = """
import sys
from birdcore.archive import EmbedConfig, embed_archive
from birdcore.pretrained.embedding_cache import EmbeddingCache
embed_archive([sys.argv[1]], sys.argv[2], EmbedConfig(files_per_batch=1), cache=EmbeddingCache(sys.argv[3]))
"""


@pytest.mark.slow
def test_sigkill_during_birdnet_embed_at_a_random_moment(tmp_path):
    """No hook: BirdNET embeds file after file and the process is killed at some moment after its
    first commit; the resumed archive equals a clean one, window for window and vector for vector."""
    _birdnet_or_skip()
    from birdcore.archive.vector_store import read_vectors

    src = tmp_path / "rec"
    for i in range(8):
        write_wav(src / f"r{i}.wav", 8 + i, seed=40 + i, sr=32000)
    arc, layout = tmp_path / "arc", ArchiveLayout(tmp_path / "arc")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _BIRDNET_DRIVER, str(src), str(arc), str(tmp_path / "cache")],
                            env=env, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not layout.table.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(float(np.random.default_rng().uniform(0, 0.3)))  # somewhere inside a later batch
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL) if killed else None
    proc.wait(10)
    assert layout.table.exists(), "the driver never committed a batch"
    assert killed, "the driver finished before the kill: nothing was tested"
    before = len(read_table(layout))
    r = embed_archive([src], arc, EmbedConfig(files_per_batch=1), cache=EmbeddingCache(tmp_path / "cache"))
    table = ids_are_clean(arc)
    clean = embed_archive([src], tmp_path / "clean", cache=EmbeddingCache(tmp_path / "cache"))
    want = ids_are_clean(tmp_path / "clean")
    assert len(table) == clean.windows_total == before + r.windows_added and before < len(table)
    def by_window(archive: Path, t: pd.DataFrame) -> np.ndarray:  # vectors ordered by (path, start)
        ids, vecs = read_vectors(ArchiveLayout(archive), t)
        where = t.set_index("window_id").loc[ids, ["path", "start_s"]]
        return vecs[np.lexsort((where["start_s"].to_numpy(), where["path"].to_numpy()))]

    got_v, want_v = by_window(arc, table), by_window(tmp_path / "clean", want)
    np.testing.assert_allclose(got_v, want_v, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- BirdNET itself

def _birdnet_or_skip():
    from birdcore.pretrained import birdnet as bn

    if not bn.is_available():
        pytest.skip("BirdNET extra not installed (pip install .[birdnet])")
    return bn


@pytest.mark.slow
def test_birdnet_archive_incremental_and_self_search(tmp_path):
    _birdnet_or_skip()
    from helpers.synth import voice

    rng = np.random.default_rng(0)
    src = tmp_path / "rec"
    (src / "sub").mkdir(parents=True)
    for i, secs in enumerate([12.0, 7.0, 16.0]):
        y = voice(i, secs, 32000, rng) + 0.01 * rng.standard_normal(int(secs * 32000)).astype(np.float32)
        sf.write(src / ("sub" if i == 2 else ".") / f"r{i}.wav", y, 32000)
    cache = EmbeddingCache(tmp_path / "emb")
    arc = tmp_path / "arc"
    r1 = embed_archive([src], arc, cache=cache)
    assert r1.windows_added == 3 + 2 + 3 and r1.audio_s_per_s > 0
    assert embed_archive([src], arc, cache=cache).windows_added == 0
    y = voice(3, 11.0, 32000, rng)
    sf.write(src / "r3.wav", y, 32000)
    r3 = embed_archive([src], arc, cache=cache)
    assert (r3.files_embedded, r3.windows_added, r3.windows_total) == (1, 2, 10)
    for exact in (True, False):
        res = search_archive(arc, src / "sub" / "r2.wav", k=3, exact=exact, start_s=5, end_s=10, cache=cache)
        top = res.hits.iloc[0]
        assert top["path"].endswith("r2.wav") and top["start_s"] == 5 and top["score"] > 0.999, res.hits
        # a 10-window archive's index is a flat (exhaustive) one: the result says exact either way
        assert res.method == "exact" and ("faiss flat" in res.detail) == (not exact and vi.faiss_module() is not None)
    default = search_archive(arc, src / "r0.wav", k=1, cache=cache)
    assert "first window" in default.query and default.hits["start_s"].iloc[0] == 0
