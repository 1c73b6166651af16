"""Clip-level losses with class and sample weights: BCE, focal BCE, softmax CE (baseline).

Formulas (i = sample, k = class, z = logit, y = target in [0, 1], s_i = sample weight,
w_k = class weight, ε = label smoothing):

    ỹ = y·(1 − ε) + ε/2
    BCE:    l_ik = −[ỹ log σ(z) + (1 − ỹ) log(1 − σ(z))]
    focal:  l_ik = BCE_ik · |ỹ − σ(z)|^γ          (soft-target form of (1 − p_t)^γ)
    loss  = Σ_i s_i · mean_k(w_k · l_ik) / Σ_i s_i

    CE:     q_i = y_i / Σ_k y_ik (smoothed by ε/K),  loss = Σ_i s_i · (−Σ_k w_k q_ik log softmax(z_i)_k) / Σ_i s_i

A NaN target means "unknown" (a pseudo-label teacher with no opinion on that class): the element
adds nothing and gets no gradient. BCE/focal still divide by K, so a known class weighs the same
in every row; CE takes its softmax over the known classes only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from birdcore.config.data import DataConfig
from birdcore.config.train import LossConfig


def class_weights(counts: np.ndarray, kind: str) -> np.ndarray:
    """Per-class weights from training counts: "none" → 1; "inv_sqrt" → count^-0.5 scaled to mean 1.

    Classes with zero count get the largest weight among the others (they cannot appear as
    primaries, but may as secondaries).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if kind == "none":
        return np.ones_like(counts, dtype=np.float32)
    if kind != "inv_sqrt":
        raise ValueError(f"unknown class weight kind {kind!r}")
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    if (counts <= 0).any():
        w[counts <= 0] = w.max() if w.max() > 0 else 1.0
    return (w / w.mean()).astype(np.float32)


def sample_weights(ratings: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Per-recording loss weights from `rating` (0.0 = unrated): see `DataConfig.rating_weight`."""
    r = np.asarray(ratings, dtype=np.float64)
    if cfg.rating_weight == "none":
        return np.ones_like(r, dtype=np.float32)
    w = np.where(r > 0, r / 5.0, cfg.unrated_weight)
    return w.astype(np.float32)


class ClipLoss(nn.Module):
    """The configured loss on clip logits (B, K) and multi-hot/soft targets (B, K), NaN = unknown."""

    def __init__(self, cfg: LossConfig, class_weight: np.ndarray | torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        w = None if class_weight is None else torch.as_tensor(np.asarray(class_weight), dtype=torch.float32)
        self.register_buffer("class_weight", w if w is not None else torch.empty(0), persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        logits = logits.float()
        targets = targets.float()
        k = logits.shape[1]
        eps = self.cfg.label_smoothing
        cw = self.class_weight if self.class_weight.numel() else None
        known = ~torch.isnan(targets)
        masked = not bool(known.all())
        if masked:
            targets = torch.nan_to_num(targets, nan=0.0)
        if self.cfg.kind == "ce":
            if masked:
                # the softmax runs over the classes the target knows: an unknown class is neither
                # the answer nor a competitor
                logits = logits.masked_fill(~known, torch.finfo(logits.dtype).min)
            q = targets / targets.sum(dim=1, keepdim=True).clamp(min=1e-8)
            q = q * (1 - eps) + eps / known.sum(dim=1, keepdim=True).clamp(min=1)
            per_class = torch.where(known, -q * F.log_softmax(logits, dim=1), 0.0)
            if cw is not None:
                per_class = per_class * cw
            per_sample = per_class.sum(dim=1)
        else:
            y = targets * (1 - eps) + eps / 2
            per_elem = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
            if self.cfg.kind == "focal":
                per_elem = per_elem * (y - torch.sigmoid(logits)).abs().pow(self.cfg.focal_gamma)
            if cw is not None:
                per_elem = per_elem * cw
            # divided by K, not by the known count: a known class weighs the same in every row
            per_sample = torch.where(known, per_elem, 0.0).sum(dim=1) / k if masked else per_elem.mean(dim=1)
        if sample_weight is None:
            return per_sample.mean()
        sw = sample_weight.float()
        return (per_sample * sw).sum() / sw.sum().clamp(min=1e-8)
