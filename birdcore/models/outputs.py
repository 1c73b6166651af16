"""From a model's two outputs to the clip probability a run was configured to report.

Torch-free on purpose: the training loop (tensors), the scorers (NumPy) and the app's pickers all
use it, and importing it must not load torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLIP_MAX_FRAME_WEIGHT = 0.25  # "clip_max": 0.75·sigmoid(clip) + 0.25·max over time of sigmoid(frame)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function for NumPy logits (clipped to ±40, float32-safe)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def clip_probability(clip_prob: Any, frame_prob: Any, mode: str) -> Any:
    """The reported clip probability: `clip_prob` for "clip"; for "clip_max" the clip probability
    blended with the loudest frame's, so a short call the attention pooling diluted still counts.

    Works on NumPy arrays and torch tensors alike (frame axis last), so training, PyTorch and ONNX
    inference share one formula; the Kaggle bundle's stand-alone script repeats it (numpy only).
    """
    if mode != "clip_max":
        return clip_prob
    frame_max = frame_prob.amax(dim=-1) if hasattr(frame_prob, "amax") else np.max(frame_prob, axis=-1)
    return (1.0 - CLIP_MAX_FRAME_WEIGHT) * clip_prob + CLIP_MAX_FRAME_WEIGHT * frame_max
