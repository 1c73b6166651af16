"""Training data: which recordings and classes a run uses, torch datasets, and the sampler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from birdcore.config.run import RunConfig
from birdcore.data.dataset import BirdDataset
from birdcore.errors import AudioError, DatasetError
from birdcore.training.folds import group_keys
from birdcore.training.losses import sample_weights


@dataclass
class RunData:
    """The rows, classes, targets and weights a run trains and validates on."""

    classes: list[str]
    filenames: list[str]
    paths: list[str]
    targets: np.ndarray        # (N, K) float32, primary 1, secondary `secondary_weight`
    primary: np.ndarray        # (N,) class id of the primary label, -1 when not a class
    primary_labels: list[str]  # (N,) primary species code (fold stratification)
    weights: np.ndarray        # (N,) per-sample loss weight
    counts: np.ndarray         # (K,) primary recordings per class
    spans: list = None         # (N,) (start_s, end_s) of the file a row stands for, or None (whole file)
    groups: np.ndarray = None  # (N,) validation group of each row (`data.group_by`; rows of a group share a fold)


def select_run_data(ds: BirdDataset, cfg: RunConfig) -> RunData:
    """Apply `cfg.data` (classes all/scored, min rating) to the dataset."""
    meta = ds.metadata
    keep = np.ones(len(meta), dtype=bool)
    if cfg.data.min_rating > 0:
        keep &= ~((meta["rating"] > 0) & (meta["rating"] < cfg.data.min_rating)).to_numpy()
    if cfg.data.classes == "scored":
        if not ds.scored:
            raise DatasetError(f"{ds.root / 'scored_birds.json'}: data.classes='scored' needs a scored subset")
        classes = list(ds.scored)
        scored = set(classes)
        has = np.array([p in scored or bool(scored & set(s)) for p, s in zip(meta["primary_label"], meta["secondary_labels"])])
        keep &= has
    else:
        classes = list(ds.species)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DatasetError(f"{ds.root}: no recordings left after applying the data config")
    full = ds.targets(cfg.data.secondary_weight, rows=rows)
    col = [ds.species_index[c] for c in classes]
    targets = full[:, col]
    cidx = {c: i for i, c in enumerate(classes)}
    primary = np.array([cidx.get(p, -1) for p in meta["primary_label"].iloc[rows]], dtype=np.int64)
    counts = np.bincount(primary[primary >= 0], minlength=len(classes))
    paths = [str(p) for p in np.asarray(ds.audio_paths(), dtype=object)[rows]]
    return RunData(classes=classes, filenames=meta["filename"].iloc[rows].tolist(), paths=paths,
                   targets=targets.astype(np.float32), primary=primary,
                   primary_labels=meta["primary_label"].iloc[rows].tolist(),
                   weights=sample_weights(meta["rating"].iloc[rows].to_numpy(), cfg.data), counts=counts,
                   spans=ds.spans(rows), groups=group_keys(meta.iloc[rows], cfg.data.group_by))


class ClipDataset(Dataset):
    """Yields (waveform (T,), target (K,), weight) for the given rows.

    `load_clip(index, rng)` returns (float32 waveform of exactly the clip length, target row);
    training uses the augmentation pipeline's loader (random crop + waveform augmentations),
    validation a deterministic start crop. Each item gets its own RNG seeded from (seed, epoch, index), so
    runs are reproducible whatever the worker count.
    """

    def __init__(self, data: RunData, rows: np.ndarray, load_clip, seed: int, skip_log=None,
                 substitute: bool = True, clip_samples: int = 0) -> None:
        self.data = data
        self.rows = np.asarray(rows)
        self.load_clip = load_clip
        self.seed = seed
        self.epoch = 0
        self.skip_log = skip_log  # run folder: decode failures are recorded there
        # training replaces a failed recording by another; validation marks it (weight -1) so the
        # evaluation drops it instead of scoring a made-up clip
        self.substitute = substitute
        self.clip_samples = clip_samples

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        r = int(self.rows[i])
        rng = np.random.default_rng([self.seed, self.epoch, r, i])
        for _ in range(5):
            try:
                wave, target = self.load_clip(r, rng)
                break
            except AudioError as exc:
                if self.skip_log is None:
                    raise
                from birdcore.training.audio_check import record_skipped

                # A file whose header read fine but whose audio is corrupt (e.g. truncated):
                # record it and train on another recording instead of failing the run.
                record_skipped(self.skip_log, self.data.filenames[r], str(exc),
                               f"epoch {self.epoch}" if self.substitute else "validation")
                if not self.substitute:
                    return torch.zeros(self.clip_samples), torch.from_numpy(self.data.targets[r]), torch.tensor(-1.0)
                r = int(self.rows[rng.integers(len(self.rows))])
        else:
            raise AudioError(f"{self.data.paths[r]}: five recordings in a row failed to decode; see skipped.csv")
        return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), \
            torch.from_numpy(np.asarray(target, dtype=np.float32)), torch.tensor(self.data.weights[r])


class EpochSampler(Sampler[int]):
    """Shuffle (or class-balanced draw with replacement), seeded per epoch, sharded per rank.

    Seeding from (seed, epoch) makes a resumed run draw exactly the batches the uninterrupted run
    would have drawn, and gives every DDP rank a disjoint slice of one global order.
    """

    def __init__(self, n: int, seed: int, weights: np.ndarray | None = None, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
        total = len(self) * self.world
        order = torch.cat([order, order[: total - self.n]]) if total > self.n else order
        return iter(order[self.rank::self.world].tolist())


def balanced_weights(primary: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-recording draw weights ∝ count(primary)^-0.5 (2023 1st place's sampler)."""
    c = np.maximum(counts[np.maximum(primary, 0)], 1).astype(np.float64)
    return 1.0 / np.sqrt(c)
