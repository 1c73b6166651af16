"""What every scorer shares: the files of an exported model folder, `ScorerInfo`, and reading a
run folder's model family. No model is loaded here (cheap to import)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from birdcore.errors import ModelError

BUNDLE_FILE = "bundle.json"
ONNX_FILE = "model.onnx"
NETWORK_FILE = "network.onnx"  # mel in, logits out (the front end then runs in torch)
BIRDNET_SOURCE = "birdnet"  # the model source name of BirdNET's own scores
# How a run's network runs on CPU: PyTorch, ONNX Runtime, or OpenVINO (an optional extra) — the
# last two on the exported network.onnx. OpenVINO's bf16 mode is faster again where the CPU has
# bf16, but moved a trained model's probabilities by up to 0.08-0.2: measured, not offered
# (benchmarks/bench_inference.py).
BACKENDS = ("torch", "onnx", "openvino")


@dataclass
class ScorerInfo:
    """What a caller needs to feed a scorer and name its outputs."""

    source: Path
    classes: list[str]
    sample_rate: int
    clip_seconds: float
    inference_prob: str
    backend: str
    denoise: Any = None  # DenoiseConfig when the model was trained on denoised audio


def run_family(run_dir: Path) -> str:
    """The model family of a run folder ("cnn" or "birdnet_head"; "cnn" when unreadable)."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text()).get("family", "cnn")
    except (OSError, json.JSONDecodeError):
        return "cnn"


def read_bundle(folder: str | Path) -> dict:
    """bundle.json of an exported folder."""
    try:
        return json.loads((Path(folder) / BUNDLE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{Path(folder) / BUNDLE_FILE}: not found") from None
