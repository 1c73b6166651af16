"""Fictional demo species and the synthesis of their voices.

Each species has one `Voice`: a frequency band, a syllable shape (FM sweep, chevron, harmonic
stack, trill, noise buzz, two-note pattern ...), syllable length and tempo. Every recording draws a
`Variation` (pitch, tempo, envelope) so that no two recordings of a species are identical, yet the
species stays recognisable from its band, shape and rhythm; that is what makes the demo learnable.

All codes are six characters starting with ``zz`` and ending in a digit, and all names are made up,
so nothing can be mistaken for a real eBird species. Times are in seconds, frequencies in Hz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from birdcore.config.features import DEFAULT_SR

SAMPLE_RATE = DEFAULT_SR  # the demo's recordings are at the engine's rate (32 kHz)
# Keep synthesised partials clear of the 16 kHz Nyquist limit so nothing aliases.
_MAX_PARTIAL_HZ = 15000.0


@dataclass(frozen=True)
class Voice:
    """How one species sounds.

    kind: "tone" (sum of harmonics following a frequency contour) or "noise" (band-limited noise
    between f_start and f_end). contour: "linear" (f_start -> f_end), "chevron" (f_start -> f_peak ->
    f_end) or "flat" (f_start). am = (rate Hz, depth 0..1) gives trills and rattles; vibrato =
    (rate Hz, depth Hz) gives warbles; notes / note_durs are frequency / duration multipliers cycled
    over the syllables of a phrase (two-note calls). syl_dur, syl_gap, phrase_gap in seconds.
    """

    description: str
    kind: str
    f_start: float
    f_end: float
    syl_dur: float
    syl_gap: float
    syl_per_phrase: tuple[int, int]
    phrase_gap: tuple[float, float]
    contour: str = "linear"
    f_peak: float = 0.0
    harmonics: tuple[float, ...] = (1.0,)
    vibrato: tuple[float, float] = (0.0, 0.0)
    am: tuple[float, float] = (0.0, 0.0)
    notes: tuple[float, ...] = (1.0,)
    note_durs: tuple[float, ...] = (1.0,)
    pitch_jitter: float = 0.015
    envelope: str = "smooth"


@dataclass(frozen=True)
class Species:
    """One fictional species: taxonomy fields, where it is recorded, how many training files, voice."""

    code: str
    common_name: str
    scientific_name: str
    order: str
    family: str
    regions: tuple[str, ...]
    n_train: int
    types: tuple[tuple[str, ...], ...]
    voice: Voice


_SONG = (("song",), ("call", "song"), ("male", "song"), ("adult", "male", "song"))
_CALL = (("call",), ("flight call",), ("alarm call",), ("call", "flight call"), ("adult", "call", "sex uncertain"))
_MIX = (("call",), ("song",), ("call", "song"), ("call", "male"))

_PASS = "Passeriformes"
_V = Voice  # short alias keeps the table below readable

SPECIES: tuple[Species, ...] = (
    Species("zzasc1", "Ashen Skysweeper", "Fictavis ascendens", _PASS, "Demoturdidae (Demo Thrushes)",
            ("cloudforest",), 24, _SONG,
            _V("rising FM whistle", "tone", 2500, 4500, 0.18, 0.10, (3, 5), (0.8, 1.6))),
    Species("zzdes1", "Dusk Fallnote", "Fictavis vesperalis", _PASS, "Demoturdidae (Demo Thrushes)",
            ("temperate", "cloudforest"), 22, _SONG,
            _V("falling FM sweep", "tone", 6500, 3500, 0.24, 0.18, (2, 4), (1.0, 2.0), harmonics=(1.0, 0.25))),
    Species("zzhoo1", "Lantern Hootlet", "Noctisynthia lanterna", "Strigiformes", "Noctisynthidae (Demo Owls)",
            ("temperate",), 20, _CALL,
            _V("low harmonic hoot", "tone", 560, 520, 0.50, 0.55, (2, 3), (1.5, 3.0),
               harmonics=(1.0, 0.6, 0.35, 0.15))),
    Species("zztri1", "Quickbell Triller", "Trillopsis celeris", _PASS, "Trillopsidae (Demo Trillers)",
            ("savanna", "coast"), 18, _SONG,
            _V("fast AM trill", "tone", 5200, 5000, 1.10, 0.30, (1, 2), (1.0, 2.2), am=(45.0, 1.0))),
    Species("zzbuz1", "Static Buzzwing", "Susurrator electricus", _PASS, "Susurratoridae (Demo Buzzers)",
            ("savanna",), 17, _CALL,
            _V("high noise buzz", "noise", 7000, 9500, 0.55, 0.35, (1, 3), (0.8, 1.8), am=(90.0, 0.5))),
    Species("zztwo1", "Twinote Piper", "Bitonus fistulator", _PASS, "Bitonidae (Demo Pipers)",
            ("island", "coast"), 16, _MIX,
            _V("two-note call, high then low", "tone", 3300, 3300, 0.16, 0.09, (2, 6), (1.0, 2.0),
               contour="flat", notes=(1.0, 0.74), note_durs=(1.0, 1.7))),
    Species("zzchp1", "Pebble Chipper", "Lapillus crepitans", _PASS, "Lapillidae (Demo Chippers)",
            ("coast",), 15, _CALL,
            _V("rapid short down-chips", "tone", 8200, 6200, 0.025, 0.10, (6, 12), (1.0, 2.0), envelope="percussive")),
    Species("zzwar1", "Ripple Warbler", "Undulator vibrans", _PASS, "Undulatoridae (Demo Warblers)",
            ("cloudforest", "island"), 14, _SONG,
            _V("vibrato warble", "tone", 3600, 3700, 0.75, 0.35, (1, 3), (0.8, 1.6), contour="flat",
               vibrato=(13.0, 550.0), harmonics=(1.0, 0.2))),
    Species("zzcro1", "Gravel Croaker", "Rauca glareosa", "Anuraviformes", "Raucidae (Demo Croakers)",
            ("temperate", "savanna"), 13, _CALL,
            _V("low pulsed harmonic croak", "tone", 260, 230, 0.35, 0.25, (2, 4), (1.2, 2.5),
               harmonics=(1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25), am=(28.0, 0.9))),
    Species("zzchv1", "Chevron Glider", "Angulavis planator", _PASS, "Angulavidae (Demo Gliders)",
            ("island",), 12, _SONG,
            _V("up-down chevron whistle", "tone", 4000, 4100, 0.30, 0.22, (2, 4), (1.0, 2.0),
               contour="chevron", f_peak=6200)),
    Species("zzrat1", "Tinder Rattler", "Crotalavis siccus", _PASS, "Crotalavidae (Demo Rattlers)",
            ("savanna",), 11, _CALL,
            _V("broadband clicking rattle", "noise", 2500, 10000, 0.80, 0.60, (1, 2), (1.2, 2.5),
               am=(22.0, 1.0), envelope="percussive")),
    Species("zzgla1", "Glass Whistler", "Vitrinus tibicen", _PASS, "Vitrinidae (Demo Whistlers)",
            ("temperate", "coast"), 11, _MIX,
            _V("long pure slow-rising whistle", "tone", 1500, 1850, 0.90, 0.45, (1, 2), (1.5, 3.0))),
    Species("zzhar1", "Reed Harmonist", "Calamophonus chordatus", _PASS, "Calamophonidae (Demo Reedbirds)",
            ("island",), 10, _MIX,
            _V("descending harmonic stack", "tone", 1250, 900, 0.40, 0.30, (2, 3), (1.2, 2.4),
               harmonics=(1.0, 0.7, 0.5, 0.4, 0.3))),
    Species("zzsti1", "Stipple Tinkler", "Tinnulus punctatus", _PASS, "Tinnulidae (Demo Tinklers)",
            ("cloudforest",), 10, _SONG,
            _V("very high random tinkling notes", "tone", 10500, 10200, 0.05, 0.06, (5, 10), (1.0, 2.0),
               pitch_jitter=0.08, envelope="percussive")),
)

SPECIES_BY_CODE: dict[str, Species] = {s.code: s for s in SPECIES}


@dataclass(frozen=True)
class Variation:
    """Per-recording (or per-call) deviation from the species template.

    pitch multiplies every frequency (about +-4 %), tempo multiplies durations and gaps (about
    +-12 %), attack is the fraction of a syllable spent fading in and out (smooth envelopes).
    """

    pitch: float = 1.0
    tempo: float = 1.0
    attack: float = 0.2

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Variation":
        return cls(pitch=float(rng.uniform(0.96, 1.04)), tempo=float(rng.uniform(0.88, 1.12)),
                   attack=float(rng.uniform(0.1, 0.35)))


def _envelope(voice: Voice, n: int, attack: float, sr: int) -> np.ndarray:
    if voice.envelope == "percussive":
        # Birds' chips and rattles start abruptly and ring out: 3 ms attack, exponential decay.
        t = np.arange(n) / sr
        env = np.exp(-t / max(n / sr / 3.0, 1e-3))
        na = min(n, max(1, int(0.003 * sr)))
        env[:na] *= np.linspace(0.0, 1.0, na)
        return env
    ramp = max(1, int(n * attack))
    env = np.ones(n)
    fade = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
    env[:ramp] = fade
    env[n - ramp:] = np.minimum(env[n - ramp:], fade[::-1])
    return env


def _contour(voice: Voice, u: np.ndarray) -> np.ndarray:
    """Instantaneous frequency over normalised syllable time u in [0, 1)."""
    if voice.contour == "flat":
        return np.full_like(u, voice.f_start)
    if voice.contour == "chevron":
        rise = np.sin(np.pi * u)  # smooth start -> peak -> end
        base = voice.f_start + (voice.f_end - voice.f_start) * u
        return base + (voice.f_peak - base) * rise
    return voice.f_start + (voice.f_end - voice.f_start) * u


def render_syllable(voice: Voice, rng: np.random.Generator, var: Variation, index: int, dur: float,
                    sr: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesise one syllable of `dur` seconds (peak about 1); `index` selects the note pattern."""
    n = max(8, int(round(dur * sr)))
    t = np.arange(n) / sr
    pitch = var.pitch * voice.notes[index % len(voice.notes)] * (1.0 + rng.normal(0.0, voice.pitch_jitter))
    if voice.kind == "noise":
        lo, hi = sorted((voice.f_start * pitch, voice.f_end * pitch))
        m = fft.next_fast_len(n, real=True)  # FFT sizes with large prime factors are very slow
        spec = fft.rfft(rng.standard_normal(m))
        freqs = fft.rfftfreq(m, 1.0 / sr)
        spec[(freqs < lo) | (freqs > min(hi, _MAX_PARTIAL_HZ))] = 0.0
        y = fft.irfft(spec, m)[:n]
    else:
        f = _contour(voice, t / (n / sr)) * pitch
        rate, depth = voice.vibrato
        if depth:
            f = f + depth * pitch * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f) / sr + rng.uniform(0, 2 * np.pi)
        y = np.zeros(n)
        f_max = float(f.max())
        for h, w in enumerate(voice.harmonics, start=1):
            if h * f_max < _MAX_PARTIAL_HZ:
                y += w * np.sin(h * phase)
    rate, depth = voice.am
    if depth:
        y *= 1.0 - depth * (0.5 + 0.5 * np.cos(2 * np.pi * rate * var.pitch * t))
    y *= _envelope(voice, n, var.attack, sr)
    peak = float(np.abs(y).max())
    gain = 10 ** (rng.normal(0.0, 1.5) / 20)  # syllable-to-syllable loudness wobble, +-1.5 dB
    return y * (gain / peak) if peak > 0 else y


def render_phrase(voice: Voice, rng: np.random.Generator, var: Variation, sr: int = SAMPLE_RATE,
                  n_syllables: int | None = None, max_len: float | None = None
                  ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Synthesise one phrase (a run of syllables); return (signal, syllable (on, off) times in s).

    The number of syllables is drawn from voice.syl_per_phrase unless given; syllables that would
    end after `max_len` seconds are dropped (the first is shortened instead, so a phrase is never
    empty).
    """
    lo, hi = voice.syl_per_phrase
    count = n_syllables if n_syllables is not None else int(rng.integers(lo, hi + 1))
    pieces: list[tuple[int, np.ndarray]] = []
    intervals: list[tuple[float, float]] = []
    cursor = 0.0
    for i in range(count):
        dur = voice.syl_dur * voice.note_durs[i % len(voice.note_durs)] * var.tempo * rng.uniform(0.9, 1.1)
        if max_len is not None and cursor + dur > max_len:
            if i > 0:
                break
            dur = max(max_len, 0.02)
        pieces.append((int(round(cursor * sr)), render_syllable(voice, rng, var, i, dur, sr)))
        intervals.append((cursor, cursor + dur))
        cursor += dur + voice.syl_gap * var.tempo * rng.uniform(0.8, 1.2)
    total = max(start + len(y) for start, y in pieces)
    out = np.zeros(total)
    for start, y in pieces:
        out[start:start + len(y)] += y
    return out, intervals


def render_song(voice: Voice, rng: np.random.Generator, duration: float, var: Variation,
                sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Fill `duration` seconds with phrases separated by phrase gaps, as in a focal recording.

    Returns (signal of exactly duration*sr samples, boolean mask of samples inside a syllable); the
    mask lets callers measure the call level for an SNR.
    """
    n = int(round(duration * sr))
    out = np.zeros(n)
    mask = np.zeros(n, dtype=bool)
    t = float(rng.uniform(0.05, 0.8))
    while duration - t > 0.1:
        y, intervals = render_phrase(voice, rng, var, sr, max_len=duration - t - 0.02)
        start = int(round(t * sr))
        y = y[: n - start]
        out[start:start + len(y)] += y
        for on, off in intervals:
            mask[start + int(on * sr):min(n, start + int(off * sr))] = True
        t += len(y) / sr + rng.uniform(*voice.phrase_gap) * var.tempo
    return out, mask
