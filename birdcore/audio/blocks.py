"""Decode a recording in consecutive blocks, so memory stays flat however long the file is.

`read_blocks(path, sr)` yields mono float32 blocks at `sr` whose concatenation is exactly
`load_audio(path, sr)`, sample for sample: the same header checks, the same channel mix
(`io.to_mono`), the same soxr HQ filter. soxr's `ResampleStream` carries the filter state from
one block to the next, so resampling in blocks gives bit-identical samples to one call on the
whole signal (no margins to trim at block edges).

A file that fails part-way (corrupt data, cut off, NaN samples) raises `AudioError` naming the
file when the bad block is reached; the blocks already yielded were valid audio.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np
import soundfile as sf
import soxr

from birdcore.audio.io import (
    DEFAULT_SR,
    check_audio,
    check_decoded_count,
    decode_error,
    to_mono,
)

# One minute of 32-kHz mono is 7.7 MB of float32: large enough that per-block costs vanish,
# small enough that a night-long recording never needs more than a few such blocks in memory.
BLOCK_S = 60.0


def read_blocks(path: str | os.PathLike, sr: int | None = DEFAULT_SR, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """Yield `path` decoded to mono float32 at `sr` (None: the file's rate) in blocks of about
    `block_s` seconds of the file; the blocks concatenated equal `load_audio(path, sr)`.

    Raises AudioError naming the file for everything `load_audio` refuses: a missing, empty,
    unreadable or truncated file before the first block, and a decode failure or NaN/inf
    samples at the block where it happens. Blocks may be empty when resampling.
    """
    if not block_s > 0:
        raise ValueError(f"block_s must be positive, got {block_s}")
    p = Path(path)
    info = check_audio(p)
    frames = max(1, int(round(block_s * info.samplerate)))
    stream = None
    if sr is not None and sr != info.samplerate:
        stream = soxr.ResampleStream(info.samplerate, sr, 1, dtype="float32", quality="HQ")
    got = 0
    try:
        fh = sf.SoundFile(str(p))
    except Exception as exc:  # libsndfile raises several types; all mean "unreadable"
        raise decode_error(p, exc) from None
    with fh:
        while got < info.frames:
            want = min(frames, info.frames - got)
            try:
                data = fh.read(want, dtype="float32", always_2d=True)
            except Exception as exc:
                raise decode_error(p, exc) from None
            if data.shape[0] == 0:
                break
            got += data.shape[0]
            y = to_mono(p, data)
            # The resampler must be told which block is the last one to flush its filter tail;
            # a short read ends the file early, so it is flushed below with an empty block.
            last = got >= info.frames
            yield _contiguous(stream.resample_chunk(y, last=last) if stream is not None else y)
            if data.shape[0] < want:
                break
    check_decoded_count(info, got, info.frames)
    if stream is not None and got < info.frames:
        yield _contiguous(stream.resample_chunk(np.zeros(0, np.float32), last=True))


def _contiguous(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.float32)


T = TypeVar("T")


def prefetch(items: Iterable[T], pool: Executor) -> Iterator[T]:
    """Iterate `items` with the next item produced in `pool` while the caller works on the
    current one: decoding (libsndfile and soxr release the GIL) overlaps scoring on 2 cores.
    An exception raised producing an item is raised here, in order."""
    it = iter(items)
    done = object()
    ahead = pool.submit(next, it, done)
    while True:
        item = ahead.result()
        if item is done:
            return
        ahead = pool.submit(next, it, done)
        yield item
