"""`embed_archive(..., ray_address=...)` / `birdcore embed --ray ADDRESS`: BirdNET on a Ray cluster.

Ray workers only *fill* the content-keyed embedding cache (`EmbeddingCache`): one task per small
batch of files, each task gets the cache folder's path, and each worker process loads BirdNET once
(a module-level model kept between the tasks it runs). The driver then runs the ordinary local
`embed_archive` path, which finds every file in the cache and commits the table, shards and index
itself — so crash safety, incrementality and the single writer (the archive lock) are unchanged:
a killed run leaves at most some extra cache entries, which the next run reuses.

On a cluster of several machines the cache folder (`$BIRDCORE_EMBEDDING_CACHE`) and the recordings
must be on a shared folder mounted at the same path on every node, and birdcore plus the BirdNET
extra must be installed in every node's Python. Ray is an optional extra
(`pip install -r requirements-ray.txt`); the cluster is the user's own (`ray start --head ...`):
this module only connects to it (never starts one, no dashboard) and disconnects afterwards.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from birdcore.errors import AudioError, BirdcoreError, ConfigError

RAY_MISSING = "--ray needs the optional Ray extra: pip install -r requirements-ray.txt"

_WORKER_MODEL: dict[int, Any] = {}  # num_threads -> BirdNET, per Ray worker process (loaded once)


def import_ray() -> Any:
    """The `ray` module; BirdcoreError with the install line when the extra is missing."""
    try:
        import ray
    except ImportError:
        raise BirdcoreError(RAY_MISSING) from None
    return ray


@dataclass
class RayFillReport:
    """What the Ray phase did: files sent to tasks, files the workers embedded, their pids."""

    address: str
    files_sent: int = 0
    files_computed: int = 0
    tasks: int = 0
    seconds: float = 0.0
    worker_pids: set[int] = field(default_factory=set)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why); the local pass reports them

    def line(self) -> str:
        return (f"{self.files_computed} of {self.files_sent} file(s) embedded by {len(self.worker_pids)} Ray worker"
                f" process(es) in {self.tasks} task(s), {self.seconds:.1f} s ({self.address})")


def _fill_task(paths: list[str], cache_dir: str, params: dict) -> dict:
    """Runs in a Ray worker: embed `paths` into the cache at `cache_dir` (BirdNET loaded once per process)."""
    from birdcore.pretrained.birdnet import load_birdnet
    from birdcore.pretrained.embedding_cache import EmbeddingCache

    threads = int(params["num_threads"])
    model = _WORKER_MODEL.get(threads)
    if model is None:
        model = _WORKER_MODEL[threads] = load_birdnet(threads)
    cache = EmbeddingCache(cache_dir)
    failed = []
    for p in paths:  # one by one: an unreadable file does not cost its neighbours
        try:
            cache.get_chunks([p], params["window_s"], params["hop_s"], min_last_s=params["min_last_s"],
                             batch_size=params["batch_size"], num_threads=threads, model=model)
        except AudioError as exc:
            failed.append((p, str(exc)))
    return {"pid": os.getpid(), "computed": cache.computed, "failed": failed}


def _check_reachable(address: str) -> None:
    """ConfigError within seconds when nothing listens at HOST:PORT (Ray itself retries for minutes)."""
    if address in ("auto", "local"):
        return  # `auto` finds the cluster `ray start` recorded on this machine, or fails at once
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--ray {address!r}: use HOST:PORT of a running Ray head (e.g. 127.0.0.1:6379) or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--ray {address}: no Ray head answers there ({exc.strerror or exc});"
                          " start one with `ray start --head`") from None


def fill_cache_with_ray(paths: Sequence[str], cache_dir: str | os.PathLike, address: str, *, window_s: float,
                        hop_s: float, min_last_s: float, num_threads: int, batch_size: int, files_per_task: int = 1,
                        progress: Callable[[int, int], None] | None = None) -> RayFillReport:
    """Embed the `paths` not yet in the cache at `cache_dir` with Ray tasks on the cluster at `address`
    (`HOST:PORT` of a running head, or `auto`). The cache folder must be shared by every node."""
    ray = import_ray()
    report = RayFillReport(address=address)
    todo = [str(p) for p in paths]
    report.files_sent = len(todo)
    if not todo:
        return report
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        _check_reachable(address)
    t0 = time.perf_counter()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster there ({exc})") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(_fill_task)
        params = dict(window_s=float(window_s), hop_s=float(hop_s), min_last_s=float(min_last_s),
                      num_threads=int(num_threads), batch_size=int(batch_size))
        step = max(1, int(files_per_task))
        pending = {task.remote(todo[i:i + step], str(Path(cache_dir).resolve()), params): len(todo[i:i + step])
                   for i in range(0, len(todo), step)}
        report.tasks, done = len(pending), 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done += pending.pop(ref)
                out = ray.get(ref)
                report.worker_pids.add(int(out["pid"]))
                report.files_computed += int(out["computed"])
                report.failed += [tuple(f) for f in out["failed"]]
            if progress:
                progress(done, len(todo))
    finally:
        if started_here:
            ray.shutdown()
    report.seconds = time.perf_counter() - t0
    return report
