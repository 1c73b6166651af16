"""Window scorers: map a batch of waveforms to class probabilities, with PyTorch or ONNX Runtime.

A model source is a run folder (`runs/<id>`, weights from `checkpoints/best.pt`) or an exported
folder (`models/<name>/` holding `model.onnx` + `bundle.json`). Both give the same interface:
`scorer(waves (M, L) float32) -> (clip_probs (M, K), frame_probs (M, K, T))`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np

from ..errors import ModelError, RunError

BUNDLE_FILE = "bundle.json"
ONNX_FILE = "model.onnx"
NETWORK_FILE = "network.onnx"  # mel in, logits out (the front end then runs in torch)


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _combine(clip_logits: np.ndarray, frame_logits: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    clip = _sigmoid(clip_logits)
    frame = _sigmoid(frame_logits)
    if mode == "clip_max":
        clip = 0.75 * clip + 0.25 * frame.max(axis=-1)
    return clip.astype(np.float32), frame.astype(np.float32)


def _family(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "config.json").read_text()).get("family", "cnn")
    except (OSError, json.JSONDecodeError):
        return "cnn"


class TorchScorer:
    """A run's best checkpoint in PyTorch (CPU or CUDA)."""

    def __init__(self, run_path: str | Path, device: str = "auto", checkpoint: str = "best", threads: int | None = None):
        import torch

        from ..models import build_model
        from ..training.checkpoint import load_checkpoint
        from ..training.loop import resolve_device
        from ..training.runs import open_run

        run = open_run(run_path)
        cfg, extra = run.read_config()
        classes = list(extra.get("classes") or [])
        ck_path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
        if not ck_path.exists():
            raise RunError(f"{ck_path}: no checkpoint yet — has the run finished an epoch?")
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        ck = load_checkpoint(ck_path, map_location="cpu")
        if ck.get("classes") and list(ck["classes"]) != classes:
            raise ModelError(f"{ck_path}: checkpoint classes differ from {run.config_path}")
        from dataclasses import replace

        model = build_model(replace(cfg, model=replace(cfg.model, pretrained=False)), len(classes))
        model.load_state_dict(ck["model"])
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.info = ScorerInfo(run.path, classes, cfg.data.sample_rate, cfg.data.clip_seconds,
                               cfg.model.inference_prob, "torch", cfg.denoise)

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)).to(self.device)
            clip, frame = self.model(x)
        return _combine(clip.float().cpu().numpy(), frame.float().cpu().numpy(), self.info.inference_prob)


class OnnxScorer:
    """An exported model run by ONNX Runtime on CPU.

    With `network.onnx` in the folder (written by `birdcore export`), the mel front end runs in
    PyTorch and only the network in ONNX Runtime: measured on 2 cores, ORT runs the EfficientNet
    ~3× faster than PyTorch, but its FFT kernels make the front end ~3× slower than torch's. The
    waveform-in `model.onnx` is used otherwise (and by the numpy-only Kaggle bundle).
    """

    def __init__(self, folder: str | Path, threads: int | None = None, prefer_network: bool = True):
        import onnxruntime as ort

        folder = Path(folder)
        meta_path = folder / BUNDLE_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{meta_path}: not found — export the model with `birdcore export`") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{meta_path}: invalid JSON ({exc.msg})") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.frontend = None
        onnx_path = folder / ONNX_FILE
        if prefer_network and (folder / NETWORK_FILE).exists() and meta.get("mel"):
            import torch

            from ..config.base import from_dict as _from_dict
            from ..config.features import MelConfig
            from ..features.mel_frontend import MelFrontend

            if threads:
                torch.set_num_threads(threads)
            self.frontend = MelFrontend(_from_dict(MelConfig, meta["mel"])).eval()
            onnx_path = folder / NETWORK_FILE
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{onnx_path}: cannot load ONNX model ({str(exc).splitlines()[0][:160]})") from None
        self.input_name = self.session.get_inputs()[0].name
        from ..config.base import from_dict
        from ..config.features import DenoiseConfig

        denoise = from_dict(DenoiseConfig, meta["denoise"]) if meta.get("denoise") else None
        self.info = ScorerInfo(folder, list(meta["classes"]), int(meta["sample_rate"]), float(meta["clip_seconds"]),
                               meta.get("inference_prob", "clip"), "onnx", denoise)

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(waves, dtype=np.float32)
        if self.frontend is not None:
            import torch

            with torch.inference_mode():
                x = self.frontend(torch.from_numpy(x)).numpy()
        clip, frame = self.session.run(None, {self.input_name: x})
        return _combine(clip, frame, self.info.inference_prob)


class BirdnetBaselineScorer:
    """BirdNET V2.4's own scores as a model (no training), restricted to `classes`.

    Each 5-s window is scored from its 3-s chunks (max); classes BirdNET lacks score 0.
    """

    def __init__(self, classes: list[str], taxonomy_csv: str | Path, sample_rate: int = 32000,
                 threads: int | None = None) -> None:
        from ..pretrained import load_birdnet

        self.model = load_birdnet(threads or 2)
        self.taxonomy_csv = taxonomy_csv
        self.sr = sample_rate
        self.info = ScorerInfo(Path("birdnet"), list(classes), sample_rate, 5.0, "clip", "birdnet")

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from ..pretrained import score_windows

        # the windows are concatenated back to back: BirdNET scores each 5-s window of the result
        flat = np.ascontiguousarray(waves, dtype=np.float32).reshape(-1)
        df = score_windows(flat, sr=self.sr, window_s=waves.shape[1] / self.sr, classes=self.info.classes,
                           taxonomy_csv=self.taxonomy_csv, fill_missing=0.0, model=self.model)
        out = df[self.info.classes].to_numpy(dtype=np.float32)[: len(waves)]
        return out, out[..., None]


BIRDNET_SOURCE = "birdnet"


def load_scorer(source: str | Path, backend: str = "torch", device: str = "auto", threads: int | None = None,
                classes: list[str] | None = None, taxonomy_csv: str | Path | None = None):
    """A scorer for `source` (run folder, exported folder, or "birdnet") and `backend`.

    `onnx` on a run folder uses `<run>/onnx/` and exports there first when it is missing or
    older than the best checkpoint. "birdnet" (the BirdNET baseline) needs `classes` and the
    dataset's `taxonomy_csv` to map BirdNET's labels to eBird codes.
    """
    if str(source) == BIRDNET_SOURCE:
        if not classes or not taxonomy_csv:
            raise ModelError("the BirdNET baseline needs the dataset's species and eBird_Taxonomy_v2021.csv")
        return BirdnetBaselineScorer(classes, taxonomy_csv, threads=threads)
    p = Path(source)
    if (p / ONNX_FILE).exists() and (p / BUNDLE_FILE).exists():
        if backend == "torch":
            raise ModelError(f"{p}: an exported ONNX folder can only run with --backend onnx")
        return OnnxScorer(p, threads)
    if not (p / "config.json").exists():
        raise ModelError(f"{p}: neither a run folder (config.json) nor an exported model (model.onnx + bundle.json)")
    if _family(p) == "birdnet_head":
        if backend != "torch":
            raise ModelError(f"{p}: BirdNET-head runs run on the TFLite BirdNET model; use --backend torch")
        from ..training.embedding_head import BirdnetHeadScorer

        return BirdnetHeadScorer(p, threads=threads)
    if backend == "torch":
        return TorchScorer(p, device=device, threads=threads)
    if backend != "onnx":
        raise ModelError(f"unknown backend {backend!r} (torch or onnx)")
    from .export import export_onnx_model

    out = p / "onnx"
    best = p / "checkpoints" / "best.pt"
    stale = not (out / ONNX_FILE).exists() or not (out / NETWORK_FILE).exists() or (
        best.exists() and best.stat().st_mtime > (out / ONNX_FILE).stat().st_mtime)
    if stale:
        export_onnx_model(p, out)
    return OnnxScorer(out, threads)
