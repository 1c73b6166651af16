"""`embed_archive`: every 5-s window of some recordings → an archive (window table + vectors + index).

Incremental: a file whose (path, content digest) is already in the table is skipped; a file whose
content changed at the same path gets new windows and its old ones leave the table in the same
commit. Resumable: files are embedded in batches, and each batch commits its shard and then the
table atomically (see `window_table`), so a SIGKILL loses at most the batch in flight; the next run
deletes that batch's orphan shard and re-embeds only what the table lacks (the embedding cache
usually still holds it). One writer at a time: the whole run holds the archive lock.

Distributed runs (`ray_address`, `birdcore embed --ray ADDRESS`): Ray tasks only fill the shared
embedding cache with the files to embed (`ray_embed`); this function then commits them from cache
hits exactly as a local run does, so the commit protocol, the orphan rule and the lock stay as here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from birdcore.archive.layout import ArchiveLayout, Manifest, ensure_manifest
from birdcore.archive.sources import SourceFile, collect_sources
from birdcore.archive.vector_index import IndexReport, read_index_meta, sync_index
from birdcore.archive.vector_store import discard_orphans, next_shard_id, write_shard
from birdcore.archive.window_embeddings import FileWindows, embed_files
from birdcore.archive.window_table import (
    COLUMNS,
    commit_rows,
    next_window_id,
    read_table,
)
from birdcore.atomic_io import file_lock
from birdcore.audio.io import audio_duration
from birdcore.errors import AudioError, ConfigError
from birdcore.pretrained.birdnet import (
    DEFAULT_BATCH,
    MODEL_TAG,
    embed_chunks,
    load_birdnet,
)
from birdcore.pretrained.embedding_cache import EmbeddingCache

EMBEDDING_DIM = 1024  # BirdNET V2.4's embedding size (checked against the model's own when it runs)


@dataclass(frozen=True)
class EmbedConfig:
    """How `embed_archive` cuts, batches and runs. `files_per_batch` is the commit unit: a kill
    loses at most one batch of work; smaller batches rewrite the table more often."""

    window_s: float = 5.0
    hop_s: float = 1.0
    min_last_s: float = 1.5
    num_threads: int = 2
    files_per_batch: int = 16
    chunk_batch: int = DEFAULT_BATCH
    dtype: str = "float32"  # of the stored vectors (see `layout.Manifest.dtype`)
    build_index: bool = True


@dataclass
class EmbedResult:
    """What one `embed_archive` run did."""

    archive: Path
    files_found: int = 0
    files_embedded: int = 0
    files_unchanged: int = 0
    files_changed: int = 0
    windows_added: int = 0
    windows_removed: int = 0
    windows_total: int = 0
    audio_s: float = 0.0
    embed_s: float = 0.0
    cache_hits: int = 0
    orphans_discarded: int = 0
    ray: Any = None  # ray_embed.RayFillReport when the run used a Ray cluster
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    missing: list[str] = field(default_factory=list)  # dataset rows whose audio file is absent
    index: IndexReport | None = None

    @property
    def audio_s_per_s(self) -> float:
        """Seconds of audio embedded per second of wall time (0 when nothing was embedded)."""
        return self.audio_s / self.embed_s if self.embed_s > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary `birdcore embed` prints."""
        out = [f"archive      {self.archive}",
               f"files        {self.files_found} found: {self.files_embedded} embedded"
               f" ({self.files_changed} changed), {self.files_unchanged} skipped as unchanged",
               f"windows      {self.windows_added} added, {self.windows_removed} removed (changed files),"
               f" {self.windows_total} in the archive",
               f"speed        {self.audio_s:.0f} s of audio in {self.embed_s:.1f} s = {self.audio_s_per_s:.0f}"
               f" audio s/s ({self.cache_hits} file(s) from the embedding cache)"]
        if self.ray is not None:
            out.append(f"ray          {self.ray.line()}")
        if self.orphans_discarded:
            out.append(f"recovered    {self.orphans_discarded} uncommitted shard file(s) of an interrupted run"
                       " discarded")
        if self.index is not None:
            out += [f"index        {line}" for line in self.index.lines()]
        for path, why in self.skipped[:10]:
            out.append(f"skipped      {path}: {why}")
        if len(self.skipped) > 10:
            out.append(f"skipped      … and {len(self.skipped) - 10} more unreadable file(s)")
        if self.missing:
            out.append(f"missing      {len(self.missing)} file(s) listed in train_metadata.csv are absent,"
                       f" e.g. {self.missing[0]}")
        return out


def _check(cfg: EmbedConfig) -> None:
    if cfg.num_threads < 1:
        raise ConfigError(f"threads={cfg.num_threads}: must be >= 1")
    if cfg.files_per_batch < 1:
        raise ConfigError(f"files_per_batch={cfg.files_per_batch}: must be >= 1")
    if cfg.dtype not in ("float16", "float32"):
        raise ConfigError(f"dtype={cfg.dtype!r}: use 'float16' or 'float32'")


Embedded = list[tuple[SourceFile, FileWindows]]


def _embed_batch(files: list[SourceFile], cache: EmbeddingCache, cfg: EmbedConfig, model: Any,
                 progress: Callable[[int, int], None] | None) -> tuple[Embedded, list[tuple[str, str]]]:
    """Embed one batch; an unreadable file is set aside (batch retried file by file) instead of failing all."""
    kw = dict(window_s=cfg.window_s, hop_s=cfg.hop_s, min_last_s=cfg.min_last_s, num_threads=cfg.num_threads,
              batch_size=cfg.chunk_batch, model=model)
    try:
        return list(zip(files, embed_files([f.path for f in files], cache, progress=progress, **kw))), []
    except AudioError:
        pass
    done, bad = [], []
    for f in files:
        try:
            done.append((f, embed_files([f.path], cache, **kw)[0]))
        except AudioError as exc:
            bad.append((f.path, str(exc).removeprefix(f"{f.path}: ")))
    return done, bad


def _rows(done: Embedded, digests: dict[str, str], first_id: int,
          shard_id: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The table rows and the stacked vectors of one embedded batch."""
    parts, mats, at = [], [], 0
    for f, w in done:
        n = len(w.vectors)
        parts.append(pd.DataFrame({
            "window_id": np.arange(first_id + at, first_id + at + n, dtype=np.int64), "path": f.path,
            "digest": digests[f.path], "start_s": w.start_s, "end_s": w.end_s, "source": f.source,
            "shard": shard_id, "row": np.arange(at, at + n, dtype=np.int64),
            "norm": np.linalg.norm(w.vectors, axis=1).astype(np.float32)}))
        mats.append(w.vectors)
        at += n
    rows = pd.concat(parts, ignore_index=True).astype({c: t for c, t in COLUMNS.items() if t != "object"})
    return rows, np.concatenate(mats)


def embed_archive(sources: Sequence[str | os.PathLike], archive_dir: str | os.PathLike,
                  config: EmbedConfig | None = None, *, cache: EmbeddingCache | None = None, model: Any = None,
                  progress: Callable[[int, int], None] | None = None, ray_address: str | None = None) -> EmbedResult:
    """Embed every window of the recordings under `sources` into the archive at `archive_dir`.

    `sources`: dataset folders, folders of recordings (sub-folders included) or audio files.
    `progress(done, total)` counts files to embed (unchanged files are not counted). `cache`:
    the embedding cache (default: the shared one, `$BIRDCORE_EMBEDDING_CACHE`). Unreadable files
    are listed in the result, not fatal. Raises BirdcoreError for bad sources or a foreign archive,
    ModelError when the BirdNET extra is missing and there is something to embed. `ray_address`
    (`HOST:PORT` or `auto`): the files to embed are embedded into the cache by Ray tasks on that
    cluster first (`ray_embed`; the cache folder must then be shared by every node).
    """
    cfg = config or EmbedConfig()
    _check(cfg)
    if ray_address is not None:
        from birdcore.archive.ray_embed import import_ray

        import_ray()  # the missing extra fails here, before any work
        if cache is not None and cache.compute_fn is not embed_chunks:
            raise ConfigError("ray_address: Ray workers run BirdNET itself; a custom compute_fn cannot be used")
    layout = ArchiveLayout(Path(archive_dir))
    found = collect_sources(sources)
    cache = cache or EmbeddingCache()
    wanted = Manifest(model_tag=MODEL_TAG, dim=EMBEDDING_DIM, dtype=cfg.dtype, window_s=cfg.window_s,
                      hop_s=cfg.hop_s, min_last_s=cfg.min_last_s)
    result = EmbedResult(archive=layout.root, files_found=len(found.files), missing=found.missing)
    layout.root.mkdir(parents=True, exist_ok=True)
    with file_lock(layout.lock):
        manifest = ensure_manifest(layout, wanted)
        table = read_table(layout)
        result.orphans_discarded = len(discard_orphans(layout, table))
        have = set(zip(table["path"], table["digest"]))
        known_paths = set(table["path"])
        digests: dict[str, str] = {}
        todo: list[SourceFile] = []
        for f in found.files:
            try:
                digests[f.path] = cache.content_digest(f.path)
            except (AudioError, OSError) as exc:
                result.skipped.append((f.path, str(exc)))
                continue
            if (f.path, digests[f.path]) in have:
                result.files_unchanged += 1
            else:
                todo.append(f)
        meta = read_index_meta(layout)
        index_max = meta.max_id if meta is not None else -1
        if todo and model is None and cache.compute_fn is embed_chunks and ray_address is None:
            model = load_birdnet(cfg.num_threads)  # loaded before the clock starts: the figure is the steady rate
        hits0 = cache.hits
        t0 = time.perf_counter()
        if todo and ray_address is not None:
            from birdcore.archive.ray_embed import fill_cache_with_ray

            result.ray = fill_cache_with_ray([f.path for f in todo], cache.cache_dir, ray_address,
                                             window_s=cfg.window_s, hop_s=cfg.hop_s, min_last_s=cfg.min_last_s,
                                             num_threads=cfg.num_threads, batch_size=cfg.chunk_batch,
                                             progress=progress)
            progress = None  # the bar is full; the commits below read the cache
        for b in range(0, len(todo), cfg.files_per_batch):
            batch = todo[b:b + cfg.files_per_batch]
            inner = (lambda d, _t, base=b: progress(base + d, len(todo))) if progress else None
            done, bad = _embed_batch(batch, cache, cfg, model, inner)
            result.skipped += bad
            if done:
                if done[0][1].vectors.shape[1] != manifest.dim:
                    raise AssertionError(f"embedding size {done[0][1].vectors.shape[1]} != archive's {manifest.dim}")
                rows, vectors = _rows(done, digests, next_window_id(table, index_max), next_shard_id(layout, table))
                write_shard(layout, int(rows["shard"].iloc[0]), vectors, manifest.dtype)
                replaced = {f.path for f, _ in done if f.path in known_paths}
                before = len(table)
                table = commit_rows(layout, table, rows, replaced)  # the commit point of this batch
                result.windows_added += len(rows)
                result.windows_removed += before + len(rows) - len(table)
                result.files_embedded += len(done)
                result.files_changed += len(replaced)
                result.audio_s += sum(_duration(f.path, w) for f, w in done)
                known_paths |= {f.path for f, _ in done}
            if progress:  # also after batches read from the cache, which the inner callback never sees
                progress(min(b + len(batch), len(todo)), len(todo))
        result.embed_s = time.perf_counter() - t0
        result.cache_hits = cache.hits - hits0
        result.windows_total = len(table)
        if cfg.build_index:
            result.index = sync_index(layout, manifest, table)
        discard_orphans(layout, table)  # shards whose every window was replaced (changed files) go too
    return result


def _duration(path: str, windows: FileWindows) -> float:
    """The recording's length from its header (the window grid overstates a partial last window)."""
    try:
        return float(audio_duration(path))
    except (AudioError, OSError):
        return float(len(windows.vectors)) * float(windows.end_s[0] - windows.start_s[0])
