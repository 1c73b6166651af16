"""Acoustic scenes for the demo dataset: background noise, focal training recordings, soundscapes.

Levels are set as signal-to-noise ratios in dB: the RMS of the calls (measured over the samples
inside syllables only, so sparse callers are not penalised) against the RMS of the background.
Times are in seconds, audio is float32 at `SAMPLE_RATE` (32 kHz), mono.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, signal

from birdcore.demo.voices import (
    SAMPLE_RATE,
    Species,
    Variation,
    render_phrase,
    render_song,
)

SOUNDSCAPE_S = 60.0
WINDOW_S = 5.0
N_WINDOWS = int(SOUNDSCAPE_S // WINDOW_S)
# A species counts as present in a 5-s window when a call overlaps it by at least this much, or by
# this fraction of the call for calls shorter than a second (a short chip fully inside still counts).
MIN_OVERLAP_S = 0.5
MIN_OVERLAP_FRACTION = 0.5

_WIND_RATE = 500  # Hz; wind is synthesised at a low rate and interpolated up (it has no highs)
_WIND_SOS = signal.butter(2, 150.0, btype="low", fs=_WIND_RATE, output="sos")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _unit(x: np.ndarray) -> np.ndarray:
    r = _rms(x)
    return x / r if r > 0 else x


def background(rng: np.random.Generator, n: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Return `n` samples of field-like background noise with RMS 1.

    A random mix of pink noise (1/f power: distant hiss), brown noise (1/f^2: low rumble) and
    wind: low-passed noise whose loudness rises and falls in gusts lasting about half a second to
    a few seconds. Pink and brown are shaped in the frequency domain from one white draw, which is
    several times cheaper than filtering separate draws (this runs over every sample we write).
    """
    m = fft.next_fast_len(n, real=True)
    freqs = np.maximum(fft.rfftfreq(m, 1.0 / sr), 1.0)
    pink, brown = 1.0 / np.sqrt(freqs), 1.0 / freqs
    shape = rng.uniform(0.4, 1.0) * pink / _rms(pink) + rng.uniform(0.1, 0.6) * brown / _rms(brown)
    shape[freqs < 20.0] = 0.0  # no DC or sub-audio drift
    hiss = _unit(fft.irfft(fft.rfft(rng.standard_normal(m)) * shape, m)[:n])
    n_low = int(n / sr * _WIND_RATE) + 4
    wind = _unit(signal.sosfilt(_WIND_SOS, rng.standard_normal(n_low)))
    knots = rng.gamma(0.7, 1.0, max(2, int(n / sr * 2) + 2))
    gusts = np.interp(np.linspace(0, len(knots) - 1, n_low), np.arange(len(knots)), knots) ** 2
    wind = np.interp(np.arange(n) * (_WIND_RATE / sr), np.arange(n_low), wind * _unit(gusts))
    return _unit(hiss + rng.uniform(0.0, 1.2) * wind)


def _finish(x: np.ndarray, rng: np.random.Generator, peak: tuple[float, float]) -> np.ndarray:
    """Scale to a random peak level (recordists' gain settings differ) and return float32."""
    top = float(np.abs(x).max())
    target = rng.uniform(*peak)
    return (x * (target / top if top > 0 else 1.0)).astype(np.float32)


def focal_recording(species: Species, rng: np.random.Generator, duration: float, snr_db: float,
                    secondary: Species | None = None, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesise a training recording: `species` singing throughout, over background noise.

    The calls sit `snr_db` dB above the background. A `secondary` species, if given, calls during
    one stretch of 2-6 s at 6-12 dB below the primary, as a bird in the background would.
    """
    n = int(round(duration * sr))
    song, mask = render_song(species.voice, rng, duration, Variation.draw(rng), sr)
    noise = background(rng, n, sr)
    level = 10 ** (snr_db / 20)
    mix = noise + song * (level / max(_rms(song[mask]), 1e-9))
    if secondary is not None:
        other, other_mask = render_song(secondary.voice, rng, duration, Variation.draw(rng), sr)
        span = int(min(n, rng.uniform(2.0, 6.0) * sr))
        # Centre the stretch on a sounding sample, so the listed secondary species is really audible.
        voiced = np.flatnonzero(other_mask)
        centre = int(voiced[rng.integers(len(voiced))]) if voiced.size else n // 2
        start = int(np.clip(centre - span // 2, 0, n - span))
        keep = np.zeros(n, dtype=bool)
        keep[start:start + span] = True
        other = np.where(keep, other, 0.0)
        other_level = level * 10 ** (-rng.uniform(6.0, 12.0) / 20)
        mix += other * (other_level / max(_rms(other[other_mask & keep]), 1e-9))
    return _finish(mix, rng, (0.3, 0.9))


@dataclass(frozen=True)
class Event:
    """One placed call in a soundscape: species code and start/end in seconds (ms precision)."""

    file_id: str
    species: str
    start: float
    end: float


def _place(track: np.ndarray, y: np.ndarray, start: float, sr: int) -> None:
    i = int(round(start * sr))
    y = y[: len(track) - i]
    track[i:i + len(y)] += y


def _call(species: Species, rng: np.random.Generator, sr: int, max_len: float = 4.0) -> tuple[np.ndarray, float]:
    """One phrase by a fresh individual, scaled to unit RMS over its syllables; (signal, seconds)."""
    y, intervals = render_phrase(species.voice, rng, Variation.draw(rng), sr, max_len=max_len)
    inside = np.concatenate([y[int(a * sr):int(b * sr)] for a, b in intervals])
    return y / max(_rms(inside), 1e-9), len(y) / sr


def _hits(start: float, end: float, blocked: list[tuple[float, float]]) -> bool:
    return any(start < b and end > a for a, b in blocked)


def compose_soundscape(file_id: str, pool: list[Species], rng: np.random.Generator,
                       sr: int = SAMPLE_RATE) -> tuple[np.ndarray, list[Event]]:
    """Build one 60-s soundscape from the species in `pool`; return (audio, events sorted by start).

    By construction: 2-3 windows hold no call at all, one window holds two different species, and
    one call of at least 1.25 s straddles a 5-s boundary with >= 0.5 s on each side. The other
    calls (10-15 in total) fall at random times outside the empty windows, at 3-18 dB SNR.
    """
    n = int(SOUNDSCAPE_S * sr)
    calls = np.zeros(n)
    events: list[Event] = []

    def add(species: Species, y: np.ndarray, start: float) -> None:
        start = round(start, 3)
        _place(calls, y * 10 ** (rng.uniform(3.0, 18.0) / 20), start, sr)
        events.append(Event(file_id, species.code, start, round(start + len(y) / sr, 3)))

    boundary = int(rng.integers(2, N_WINDOWS - 1))  # straddled boundary at boundary*5 s
    duo = int((boundary + rng.integers(2, N_WINDOWS - 3)) % N_WINDOWS)  # a window away from it
    free = [w for w in range(N_WINDOWS) if w not in (boundary - 1, boundary, duo)]
    empty = sorted(rng.choice(free, size=int(rng.integers(2, 4)), replace=False).tolist())
    blocked = [(w * WINDOW_S, (w + 1) * WINDOW_S) for w in empty]

    for _ in range(20):  # a call long enough to straddle the boundary, from any pool species
        species = pool[int(rng.integers(len(pool)))]
        y, length = _call(species, rng, sr, max_len=3.5)
        if length >= 1.25:
            add(species, y, boundary * WINDOW_S - length * rng.uniform(0.4, 0.6))
            break

    a, b = rng.choice(len(pool), size=2, replace=False)
    for k in (a, b):  # two species sharing one window
        y, length = _call(pool[k], rng, sr, max_len=2.5)
        add(pool[k], y, duo * WINDOW_S + rng.uniform(0.0, WINDOW_S - length))

    n_calls = int(rng.integers(10, 16))
    order = list(pool) + [pool[int(i)] for i in rng.integers(0, len(pool), size=n_calls)]
    for species in order[: max(n_calls - len(events), len(pool))]:
        y, length = _call(species, rng, sr)
        for _ in range(50):
            start = rng.uniform(0.0, SOUNDSCAPE_S - length)
            if not _hits(start, start + length, blocked):
                add(species, y, start)
                break

    mix = background(rng, n, sr) + calls
    events.sort(key=lambda e: (e.start, e.species))
    return _finish(mix, rng, (0.4, 0.7)), events


def present(event: Event, end_time: float) -> bool:
    """True when `event` overlaps the window (end_time - 5, end_time] enough to count as present."""
    overlap = min(event.end, end_time) - max(event.start, end_time - WINDOW_S)
    return overlap >= min(MIN_OVERLAP_S, MIN_OVERLAP_FRACTION * (event.end - event.start))
