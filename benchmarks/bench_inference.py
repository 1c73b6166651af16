"""CPU inference: real-time factor of every path on 1-minute soundscapes, and each path's accuracy.

Speed: whole pipeline (decode ogg + mel front end + network + windowing) for the default
EfficientNet-B0 SED model (`birdclef2022` preset: 128 mels, hop 512, 5-s windows), random weights
(speed does not depend on them), as a real-time factor (seconds of audio per wall second) and its
ratio to PyTorch eager: torch, ONNX Runtime, OpenVINO f32 (optional extra), and two paths measured
but not offered — OpenVINO bf16 and ONNX Runtime int8 (static QDQ, calibrated on 48 windows: the
probe soundscapes for speed, the training clips for the accuracy check);
then a 3-model ensemble on the fastest offered path; then the Kaggle bundle's own `infer.py`
(numpy mel + mel-in network.onnx, OpenVINO or onnxruntime) against the waveform-in model.onnx
the bundle used to ship; then the parts alone per minute of audio (decode, mel front end in
torch / numpy / onnxruntime, the network alone in each runtime), which bound what any path of
this model can reach on this machine.
Accuracy (`../shared/data/real-birds-wna10`, skipped when absent or with --skip-accuracy): the
`demo-cpu` CNN trained on 4 grouped folds of the 100 real clips scores the held-out fold with
each path: max |Δ probability| against PyTorch and macro ROC-AUC.
Usage: python benchmarks/bench_inference.py [--files N] [--threads T] [--config PRESET] [--skip-accuracy]
       [--kaggle-only | --accuracy-only]
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
from timing import best_of  # noqa: E402  (benchmarks/, on sys.path as the script's folder)


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
    ap.add_argument("--kaggle-only", action="store_true",
                    help="torch, the Kaggle bundle and the stages alone (skips the other paths and the ensemble)")
    ap.add_argument("--accuracy-only", action="store_true", help="only the accuracy check on the real clips")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.accuracy_only:
        accuracy(args)
        return 0
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
        if args.kaggle_only:
            paths = {"torch": paths["torch"]}
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
        fastest = max((b for b in ("onnx", "openvino") if b in rtf), key=rtf.get, default=None)
        ensemble = [load_scorer(fake_run(tmp / f"e{k}", args.config, classes), backend=fastest, threads=args.threads)
                    for k in range(3)] if fastest else []
        if ensemble:
            predict_files(files[:1], ensemble)
            t0 = time.perf_counter()
            predict_files(files, ensemble)
            dt = time.perf_counter() - t0
            print(f"  {'3-model ensemble, ' + fastest:<28} real-time factor {audio_s / dt:6.0f}×  ({audio_s / dt / rtf['torch']:.1f}×"
                  f" one torch model)")
        kaggle_bundle(run, tmp, files, classes, args.threads, rtf["torch"])
        parts(run, files, args.threads)
    print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not args.skip_accuracy:
        accuracy(args)
    return 0


def _best_of(fn, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls after one warm-up (the least disturbed by other users)."""
    return best_of(fn, repeats)


def kaggle_bundle(run: Path, tmp: Path, files: list[Path], classes: list[str], threads: int, torch_rtf: float) -> None:
    """Real-time factor of the Kaggle bundle's infer.py on each runtime, and of the old waveform-in path."""
    import importlib.util
    import json
    import re
    import subprocess

    import onnxruntime as ort
    import pandas as pd

    from birdcore.evaluation.thresholds import Thresholds
    from birdcore.inference import openvino_runtime
    from birdcore.submission.kaggle_bundle import write_kaggle_bundle

    load_scorer(run, backend="onnx", threads=threads)  # exports <run>/onnx (network.onnx, model.onnx) if missing
    comp = tmp / "competition"
    (comp / "test_soundscapes").mkdir(parents=True)
    rows = []
    for f in files:
        (comp / "test_soundscapes" / f.name).write_bytes(f.read_bytes())
        rows += [{"row_id": f"{f.stem}_{b}_{e}", "file_id": f.stem, "bird": b, "end_time": e}
                 for e in range(5, 65, 5) for b in classes[:3]]
    pd.DataFrame(rows).to_csv(comp / "test.csv", index=False)
    bundle = write_kaggle_bundle(Path(run) / "onnx", tmp / "kaggle", Thresholds(classes=classes, global_threshold=0.5))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runtimes = ["onnxruntime"] + (["openvino"] if openvino_runtime.is_available() else [])
    # the bundle's previous path: the same script's decode and windows, the waveform-in model.onnx
    spec = importlib.util.spec_from_file_location("kaggle_infer", bundle / "infer.py")
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    meta = json.loads((Path(run) / "onnx" / "bundle.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(Path(run) / "onnx" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    sr, win = int(meta["sample_rate"]), float(meta["clip_seconds"])

    def old():
        for f in files:
            sess.run(None, {"wave": infer.windows(infer.load_mono(f, sr), sr, win)})

    old()  # warm-up
    best = dict.fromkeys([*runtimes, "old"], 0.0)
    used = {}
    for _ in range(2):  # interleaved rounds, best of each: a burst of other users' load hits all paths alike
        for runtime in runtimes:  # the script's own figure: decode + mel + network, setup excluded
            proc = subprocess.run([sys.executable, str(bundle / "infer.py"), "--data", str(comp), "--out",
                                   str(tmp / "sub.csv"), "--runtime", runtime, "--threads", str(threads)],
                                  capture_output=True, text=True, env=env, timeout=600, check=True)
            best[runtime] = max(best[runtime], float(re.search(r"\((\d+)x real time\)", proc.stdout).group(1)))
            used[runtime] = proc.stdout.splitlines()[0].removeprefix("network runtime: ")
        t0 = time.perf_counter()
        old()
        best["old"] = max(best["old"], 60.0 * len(files) / (time.perf_counter() - t0))
    for runtime in runtimes:
        print(f"  {'kaggle infer.py, ' + runtime:<28} real-time factor {best[runtime]:6.0f}×  ({best[runtime] / torch_rtf:.1f}×"
              f" torch; {best[runtime] / best['old']:.1f}× the old bundle; {60000 / best[runtime]:.0f} ms per minute;"
              f" {used[runtime]})")
    print(f"  {'old bundle: model.onnx':<28} real-time factor {best['old']:6.0f}×  ({best['old'] / torch_rtf:.1f}× torch;"
          f" {60000 / best['old']:.0f} ms per minute; waveform in, front end in onnxruntime's DFT)")


def parts(run: Path, files: list[Path], threads: int) -> None:
    """Each stage alone for one minute (12 windows), best of 3: decode, mel front ends, network runtimes."""
    import importlib.util
    import json

    import onnxruntime as ort
    import torch

    from birdcore.audio.io import load_audio
    from birdcore.features.mel_frontend import MelFrontend
    from birdcore.inference import openvino_runtime
    from birdcore.inference.onnx_graph import export_onnx
    from birdcore.submission.kaggle_bundle import TEMPLATE, write_frontend_arrays

    onnx_dir = Path(run) / "onnx"
    meta = json.loads((onnx_dir / "bundle.json").read_text())
    scorer = load_scorer(run, backend="torch", threads=threads)
    ms = {"decode (soundfile ogg)": _best_of(lambda: load_audio(files[0]))}
    y = load_audio(files[0])
    x = np.ascontiguousarray(y[: 12 * 160000].reshape(12, 160000))
    fe = scorer.model.frontend
    with torch.inference_mode():
        ms["mel, torch"] = _best_of(lambda: fe(torch.from_numpy(x)))
        mel = fe(torch.from_numpy(x)).numpy()
        ms["network, torch"] = _best_of(lambda: scorer.model.forward_mel(torch.from_numpy(mel)))
    spec = importlib.util.spec_from_file_location("kaggle_infer", TEMPLATE)
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    with np.load(write_frontend_arrays(meta["mel"], onnx_dir / "frontend.npz")) as arrays:
        front = infer.MelFrontEnd(meta["mel"], arrays, threads)
    ms["mel, kaggle infer.py (numpy, scipy FFT)" if infer.scipy_fft else "mel, kaggle infer.py (numpy)"] = _best_of(lambda: front(x))
    delta_np = float(np.abs(front(x) - mel).max())
    export_onnx(MelFrontend(scorer.cfg.mel).eval(), torch.from_numpy(x[:2]), onnx_dir / "frontend.onnx", "wave", ["mel"],
                {0: ("batch", 1, 4096)})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    fsess = ort.InferenceSession(str(onnx_dir / "frontend.onnx"), opts, providers=["CPUExecutionProvider"])
    ms["mel, onnxruntime graph"] = _best_of(lambda: fsess.run(None, {"wave": x}))
    delta_ort = float(np.abs(fsess.run(None, {"wave": x})[0] - mel).max())
    nsess = ort.InferenceSession(str(onnx_dir / "network.onnx"), opts, providers=["CPUExecutionProvider"])
    ms["network, onnxruntime"] = _best_of(lambda: nsess.run(None, {"mel": mel}))
    if openvino_runtime.is_available():
        ov_run = openvino_runtime.compile_network(onnx_dir / "network.onnx", threads)
        ms["network, openvino f32"] = _best_of(lambda: ov_run(mel))
    print(f"  one minute (12 windows), each stage alone, best of 3, {threads} threads:")
    for name, t in ms.items():
        print(f"    {name:<30} {t * 1000:6.0f} ms  ({60 / t:6.0f}× real time alone)")
    print(f"    mel |Δ| vs torch: numpy {delta_np:.1e}, onnxruntime graph {delta_ort:.1e}")
    net = min(t for k, t in ms.items() if k.startswith("network"))
    mel_t = min(t for k, t in ms.items() if k.startswith("mel"))
    dec = ms["decode (soundfile ogg)"]
    print(f"  bound for one model on this machine: network alone {60 / net:.0f}×; decode + fastest mel + network,"
          f" run one after the other, {60 / (dec + mel_t + net):.0f}×; 3 models sharing decode and mel"
          f" {60 / (dec + mel_t + 3 * net):.0f}×")


def speed_paths(run: Path, threads: int, files: list[Path], calibration: list[Path] | None = None) -> dict:
    """name -> scorer factory, for every path measured (OpenVINO ones when the extra is installed).

    `calibration`: the audio whose windows calibrate int8 (default `files`); the accuracy check
    passes the run's training clips, never the held-out clips it scores.
    """
    calibration = files if calibration is None else calibration
    from birdcore.inference import openvino_runtime

    paths = {"torch": lambda: load_scorer(run, backend="torch", threads=threads),
             "onnx": lambda: load_scorer(run, backend="onnx", threads=threads)}
    if openvino_runtime.is_available():
        paths["openvino"] = lambda: load_scorer(run, backend="openvino", threads=threads)
        paths["openvino bf16 (not offered)"] = lambda: variant(run, threads, "bf16", calibration)
    paths["onnx int8 (not offered)"] = lambda: variant(run, threads, "int8", calibration)
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
    # spread over all the calibration audio (sorted clips start with one species' recordings)
    pick = np.unique(np.linspace(0, len(waves) - 1, windows).round().astype(int))
    with torch.inference_mode():
        mels = scorer.frontend(torch.from_numpy(waves[pick])).numpy()

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
        train = [ds.train_audio_dir / f for f in sorted(set(ds.metadata["filename"]) - set(held))]
        for name, make in speed_paths(run.path, args.threads, files, calibration=train).items():
            r = predict_files(files, [make()])
            tables[name] = r
        classes = tables["torch"].classes
        ref = tables["torch"].table[classes].to_numpy()
        auc: dict[str, float] = {}
        for name, r in tables.items():
            probs = r.table[classes].to_numpy()
            clip = r.table.groupby("file_id")[classes].max().loc[[Path(f).stem for f in held]]
            aucs = [roc_auc_score(truth == c, clip[c]) for c in classes if 0 < (truth == c).sum() < len(truth)]
            auc[name] = float(np.mean(aucs))
            print(f"  {name:<26} max |Δ prob| vs torch {np.abs(probs - ref).max():.2e}   macro AUC {auc[name]:.4f}"
                  f"   (Δ {auc[name] - auc['torch']:+.4f})")
        d8 = auc["onnx int8 (not offered)"] - auc["torch"]
        dp8 = float(np.abs(tables["onnx int8 (not offered)"].table[classes].to_numpy() - ref).max())
        print(f"  int8 (static QDQ, calibrated on 48 windows spread over the {len(train)} training clips, none held out):"
              f" Δ macro AUC {d8:+.4f} — {'meets' if abs(d8) <= 0.002 else 'misses'} the |Δ| ≤ 0.002 rule for"
              f" offering it, with max |Δ prob| {dp8:.2f} (thresholds tuned in f32 would move; on {len(files)}"
              " held-out clips one swapped pair moves a class's AUC by more than 0.002)")


if __name__ == "__main__":
    raise SystemExit(main())
