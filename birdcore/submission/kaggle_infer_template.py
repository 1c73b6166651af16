"""BirdCLEF inference, self-contained (written by `birdcore export --kaggle`).

Usage in a Kaggle notebook (internet off):
    !python /kaggle/input/<this-folder>/infer.py --data /kaggle/input/birdclef-2022 --out submission.csv

Needs only numpy, soundfile and onnxruntime. Reads test.csv, scores each soundscape's 5-s windows
(ending at 5, 10, ...) with model.onnx (mel front end included: waveform in, logits out), applies
the per-class thresholds and writes `row_id,target` in test.csv's order.
"""

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf

HERE = Path(__file__).resolve().parent


def load_mono(path, sr):
    y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if file_sr != sr:  # linear interpolation: numpy only (competition audio is already 32 kHz)
        t_new = np.arange(int(round(len(y) * sr / file_sr))) / sr
        y = np.interp(t_new, np.arange(len(y)) / file_sr, y).astype(np.float32)
    return y


def windows(y, sr, window_s, min_last_s=1.5):
    win = int(round(window_s * sr))
    full, rest = divmod(len(y), win)
    n = max(1, full + (1 if rest >= min_last_s * sr else 0))
    y = np.pad(y, (0, max(0, n * win - len(y))))
    return np.stack([y[i * win:(i + 1) * win] for i in range(n)]).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="competition folder with test.csv and test_soundscapes/")
    ap.add_argument("--out", default="submission.csv")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    bundle = json.loads((HERE / "bundle.json").read_text())
    thr = json.loads((HERE / "class_thresholds.json").read_text())  # kaggle_bundle.KAGGLE_THRESHOLDS_FILE
    classes, sr, window_s = bundle["classes"], int(bundle["sample_rate"]), float(bundle["clip_seconds"])
    cut = dict(zip(thr["classes"], thr["thresholds"]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(HERE / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    data = Path(args.data)
    with open(data / "test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    probs = {}
    for file_id in dict.fromkeys(r["file_id"] for r in rows):
        matches = sorted((data / "test_soundscapes").glob(file_id + ".*"))
        if not matches:
            raise SystemExit(f"no audio for {file_id} in {data / 'test_soundscapes'}")
        x = windows(load_mono(matches[0], sr), sr, window_s)
        clip, frame = sess.run(None, {name: x})
        p = 1.0 / (1.0 + np.exp(-np.clip(clip, -40, 40)))
        if bundle.get("inference_prob") == "clip_max":
            p = 0.75 * p + 0.25 * (1.0 / (1.0 + np.exp(-np.clip(frame, -40, 40)))).max(axis=-1)
        probs[file_id] = p
    index = {c: i for i, c in enumerate(classes)}
    tmp = Path(str(args.out) + ".tmp")
    with open(tmp, "w", newline="") as fh:
        fh.write("row_id,target\n")
        for r in rows:
            w = int(round(float(r["end_time"]) / window_s)) - 1
            p = probs[r["file_id"]]
            hit = r["bird"] in index and 0 <= w < len(p) and p[w, index[r["bird"]]] >= cut[r["bird"]]
            fh.write(f"{r['row_id']},{bool(hit)}\n")
    os.replace(tmp, args.out)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
