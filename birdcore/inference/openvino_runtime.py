"""OpenVINO as a runtime for exported networks (`--backend openvino`): an optional extra.

Measured on this project's 2-core machine (EfficientNet-B0 SED, 128 mels, whole pipeline per
minute of audio, quiet): PyTorch 500 ms, ONNX Runtime 259 ms, OpenVINO f32 247 ms (the same
probabilities, Δ < 2e-6), OpenVINO bf16 207 ms on this CPU's native bf16, which moved
probabilities by up to 0.08 on real clips and is not offered; `benchmarks/bench_inference.py`
prints the figures and each path's accuracy against PyTorch. OpenVINO reads the same
`network.onnx` that `birdcore export` writes, so there is no second export. Install: `pip install -r
requirements-openvino.txt` (a 59 MB wheel; the 2024 BirdCLEF winner compiled its ensemble with it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np

from birdcore.errors import ModelError, brief

INSTALL_HINT = "pip install -r requirements-openvino.txt"
PRECISIONS = {"openvino": "f32"}  # backend name -> precision (bf16: see inference.base.BACKENDS)


def is_available() -> bool:
    """True when the `openvino` package is installed."""
    return importlib.util.find_spec("openvino") is not None


def bf16_native() -> bool:
    """True when this CPU runs bf16 natively (else OpenVINO's bf16 hint falls back to f32)."""
    if not is_available():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compile_network(path: str | Path, threads: int | None, precision: str = "f32"
                    ) -> Callable[[np.ndarray], list[np.ndarray]]:
    """`run(x) -> [outputs...]` for the ONNX graph at `path`, compiled by OpenVINO for the CPU.

    `precision`: "f32" (the same numbers as ONNX Runtime, ~1e-8) or "bf16" (faster where the CPU
    has bf16, but a trained model's probabilities moved by up to 0.2: benchmarks only). Raises
    ModelError when OpenVINO is missing or the graph does not compile.
    """
    if precision not in ("f32", "bf16"):
        raise ModelError(f"OpenVINO precision {precision!r}: use f32 or bf16")
    if not is_available():
        raise ModelError(f"--backend openvino needs the optional OpenVINO extra: run `{INSTALL_HINT}`")
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = ov.Core().compile_model(str(path), "CPU", config)
    except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses with long texts
        raise ModelError(f"{path}: OpenVINO cannot compile this model ({brief(exc)})") from None
    request = compiled.create_infer_request()
    n_out = len(compiled.outputs)

    def run(x: np.ndarray) -> list[np.ndarray]:
        request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return [request.get_output_tensor(i).data.copy() for i in range(n_out)]

    return run
