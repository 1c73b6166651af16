"""Real recordings end to end: `birdcore import` of ../shared/data/real-birds-wna10 (100 xeno-canto
clips, 10 species), then 5-fold grouped cross-validation of

  - BirdNET raw (its own scores, no training),
  - the plain head on BirdNET embeddings (`birdnet-head` with model.birdnet_prior=false),
  - the BirdNET-started head (`birdnet-head`, the default: BirdNET's logit + a learned residual),
  - the `demo-cpu` CNN (EfficientNet-Lite0 on mels, trained from ImageNet weights),

scored on the same pooled out-of-fold rows: macro ROC-AUC, top-1 accuracy, wall time, and the
seconds of audio BirdNET embedded per second (first embedding into an empty cache).

Then the few-label case the BirdNET-started head is for (`--shots K`, default 2): K labelled clips
per species train, the other clips validate (a `split` column, `data.group_by=split`), repeated
with `--repeats` draws; BirdNET raw, today's head and the BirdNET-started head on the same rows.

    .venv/bin/python benchmarks/bench_real_audio.py [--folds 5] [--cnn-epochs 8] [--skip-cnn] [--shots 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WNA10 = REPO.parent / "shared" / "data" / "real-birds-wna10"
TAXONOMY = REPO.parent / "shared" / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--head-epochs", type=int, default=60)
    ap.add_argument("--cnn-epochs", type=int, default=8)
    ap.add_argument("--skip-cnn", action="store_true")
    ap.add_argument("--shots", type=int, default=2, help="labelled clips per species in the few-label case (0: skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--field-snr", type=float, default=0.0,
                    help="the few-label case again with validation clips mixed into a real field recording at this"
                         " SNR in dB (train clean, validate in field noise: the soundscape shift); nan to skip")
    ap.add_argument("--monitor", default="micro_f1", help="early-stopping metric of both heads (train.monitor; the preset uses micro_f1)")
    args = ap.parse_args()
    if not (WNA10 / "recordings.csv").is_file():
        print(f"skipped: {WNA10} not found (the ../shared folder beside the repo)")
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-real-"))
    os.environ["BIRDCORE_EMBEDDING_CACHE"] = str(work / "emb-cache")  # measure a first embedding

    from birdcore.analysis.cross_validation import birdnet_scores, cross_validate
    from birdcore.audio.io import audio_info
    from birdcore.config.run import load_run_config
    from birdcore.data.dataset import load_dataset
    from birdcore.ingest.importer import import_recordings
    from birdcore.pretrained import EmbeddingCache, load_birdnet

    t0 = time.time()
    res = import_recordings([WNA10 / "recordings.csv"], work / "wna10", taxonomy=TAXONOMY)
    print(f"import: {res.rows} rows, {len(res.species)} species in {time.time() - t0:.2f} s → {res.out}")
    ds = load_dataset(res.out)
    paths = [str(p) for p in ds.audio_paths()]
    audio_s = sum(audio_info(p).duration for p in paths)
    model = load_birdnet()
    t0 = time.time()
    EmbeddingCache().get_chunks(paths, model=model)
    emb_s = time.time() - t0
    print(f"BirdNET embedding: {audio_s:.0f} s of audio in {emb_s:.1f} s = {audio_s / emb_s:.0f} s of audio per second")

    common = [f"train.n_folds={args.folds}", f"train.epochs={args.head_epochs}", "train.patience=15",
              f"train.monitor={args.monitor}"]
    results = []
    plain = cross_validate(res.out, load_run_config("birdnet-head", common + ["model.birdnet_prior=false"]),
                           work / "runs", name="head on embeddings (today)")
    order = plain.filenames
    started = cross_validate(res.out, load_run_config("birdnet-head", common), work / "runs",
                             name="BirdNET-started head").aligned(order)
    raw = birdnet_scores(res.out, order, plain.classes)
    results += [raw, plain, started]
    if not args.skip_cnn:
        cnn = cross_validate(res.out, load_run_config("demo-cpu", [f"train.n_folds={args.folds}",
                                                                   f"train.epochs={args.cnn_epochs}",
                                                                   "train.patience=8"]),
                             work / "runs", name="demo-cpu CNN").aligned(order)
        results.append(cnn)
    print(f"\n{args.folds}-fold grouped CV on {len(order)} real clips ({len(plain.classes)} species), pooled OOF rows:")
    print(f"{'model':<30} {'macro AUC':>10} {'top-1':>7} {'wall s':>8}")
    for r in results:
        s = r.summary()
        print(f"{r.name:<30} {s['macro_auc']:>10.4f} {s['top1']:>7.3f} {s['wall_s']:>8.1f}")
    gap = started.summary()["macro_auc"] - raw.summary()["macro_auc"]
    print(f"\nBirdNET-started head − BirdNET raw: {gap:+.4f} macro AUC (acceptance: ≥ −0.01)")
    print(f"BirdNET-started head − today's head: {started.summary()['macro_auc'] - plain.summary()['macro_auc']:+.4f}")
    if args.shots > 0:
        few_labels(res.out, work, args, common[1:])
        if args.field_snr == args.field_snr:  # not nan
            few_labels(res.out, work, args, common[1:], field_snr=args.field_snr)
    return 0


FIELD = REPO.parent / "shared" / "data" / "real-audio" / "opensoundscape_1min.wav"


def _field_copy(src: Path, out: Path, noise, snr_db: float, rng) -> None:
    """`src` mixed into a random stretch of the real field recording at `snr_db` (mono, 32 kHz WAV)."""
    import numpy as np

    from birdcore.audio.io import load_audio, write_audio

    y = load_audio(src, sr=32000)
    start = int(rng.integers(0, max(1, len(noise) - len(y))))
    n = np.resize(noise[start:start + len(y)], len(y))
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)) + 1e-9)  # noqa: E731
    write_audio(out, (y + n * rms(y) / rms(n) * 10 ** (-snr_db / 20)).astype(np.float32), 32000)


def few_labels(data_dir: Path, work: Path, args, common: list[str], field_snr: float | None = None) -> None:
    """K clips per species train, the rest validate; mean over draws. With `field_snr`, the validation
    clips are mixed into a real field recording first (trained clean, judged in the field)."""
    import numpy as np
    import pandas as pd

    from birdcore.analysis.cross_validation import birdnet_scores, cross_validate
    from birdcore.config.run import load_run_config
    from birdcore.training.folds import assign_folds

    meta_path = data_dir / "train_metadata.csv"
    meta = pd.read_csv(meta_path, dtype=str, keep_default_na=False)
    rows = {"BirdNET raw": [], "head on embeddings (today)": [], "BirdNET-started head": []}
    for rep in range(args.repeats):
        rng = np.random.default_rng(rep)
        split = np.array(["val"] * len(meta), dtype=object)
        for _, idx in meta.groupby("primary_label").indices.items():
            split[rng.choice(idx, args.shots, replace=False)] = "train"
        filenames = meta["filename"].to_numpy(dtype=object).copy()
        if field_snr is not None:
            from birdcore.audio.io import load_audio

            noise = load_audio(FIELD, sr=32000)
            (data_dir / "train_audio" / "field").mkdir(exist_ok=True)
            for i in np.flatnonzero(split == "val"):
                name = f"field/{rep}-{Path(filenames[i]).stem}.wav"
                _field_copy(data_dir / "train_audio" / filenames[i], data_dir / "train_audio" / name, noise,
                            field_snr, rng)
                filenames[i] = name
        meta.assign(split=split, filename=filenames).to_csv(meta_path, index=False)
        folds = assign_folds(meta["primary_label"].to_numpy(), 2, 0, split)
        val_fold = int(folds[split == "val"][0])
        cfg = common + ["data.group_by=split", "train.n_folds=2", f"train.fold={val_fold}"]
        for name, extra in (("head on embeddings (today)", ["model.birdnet_prior=false"]), ("BirdNET-started head", [])):
            c = load_run_config("birdnet-head", cfg + extra)
            res = cross_validate(data_dir, c, work / f"few{rep}", name=name, folds=[val_fold])
            rows[name].append(res.summary())
            order, classes = res.filenames, res.classes
        rows["BirdNET raw"].append(birdnet_scores(data_dir, order, classes).summary())
    meta.to_csv(meta_path, index=False)  # the dataset as imported
    where = "" if field_snr is None else f" mixed into a real field recording at {field_snr:g} dB SNR"
    print(f"\nfew labels: {args.shots} clips per species train, {len(meta) - 10 * args.shots} validate{where};"
          f" mean over {args.repeats} draws")
    print(f"{'model':<30} {'macro AUC':>10} {'top-1':>7}")
    for name, got in rows.items():
        print(f"{name:<30} {np.mean([g['macro_auc'] for g in got]):>10.4f} {np.mean([g['top1'] for g in got]):>7.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
