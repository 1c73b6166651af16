"""Benchmark BirdNET V2.4 on CPU: load time, throughput as a real-time factor, and the fast front end's accuracy.

Real-time factor (RTF) = seconds of audio processed per second of wall time, on the 60-s
soundscape `../shared/data/real-audio/opensoundscape_1min.wav`, 2 interpreter threads.
Scoring and embedding share one invoke (both outputs come from the same pass), so their model
costs are equal; the table still times both public paths. Default windowing: 5-s windows, 3-s
chunks at 0/1/2 s inside each (36 chunks = 108 s of model input per minute of audio).

Each path is timed with both front ends: `auto` (the spectrogram computed outside TFLite,
`birdnet_frontend`) and `graph` (the whole TFLite graph, the reference). Then, on the 100 clips
of `../shared/data/real-birds-wna10` (when present): per-file RTF of `embed_windows` over all
clips, max |Δ probability| and max |Δ embedding| between the two front ends over every window,
and the macro ROC-AUC of BirdNET's clip scores for the 10 species with each front end.

Then the per-file profile of one 1-minute soundscape (`--profile-only` runs just this): each
stage alone (decode + resample, spectrogram front end on one torch thread, CNN on 1 and on 2
TFLite threads, the reduction to windows) and the whole `predict_files` per file, interleaved
with the previous sequential path (front end on `--threads` torch threads, then the CNN) so both
see the same load.

    .venv/bin/python benchmarks/bench_birdnet.py [--repeats 3] [--threads 2] [--profile-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from birdcore.audio.io import load_audio  # noqa: E402
from birdcore.pretrained import birdnet as bn  # noqa: E402

SOUNDSCAPE = REPO.parent / "shared" / "data" / "real-audio" / "opensoundscape_1min.wav"
WNA10 = REPO.parent / "shared" / "data" / "real-birds-wna10"
TAXONOMY = REPO.parent / "shared" / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv"


def interleaved_medians(cases: list[tuple[str, int, Callable[[], object]]], repeats: int) -> list[float]:
    """Median wall time per case. Each case is warmed up once (the first invoke after a tensor
    re-allocation is ~2x slower while XNNPACK packs weights); then the cases are timed in
    round-robin, so a burst of load from another process hits all of them alike."""
    for _, _, fn in cases:
        fn()
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for k, (_, _, fn) in enumerate(cases):
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=bn.DEFAULT_BATCH)
    ap.add_argument("--profile-only", action="store_true", help="only the per-file profile of the 1-min soundscape")
    args = ap.parse_args()
    if not bn.is_available():
        print("BirdNET extra not installed: pip install -r requirements-birdnet.txt")
        return 1
    if not SOUNDSCAPE.exists():
        print(f"needs {SOUNDSCAPE}")
        return 1

    import torch  # imported before timing the load: the fast front end uses it, and so does every trainer

    if args.profile_only:
        profile(args)
        return 0
    models = {}
    for front_end in ("auto", "graph"):
        t = time.perf_counter()
        models[front_end] = bn.load_birdnet(num_threads=args.threads, front_end=front_end)
        m = models[front_end]
        print(f"model load, front end {front_end!r} -> {m.front_end}: {time.perf_counter() - t:.2f} s"
              + (f" (load check: relative max |Δ| {m.front_end_delta:.1e})" if m.front_end_delta is not None else ""))
    model = models["auto"]
    print(f"{model.num_classes} classes, embedding dim {model.embedding_dim}; torch threads {torch.get_num_threads()}")

    audio_s = 60.0
    t = time.perf_counter()
    y = load_audio(SOUNDSCAPE, sr=bn.SAMPLE_RATE)
    decode_s = time.perf_counter() - t
    print(f"decode + resample 32->48 kHz of {len(y) / bn.SAMPLE_RATE:.1f} s: {decode_s * 1000:.0f} ms")

    _, starts, _ = bn.window_plan(len(y))
    chunks = np.stack([y[s:s + bn.CHUNK_SAMPLES] for s in starts])
    print(f"{len(chunks)} chunks of 3 s per minute (5-s windows, hop 1 s)\n")
    cases: list[tuple[str, int, Callable[[], object]]] = []
    for name, m in models.items():
        b = args.batch
        cases += [
            (f"[{name}] score_chunks (model only)", b, lambda m=m: m.score_chunks(chunks, batch_size=b)),
            (f"[{name}] embed_chunks (model only)", b, lambda m=m: m.embed_chunks(chunks, batch_size=b)),
            (f"[{name}] embed_windows(file)", b, lambda m=m: bn.embed_windows([SOUNDSCAPE], batch_size=b, model=m)),
        ]
        if TAXONOMY.exists():
            cases.append((f"[{name}] score_windows(file), all codes", b, lambda m=m: bn.score_windows(
                SOUNDSCAPE, taxonomy_csv=TAXONOMY, batch_size=b, model=m)))
    if args.batch != 1:
        cases.append(("[auto] embed_chunks (model only)", 1, lambda: model.embed_chunks(chunks, batch_size=1)))
    cases.sort(key=lambda c: c[0])
    print(f"{'path':<46}{'batch':>6}{'wall s':>9}{'RTF':>8}{'chunk RTF':>11}")
    for (name, batch, _), wall in zip(cases, interleaved_medians(cases, args.repeats)):
        # RTF: seconds of recording per wall second; chunk RTF: seconds of model input (3 s x chunks).
        print(f"{name:<46}{batch:>6}{wall:>9.3f}{audio_s / wall:>8.1f}{3 * len(chunks) / wall:>11.1f}")
    real_audio(models, args.batch)
    profile(args)
    # Shared 2-core machines: a load average above the core count means the figures are pessimistic.
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


def real_audio(models: dict, batch: int) -> None:
    """Per-file RTF over the wna10 clips and the two front ends' agreement on them."""
    if not (WNA10 / "recordings.csv").exists():
        print(f"\n{WNA10} not found: per-file RTF and accuracy on real clips skipped")
        return
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from birdcore.audio.io import audio_duration

    meta = pd.read_csv(WNA10 / "recordings.csv")
    paths = [WNA10 / f for f in meta["filename"]]
    audio_s = sum(audio_duration(p) for p in paths)
    species = sorted(meta["ebird_code"].unique())
    out = {}
    print(f"\n== {len(paths)} real clips ({WNA10.name}, {audio_s / 60:.1f} min, decode included)")
    for name, m in models.items():
        t = time.perf_counter()
        index, emb = bn.embed_windows(paths, batch_size=batch, model=m)
        embed_s = time.perf_counter() - t
        t = time.perf_counter()
        scores = bn.predict_files(paths, species, taxonomy_csv=TAXONOMY, batch_size=batch, model=m) if TAXONOMY.exists() else None
        score_s = time.perf_counter() - t
        out[name] = (emb, scores)
        print(f"[{name}] embed_windows {audio_s / embed_s:6.1f}x real time ({embed_s:.1f} s); "
              f"predict_files {audio_s / score_s:6.1f}x ({score_s:.1f} s)")
    (ea, sa), (eg, sg) = out["auto"], out["graph"]
    print(f"max |Δ embedding| over {len(ea)} windows: {np.abs(ea - eg).max():.2e} (embedding max {np.abs(eg).max():.1f})")
    if sa is not None:
        pa, pg = sa[species].to_numpy(), sg[species].to_numpy()
        print(f"max |Δ probability| over {pa.size} window scores: {np.nanmax(np.abs(pa - pg)):.2e}")
        truth = meta.set_index(meta["filename"].map(lambda f: Path(f).stem))["ebird_code"]
        for name, sc in (("auto", sa), ("graph", sg)):
            clip = sc.groupby("file_id")[species].max()
            y = np.stack([(truth.loc[clip.index] == c).to_numpy() for c in species], axis=1)
            aucs = [roc_auc_score(y[:, k], clip[c]) for k, c in enumerate(species) if 0 < y[:, k].sum() < len(y)]
            print(f"[{name}] macro ROC-AUC of clip scores, {len(aucs)} species: {np.mean(aucs):.4f}")


def sequential(model: bn.BirdNET, chunks: np.ndarray, threads: int, batch: int) -> None:
    """The path before the overlap: per batch, the front end on `threads` torch threads, then the CNN."""
    for s in range(0, len(chunks), batch):
        model._invoke(model._front(chunks[s:s + batch], threads=threads))


def profile(args) -> None:
    """Per-file real-time factor on the 1-min soundscape and where its time goes (best of repeats)."""
    taxonomy = TAXONOMY if TAXONOMY.exists() else None
    codes = ["amerob", "norcar", "blujay"] if taxonomy else None
    m2 = bn.load_birdnet(num_threads=args.threads)
    m1 = bn.load_birdnet(num_threads=1)
    y = load_audio(SOUNDSCAPE, sr=bn.SAMPLE_RATE)
    _, starts, _ = bn.window_plan(len(y))
    chunks = np.stack([y[s:s + bn.CHUNK_SAMPLES] for s in starts])
    spec = m2._front(chunks, threads=m2.front_end_threads)
    b = args.batch

    def cnn(m):
        for s in range(0, len(spec), b):
            m._invoke(spec[s:s + b])

    def old_file():
        yy = load_audio(SOUNDSCAPE, sr=bn.SAMPLE_RATE)
        _, st, _ = bn.window_plan(len(yy))
        sequential(m2, np.stack([yy[s:s + bn.CHUNK_SAMPLES] for s in st]), args.threads, b)

    logits = m2.run_chunks(chunks, b)[0]
    _, _, owner = bn.window_plan(len(y))
    stages = [
        ("decode + resample 32->48 kHz", 1, lambda: load_audio(SOUNDSCAPE, sr=bn.SAMPLE_RATE)),
        ("front end, 1 torch thread", 1, lambda: m2._front(chunks, threads=1)),
        (f"front end, {args.threads} torch threads", 1, lambda: m2._front(chunks, threads=args.threads)),
        ("CNN, 1 TFLite thread", 1, lambda: cnn(m1)),
        (f"CNN, {args.threads} TFLite threads", 1, lambda: cnn(m2)),
        ("sigmoid + window max", 1, lambda: np.maximum.reduceat(bn.sigmoid(logits), np.flatnonzero(np.diff(owner, prepend=-1)))),
        (f"file, previous path ({args.threads} + {args.threads} threads, one after the other)", 0, old_file),
        (f"file, predict_files, TFLite {args.threads} threads ({'overlapped' if m2.overlap else 'in turn'})", 0,
         lambda: bn.predict_files([SOUNDSCAPE], codes, taxonomy_csv=taxonomy, batch_size=b, model=m2)),
        (f"file, predict_files, TFLite 1 thread ({'overlapped' if m1.overlap else 'in turn'})", 0,
         lambda: bn.predict_files([SOUNDSCAPE], codes, taxonomy_csv=taxonomy, batch_size=b, model=m1)),
    ]
    load0 = os.getloadavg()[0]
    walls = interleaved_medians([(n, k, f) for n, k, f in stages], max(3, args.repeats))
    print(f"\n== per file: {SOUNDSCAPE.name} (60 s, {len(chunks)} chunks), median of {max(3, args.repeats)} interleaved runs")
    for (name, _, _), wall in zip(stages, walls):
        print(f"  {name:<62} {wall * 1000:7.0f} ms   {60.0 / wall:6.1f}x real time")
    print(f"  load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    raise SystemExit(main())
