"""BirdCLEF inference, self-contained (written by `birdcore export --kaggle`).

Usage in a Kaggle notebook (internet off):
    !python /kaggle/input/<this-folder>/infer.py --data /kaggle/input/birdclef-2022 --out submission.csv

Needs numpy, soundfile and onnxruntime (all on Kaggle's image). Reads test.csv, cuts each
soundscape into 5-s windows (ending at 5, 10, ...), computes the log-mel images in numpy (with
scipy's FFT when scipy is importable; `frontend.npz` holds the Hann window and the mel
filterbank, bundle.json the rest of the recipe), runs the network (`network.onnx`: mel in,
logits out), applies the per-class thresholds and writes `row_id,target` in test.csv's order.

The network runs with OpenVINO when `import openvino` works, else with onnxruntime; the first
line printed says which, the last the real-time factor. OpenVINO is the faster CPU runtime
(`benchmarks/bench_inference.py` on 2 shared cores: 1.1-2x the onnxruntime path, load-dependent)
but is not on Kaggle's image, and notebooks run offline. To use it: on a Linux x86-64 machine with the notebook's
Python version, `pip download openvino -d openvino-wheels` (the wheel and its few dependencies),
upload that folder as a Kaggle dataset, attach it to the notebook and run
    !pip install --no-index --find-links /kaggle/input/<wheel-dataset> openvino
before this script. `--runtime onnxruntime` forces the pure-ONNX path; both give the same
probabilities to ~1e-5 (OpenVINO is told to compute in f32: on a CPU with bf16 it would pick
bf16 by itself, which moved probabilities by up to 0.08).
"""

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

try:  # on Kaggle's image; its rfft vectorises across frames: ~4x numpy's on the 12 x 313 frames of a minute
    from scipy import fft as scipy_fft
except ImportError:
    scipy_fft = None

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


class MelFrontEnd:
    """birdcore's MelFrontend in numpy: zero-padded centred frames, periodic Hann, rfft, |X|^power,
    mel filters, dB floored at max - top_db per image, normalisation, 1 or 3 channels.

    Why numpy (per minute of audio, 12 windows, 2 shared cores; bench_inference.py prints the
    figures): the same front end as an ONNX graph runs in onnxruntime's DFT kernel (~590 ms
    under load); the rfft dominates here, and scipy's (used when importable, as on Kaggle) took
    60-83 ms against 290-340 ms for numpy's own under the same load. Images agree with
    birdcore's MelFrontend to ~3e-7. `threads`: scipy's FFT workers.
    """

    def __init__(self, mel, arrays, threads=1):
        self.cfg = mel
        self.threads = int(threads)
        self.window = arrays["window"].astype(np.float32)
        fb = arrays["filterbank"].astype(np.float32)  # (n_freq, n_mels)
        # The filters are banded (each frequency bin feeds <= 2 neighbouring mel bands): products
        # with ~10 dense blocks covering the non-zeros (row ranges growing geometrically, as mel
        # bands widen with frequency) do ~15 % of the dense multiply-adds (birdcore does the same).
        rows = fb.shape[0]
        bounds = np.concatenate([[0], np.unique(np.round(np.geomspace(16, rows, 10)).astype(int))])
        self.blocks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            cols = np.flatnonzero((fb[a:b] > 0).any(axis=0))
            if cols.size:
                m0, m1 = int(cols[0]), int(cols[-1]) + 1
                self.blocks.append((int(a), int(b), m0, m1, np.ascontiguousarray(fb[a:b, m0:m1])))
        self.n_mels = fb.shape[1]

    def __call__(self, x):
        c = self.cfg
        n_fft, hop = int(c["n_fft"]), int(c["hop_length"])
        padded = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
        framed = frames * self.window
        if scipy_fft is not None:
            spec = scipy_fft.rfft(framed, axis=-1, workers=self.threads)  # complex64 from float32 input
        else:
            spec = np.fft.rfft(framed, axis=-1)
        power = spec.real ** 2 + spec.imag ** 2
        if float(c["power"]) != 2.0:
            power = np.sqrt(power)
        mel = np.zeros(power.shape[:2] + (self.n_mels,), np.float32)
        for a, b, m0, m1, w in self.blocks:
            mel[..., m0:m1] += power[..., a:b] @ w
        mel = np.swapaxes(mel, 1, 2)  # (batch, n_mels, frames)
        p = float(c["power"])
        db = (20.0 / p) * np.log10(np.maximum(mel, np.float32(1e-10 ** (p / 2.0))))
        if c.get("top_db") is not None:
            db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - np.float32(c["top_db"]))
        if c["normalization"] == "db80":
            img = (db + np.float32(80.0)) / np.float32(80.0)
        else:
            lo, hi = db.min(axis=(-2, -1), keepdims=True), db.max(axis=(-2, -1), keepdims=True)
            img = (db - lo) / np.maximum(hi - lo, np.float32(1e-6))
        img = img.astype(np.float32)
        if int(c["in_chans"]) == 1:
            return img[:, None]
        if c["channel_mode"] == "repeat":
            return np.ascontiguousarray(np.repeat(img[:, None], 3, axis=1))
        d1 = delta(img, int(c["delta_width"]))
        return np.stack([img, d1, delta(d1, int(c["delta_width"]))], axis=1)


def delta(x, width):
    """HTK regression delta over the last axis, edges replicated (birdcore's MelFrontend.delta)."""
    t = x.shape[-1]
    padded = np.concatenate([np.repeat(x[..., :1], width, -1), x, np.repeat(x[..., -1:], width, -1)], axis=-1)
    out = np.zeros_like(x)
    for n in range(1, width + 1):
        out = out + n * (padded[..., width + n: width + n + t] - padded[..., width - n: width - n + t])
    return (out / (2.0 * sum(n * n for n in range(1, width + 1)))).astype(np.float32)


def network(path, runtime, threads):
    """(run(mel) -> [clip_logits, frame_logits], description) with OpenVINO or onnxruntime."""
    why = "--runtime onnxruntime"
    if runtime in ("auto", "openvino"):
        try:
            import openvino as ov
        except ImportError as exc:
            if runtime == "openvino":
                raise SystemExit(f"--runtime openvino: cannot import openvino ({exc})")
            why = "openvino is not importable"
        else:
            # f32 explicitly: on a CPU with bf16 OpenVINO would otherwise compute in bf16.
            config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_NUM_THREADS": int(threads)}
            compiled = ov.Core().compile_model(str(path), "CPU", config)
            request = compiled.create_infer_request()
            n_out = len(compiled.outputs)

            def run_ov(x):
                request.infer({0: x})
                return [request.get_output_tensor(i).data.copy() for i in range(n_out)]

            return run_ov, f"OpenVINO {ov.get_version()} (f32, {threads} threads)"
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return (lambda x: sess.run(None, {name: x})), f"onnxruntime {ort.__version__} ({why}; {threads} threads)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="competition folder with test.csv and test_soundscapes/")
    ap.add_argument("--out", default="submission.csv")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runtime", choices=["auto", "openvino", "onnxruntime"], default="auto",
                    help="auto: OpenVINO when importable, else onnxruntime")
    ap.add_argument("--save-probs", help="also write each soundscape's window probabilities to this .npz")
    args = ap.parse_args()

    bundle = json.loads((HERE / "bundle.json").read_text())
    thr = json.loads((HERE / "class_thresholds.json").read_text())  # kaggle_bundle.KAGGLE_THRESHOLDS_FILE
    classes, sr, window_s = bundle["classes"], int(bundle["sample_rate"]), float(bundle["clip_seconds"])
    cut = dict(zip(thr["classes"], thr["thresholds"]))
    with np.load(HERE / "frontend.npz") as arrays:  # kaggle_bundle.FRONTEND_FILE
        front = MelFrontEnd(bundle["mel"], arrays, args.threads)
    run, used = network(HERE / bundle["network"], args.runtime, args.threads)
    print(f"network runtime: {used}", flush=True)

    data = Path(args.data)
    with open(data / "test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    probs = {}
    t0, audio_s = time.perf_counter(), 0.0
    for file_id in dict.fromkeys(r["file_id"] for r in rows):
        matches = sorted((data / "test_soundscapes").glob(file_id + ".*"))
        if not matches:
            raise SystemExit(f"no audio for {file_id} in {data / 'test_soundscapes'}")
        y = load_mono(matches[0], sr)
        audio_s += len(y) / sr
        clip, frame = run(front(windows(y, sr, window_s)))
        p = 1.0 / (1.0 + np.exp(-np.clip(clip, -40, 40)))
        if bundle.get("inference_prob") == "clip_max":
            p = 0.75 * p + 0.25 * (1.0 / (1.0 + np.exp(-np.clip(frame, -40, 40)))).max(axis=-1)
        probs[file_id] = p.astype(np.float32)
    wall = time.perf_counter() - t0
    if args.save_probs:
        np.savez(args.save_probs, **probs)
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
    print(f"wrote {len(rows)} rows to {args.out}; {audio_s:.0f} s of audio in {wall:.1f} s"
          f" ({audio_s / max(wall, 1e-9):.0f}x real time)")


if __name__ == "__main__":
    main()
