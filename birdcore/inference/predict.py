"""Predict recordings window by window with one model or an ensemble; write probability tables.

Recordings are decoded and scored in blocks (`audio.blocks`, `audio.window_stream`): memory stays
flat in the file's length (a whole 8-hour recording decoded at once, plus its cut windows, needs
~14 GB), and the window probabilities equal those of the whole-file cut (`score_recording`)
exactly. Decoding runs in a background thread (libsndfile and soxr release the GIL) while the
model scores the previous batch, so a 2-core machine keeps both busy.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from birdcore.atomic_io import atomic_path
from birdcore.audio.blocks import BLOCK_S, prefetch, read_blocks
from birdcore.audio.window_stream import WindowStream
from birdcore.audio.windows import (
    centre_frames,
    cut_windows,
    end_times,
    pool_owners,
    smooth,
    window_count,
)
from birdcore.config.base import check_range
from birdcore.errors import AudioError, ConfigError, ModelError
from birdcore.features.denoise import maybe_denoise


@dataclass
class PredictOptions:
    """How recordings are windowed and post-processed.

    - `window_s`: scored window length (5 s in BirdCLEF); ends at window_s, 2·window_s, …
    - `hop_s`: < window_s for overlapping inputs, averaged per scored window.
    - `context_s`: > window_s to feed a longer centred context and keep only the centre frames
      of the frame-wise output (max over those frames).
    - `smoothing`: temporal kernel over neighbouring windows, e.g. [0.1, 0.8, 0.1].
    - `batch_windows`: inputs per model call.
    """

    window_s: float = 5.0
    hop_s: float | None = None
    context_s: float | None = None
    smoothing: list[float] | None = None
    batch_windows: int = 48
    min_last_s: float = 1.5

    def __post_init__(self) -> None:
        check_window_options(self.window_s, self.hop_s, self.context_s, self.smoothing)
        check_range("batch_windows", self.batch_windows, 1, 4096)
        check_range("min_last_s", self.min_last_s, 0.0, self.window_s)


# Upper bounds keep one input and one file's inputs allocatable: a 1e12-s context once asked numpy
# for 227 PiB. A minute of context or window is already far beyond any BirdCLEF model's input.
MAX_WINDOW_S = 60.0
MIN_HOP_S = 0.25  # 20 overlapping inputs per 5-s window: 20× the model calls of plain windows
MAX_KERNEL = 31


def check_window_options(window_s: float, hop_s: float | None = None, context_s: float | None = None,
                         smoothing: list[float] | None = None) -> None:
    """ConfigError naming the field (`window_s`, `hop_s`, `context_s`, `smoothing`) when the
    windowing options cannot work: non-finite, out of range, or inconsistent with each other."""
    check_range("window_s", _finite("window_s", window_s), 0.0, MAX_WINDOW_S, lo_open=True)
    if hop_s is not None and not MIN_HOP_S <= _finite("hop_s", hop_s) <= window_s:
        raise ConfigError(f"hop_s: {hop_s} must be between {MIN_HOP_S} and window_s ({window_s})")
    if context_s is not None and not window_s <= _finite("context_s", context_s) <= MAX_WINDOW_S:
        raise ConfigError(f"context_s: {context_s} must be between window_s ({window_s}) and {MAX_WINDOW_S}")
    if smoothing is not None:
        k = [_finite("smoothing", float(w)) for w in smoothing]
        if not k or len(k) % 2 == 0 or len(k) > MAX_KERNEL:
            raise ConfigError(f"smoothing: {len(k)} weights; the kernel needs an odd number of weights, 1 to {MAX_KERNEL}"
                              " (e.g. 0.25,0.5,0.25)")
        if min(k) < 0 or sum(k) <= 0:
            raise ConfigError(f"smoothing: {k} must be non-negative weights with a positive sum")


def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise ConfigError(f"{name}: {value!r} must be a finite number")
    return v


@dataclass
class PredictResult:
    """Window probabilities plus the files that could not be read."""

    table: pd.DataFrame                       # file_id, end_time, <classes...>
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, error)
    classes: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0


def check_ensemble(scorers: list) -> tuple[list[str], int]:
    """The shared class list and sample rate of an ensemble; ModelError when they differ."""
    if not scorers:
        raise ModelError("no model given")
    first = scorers[0].info
    for s in scorers[1:]:
        if s.info.classes != first.classes:
            raise ModelError(f"{s.info.source}: its classes differ from {first.source}; ensembles need one class list")
        if s.info.sample_rate != first.sample_rate:
            raise ModelError(f"{s.info.source}: sample rate {s.info.sample_rate} differs from {first.sample_rate}")
    return first.classes, first.sample_rate


def predict_files(paths: Iterable[str | Path], scorers: list, options: PredictOptions | None = None,
                  progress: Callable[[int, int], None] | None = None, show_bar: bool = False,
                  block_s: float = BLOCK_S) -> PredictResult:
    """Score every file; a file that fails to decode is skipped and reported, the rest finishes.

    Probabilities of several scorers (folds, runs) are averaged. Each file is decoded `block_s`
    seconds at a time, so memory does not grow with its length; the result does not depend on
    `block_s`.
    """
    opts = options or PredictOptions()
    classes, sr = check_ensemble(scorers)
    paths = [Path(p) for p in paths]
    rows: list[pd.DataFrame] = []
    skipped: list[tuple[str, str]] = []
    seconds = 0.0
    bar = _bar(len(paths)) if show_bar else None

    with ThreadPoolExecutor(max_workers=1) as pool:
        # One stream over all files: the next file's first block decodes while this one's last
        # batch is scored (BirdCLEF soundscapes are one block each).
        decoded = prefetch(_decoded_blocks(paths, sr, block_s), pool)
        for i, path in enumerate(paths):
            blocks = _FileBlocks(decoded)
            try:
                probs, n_samples = score_stream(blocks, sr, scorers, opts)
            except AudioError as exc:
                skipped.append((str(path), str(exc)))
                blocks.skip_rest()
            else:
                seconds += n_samples / sr
                df = pd.DataFrame(probs, columns=classes)
                df.insert(0, "end_time", end_times(len(probs), opts.window_s))
                df.insert(0, "file_id", path.stem)
                rows.append(df)
            if progress:
                progress(i + 1, len(paths))
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["file_id", "end_time", *classes])
    return PredictResult(table=table, skipped=skipped, classes=classes, audio_seconds=seconds)


def score_file(path: str | Path, sr: int, scorers: list, opts: PredictOptions,
               block_s: float = BLOCK_S) -> tuple[np.ndarray, int]:
    """Window probabilities (n_windows, K) of the file `path` decoded at `sr` in blocks of
    `block_s` seconds, and its length in samples; AudioError naming the file when it cannot be
    decoded. Equal to `score_recording(load_audio(path, sr), …)` whatever `block_s`."""
    return score_stream(read_blocks(path, sr, block_s), sr, scorers, opts)


def score_stream(blocks: Iterable[np.ndarray], sr: int, scorers: list,
                 opts: PredictOptions) -> tuple[np.ndarray, int]:
    """Window probabilities (n_windows, K) of one recording given as consecutive mono blocks at
    `sr`, ensemble-averaged and smoothed, and its length in samples.

    Only one batch of inputs and the audio it needs are held; per-window sums stay (n_windows × K).
    Model batches hold the same inputs as in `score_recording`, so the results are identical.
    """
    stream = WindowStream(blocks, sr, opts.window_s, opts.context_s, opts.hop_s, opts.min_last_s)
    means = [_OwnerMeans() for _ in scorers]
    inputs: list[np.ndarray] = []
    owners: list[int] = []

    def score_batch() -> None:
        x, own = np.stack(inputs), np.asarray(owners)
        for m, probs in zip(means, ensemble_probs(scorers, x, sr, opts)):
            m.add(probs, own)
        inputs.clear()
        owners.clear()

    for x, owner in stream:
        inputs.append(x)
        owners.append(owner)
        if len(inputs) == opts.batch_windows:
            score_batch()
    if inputs:
        score_batch()
    total = None
    for m in means:
        probs = m.result(stream.n_windows)
        total = probs if total is None else total + probs
    return smooth(total / len(scorers), opts.smoothing), stream.n_samples


def score_recording(y: np.ndarray, sr: int, scorers: list, opts: PredictOptions) -> np.ndarray:
    """Window probabilities (n_windows, K) of one decoded recording, ensemble-averaged and smoothed.

    Holds every input of the recording at once; `score_file` / `score_stream` give the same
    probabilities in bounded memory.
    """
    n = window_count(len(y), sr, opts.window_s, opts.min_last_s)
    inputs, owners = cut_windows(y, sr, opts.window_s, opts.context_s, opts.hop_s, opts.min_last_s)
    batches = [ensemble_probs(scorers, inputs[s: s + opts.batch_windows], sr, opts)
               for s in range(0, len(inputs), opts.batch_windows)]
    total = None
    for k in range(len(scorers)):
        probs = pool_owners(np.concatenate([b[k] for b in batches]), owners, n)
        total = probs if total is None else total + probs
    return smooth(total / len(scorers), opts.smoothing)


def ensemble_probs(scorers: list, x: np.ndarray, sr: int, opts: PredictOptions) -> list[np.ndarray]:
    """Each scorer's clip probabilities on the batch `x`. Scorers whose mel front ends are equal
    (`frontend_key`: same mel config, denoising and device, e.g. the folds of one config) share
    one front-end pass: on 2 cores the mel is ~75 ms of a minute of audio, against ~160 ms for a
    whole ONNX Runtime model, so a 5-fold ensemble saves about a third of its time."""
    mels: dict[str, object] = {}
    out = []
    for scorer in scorers:
        key = getattr(scorer, "frontend_key", None)
        if key is None:
            clip, frame = scorer(_model_inputs(scorer, x, sr))
        else:
            if key not in mels:
                mels[key] = scorer.mel(_model_inputs(scorer, x, sr))
            clip, frame = scorer.score_mel(mels[key])
        out.append(_clip(clip, frame, opts))
    return out


def _model_inputs(scorer, inputs: np.ndarray, sr: int) -> np.ndarray:
    if getattr(scorer.info, "denoise", None) is not None and scorer.info.denoise.enabled:
        return np.stack([maybe_denoise(w, sr, scorer.info.denoise) for w in inputs])  # as in training
    return inputs


def _clip(clip: np.ndarray, frame: np.ndarray, opts: PredictOptions) -> np.ndarray:
    if opts.context_s and opts.context_s > opts.window_s:
        sl = centre_frames(frame.shape[-1], opts.context_s, opts.window_s)
        clip = frame[..., sl].max(axis=-1)
    return clip


class _OwnerMeans:
    """`pool_owners` computed batch by batch: running float64 sums per window, added in the
    same row order as one `np.add.at` over all rows, hence bit-identical means."""

    def __init__(self) -> None:
        self.sums: np.ndarray | None = None
        self.counts = np.zeros(0, np.int64)

    def add(self, probs: np.ndarray, owners: np.ndarray) -> None:
        need = int(owners.max()) + 1
        if self.sums is None:
            self.sums = np.zeros((0, probs.shape[1]), np.float64)
        if need > len(self.sums):  # the window count is known only at the end: grow by doubling
            size = max(need, 2 * len(self.sums), 64)
            self.sums = np.concatenate([self.sums, np.zeros((size - len(self.sums), self.sums.shape[1]))])
            self.counts = np.concatenate([self.counts, np.zeros(size - len(self.counts), np.int64)])
        np.add.at(self.sums, owners, probs)
        np.add.at(self.counts, owners, 1)

    def result(self, n_windows: int) -> np.ndarray:
        sums = np.zeros((n_windows, self.sums.shape[1])) if self.sums is not None else np.zeros((n_windows, 0))
        counts = np.zeros(n_windows, np.int64)
        if self.sums is not None:
            k = min(n_windows, len(self.sums))
            sums[:k], counts[:k] = self.sums[:k], self.counts[:k]
        return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _decoded_blocks(paths: list[Path], sr: int, block_s: float) -> Iterator[np.ndarray | AudioError | None]:
    """Every block of every file in order; after each file, None when it ended or its AudioError."""
    for p in paths:
        try:
            for block in read_blocks(p, sr, block_s):
                yield block
        except AudioError as exc:
            yield exc
        else:
            yield None


class _FileBlocks:
    """One file's blocks from the shared stream of `_decoded_blocks`; raises the file's AudioError."""

    def __init__(self, decoded: Iterator) -> None:
        self._decoded = decoded
        self._done = False

    def __iter__(self) -> Iterator[np.ndarray]:
        for item in self._decoded:
            if item is None or isinstance(item, AudioError):
                self._done = True
                if item is not None:
                    raise item
                return
            yield item

    def skip_rest(self) -> None:
        """Consume what is left of this file (scoring stopped early) so the next file starts clean."""
        if self._done:
            return
        try:
            for _ in self:
                pass
        except AudioError:
            pass  # the file is being skipped already; its first error is the one reported


def prediction_paths(out: str | Path) -> tuple[Path, Path]:
    """(Parquet, CSV) paths for the output base name `out`: `<out>.parquet` and `<out>.csv`
    (`out`'s own .csv/.parquet suffix is dropped); an existing folder gets `predictions.*` inside."""
    out = Path(out)
    if out.is_dir():
        out = out / "predictions"
    base = out.with_suffix("") if out.suffix in (".csv", ".parquet") else out
    return base.with_name(base.name + ".parquet"), base.with_name(base.name + ".csv")


def write_predictions(result: PredictResult, out: str | Path) -> list[Path]:
    """Write the table as `<out>.parquet` and `<out>.csv` (atomic), plus `skipped.csv` beside them."""
    parquet, csv = prediction_paths(out)
    written = []
    with atomic_path(parquet, suffix=".parquet") as tmp:
        result.table.to_parquet(tmp, index=False)
    written.append(parquet)
    with atomic_path(csv, suffix=".csv") as tmp:
        result.table.to_csv(tmp, index=False, float_format="%.6f")
    written.append(csv)
    if result.skipped:
        skipped = csv.parent / "skipped.csv"
        with atomic_path(skipped, suffix=".csv") as tmp:
            pd.DataFrame(result.skipped, columns=["path", "error"]).to_csv(tmp, index=False)
        written.append(skipped)
    return written


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, disable=not sys.stderr.isatty() and total < 2)
