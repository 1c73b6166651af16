"""Batch mixing: mixup and cutmix on waveforms (B, T) or mel images (B, C, F, T), with labels.

Per sample i: with probability `mixup.p` mixup, else with probability `cutmix.p` cutmix, else
untouched. The partner j of each sample is another sample of the same batch (a random cyclic
derangement, so j ≠ i whenever B ≥ 2), always taken from the *unmixed* batch.

- mixup: x_i ← w·x_i + (1−w)·x_j with w ~ Beta(α, α); labels "or" → max(y_i, y_j) (the union;
  max keeps soft secondary labels soft), "weighted" → w·y_i + (1−w)·y_j. A NaN target (unknown,
  from a pseudo-label teacher) stays NaN, unless "or" meets the class in the partner.
- cutmix: a band of L = round(a·T) steps along the last axis (time), a ~ Beta(α, α), at a
  uniform start, is copied from x_j; labels (1 − L/T)·y_i + (L/T)·y_j — the area fraction,
  since the band spans all frequencies.

Runs on the batch's device; random numbers come from the given `torch.Generator` on the CPU
(Beta draws via a NumPy generator seeded from it), so a seed reproduces the mix on any device.
Mixing in the waveform domain (`AugmentConfig.mix_on = "wave"`, default) is the physical sum of
two recordings; mixing normalised log-mel images is not, but is cheaper to try.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from birdcore.config.augment import AugmentConfig

__all__ = ["MixResult", "mix_batch", "mix_batch_info", "union_targets"]

NONE, MIXUP, CUTMIX = 0, 1, 2


@dataclass
class MixResult:
    """Mixed batch and what was done to each sample.

    `kind`: 0 none, 1 mixup, 2 cutmix; `partner`: index of the partner sample; `weight`: share of
    the sample's own content kept (mixup w, cutmix 1 − L/T, 1 when untouched); `band`: (start,
    stop) of the cutmix band along the last axis ((0, 0) otherwise).
    """

    x: torch.Tensor
    y: torch.Tensor
    kind: torch.Tensor
    partner: torch.Tensor
    weight: torch.Tensor
    band: torch.Tensor


def _partners(b: int, g: torch.Generator | None) -> torch.Tensor:
    perm = torch.randperm(b, generator=g)
    partner = torch.empty(b, dtype=torch.long)
    partner[perm] = perm.roll(-1)  # each sample's partner is the next one in a random cycle
    return partner


def union_targets(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """max(a, b), where NaN is an unknown target (a pseudo-label teacher's "no opinion"): unknown
    stays unknown unless the other side holds the class (> 0). Weighted mixes simply keep NaN."""
    joined = torch.fmax(a, b)
    return torch.where((torch.isnan(a) & ~(b > 0)) | (torch.isnan(b) & ~(a > 0)), torch.nan, joined)


def mix_batch_info(x: torch.Tensor, targets: torch.Tensor, cfg: AugmentConfig,
                   generator: torch.Generator | None = None) -> MixResult:
    """Mixup/cutmix `x` (time = last axis) and `targets` (B, C); returns a `MixResult`."""
    b = x.shape[0]
    if targets.shape[0] != b:
        raise ValueError(f"mix_batch: {b} inputs but {targets.shape[0]} target rows")
    t = x.shape[-1]
    none = MixResult(x.clone(), targets.clone(), torch.zeros(b, dtype=torch.long), torch.arange(b),
                     torch.ones(b), torch.zeros(b, 2, dtype=torch.long))
    if not cfg.enabled or b < 2 or (cfg.mixup.p <= 0 and cfg.cutmix.p <= 0):
        return none
    u = torch.rand(b, generator=generator)
    kind = torch.where(u < cfg.mixup.p, MIXUP, torch.where(u < cfg.mixup.p + cfg.cutmix.p, CUTMIX, NONE))
    partner = _partners(b, generator)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    nrng = np.random.default_rng(seed)
    w_mix = torch.from_numpy(nrng.beta(cfg.mixup.alpha, cfg.mixup.alpha, b)).float()
    a_cut = torch.from_numpy(nrng.beta(cfg.cutmix.alpha, cfg.cutmix.alpha, b)).float()
    lengths = torch.round(a_cut * t).long()
    starts = torch.floor(torch.rand(b, generator=generator) * (t - lengths + 1).float()).long()

    is_mix, is_cut = kind == MIXUP, kind == CUTMIX
    weight = torch.ones(b)
    weight = torch.where(is_mix, w_mix, weight)
    weight = torch.where(is_cut, 1.0 - lengths.float() / t, weight)
    band = torch.stack([starts, starts + lengths], 1) * is_cut[:, None]

    # Only the mixed samples are computed (clone + fused lerp on the subset): 48 ms against 169 ms
    # for whole-batch `torch.where` blends, 32 × 5-s waveforms, this CPU under load.
    dev = x.device
    out = x.clone()
    mi = torch.nonzero(is_mix).flatten()
    if len(mi):
        w = w_mix[mi].to(dev, x.dtype).view((-1,) + (1,) * (x.dim() - 1))
        mi_d = mi.to(dev)
        out[mi_d] = torch.lerp(x[partner[mi].to(dev)], x[mi_d], w)  # w·x_i + (1−w)·x_j, fused
    for i in torch.nonzero(is_cut).flatten().tolist():
        s, e = int(band[i, 0]), int(band[i, 1])
        out[i, ..., s:e] = x[int(partner[i]), ..., s:e]
    yj = targets[partner.to(targets.device)]

    tw = weight.to(targets.device, targets.dtype)[:, None]
    y_weighted = tw * targets + (1 - tw) * yj
    if cfg.mixup.mode == "or":
        y_mix = union_targets(targets, yj)
    else:
        y_mix = y_weighted
    tk = kind.to(targets.device)[:, None]
    y = torch.where(tk == MIXUP, y_mix, torch.where(tk == CUTMIX, y_weighted, targets))
    return MixResult(out, y, kind, partner, weight, band)


def mix_batch(x: torch.Tensor, targets: torch.Tensor, cfg: AugmentConfig,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training entry point: mixed (x, y); see `mix_batch_info` for the per-sample record."""
    r = mix_batch_info(x, targets, cfg, generator)
    return r.x, r.y
