"""Pseudo-labelled windows in a training run: read the table, draw them into epochs, load their audio.

A pseudo-labelled window is a 5-s window of an unlabeled recording with the teacher's targets
(`birdcore.pretrained.teacher`). It trains beside the labelled clips and never validates: the
validation rows, the out-of-fold table and every score of a run come from labelled rows only
(`check_no_validation_audio` refuses a table holding windows of a validation recording).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from birdcore.audio.windows import WINDOW_S
from birdcore.augment.batch_mix import union_targets
from birdcore.augment.pipeline import load_training_clip
from birdcore.augment.window import SpanSource, as_source
from birdcore.config.run import RunConfig
from birdcore.errors import AudioError, ConfigError, DatasetError, not_found_message
from birdcore.pretrained.teacher import INFO_COLUMNS, KEY_COLUMNS


@dataclass
class PseudoWindows:
    """The windows of a pseudo-label table, aligned to a run's classes."""

    path: Path                 # the table
    files: list[str]           # (M,) audio path of each window
    starts: np.ndarray         # (M,) window start in seconds
    ends: np.ndarray           # (M,) window end in seconds
    targets: np.ndarray        # (M, K) float32 in [0, 1] or NaN (no opinion), the run's class order
    teachers: list[str]        # distinct teacher names in the table
    missing_classes: list[str]  # run classes the table has no column for (targets NaN)

    def __len__(self) -> int:
        return len(self.files)


def read_pseudo_windows(path: str | os.PathLike, classes: list[str]) -> PseudoWindows:
    """Read and check a pseudo-label table for a run with `classes`.

    DatasetError, naming the table, when it is missing, unreadable or empty, lacks `file_id, end_time,
    path`, shares no class with the run, holds a target outside [0, 1] or not a number, or names
    an audio file that does not exist. An empty cell, and every class without a column, is NaN:
    the teacher has no opinion there, and `ClipLoss` leaves it out.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(not_found_message(p, "pseudo-label table") if not p.exists()
                           else f"{p}: a pseudo-label table must be a CSV file")
    try:
        df = pd.read_csv(p)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{p}: not a readable pseudo-label CSV ({str(exc).splitlines()[0]})") from None
    if df.empty:
        raise DatasetError(f"{p}: the pseudo-label table has no windows")
    need = KEY_COLUMNS + ["path"]
    lacking = [c for c in need if c not in df.columns]
    if lacking:
        raise DatasetError(f"{p}: pseudo-label table lacks column(s) {', '.join(lacking)}"
                           " (expected file_id, end_time, path, [teacher,] one column per class)")
    present = [c for c in classes if c in df.columns]
    if not present:
        others = [c for c in df.columns if c not in KEY_COLUMNS + INFO_COLUMNS]
        raise DatasetError(f"{p}: no column for any of the run's {len(classes)} classes (the table has"
                           f" {', '.join(map(str, others[:8])) or 'none'})")
    # NaN = the teacher has no opinion (a class it lacks, an empty cell): masked out of the loss
    targets = np.full((len(df), len(classes)), np.nan, np.float32)
    for k, c in enumerate(classes):
        if c not in df.columns:
            continue
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
        empty = df[c].isna().to_numpy()
        bad = ~empty & (~np.isfinite(v) | (v < 0) | (v > 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{p}: line {row + 2}, column {c}: {df[c].iloc[row]!r} is not a target in [0, 1]")
        targets[:, k] = v
    ends = pd.to_numeric(df["end_time"], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(ends).all() or (ends <= 0).any():
        row = int(np.flatnonzero(~np.isfinite(ends) | (ends <= 0))[0])
        raise DatasetError(f"{p}: line {row + 2}: end_time {df['end_time'].iloc[row]!r} is not a positive number")
    files = [str(f) for f in df["path"].astype(str)]
    gone = sorted({f for f in files if not Path(f).is_file()})
    if gone:
        raise DatasetError(f"{p}: {len(gone)} audio file(s) of its windows not found, e.g. {gone[0]}")
    teachers = sorted(set(df["teacher"].astype(str))) if "teacher" in df.columns else []
    return PseudoWindows(path=p, files=files, starts=np.maximum(ends - WINDOW_S, 0.0), ends=ends, targets=targets,
                         teachers=teachers, missing_classes=[c for c in classes if c not in df.columns])


def check_no_validation_audio(windows: PseudoWindows, validation_paths: list[str]) -> None:
    """ConfigError when a pseudo-labelled window comes from a validation recording: its teacher's
    targets would then leak into the score the run is judged by."""
    val = {os.path.realpath(v) for v in validation_paths}
    hits = sorted({f for f in windows.files if os.path.realpath(f) in val})
    if hits:
        raise ConfigError(f"pseudo.labels {windows.path}: {len(hits)} recording(s) of its windows are validation"
                          f" recordings of this run (e.g. {hits[0]}); pseudo-labelled windows must come from"
                          " audio that never validates")


class PseudoDataset(Dataset):
    """Yields (waveform, soft target, loss weight) for pseudo-labelled windows.

    A window is read with the training augmentations (`load_training_clip` on the window's span).
    With probability `pseudo.mix_labelled` a labelled training clip (`labelled_clip(rng)` →
    (waveform, target)) is mixed in at a random share, its labels joined to the window's.
    """

    def __init__(self, windows: PseudoWindows, cfg: RunConfig, seed: int, labelled_clip=None) -> None:
        self.w, self.cfg, self.seed = windows, cfg, seed
        self.labelled_clip = labelled_clip
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.w)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, 7_777_777, i])
        sr, secs = self.cfg.sample_rate, self.cfg.data.clip_seconds
        src = SpanSource(as_source(self.w.files[i], sr), float(self.w.starts[i]), float(self.w.ends[i]))
        try:
            y = load_training_clip(src, self.cfg.augment, rng, seconds=secs, sr=sr)
        except AudioError as exc:
            raise AudioError(f"{self.w.files[i]}: pseudo-labelled window ending at {self.w.ends[i]:g} s: {exc}") from None
        target = self.w.targets[i]
        if self.labelled_clip is not None and rng.random() < self.cfg.pseudo.mix_labelled:
            clip, clip_target = self.labelled_clip(rng)
            share = float(rng.uniform(0.3, 0.7))  # the labelled call stays audible, the soundscape too
            y = share * np.asarray(y, np.float32) + (1 - share) * np.asarray(clip, np.float32)
            target = union_targets(torch.from_numpy(np.asarray(target, np.float32)),
                                   torch.from_numpy(np.asarray(clip_target, np.float32))).numpy()
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), \
            torch.from_numpy(np.asarray(target, dtype=np.float32)), torch.tensor(self.cfg.pseudo.loss_weight)


class MixedDataset(Dataset):
    """Labelled rows at indices [0, n_labelled), pseudo-labelled windows after them."""

    def __init__(self, labelled: Dataset, pseudo: PseudoDataset) -> None:
        self.labelled, self.pseudo = labelled, pseudo

    @property
    def epoch(self) -> int:
        return self.labelled.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.labelled.epoch = value
        self.pseudo.epoch = value

    def __len__(self) -> int:
        return len(self.labelled) + len(self.pseudo)

    def __getitem__(self, i: int):
        n = len(self.labelled)
        return self.labelled[i] if i < n else self.pseudo[i - n]


class MixedSampler(Sampler[int]):
    """Each epoch: the labelled order of `labelled` (an `EpochSampler`), plus `n_pseudo_per_epoch`
    pseudo-labelled windows (without replacement while there are enough), shuffled together; with
    `only`, every pseudo-labelled window once and no labelled row. Seeded from (seed, epoch), so a
    resumed run draws the batches the uninterrupted run would have, and sharded per rank."""

    def __init__(self, labelled: Sampler, n_labelled: int, n_pseudo: int, n_pseudo_per_epoch: int, seed: int,
                 only: bool = False, rank: int = 0, world: int = 1) -> None:
        self.labelled, self.n_labelled, self.n_pseudo = labelled, n_labelled, n_pseudo
        self.per_epoch = n_pseudo if only else n_pseudo_per_epoch
        self.only, self.seed, self.rank, self.world = only, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.labelled.set_epoch(epoch)

    def _total(self) -> int:
        return (0 if self.only else self.n_labelled) + self.per_epoch

    def __len__(self) -> int:
        return -(-self._total() // self.world)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch + 500_009)
        if self.per_epoch <= self.n_pseudo:
            pseudo = torch.randperm(self.n_pseudo, generator=g)[: self.per_epoch]
        else:
            pseudo = torch.randint(self.n_pseudo, (self.per_epoch,), generator=g)
        pseudo = pseudo + self.n_labelled
        if self.only:
            order = pseudo
        else:
            # the labelled sampler is sharded per rank: take its full order from a 1-rank copy
            lab = torch.tensor(list(_whole(self.labelled)), dtype=torch.long)
            both = torch.cat([lab, pseudo])
            order = both[torch.randperm(len(both), generator=g)]
        total = len(self) * self.world
        order = torch.cat([order, order[: total - len(order)]]) if total > len(order) else order
        return iter(order[self.rank::self.world].tolist())


def _whole(sampler):
    """The sampler's order over all ranks (an `EpochSampler` with world 1)."""
    rank, world = sampler.rank, sampler.world
    sampler.rank, sampler.world = 0, 1
    try:
        return list(iter(sampler))
    finally:
        sampler.rank, sampler.world = rank, world
