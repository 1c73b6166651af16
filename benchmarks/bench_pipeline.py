"""Throughput of the training input pipeline for 5-s clips, stage by stage.

    python benchmarks/bench_pipeline.py [--clips 256] [--threads 2] [--files 6]

Writes a few 30-s, 32 kHz OGG Vorbis files of noise + tones into a temp dataset (no dependency on
the demo dataset), builds the decoded-audio cache, then prints clips/s for:

1. decode OGG + random crop (libsndfile seek + decode of the window only);
2. cache read + random crop (memory-mapped int16 .npy);
3. waveform augmentations, default `AugmentConfig` (per clip, NumPy / audiomentations);
4. mel front end on CPU, batches of 32 (`MelFrontend`, torch threads = --threads);
5. full default training pipeline: cache read + waveform augs + mixup + mel + SpecAugment, serial
   in one process; the batch stage as the training loop runs it (`loop.model_input`: SpecAugment on
   the one-channel image, then the three channel copies straight into channels-last format);
6. the same through a real `torch.utils.data.DataLoader` (1 worker process for the per-clip
   stage, batch stage in the main process);

and which stage limits the full pipeline (largest share of its CPU time). Wall-clock clips/s on a
shared machine vary with other load (the load average is printed); single-thread clips per
CPU-second do not, and give the estimate for 2 idle cores (`--threads 1`).

History (one thread, clips per CPU-s, load average in brackets): before issue 17 item 5 the
per-clip stage ran 167 and the batch stage 120, estimate 140 clips/s for 2 idle cores [6.2];
after it 206 and 161, estimate 181 clips/s [5.8] — stage 3 (waveform augs) 161 → 300 (float32
noise, one global-state save per chain), stage 4 (mel) 140 → 227 (CPU pieces of a few clips).
What is left of the batch stage besides the mel (~4.4 ms per clip) is mixup (~0.7 ms: a clone
of the whole waveform batch, `birdcore.augment.batch_mix`), dB/normalisation, SpecAugment on one
channel and the channels-last copy (~1.1 ms together). With mixup and SpecAugment free the batch
stage would be the mel's 227 and the estimate 2 / (1/206 + 1/227) = 216 clips/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdcore.audio.cache import build_cache, open_cache  # noqa: E402
from birdcore.audio.io import load_audio  # noqa: E402
from birdcore.augment.pipeline import (  # noqa: E402
    WaveformPipeline,
    apply_spec_augment,
    load_training_clip,
    mix_batch,
)
from birdcore.augment.window import read_window  # noqa: E402
from birdcore.config.augment import AugmentConfig  # noqa: E402
from birdcore.config.features import MelConfig  # noqa: E402
from birdcore.data.dataset import load_dataset  # noqa: E402
from birdcore.features.mel_frontend import MelFrontend  # noqa: E402

SR = 32000
SECONDS = 5.0
BATCH = 32


def write_dataset(root: Path, files: int, seconds: float = 30.0) -> Path:
    """A minimal BirdCLEF-layout folder with `files` recordings of noise + tone bursts."""
    rng = np.random.default_rng(0)
    (root / "train_audio" / "bench1").mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(seconds * SR)) / SR
    for i in range(files):
        tone = 0.3 * np.sin(2 * np.pi * (1500 + 700 * i) * t) * (np.sin(2 * np.pi * 2 * t) > 0)
        y = (0.05 * rng.standard_normal(t.size) + tone).astype(np.float32)
        fn = f"bench1/XC{i:04d}.ogg"
        sf.write(root / "train_audio" / fn, y, SR, format="OGG", subtype="VORBIS")
        rows.append(f"bench1,[],4.0,{fn}")
    (root / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n" + "\n".join(rows) + "\n")
    return root


class Timer:
    """Wall and process-CPU seconds of a block. CPU seconds (all threads of this process) do not
    grow when other programs share the cores, so clips per CPU-second is the load-independent
    figure; on 2 idle cores a stage using both cores reaches up to 2× that in clips/s."""

    def __enter__(self) -> "Timer":
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def rate(n: int, t: Timer) -> str:
    return (f"{n / t.wall:8.1f} clips/s ({t.wall / n * 1000:6.2f} ms/clip)   "
            f"{n / t.cpu:8.1f} clips per CPU-s")


class _ClipSet(torch.utils.data.Dataset):
    """What the training Dataset does per item: cache window + default waveform augmentations."""

    def __init__(self, cache_dir: Path, names: list[str], aug: AugmentConfig) -> None:
        self.cache_dir, self.names, self.aug, self.cache = cache_dir, names, aug, None

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cache is None:
            self.cache = open_cache(self.cache_dir)  # opened in the worker process
        entry = self.cache.entry(self.names[i % len(self.names)])
        return load_training_clip(entry, self.aug, np.random.default_rng(i), seconds=SECONDS, sr=SR)


def batch_stage(wave: torch.Tensor, targets: torch.Tensor, aug: AugmentConfig, frontend: MelFrontend,
                g: torch.Generator) -> torch.Tensor:
    """mixup (waveforms) + mel + SpecAugment, as `birdcore.training.loop.model_input` does it."""
    wave, _y = mix_batch(wave, targets, aug, g)
    image = apply_spec_augment(frontend.normalize(frontend.db(wave)).unsqueeze(1), aug, g)
    return image.expand(-1, frontend.cfg.in_chans, -1, -1).contiguous(memory_format=torch.channels_last)


def run_loader(cache_dir: Path, names: list[str], aug: AugmentConfig, frontend: MelFrontend,
               n: int, threads: int) -> float:
    """Wall seconds for `n` clips through a real DataLoader (1 worker) + batch stage."""
    loader = torch.utils.data.DataLoader(_ClipSet(cache_dir, names, aug), batch_size=BATCH, num_workers=1,
                                         prefetch_factor=4, sampler=range(n + 2 * BATCH))
    g = torch.Generator().manual_seed(0)
    targets = torch.eye(BATCH)
    it = iter(loader)
    with torch.inference_mode():
        for _ in range(2):  # warm-up: worker start, imports
            next(it)
        t0 = time.perf_counter()
        for _ in range(n // BATCH):
            batch_stage(next(it), targets, aug, frontend, g)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--files", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.clips - args.clips % BATCH or BATCH
    aug = AugmentConfig()
    mel_cfg = MelConfig()
    frontend = MelFrontend(mel_cfg).eval()

    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        root = write_dataset(Path(tmp), args.files)
        ds = load_dataset(root)
        paths = ds.audio_paths()
        names = [str(f) for f in ds.metadata["filename"]]
        t0 = time.perf_counter()
        cache_dir = build_cache(ds, workers=2)
        t_cache = time.perf_counter() - t0
        cache = open_cache(cache_dir)
        print(f"cache build: {len(paths)} x 30 s OGG in {t_cache:.2f} s")

        rng = np.random.default_rng(0)
        load_audio(paths[0], SR, 0.0, SECONDS)  # warm-up (imports, file cache)
        with Timer() as r_decode:
            for i in range(n):
                read_window(paths[i % len(paths)], SECONDS, SR, "random", rng)

        entries = [cache.entry(f) for f in names]
        with Timer() as r_cache:
            clips = [read_window(entries[i % len(entries)], SECONDS, SR, "random", rng)[0] for i in range(n)]

        pipe = WaveformPipeline(aug, SR)
        pipe(clips[0], 0)  # warm-up: builds/imports audiomentations
        with Timer() as r_aug:
            for i, y in enumerate(clips):
                pipe(y, np.random.default_rng(i))

        batches = [torch.from_numpy(np.stack(clips[i:i + BATCH])) for i in range(0, n, BATCH)]
        with torch.inference_mode():
            frontend(batches[0])
            with Timer() as r_mel:
                for b in batches:
                    frontend(b)

        # Full pipeline, serial: per-clip work, then per-batch work.
        g = torch.Generator().manual_seed(0)
        targets = torch.eye(BATCH)
        t_clip, t_batch = Timer(), Timer()
        t_clip.wall = t_clip.cpu = t_batch.wall = t_batch.cpu = 0.0
        with torch.inference_mode():
            for s in range(0, n, BATCH):
                with Timer() as a:
                    ys = [load_training_clip(entries[(s + k) % len(entries)], aug, np.random.default_rng(s + k),
                                             seconds=SECONDS, sr=SR) for k in range(BATCH)]
                    wave = torch.from_numpy(np.stack(ys))
                with Timer() as b:
                    batch_stage(wave, targets, aug, frontend, g)
                t_clip.wall += a.wall
                t_clip.cpu += a.cpu
                t_batch.wall += b.wall
                t_batch.cpu += b.cpu
        r_full = Timer()
        r_full.wall, r_full.cpu = t_clip.wall + t_batch.wall, t_clip.cpu + t_batch.cpu
        r_loader = run_loader(cache_dir, names, aug, frontend, n, args.threads)

    load = os.getloadavg()[0]
    print(f"5-s clips, {n} per stage, torch threads {args.threads}, load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"1. decode OGG + crop           {rate(n, r_decode)}")
    print(f"2. cache read + crop           {rate(n, r_cache)}")
    print(f"3. waveform augs (default)     {rate(n, r_aug)}")
    print(f"4. mel front end (batch {BATCH})    {rate(n, r_mel)}")
    print(f"5. full pipeline (serial)      {rate(n, r_full)}   target >= 200 clips/s")
    print(f"6. full pipeline, DataLoader   {n / r_loader:8.1f} clips/s (1 worker process for the per-clip"
          f" stage, batch stage in the main process with {args.threads} torch thread(s))")
    share = {"per-clip (cache read + waveform augs)": t_clip.cpu, "per-batch (mixup + mel + SpecAugment)": t_batch.cpu}
    worst = max(share, key=share.get)
    print(f"   CPU time: per-clip {t_clip.cpu / r_full.cpu:.0%}, per-batch {t_batch.cpu / r_full.cpu:.0%}"
          f" -> limited by {worst}")
    clip_rate, batch_rate = n / t_clip.cpu, n / t_batch.cpu
    if args.threads == 1:
        # Both stages spread over 2 idle cores (workers + main process): harmonic throughput × 2.
        est = 2.0 / (1.0 / clip_rate + 1.0 / batch_rate)
        print(f"   load-independent estimate for 2 idle cores: {est:.0f} clips/s "
              f"(per-clip {clip_rate:.0f} and per-batch {batch_rate:.0f} clips per CPU-s)")
    else:
        print("   (run with --threads 1 for the load-independent estimate: with several torch threads,"
              " CPU time includes OpenMP spin-waiting when other programs hold the cores)")
    print("   on a GPU the mel/SpecAugment/mixup stage is negligible; the bound is then the per-clip"
          f" stage: ~{clip_rate:.0f} clips/s per DataLoader worker core")

if __name__ == "__main__":
    main()
