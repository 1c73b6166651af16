"""Classifier heads on a CNN feature map (B, C, F, T): the SED attention head and a linear one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GeMFreq(nn.Module):
    """Generalised-mean pooling over the frequency axis: (mean x^p)^(1/p), p learnt (init 3)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=2).pow(1.0 / self.p)


class SEDHead(nn.Module):
    """Sound-event-detection attention head (PANNs `AttBlock`, as in the 2021 4th / 2022 1st place).

    feature map (B, C, F, T) → pool over F (mean or GeM) → (B, C, T)
    → x = max_pool1d(x, 3, 1, 1) + avg_pool1d(x, 3, 1, 1)      (time smoothing)
    → dropout → Linear(C, H) + ReLU → dropout
    → w = softmax_t(tanh(att(x))),  frame = cla(x)               (1×1 convs, K classes)
    → clip logit_k = Σ_t w_kt · frame_kt

    Returns clip logits (B, K), frame logits (B, K, T) and attention weights (B, K, T) that sum to 1
    over time. The clip logit is a convex combination of frame logits, so BCE-with-logits applies.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int | None = None,
                 dropout: float = 0.25, freq_pool: str = "mean") -> None:
        super().__init__()
        hidden = hidden_dim or in_features
        self.freq_pool = GeMFreq() if freq_pool == "gem" else None
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, hidden)
        self.att = nn.Conv1d(hidden, num_classes, kernel_size=1)
        self.cla = nn.Conv1d(hidden, num_classes, kernel_size=1)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.freq_pool(feat) if self.freq_pool is not None else feat.mean(dim=2)
        x = F.max_pool1d(x, 3, 1, 1) + F.avg_pool1d(x, 3, 1, 1)
        x = self.dropout(x)
        x = F.relu(self.fc(x.transpose(1, 2))).transpose(1, 2)
        x = self.dropout(x)
        weights = torch.softmax(torch.tanh(self.att(x)), dim=-1)
        frame = self.cla(x)
        clip = (weights * frame).sum(dim=-1)
        return clip, frame, weights


class LinearHead(nn.Module):
    """Global average pool over (F, T) → dropout → (hidden + ReLU →) linear. The simple baseline.

    Frame logits are the clip logits repeated over one time step, so callers treat both heads alike.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int | None = None,
                 dropout: float = 0.25) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_dim:
            layers += [nn.Linear(in_features, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = feat.mean(dim=(2, 3)) if feat.dim() == 4 else feat
        clip = self.mlp(x)
        frame = clip.unsqueeze(-1)
        return clip, frame, torch.ones_like(frame)
