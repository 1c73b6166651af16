"""BirdCLEF inference with BirdNET + a trained head, self-contained (written by `birdcore export --kaggle`).

Usage in a Kaggle notebook (internet off):
    !python /kaggle/input/<this-folder>/infer.py --data /kaggle/input/birdclef-2022 --out submission.csv

Needs numpy, soundfile, onnxruntime and a TFLite interpreter (ai-edge-litert, tflite-runtime or
TensorFlow, which Kaggle's image has). Reads test.csv, cuts each soundscape into 5-s windows
(ending at 5, 10, ...), resamples each window to 48 kHz (soxr when installed, as birdcore does,
else scipy's polyphase filter), runs BirdNET on 3-s chunks at 0, 1, 2 s into the window, feeds
the head [mean chunk embedding | BirdNET's max chunk logit per class] and applies the per-class
thresholds; writes `row_id,target` in test.csv's order. The BirdNET model file in this folder is
CC BY-NC-SA 4.0 (non-commercial use only).
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


def tflite_interpreter(path, threads):
    """A TFLite interpreter from whichever runtime is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter  # Kaggle's image
    return Interpreter(model_path=str(path), num_threads=threads)


def resample(y, sr, target):
    if sr == target:
        return y.astype(np.float32)
    try:
        import soxr
        return soxr.resample(y.astype(np.float32), sr, target, quality="HQ").astype(np.float32)
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(sr, target)
        return resample_poly(y, target // g, sr // g).astype(np.float32)


def load_mono(path, sr):
    y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(y.mean(axis=1), file_sr, sr)


def windows(y, sr, window_s, min_last_s=1.5):
    win = int(round(window_s * sr))
    full, rest = divmod(len(y), win)
    n = max(1, full + (1 if rest >= min_last_s * sr else 0))
    y = np.pad(y, (0, max(0, n * win - len(y))))
    return np.stack([y[i * win:(i + 1) * win] for i in range(n)]).astype(np.float32)


def chunk_starts(n_samples, chunk, hop):
    """Chunk starts inside one window: every `hop`, plus one ending at the window's end."""
    starts = list(range(0, max(1, n_samples - chunk + 1), hop))
    if starts[-1] != max(0, n_samples - chunk):
        starts.append(n_samples - chunk)
    return starts


class BirdNET:
    def __init__(self, spec, threads, batch=16):
        self.interp = tflite_interpreter(HERE / spec["model"], threads)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]["index"]
        self.logits, self.embedding = spec["outputs"]["logits"], spec["outputs"]["embedding"]
        self.chunk = int(spec["chunk_samples"])
        self.batch, self.size = batch, None

    def run(self, chunks):
        logits, emb = [], []
        for s in range(0, len(chunks), self.batch):
            part = np.ascontiguousarray(chunks[s:s + self.batch], dtype=np.float32)
            if part.shape[0] != self.size:
                self.interp.resize_tensor_input(self.input, [part.shape[0], self.chunk])
                self.interp.allocate_tensors()
                self.size = part.shape[0]
            self.interp.set_tensor(self.input, part)
            self.interp.invoke()
            logits.append(self.interp.get_tensor(self.logits).copy())
            emb.append(self.interp.get_tensor(self.embedding).copy())
        return np.concatenate(logits), np.concatenate(emb)


def features(waves, sr, bundle, birdnet, prior):
    """Per window: [mean chunk embedding | per class, max chunk logit of its BirdNET labels]."""
    spec = bundle["birdnet"]
    target, chunk = int(spec["sample_rate"]), int(spec["chunk_samples"])
    hop = int(round(float(spec["chunk_hop_s"]) * target))
    chunks, owner = [], []
    for w, wave in enumerate(waves):
        y = resample(wave, sr, target)
        starts = chunk_starts(len(y), chunk, hop)
        y = np.pad(y, (0, max(0, starts[-1] + chunk - len(y))))
        chunks += [y[s:s + chunk] for s in starts]
        owner += [w] * len(starts)
    _, emb = birdnet.run(np.stack(chunks))
    owner = np.asarray(owner)
    n = len(waves)
    mean = np.zeros((n, emb.shape[1]), np.float64)
    np.add.at(mean, owner, emb)
    mean = (mean / np.bincount(owner, minlength=n)[:, None]).astype(np.float32)
    if not bundle["prior"]:
        return mean
    logits = emb @ prior["weights"].T + prior["bias"]
    best = np.full((n, logits.shape[1]), -np.inf, np.float32)
    np.maximum.at(best, owner, logits)
    clip = float(spec["logit_clip"])
    cls = np.zeros((n, len(bundle["classes"])), np.float32)
    for c, cols in enumerate(bundle["prior_columns"]):
        if cols:
            cls[:, c] = np.clip(best[:, cols].max(axis=1), -clip, clip)
    return np.concatenate([mean, cls], axis=1).astype(np.float32)


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
    prior = dict(np.load(HERE / "birdnet_prior.npz"))
    birdnet = BirdNET(bundle["birdnet"], args.threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    head = ort.InferenceSession(str(HERE / bundle["head"]), opts, providers=["CPUExecutionProvider"])
    name = head.get_inputs()[0].name

    data = Path(args.data)
    with open(data / "test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    probs = {}
    for file_id in dict.fromkeys(r["file_id"] for r in rows):
        matches = sorted((data / "test_soundscapes").glob(file_id + ".*"))
        if not matches:
            raise SystemExit(f"no audio for {file_id} in {data / 'test_soundscapes'}")
        waves = windows(load_mono(matches[0], sr), sr, window_s)
        logits = head.run(None, {name: features(waves, sr, bundle, birdnet, prior)})[0]
        probs[file_id] = 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))
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
