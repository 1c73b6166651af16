"""A self-contained Kaggle inference folder: ONNX model, bundle.json, thresholds, `infer.py`.

`infer.py` needs only numpy, soundfile and onnxruntime (all on Kaggle's image), runs offline and
writes `submission.csv` in test.csv's row order — the same rows `birdcore submit` writes. A
`birdnet_head` export (BirdNET + a head) gets `kaggle_birdnet_template.py` as its `infer.py`,
which also needs a TFLite interpreter (TensorFlow on Kaggle's image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from birdcore.atomic_io import atomic_write_json
from birdcore.evaluation.thresholds import Thresholds
from birdcore.inference.scorers import BUNDLE_FILE, ONNX_FILE

TEMPLATE = Path(__file__).with_name("kaggle_infer_template.py")
BIRDNET_TEMPLATE = Path(__file__).with_name("kaggle_birdnet_template.py")
# Its own name: a per-class list resolved for the bundle's classes, not the `Thresholds` schema of
# THRESHOLDS_FILE. `kaggle_infer_template.py` reads it under this name.
KAGGLE_THRESHOLDS_FILE = "class_thresholds.json"


def write_kaggle_bundle(export_dir: str | Path, out_dir: str | Path, thresholds: Thresholds) -> Path:
    """Copy the exported model into `out_dir` with resolved per-class thresholds and `infer.py`."""
    import json

    from birdcore.inference.export_birdnet_head import BIRDNET_FILE, HEAD_FILE, PRIOR_FILE

    src, out = Path(export_dir), Path(out_dir)
    bundle = json.loads((src / BUNDLE_FILE).read_text())
    head_family = bundle.get("family") == "birdnet_head"
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name == BUNDLE_FILE or (f.name in (HEAD_FILE, BIRDNET_FILE, PRIOR_FILE) if head_family
                                     else f.name.startswith(ONNX_FILE)):
            shutil.copyfile(f, out / f.name)  # model.onnx and model.onnx.data when weights are external
    classes = list(thresholds.classes) if thresholds.classes else []
    if bundle.get("denoise"):
        from birdcore.errors import ModelError

        raise ModelError(f"{src}: the model was trained on noise-reduced audio; the Kaggle bundle's numpy-only"
                         " script cannot reproduce noisereduce — retrain with denoise.enabled=false")
    per_class = thresholds.for_classes(bundle["classes"])
    atomic_write_json(out / KAGGLE_THRESHOLDS_FILE, {"classes": bundle["classes"], "thresholds": [float(t) for t in per_class],
                                                "source": thresholds.source or "", "metric": thresholds.metric,
                                                "tuned_classes": classes})
    shutil.copyfile(BIRDNET_TEMPLATE if head_family else TEMPLATE, out / "infer.py")
    return out
