"""A self-contained Kaggle inference folder: network, mel front end, bundle.json, thresholds, `infer.py`.

`infer.py` needs only numpy, soundfile and onnxruntime (all on Kaggle's image), runs offline and
writes `submission.csv` in test.csv's row order — the same rows `birdcore submit` writes. It
computes the mel images in numpy (`frontend.npz`: window, filterbank and its non-zero blocks) and
runs the mel-in `network.onnx` with OpenVINO when the notebook can import it (a wheel attached
as a dataset), else with onnxruntime. The waveform-in `model.onnx` (front end inside the graph) is
not shipped: onnxruntime's DFT kernel makes it the slowest path and OpenVINO cannot compile it
(`bench_inference.py`, interleaved on 2 shared cores at load ~5: model.onnx 48x real time, this
bundle 70x with onnxruntime and 79x with OpenVINO). A
`birdnet_head` export (BirdNET + a head) gets `kaggle_birdnet_template.py` as its `infer.py`,
which also needs a TFLite interpreter (TensorFlow on Kaggle's image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from birdcore.atomic_io import atomic_write_json
from birdcore.evaluation.thresholds import Thresholds
from birdcore.inference.scorers import BUNDLE_FILE, NETWORK_FILE

TEMPLATE = Path(__file__).with_name("kaggle_infer_template.py")
BIRDNET_TEMPLATE = Path(__file__).with_name("kaggle_birdnet_template.py")
# Its own name: a per-class list resolved for the bundle's classes, not the `Thresholds` schema of
# THRESHOLDS_FILE. `kaggle_infer_template.py` reads it under this name.
KAGGLE_THRESHOLDS_FILE = "class_thresholds.json"
FRONTEND_FILE = "frontend.npz"  # the arrays infer.py's numpy front end reads (bundle.json has the rest)


def write_frontend_arrays(mel: dict, path: Path) -> Path:
    """`frontend.npz` for the bundle's numpy front end: birdcore's own Hann window and filterbank.

    Shipping the arrays, rather than re-deriving them in infer.py, keeps one implementation of the
    Slaney filterbank (`mel_filterbank`) and of the window.
    """
    import numpy as np

    from birdcore.config.base import from_dict
    from birdcore.config.features import MelConfig
    from birdcore.features.mel_frontend import MelFrontend

    fe = MelFrontend(from_dict(MelConfig, mel))
    with open(path, "wb") as fh:
        np.savez(fh, window=fe.window.numpy(), filterbank=fe.fb.numpy())  # filterbank (n_freq, n_mels) float32
    return path


def write_kaggle_bundle(export_dir: str | Path, out_dir: str | Path, thresholds: Thresholds) -> Path:
    """Copy the exported model into `out_dir` with resolved per-class thresholds and `infer.py`."""
    import json

    from birdcore.inference.export_birdnet_head import BIRDNET_FILE, HEAD_FILE, PRIOR_FILE

    src, out = Path(export_dir), Path(out_dir)
    bundle = json.loads((src / BUNDLE_FILE).read_text())
    head_family = bundle.get("family") == "birdnet_head"
    if not head_family and not ((src / NETWORK_FILE).is_file() and bundle.get("mel")):
        from birdcore.errors import ModelError

        raise ModelError(f"{src}: no {NETWORK_FILE} (an export from an older birdcore) — run `birdcore export`"
                         " again to write the Kaggle bundle")
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name == BUNDLE_FILE or (f.name in (HEAD_FILE, BIRDNET_FILE, PRIOR_FILE) if head_family
                                     else f.name.startswith(NETWORK_FILE)):
            shutil.copyfile(f, out / f.name)  # network.onnx and network.onnx.data when weights are external
    classes = list(thresholds.classes) if thresholds.classes else []
    if bundle.get("denoise"):
        from birdcore.errors import ModelError

        raise ModelError(f"{src}: the model was trained on noise-reduced audio; the Kaggle bundle's numpy-only"
                         " script cannot reproduce noisereduce — retrain with denoise.enabled=false")
    per_class = thresholds.for_classes(bundle["classes"])
    atomic_write_json(out / KAGGLE_THRESHOLDS_FILE, {"classes": bundle["classes"], "thresholds": [float(t) for t in per_class],
                                                "source": thresholds.source or "", "metric": thresholds.metric,
                                                "tuned_classes": classes})
    if not head_family:
        write_frontend_arrays(bundle["mel"], out / FRONTEND_FILE)
        # the copied bundle.json described the export folder's waveform-in model.onnx
        atomic_write_json(out / BUNDLE_FILE, {**bundle, "input": "mel (batch, in_chans, n_mels, frames) float32,"
                                              f" computed by infer.py from {FRONTEND_FILE} and `mel`"})
    shutil.copyfile(BIRDNET_TEMPLATE if head_family else TEMPLATE, out / "infer.py")
    return out
