"""Window scorers: map a batch of waveforms to class probabilities, with PyTorch or ONNX Runtime.

A model source is a run folder (`runs/<id>`, weights from `checkpoints/best.pt`) or an exported
folder (`models/<name>/` holding `model.onnx` + `bundle.json`). Both give the same interface:
`scorer(waves (M, L) float32) -> (clip_probs (M, K), frame_probs (M, K, T))`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from birdcore.config.base import to_dict
from birdcore.errors import ModelError, brief, not_found_message
from birdcore.inference.base import (
    BACKENDS,
    BIRDNET_SOURCE,
    BUNDLE_FILE,
    NETWORK_FILE,
    ONNX_FILE,
    ScorerInfo,
    read_bundle,
    run_family,
)
from birdcore.inference.openvino_runtime import PRECISIONS, compile_network
from birdcore.inference.run_model import load_run_model
from birdcore.models.outputs import clip_probability, sigmoid


def _combine(clip_logits: np.ndarray, frame_logits: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    clip, frame = sigmoid(clip_logits), sigmoid(frame_logits)
    return clip_probability(clip, frame, mode).astype(np.float32), frame.astype(np.float32)


def frontend_key(mel: Any, denoise: Any, device: Any) -> str:
    """Scorers with equal keys compute equal mels from equal waves: an ensemble computes them once
    (`predict`). The mel front end has no learned weights (its buffers derive from the config)."""
    return json.dumps({"mel": to_dict(mel), "denoise": to_dict(denoise) if denoise is not None and denoise.enabled
                       else None, "device": str(device)}, sort_keys=True, default=str)


class TorchScorer:
    """A run's best checkpoint in PyTorch (CPU or CUDA)."""

    def __init__(self, run_path: str | Path, device: str = "auto", checkpoint: str = "best", threads: int | None = None):
        self.model, self.cfg, self.info, self.device = load_run_model(run_path, device, checkpoint, threads)
        self.frontend_key = frontend_key(self.cfg.mel, self.info.denoise, self.device)

    def mel(self, waves: np.ndarray):
        """The model's mel front end on a batch of waves (a tensor on the model's device)."""
        import torch

        with torch.inference_mode():
            return self.model.frontend(torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)).to(self.device))

    def score_mel(self, mel) -> tuple[np.ndarray, np.ndarray]:
        """(clip probabilities, frame probabilities) from `mel` (any front end with this one's key)."""
        import torch

        with torch.inference_mode():
            clip, frame = self.model.forward_mel(mel.to(self.device))
        return _combine(clip.float().cpu().numpy(), frame.float().cpu().numpy(), self.info.inference_prob)

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.score_mel(self.mel(waves))


class OnnxScorer:
    """An exported model run by ONNX Runtime on CPU.

    With `network.onnx` in the folder (written by `birdcore export`), the mel front end runs in
    PyTorch and only the network in ONNX Runtime: measured on 2 cores, ORT runs the EfficientNet
    ~3× faster than PyTorch, but its FFT kernels make the front end ~3× slower than torch's. The
    waveform-in `model.onnx` is used otherwise. (The Kaggle bundle ships `network.onnx` too, after
    a numpy front end: `submission/kaggle_infer_template.py`.)
    """

    def __init__(self, folder: str | Path, threads: int | None = None, prefer_network: bool = True,
                 runtime: str = "onnx"):
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

            from birdcore.config.base import from_dict
            from birdcore.config.features import MelConfig
            from birdcore.features.mel_frontend import MelFrontend

            if threads:
                torch.set_num_threads(threads)
            mel_cfg = from_dict(MelConfig, meta["mel"])
            self.frontend = MelFrontend(mel_cfg).eval()
            onnx_path = folder / NETWORK_FILE
        if runtime in PRECISIONS:  # OpenVINO compiles the same graph (openvino_runtime)
            self._run = compile_network(onnx_path, threads, PRECISIONS[runtime])
        else:
            try:
                session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelError(f"{onnx_path}: cannot load ONNX model ({brief(exc)})") from None
            name = session.get_inputs()[0].name
            self._run = lambda x: session.run(None, {name: x})
        from birdcore.config.base import from_dict
        from birdcore.config.features import DenoiseConfig

        denoise = from_dict(DenoiseConfig, meta["denoise"]) if meta.get("denoise") else None
        self.info = ScorerInfo(folder, list(meta["classes"]), int(meta["sample_rate"]), float(meta["clip_seconds"]),
                               meta.get("inference_prob", "clip"), runtime, denoise)
        # Only the network-only graph can take a mel computed elsewhere; the waveform-in one cannot.
        self.frontend_key = frontend_key(mel_cfg, denoise, "cpu") if self.frontend is not None else None

    def mel(self, waves: np.ndarray):
        """The torch mel front end on CPU (only when the folder has `network.onnx`)."""
        import torch

        with torch.inference_mode():
            return self.frontend(torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)))

    def score_mel(self, mel) -> tuple[np.ndarray, np.ndarray]:
        """(clip probabilities, frame probabilities) of the network on `mel`."""
        x = mel.cpu().numpy() if hasattr(mel, "numpy") else np.asarray(mel)
        clip, frame = self._run(np.ascontiguousarray(x, dtype=np.float32))
        return _combine(clip, frame, self.info.inference_prob)

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.frontend is not None:
            return self.score_mel(self.mel(waves))
        clip, frame = self._run(np.ascontiguousarray(waves, dtype=np.float32))
        return _combine(clip, frame, self.info.inference_prob)


class BirdnetHeadScorer:
    """Scorer for a `birdnet_head` run: 5-s waveforms → BirdNET chunk embeddings → head → probabilities.

    A head that starts from BirdNET (`BirdnetPriorHead`) also reads BirdNET's window logits,
    recomputed from the same chunks; its checkpoint records which BirdNET labels feed each class.
    """

    def __init__(self, run_path, threads: int | None = None) -> None:
        from birdcore.pretrained import load_birdnet
        from birdcore.training.checkpoint import load_checkpoint
        from birdcore.training.embedding_head import EMBED_WINDOW_S, build_head
        from birdcore.training.runs import open_run

        run = open_run(run_path)
        cfg, extra = run.read_config()
        ck = load_checkpoint(run.best_checkpoint)
        classes = list(extra.get("classes") or ck["classes"])
        self.class_index = ck.get("birdnet_index")
        self.head = build_head(cfg, int(ck["in_dim"]), len(classes), self.class_index).eval()
        self.head.load_state_dict(ck["model"])
        self.birdnet = load_birdnet(threads or 2)
        self.sr = cfg.sample_rate
        self.info = ScorerInfo(run.path, classes, cfg.sample_rate, EMBED_WINDOW_S, "clip", "birdnet_head")

    def __call__(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from birdcore.pretrained import embed_chunks
        from birdcore.pretrained.head_features import window_features
        from birdcore.training.embedding_head import head_inputs

        window_s = waves.shape[1] / self.sr
        chunks = embed_chunks(list(waves), sr=self.sr, window_s=window_s, model=self.birdnet)
        index = self.class_index or [[] for _ in self.info.classes]
        _, emb, prior = window_features(chunks, index, self.birdnet, window_s)
        with torch.no_grad():
            p = torch.sigmoid(self.head(head_inputs(emb, prior, self.class_index))[0]).numpy().astype(np.float32)
        return p, p[..., None]


def load_scorer(source: str | Path, backend: str = "torch", device: str = "auto", threads: int | None = None):
    """A scorer for `source` (run folder, exported folder, or "birdnet") and `backend`.

    `onnx` on a run folder uses `<run>/onnx/` and exports there first when it is missing or
    older than the best checkpoint. BirdNET's own scores have their own path
    (`birdcore.inference.birdnet_baseline`).
    """
    if str(source) == BIRDNET_SOURCE:
        raise ModelError("BirdNET's own scores are not a window scorer: use"
                         " birdcore.inference.birdnet_baseline.predict_birdnet (`--model birdnet` alone)")
    p = Path(source)
    if not p.exists():
        raise ModelError(not_found_message(p, "model folder"))
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if (p / ONNX_FILE).exists() and (p / BUNDLE_FILE).exists():
        if backend == "torch":
            raise ModelError(f"{p}: an exported ONNX folder can only run with --backend onnx or openvino")
        return OnnxScorer(p, threads, runtime=backend)
    if (p / BUNDLE_FILE).exists() and not (p / "checkpoints").is_dir() and run_family(p) == "birdnet_head":
        raise ModelError(f"{p}: an exported BirdNET-head bundle runs in its own infer.py (Kaggle); to score here,"
                         f" give its run folder ({read_bundle(p).get('source_run', 'see bundle.json')})")
    if not (p / "config.json").exists():
        raise ModelError(f"{p}: neither a run folder (config.json) nor an exported model (model.onnx + bundle.json)")
    if run_family(p) == "birdnet_head":
        if backend != "torch":
            raise ModelError(f"{p}: BirdNET-head runs run on the TFLite BirdNET model; use --backend torch")
        return BirdnetHeadScorer(p, threads=threads)
    if backend == "torch":
        return TorchScorer(p, device=device, threads=threads)
    from birdcore.inference.export import export_onnx_model

    out = p / "onnx"
    best = p / "checkpoints" / "best.pt"
    stale = not (out / ONNX_FILE).exists() or not (out / NETWORK_FILE).exists() or (
        best.exists() and best.stat().st_mtime > (out / ONNX_FILE).stat().st_mtime)
    if stale:
        export_onnx_model(p, out)
    return OnnxScorer(out, threads, runtime=backend)
