"""CPU inference: real-time factor of every path on 1-minute soundscapes, and each path's accuracy.

Speed: whole pipeline (decode ogg + mel front end + network + windowing) for the default
EfficientNet-B0 SED model (`birdclef2022` preset: 128 mels, hop 512, 5-s windows), random weights
(speed does not depend on them), as a real-time factor (seconds of audio per wall second) and its
ratio to PyTorch eager: torch, ONNX Runtime, OpenVINO f32 (optional extra), and two paths measured
but not offered — OpenVINO bf16 and ONNX Runtime int8 (static QDQ, calibrated on the probe's mels);
then a 3-model ensemble on the fastest offered path.
Accuracy (`../shared/data/real-birds-wna10`, skipped when absent or with --skip-accuracy): the
`demo-cpu` CNN trained on 4 grouped folds of the 100 real clips scores the held-out fold with
each path: max |Δ probability| against PyTorch and macro ROC-AUC.
Usage: python benchmarks/bench_inference.py [--files N] [--threads T] [--config PRESET] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdcore.audio.io import write_audio  # noqa: E402
from birdcore.config.run import load_run_config  # noqa: E402
from birdcore.inference.predict import predict_files  # noqa: E402
from birdcore.inference.scorers import load_scorer  # noqa: E402
from birdcore.models import build_model  # noqa: E402
from birdcore.training.checkpoint import save_checkpoint  # noqa: E402
from birdcore.training.runs import create_run  # noqa: E402


def fake_run(tmp: Path, preset: str, classes: list[str]) -> Path:
    """A run folder holding an untrained model of `preset` (the scorers load run folders)."""
    cfg = load_run_config(preset, ["model.pretrained=false"])
    run = create_run(tmp / "runs", cfg, tmp, classes)
    model = build_model(cfg, len(classes))
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0, "classes": classes})
    return run.path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=6, help="1-minute soundscapes to process")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--config", default="birdclef2022")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--cnn-epochs", type=int, default=8)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    classes = [f"sp{i:03d}" for i in range(21)]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        files = []
        for i in range(args.files):
            tt = np.arange(60 * 32000) / 32000
            y = 0.05 * rng.standard_normal(len(tt)) + 0.2 * np.sin(2 * np.pi * (1500 + 300 * i) * tt) * (np.sin(tt) > 0.5)
            files.append(write_audio(tmp / f"soundscape_{i}.ogg", y.astype(np.float32)))
        run = fake_run(tmp, args.config, classes)
        audio_s = 60.0 * len(files)
        print(f"{args.config}: {len(files)} × 60-s soundscapes, {args.threads} threads, {len(classes)} classes")
        paths = speed_paths(run, args.threads, files)
        rtf = {}
        for name, make in paths.items():
            t0 = time.perf_counter()
            scorer = make()
            setup = time.perf_counter() - t0
            predict_files(files[:1], [scorer])  # warm-up (allocations, kernel selection)
            t0 = time.perf_counter()
            res = predict_files(files, [scorer])
            dt = time.perf_counter() - t0
            rtf[name] = audio_s / dt
            print(f"  {name:<28} real-time factor {rtf[name]:6.0f}×  ({rtf[name] / rtf['torch']:.1f}× torch;"
                  f" {dt / len(files) * 1000:.0f} ms per minute of audio; {len(res.table)} windows; load {setup:.1f} s)")
        fastest = max((b for b in ("onnx", "openvino") if b in rtf), key=rtf.get)
        ensemble = [load_scorer(fake_run(tmp / f"e{k}", args.config, classes), backend=fastest, threads=args.threads)
                    for k in range(3)]
        predict_files(files[:1], ensemble)
        t0 = time.perf_counter()
        predict_files(files, ensemble)
        dt = time.perf_counter() - t0
        print(f"  {'3-model ensemble, ' + fastest:<28} real-time factor {audio_s / dt:6.0f}×  ({audio_s / dt / rtf['torch']:.1f}×"
              f" one torch model)")
        from birdcore.inference.scorers import OnnxScorer

        whole = OnnxScorer(Path(run) / "onnx", threads=args.threads, prefer_network=False)
        predict_files(files[:1], [whole])
        t0 = time.perf_counter()
        predict_files(files, [whole])
        dt = time.perf_counter() - t0
        print(f"  onnx, waveform-in model.onnx (front end in ORT too; the Kaggle bundle's path): {audio_s / dt:.0f}×")
        # where the time goes, for one minute (12 windows)
        from birdcore.audio.io import load_audio

        t0 = time.perf_counter()
        y = load_audio(files[0])
        t_dec = time.perf_counter() - t0
        scorer = load_scorer(run, backend="torch", threads=args.threads)
        x = torch.from_numpy(y[: 12 * 160000].reshape(12, 160000))
        with torch.inference_mode():
            t0 = time.perf_counter()
            mel = scorer.model.frontend(x)
            t_mel = time.perf_counter() - t0
            t0 = time.perf_counter()
            scorer.model.forward_mel(mel)
            t_net = time.perf_counter() - t0
        print(f"  one minute, torch: decode {t_dec * 1000:.0f} ms, mel {t_mel * 1000:.0f} ms, network {t_net * 1000:.0f} ms")
    if not args.skip_accuracy:
        accuracy(args)
    return 0


def speed_paths(run: Path, threads: int, files: list[Path]) -> dict:
    """name -> scorer factory, for every path measured (OpenVINO ones when the extra is installed)."""
    from birdcore.inference import openvino_runtime

    paths = {"torch": lambda: load_scorer(run, backend="torch", threads=threads),
             "onnx": lambda: load_scorer(run, backend="onnx", threads=threads)}
    if openvino_runtime.is_available():
        paths["openvino"] = lambda: load_scorer(run, backend="openvino", threads=threads)
        paths["openvino bf16 (not offered)"] = lambda: variant(run, threads, "bf16", files)
    paths["onnx int8 (not offered)"] = lambda: variant(run, threads, "int8", files)
    return paths


def variant(run: Path, threads: int, kind: str, calibration: list[Path]):
    """An ONNX scorer of `run` whose network runs as OpenVINO bf16 or as a static int8 ONNX graph."""
    import onnxruntime as ort

    from birdcore.inference import openvino_runtime
    from birdcore.inference.scorers import OnnxScorer

    scorer = load_scorer(run, backend="onnx", threads=threads)
    network = Path(run) / "onnx" / "network.onnx"
    if kind == "bf16":
        scorer._run = openvino_runtime.compile_network(network, threads, "bf16")
        return scorer
    q = quantized(network, scorer, calibration)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(q), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    scorer._run = lambda x: session.run(None, {name: x})
    assert isinstance(scorer, OnnxScorer)
    return scorer


def quantized(network: Path, scorer, calibration: list[Path], windows: int = 48) -> Path:
    """Static int8 (QDQ, per-channel weights) of `network`, calibrated on mels of real windows."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from birdcore.audio.io import load_audio
    from birdcore.audio.windows import cut_windows

    out = network.with_name("network.int8.onnx")
    if out.exists():
        return out
    sr = scorer.info.sample_rate
    waves = np.concatenate([cut_windows(load_audio(p, sr=sr), sr, scorer.info.clip_seconds)[0] for p in calibration])
    with torch.inference_mode():
        mels = scorer.frontend(torch.from_numpy(waves[:windows])).numpy()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"mel": mels[i:i + 8]} for i in range(0, len(mels), 8)])

        def get_next(self):
            return next(self.batches, None)

    pre = network.with_name("network.pre.onnx")
    quant_pre_process(str(network), str(pre))
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def accuracy(args) -> None:
    """Each path against PyTorch on the held-out fold of the real clips: max |Δ prob| and macro AUC."""
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-birds-wna10"
    taxonomy = real.parent / "birdclef2022" / "eBird_Taxonomy_v2021.csv"
    if not (real / "recordings.csv").exists():
        print(f"\naccuracy: {real} not found, skipped")
        return
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from birdcore.data.dataset import load_dataset
    from birdcore.ingest.importer import import_recordings
    from birdcore.training.launcher import prepare_run, run_in_process

    with tempfile.TemporaryDirectory() as t:
        work = Path(t)
        res = import_recordings([real / "recordings.csv"], work / "wna10", taxonomy=taxonomy)
        cfg = load_run_config("demo-cpu", ["train.n_folds=4", "train.fold=0", f"train.epochs={args.cnn_epochs}",
                                           "train.patience=8", "train.num_workers=0"])
        t0 = time.perf_counter()
        run = prepare_run(res.out, cfg, work / "runs")
        run_in_process(run)
        ds = load_dataset(res.out)
        held = sorted(set(pd.read_parquet(run.oof_path)["filename"]))
        truth = ds.metadata.set_index("filename").loc[held, "primary_label"].to_numpy()
        files = [ds.train_audio_dir / f for f in held]
        print(f"\naccuracy: demo-cpu trained on 3 of 4 grouped folds of {len(ds.metadata)} real clips"
              f" ({time.perf_counter() - t0:.0f} s); {len(files)} held-out clips scored by each path")
        tables = {}
        for name, make in speed_paths(run.path, args.threads, files).items():
            r = predict_files(files, [make()])
            tables[name] = r
        classes = tables["torch"].classes
        ref = tables["torch"].table[classes].to_numpy()
        for name, r in tables.items():
            probs = r.table[classes].to_numpy()
            clip = r.table.groupby("file_id")[classes].max().loc[[Path(f).stem for f in held]]
            aucs = [roc_auc_score(truth == c, clip[c]) for c in classes if 0 < (truth == c).sum() < len(truth)]
            print(f"  {name:<26} max |Δ prob| vs torch {np.abs(probs - ref).max():.2e}   macro AUC {np.mean(aucs):.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
