"""Will an ensemble fit the competition's CPU budget? Measure this machine, then plan.

BirdCLEF 2023–2026 give the inference notebook 90–120 CPU minutes for all test soundscapes
(~700 minutes of audio), so the number of models an ensemble can hold is the score. The figure
that decides it is the whole pipeline's real-time factor (decode, windows, every model, on this
machine's cores), which depends too much on the backend, the threads and the CPU to guess:
`plan_budget` measures it on probe audio (the user's own soundscapes, or synthetic minutes
written to OGG so decoding is timed too) and extrapolates, per model and for the ensemble.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from birdcore.audio.io import audio_duration, write_audio
from birdcore.errors import ConfigError
from birdcore.inference.predict import PredictOptions, predict_files
from birdcore.inference.scorers import load_scorer

SAFETY = 0.10  # share of the limit kept free: notebook start-up, a slower grader CPU, variance
PROBE_SECONDS = 120.0


@dataclass(frozen=True)
class ModelTiming:
    """One model on the probe audio: load time and the wall time of scoring it alone (decode included)."""

    source: str
    load_s: float
    score_s: float


@dataclass
class BudgetPlan:
    """Measured figures and the extrapolation to `audio_minutes` under `limit_minutes`."""

    sources: list[str]
    backend: str
    probe_audio_s: float
    models: list[ModelTiming]
    ensemble_s: float  # wall time of the whole ensemble on the probe audio (decode once)
    audio_minutes: float
    limit_minutes: float
    hop_s: float | None = None
    window_s: float = 5.0
    suggestions: list[str] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        """Seconds of audio scored per wall second by the whole ensemble."""
        return self.probe_audio_s / max(self.ensemble_s, 1e-9)

    @property
    def predicted_minutes(self) -> float:
        """Model loads plus the audio at the measured real-time factor."""
        return (sum(m.load_s for m in self.models) + self.audio_minutes * 60.0 / self.rtf) / 60.0

    @property
    def usable_minutes(self) -> float:
        return self.limit_minutes * (1.0 - SAFETY)

    @property
    def fits(self) -> bool:
        return self.predicted_minutes <= self.usable_minutes

    def lines(self) -> list[str]:
        """The report, one line per fact (CLI and app print these)."""
        out = [f"probe: {self.probe_audio_s / 60:.1f} min of audio, backend {self.backend}"]
        for m in self.models:
            out.append(f"  {m.source}: {self.probe_audio_s / max(m.score_s, 1e-9):.0f}x real time alone,"
                       f" load {m.load_s:.1f} s")
        out.append(f"ensemble of {len(self.models)}: {self.rtf:.0f}x real time on this machine")
        verdict = "fits" if self.fits else "does NOT fit"
        out.append(f"{self.audio_minutes:g} min of audio → {self.predicted_minutes:.1f} min predicted;"
                   f" limit {self.limit_minutes:g} min ({self.usable_minutes:.1f} usable, {SAFETY:.0%} kept free):"
                   f" {verdict}, margin {self.usable_minutes - self.predicted_minutes:+.1f} min")
        out += [f"suggestion: {s}" for s in self.suggestions]
        return out


def synthetic_probe(folder: Path, seconds: float, sample_rate: int, seed: int = 0) -> list[Path]:
    """One-minute OGG soundscapes (noise + chirps) totalling `seconds`: decoding is part of the cost."""
    rng = np.random.default_rng(seed)
    paths, left, i = [], float(seconds), 0
    while left > 0:
        dur = min(60.0, left)
        t = np.arange(int(dur * sample_rate)) / sample_rate
        y = 0.02 * rng.standard_normal(t.size)
        for start in rng.uniform(0, max(dur - 1, 0.1), 8):
            on = (t >= start) & (t < start + 0.5)
            y[on] += 0.2 * np.sin(2 * np.pi * (rng.uniform(1500, 6000) + 2000 * (t[on] - start)) * t[on])
        paths.append(write_audio(folder / f"probe_{i}.ogg", y.astype(np.float32), sample_rate))
        left -= dur
        i += 1
    return paths


def plan_budget(sources: Sequence[str | Path], audio_minutes: float, limit_minutes: float, *,
                backend: str = "torch", threads: int | None = None, probe: Sequence[str | Path] | None = None,
                probe_seconds: float = PROBE_SECONDS, options: PredictOptions | None = None,
                progress: Callable[[str], None] | None = None) -> BudgetPlan:
    """Measure each model and the ensemble on probe audio; extrapolate and suggest what to change.

    `probe`: recordings to time on (e.g. the dataset's test soundscapes); None writes
    `probe_seconds` of synthetic audio. Raises ModelError for a source that cannot be loaded.
    """
    if not sources:
        raise ConfigError("models: give at least one model (run folder or exported folder)")
    if audio_minutes <= 0 or limit_minutes <= 0:
        raise ConfigError("audio_minutes and limit_minutes must be > 0")
    opts = options or PredictOptions()
    say = progress or (lambda _msg: None)
    scorers, timings = [], []
    for src in sources:
        t = time.perf_counter()
        scorer = load_scorer(src, backend=backend, device="cpu", threads=threads)
        timings.append([str(src), time.perf_counter() - t])
        scorers.append(scorer)
    with tempfile.TemporaryDirectory(prefix="birdcore-budget-") as tmp:
        paths = [Path(p) for p in probe] if probe else synthetic_probe(Path(tmp), probe_seconds,
                                                                      scorers[0].info.sample_rate)
        audio_s = sum(audio_duration(p) for p in paths)
        predict_files(paths[:1], scorers, opts)  # warm-up: first calls allocate and pack weights
        models = []
        for (src, load_s), scorer in zip(timings, scorers):
            say(f"timing {src}")
            t = time.perf_counter()
            predict_files(paths, [scorer], opts)
            models.append(ModelTiming(src, load_s, time.perf_counter() - t))
        if len(scorers) > 1:
            say("timing the ensemble")
            t = time.perf_counter()
            predict_files(paths, scorers, opts)
            ensemble_s = time.perf_counter() - t
        else:
            ensemble_s = models[0].score_s
    plan = BudgetPlan([str(s) for s in sources], backend, audio_s, models, ensemble_s, float(audio_minutes),
                      float(limit_minutes), opts.hop_s, opts.window_s)
    plan.suggestions = suggestions(plan)
    return plan


def suggestions(plan: BudgetPlan) -> list[str]:
    """What to change when the plan does not fit (or fits with under 10 % to spare)."""
    tight = plan.predicted_minutes > plan.usable_minutes * 0.9
    if not tight:
        return []
    out = []
    if plan.hop_s is not None and plan.hop_s < plan.window_s:
        factor = plan.window_s / plan.hop_s
        out.append(f"--hop {plan.hop_s:g} scores ~{factor:.0f} inputs per window: without overlap (--hop"
                   f" {plan.window_s:g}) the models run ~{factor:.0f}x less")
    if plan.backend == "torch":
        out.append("--backend onnx runs CNN runs in ONNX Runtime (several times faster on CPU; rerun the plan with it)")
    if len(plan.models) > 1:
        # Each model's share of the ensemble's time, from its solo time; dropping the costliest
        # first keeps the most models.
        per_audio_s = plan.ensemble_s / plan.probe_audio_s
        shares = {m.source: m.score_s / sum(x.score_s for x in plan.models) for m in plan.models}
        kept = sorted(plan.models, key=lambda m: m.score_s)

        def minutes(models: list[ModelTiming]) -> float:
            share = sum(shares[m.source] for m in models)
            return (sum(m.load_s for m in models) + plan.audio_minutes * 60 * per_audio_s * share) / 60

        dropped = []
        while len(kept) > 1 and minutes(kept) > plan.usable_minutes:
            dropped.append(kept.pop().source)
        if dropped and minutes(kept) <= plan.usable_minutes:
            out.append(f"drop {', '.join(dropped)}: the other {len(kept)} model(s) need ~{minutes(kept):.0f} min")
        elif dropped:
            out.append(f"even the fastest model alone ({kept[0].source}) needs ~{minutes(kept):.0f} min")
    if not plan.fits and not out:
        out.append("no cheaper setting of this ensemble fits: a smaller backbone or fewer folds trained")
    return out
