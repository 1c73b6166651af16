"""`embed_archive(..., ray_address=...)` / `birdcore embed --ray`: BirdNET on a local Ray cluster.

The slow test starts a real Ray head on 127.0.0.1 (no dashboard, no usage stats) with `ray start`,
embeds three generated recordings through it and checks that Ray worker processes filled the
embedding cache and that the archive equals one made without Ray. `ray stop` always runs after it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdcore.archive import EmbedConfig, embed_archive
from birdcore.archive.layout import ArchiveLayout
from birdcore.archive.ray_embed import RAY_MISSING
from birdcore.archive.vector_store import read_vectors
from birdcore.archive.window_table import read_table
from birdcore.errors import BirdcoreError
from birdcore.pretrained.embedding_cache import EmbeddingCache


def test_ray_without_the_extra_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import birdcore.cli as cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    src = tmp_path / "rec"
    src.mkdir()
    t0 = time.perf_counter()
    with pytest.raises(BirdcoreError, match="optional Ray extra"):
        embed_archive([src], tmp_path / "arc", ray_address="127.0.0.1:6379")
    assert cli.main(["embed", str(src), "--archive", str(tmp_path / "arc"), "--ray", "auto"]) == 2
    assert time.perf_counter() - t0 < 1.0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and RAY_MISSING in err, err
    assert not (tmp_path / "arc").exists()  # failed before any work


def _ray_processes_running() -> bool:
    """Whether some Ray cluster already runs on this machine (`ray stop` would stop it too)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("raylet", "gcs_server"):
                return True
        except OSError:
            pass
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(request):
    """`127.0.0.1:PORT` of a fresh local Ray head (2 CPUs); `ray stop` in a finalizer."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray extra not installed (pip install -r requirements-ray.txt)")
    from birdcore.pretrained import birdnet as bn

    if not bn.is_available():
        pytest.skip("BirdNET extra not installed (pip install --no-deps -r requirements-birdnet.txt)")
    if _ray_processes_running():
        pytest.skip("a Ray cluster already runs on this machine; this test's `ray stop` would stop it")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="bc-ray-")  # short: Ray's unix sockets live under it

    def stop() -> None:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)

    request.addfinalizer(stop)
    started = subprocess.run([ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                              "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
                              "--temp-dir", temp_dir], env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    return f"127.0.0.1:{port}"


def _by_window(archive: Path) -> tuple[list, np.ndarray]:
    """(window id, path, start) per window and the vectors, in window id order."""
    layout = ArchiveLayout(archive)
    table = read_table(layout)
    ids, vecs = read_vectors(layout, table)
    order = np.argsort(ids)
    t = table.set_index("window_id").loc[np.asarray(ids)[order]]
    keys = [(int(i), p, float(s)) for i, p, s in zip(t.index, t["path"], t["start_s"])]
    return keys, vecs[order]


@pytest.mark.slow  # a real Ray head + BirdNET in 2 worker processes: ~20-30 s
def test_ray_workers_fill_the_cache_and_the_archive_equals_a_local_one(tmp_path, ray_head, monkeypatch):
    from helpers.synth import voice

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    rng = np.random.default_rng(3)
    src = tmp_path / "rec"
    src.mkdir()
    for i, secs in enumerate([9.0, 6.0, 12.0]):
        y = voice(i, secs, 32000, rng) + 0.01 * rng.standard_normal(int(secs * 32000)).astype(np.float32)
        sf.write(src / f"r{i}.wav", y, 32000)
    cfg = EmbedConfig(files_per_batch=2)

    cache = EmbeddingCache(tmp_path / "ray-cache")
    r = embed_archive([src], tmp_path / "arc-ray", cfg, cache=cache, ray_address=ray_head)
    assert r.ray is not None and r.ray.files_sent == 3 and r.ray.files_computed == 3 and not r.ray.failed
    assert r.ray.worker_pids and os.getpid() not in r.ray.worker_pids  # Ray worker processes wrote the cache
    assert cache.computed == 0 and r.cache_hits == 3  # the driver only read the cache, then committed
    assert len(list((tmp_path / "ray-cache").glob("*/*/*.npz"))) == 3
    assert r.files_embedded == 3 and r.windows_total == 2 + 1 + 3 and "Ray worker" in "\n".join(r.lines())

    again = embed_archive([src], tmp_path / "arc-ray", cfg, cache=cache, ray_address=ray_head)
    assert again.files_unchanged == 3 and again.ray is None  # incremental: nothing to send to Ray

    local = embed_archive([src], tmp_path / "arc-local", cfg, cache=EmbeddingCache(tmp_path / "local-cache"))
    got_keys, got = _by_window(tmp_path / "arc-ray")
    want_keys, want = _by_window(tmp_path / "arc-local")
    assert local.windows_total == r.windows_total and got_keys == want_keys
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
