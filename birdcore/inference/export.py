"""Export a run to ONNX (front end + network: waveform in, logits out), verified against PyTorch.

Output folder (default `models/<run-name>/`):
    model.onnx (+ .onnx.data)      waveform in, logits out: front end + network in one graph (portable,
                                   but onnxruntime's DFT makes it the slowest CPU path)
    network.onnx                   mel in, logits out: `--backend onnx|openvino` runs the front end in
                                   torch and this in ONNX Runtime or OpenVINO; the Kaggle bundle runs
                                   it after a numpy front end (kaggle_bundle)
    bundle.json                    classes, sample rate, window, inference_prob, verification figures
    config.json                    the run's resolved config
    thresholds.json                copied from the run when present
A `birdnet_head` run (BirdNET + a head) exports another set of files: see `export_birdnet_head`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from birdcore.atomic_io import atomic_write_json
from birdcore.audio.io import DEFAULT_SR
from birdcore.config.base import to_dict
from birdcore.errors import ModelError
from birdcore.evaluation.thresholds import THRESHOLDS_FILE
from birdcore.inference.base import BUNDLE_FILE, NETWORK_FILE, ONNX_FILE, run_family
from birdcore.inference.onnx_graph import export_onnx
from birdcore.inference.run_model import load_run_model

TOLERANCE = 1e-3  # max |logit difference| accepted between ONNX Runtime and PyTorch


def export_onnx_model(run_path: str | Path, out_dir: str | Path | None = None, verify: bool = True) -> Path:
    """Export the run's best model to `out_dir`; returns the folder. Raises ModelError on mismatch."""
    import torch
    from torch import nn

    if run_family(Path(run_path)) == "birdnet_head":
        # BirdNET is a TFLite model, not a torch module: no single waveform-in graph exists, so the
        # bundle holds BirdNET, the head in ONNX and the glue's numbers (export_birdnet_head).
        from birdcore.inference.export_birdnet_head import export_birdnet_head

        return export_birdnet_head(run_path, out_dir, verify=verify)
    model, cfg, info, _ = load_run_model(run_path, device="cpu")
    out = Path(out_dir) if out_dir else Path("models") / cfg.name
    out.mkdir(parents=True, exist_ok=True)

    class _Mel(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, mel):
            return self.inner.forward_mel(mel)

    n = int(round(info.clip_seconds * info.sample_rate))
    example = torch.zeros(2, n)
    batch = {0: ("batch", 1, 4096)}
    logits = ["clip_logits", "frame_logits"]
    export_onnx(model, example, out / ONNX_FILE, "wave", logits, batch)
    with torch.inference_mode():
        mel = model.frontend(example)
    export_onnx(_Mel(model), mel, out / NETWORK_FILE, "mel", logits, batch)

    report = {}
    if verify:
        report = verify_onnx(model, out / ONNX_FILE, n)
        report["network_max_abs_diff"] = verify_network(model, out / NETWORK_FILE, n)
        report["max_abs_diff"] = max(report["max_abs_diff"], report["network_max_abs_diff"])
        if report["max_abs_diff"] > TOLERANCE:
            raise ModelError(f"{out / ONNX_FILE}: ONNX and PyTorch logits differ by {report['max_abs_diff']:.2e}"
                             f" (> {TOLERANCE})")
    cfg_src = Path(run_path) / "config.json"
    shutil.copyfile(cfg_src, out / "config.json")
    thr = Path(run_path) / THRESHOLDS_FILE
    if thr.exists():
        shutil.copyfile(thr, out / THRESHOLDS_FILE)
    atomic_write_json(out / BUNDLE_FILE, {
        "format": 1, "classes": info.classes, "sample_rate": info.sample_rate, "clip_seconds": info.clip_seconds,
        "inference_prob": info.inference_prob, "input": "wave (batch, samples) float32 mono",
        "mel": to_dict(cfg.mel), "network": NETWORK_FILE,
        "denoise": to_dict(cfg.denoise) if cfg.denoise.enabled else None,
        "outputs": ["clip_logits (batch, classes)", "frame_logits (batch, classes, frames)"],
        "source_run": str(Path(run_path).resolve()), "verification": report,
    })
    return out


def verify_onnx(model, onnx_path: Path, n_samples: int, batch: int = 3, seed: int = 0) -> dict:
    """Run PyTorch and ONNX Runtime on the same noisy chirps; report the largest logit difference."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / DEFAULT_SR
    x = 0.05 * rng.standard_normal((batch, n_samples)).astype(np.float32)
    x += (0.3 * np.sin(2 * np.pi * (2000 + 300 * t) * t)).astype(np.float32)
    with torch.inference_mode():
        ref_clip, ref_frame = model(torch.from_numpy(x))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    clip, frame = sess.run(None, {sess.get_inputs()[0].name: x})
    diff = max(float(np.abs(clip - ref_clip.numpy()).max()), float(np.abs(frame - ref_frame.numpy()).max()))
    return {"max_abs_diff": diff, "batch": batch, "samples": n_samples}


def verify_network(model, onnx_path: Path, n_samples: int, seed: int = 1) -> float:
    """Largest logit difference of `network.onnx` (mel in) against PyTorch on the same mels."""
    import onnxruntime as ort
    import torch

    x = torch.from_numpy((0.1 * np.random.default_rng(seed).standard_normal((2, n_samples))).astype(np.float32))
    with torch.inference_mode():
        mel = model.frontend(x)
        ref_clip, ref_frame = model.forward_mel(mel)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    clip, frame = sess.run(None, {sess.get_inputs()[0].name: mel.numpy()})
    return max(float(np.abs(clip - ref_clip.numpy()).max()), float(np.abs(frame - ref_frame.numpy()).max()))
