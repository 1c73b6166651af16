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


class BirdnetPriorHead(nn.Module):
    """A head that starts as BirdNET and learns only what the labels add.

    Input: `[embedding (D) | BirdNET window logits (K)]` per window (`prior` columns of classes
    BirdNET lacks are 0). For class k:

        logit_k = known_k · (scale_k · z_k + offset_k) + residual_k(embedding)

    with `scale = 1`, `offset = 0` and the residual's output weights of known classes at 0 at the
    start, so before training the head *is* BirdNET on the classes it knows. Training then moves a
    class away from BirdNET only as far as its labels push it (the residual is weight-decayed
    towards 0 by the optimiser; `scale` and `offset` calibrate BirdNET to the data). Classes
    BirdNET lacks are an ordinary head on the embedding. Frame logits repeat the clip logits, as
    in `LinearHead`.
    """

    def __init__(self, in_features: int, num_classes: int, known: torch.Tensor, hidden_dim: int | None = None,
                 dropout: float = 0.25) -> None:
        super().__init__()
        self.in_features = in_features
        self.residual = LinearHead(in_features, num_classes, hidden_dim, dropout)
        self.register_buffer("known", torch.as_tensor(known, dtype=torch.bool).reshape(num_classes))
        self.scale = nn.Parameter(torch.ones(num_classes))
        self.offset = nn.Parameter(torch.zeros(num_classes))
        last = self.residual.mlp[-1]
        with torch.no_grad():
            last.weight[self.known] = 0.0
            last.bias[self.known] = 0.0

    def prior_parameters(self) -> list[nn.Parameter]:
        """The calibration of BirdNET's logits (kept out of weight decay: it must not decay to 0)."""
        return [self.scale, self.offset]

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emb, prior = feat[:, : self.in_features], feat[:, self.in_features:]
        clip = self.residual(emb)[0] + torch.where(self.known, self.scale * prior + self.offset, torch.zeros_like(prior))
        frame = clip.unsqueeze(-1)
        return clip, frame, torch.ones_like(frame)
