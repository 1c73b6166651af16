"""Reading the training window: crop of long recordings, time extension of short ones.

A *source* is anything with `duration` (seconds), `sample_rate` (Hz), `name` and
`read(offset_s, duration_s) -> float32 mono` (possibly shorter at the end of the recording):
`FileSource` decodes from disk (libsndfile seeks, so only the window is decoded) and
`birdcore.audio.cache.CacheEntry` reads a memory-mapped decoded copy. `as_source` turns a path into a
`FileSource` and passes sources through.

Pitfalls: offsets are drawn in whole samples, so crops are sample-exact; the returned window is
always exactly `round(seconds * sr)` samples (decoders can return one sample more or less).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, Union

import numpy as np

from birdcore.audio.io import DEFAULT_SR, audio_info, fit_length, load_audio

__all__ = ["AudioSource", "FileSource", "as_source", "read_window", "Window", "OtherAudio"]


class AudioSource(Protocol):
    """What the window reader needs from a recording."""

    name: str
    sample_rate: int

    @property
    def duration(self) -> float: ...

    def read(self, offset_s: float, duration_s: float) -> np.ndarray: ...


class FileSource:
    """A recording decoded from disk at `sr` (resampled with soxr when the file's rate differs)."""

    def __init__(self, path: str | os.PathLike, sr: int = DEFAULT_SR) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.sample_rate = sr
        self._duration: float | None = None

    @property
    def duration(self) -> float:
        if self._duration is None:
            self._duration = audio_info(self.path).duration  # header only; raises AudioError
        return self._duration

    def read(self, offset_s: float, duration_s: float) -> np.ndarray:
        return load_audio(self.path, sr=self.sample_rate, offset=offset_s, duration=duration_s)


def span_name(name: str, start_s: float, end_s: float) -> str:
    """How a span of a recording is named (as a time-extension filler, in logs)."""
    return f"{name}@{float(start_s):g}-{float(end_s):g}"


class SpanSource:
    """The [start_s, end_s) part of another source, read as if it were the whole recording.

    A window of a long recording (imported from a selection table) trains like a short clip:
    crops, time extension and validation reads never leave the span.
    """

    def __init__(self, inner: AudioSource, start_s: float, end_s: float) -> None:
        self.inner, self.start_s, self.end_s = inner, float(start_s), float(end_s)
        self.name, self.sample_rate = span_name(inner.name, start_s, end_s), inner.sample_rate

    @property
    def duration(self) -> float:
        return max(0.0, min(self.end_s, self.inner.duration) - self.start_s)

    def read(self, offset_s: float, duration_s: float) -> np.ndarray:
        take = max(0.0, min(float(duration_s), self.duration - float(offset_s)))
        return self.inner.read(self.start_s + float(offset_s), take)


SourceLike = Union[str, os.PathLike, AudioSource]
# Where extension audio comes from: a list of sources/paths (one picked uniformly) or a callable
# `rng -> source` (e.g. the dataset picking a recording of the same species).
OtherAudio = Union[Sequence[SourceLike], Callable[[np.random.Generator], SourceLike]]


def as_source(obj: SourceLike, sr: int = DEFAULT_SR) -> AudioSource:
    """A path becomes a `FileSource`; an object with `read` and `duration` is used as is."""
    if isinstance(obj, (str, os.PathLike)):
        return FileSource(obj, sr)
    if hasattr(obj, "read") and hasattr(obj, "duration"):
        return obj  # type: ignore[return-value]
    raise TypeError(f"not an audio source or path: {type(obj).__name__}")


@dataclass
class Window:
    """Where a training window came from (returned with `return_info=True`)."""

    source: str
    offset_s: float
    source_duration_s: float
    extended: str  # "no" | "silence" | "other"
    filler: str | None = None
    clip_start_s: float = 0.0  # where the (short) recording sits inside the window


def _offset_samples(total: int, n: int, mode: str, rng: np.random.Generator) -> int:
    room = max(0, total - n)
    if mode == "start" or room == 0:
        return 0
    if mode == "center":
        return room // 2
    return int(rng.integers(0, room + 1))


def read_window(
    source: SourceLike,
    seconds: float,
    sr: int,
    mode: str,
    rng: np.random.Generator,
    other: OtherAudio | None = None,
    other_ratio: float = 0.0,
) -> tuple[np.ndarray, Window]:
    """Read a `seconds`-long window (exactly round(seconds·sr) samples) from `source`.

    Long recording: the window starts at 0 ("start"), at the middle ("center") or at a uniform
    sample offset ("random"). Short recording: the whole clip is placed inside the window by the
    same rule (at 0, centred, uniform) and the rest is silence, or, with probability
    `other_ratio` and when `other` is given, a random window of another recording.
    """
    src = as_source(source, sr)
    n = int(round(seconds * sr))
    total = int(round(src.duration * sr))
    if total >= n:
        start = _offset_samples(total, n, mode, rng)
        y = fit_length(src.read(start / sr, seconds), n)
        return y, Window(src.name, start / sr, src.duration, "no")
    clip = src.read(0.0, src.duration)[:n]
    pos = _offset_samples(n, len(clip), mode, rng)
    use_other = other is not None and other_ratio > 0 and rng.random() < other_ratio
    if use_other:
        filler_src = _pick_other(other, rng, sr)
        out, _ = read_window(filler_src, seconds, sr, "random", rng)  # filler: silence-padded if short
        kind, filler = "other", filler_src.name
    else:
        out, kind, filler = np.zeros(n, dtype=np.float32), "silence", None
    out = out.copy()
    out[pos:pos + len(clip)] = clip
    return out, Window(src.name, 0.0, src.duration, kind, filler, pos / sr)


def _pick_other(other: OtherAudio, rng: np.random.Generator, sr: int) -> AudioSource:
    if callable(other):
        return as_source(other(rng), sr)
    if len(other) == 0:
        raise ValueError("other audio: the list of sources is empty")
    return as_source(other[int(rng.integers(0, len(other)))], sr)
