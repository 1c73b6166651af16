"""Peak memory of `predict_files` against recording length: streamed blocks vs the whole-file cut.

Writes long synthetic recordings (WAV, written a minute at a time so this script never holds
them whole) into a temporary folder, then scores each in a fresh child process and reads the
child's peak resident memory (`os.wait4` → ru_maxrss). The model is an untrained run of
`--config` (default `demo-cpu`: EfficientNet-Lite0 SED; weights do not change memory or speed),
built here without any download, run with each of `--backends`: `torch` (the CLI's default) and
`onnx` (the exported waveform-in `model.onnx` in ONNX Runtime: numpy + ORT, no torch, as in the
Kaggle bundle). Also measured: the model alone (load + one batch), and at the shortest length the
old whole-file path (`load_audio` + `score_recording`) for comparison.
Target: ≤ 600 MB peak for an 8-hour file, model included, flat in file length. `import torch`
alone takes ~470 MB and timm ~190 MB more on this machine, so only the ORT path can meet it.

Usage: nice -n 10 python benchmarks/bench_memory.py [--hours 1 8] [--backends onnx torch]
       [--config demo-cpu] [--file-sr 32000] [--threads 2] [--no-whole]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MINUTE_BLOCKS = 60  # seconds written per call: the writer's memory stays flat too


def write_long_recording(path: Path, hours: float, sr: int, seed: int = 0) -> Path:
    """A `hours`-long mono 16-bit WAV: noise with a chirping tone every few seconds."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(hours * 3600 * sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, format="WAV", subtype="PCM_16") as fh:
        for start in range(0, total, MINUTE_BLOCKS * sr):
            n = min(MINUTE_BLOCKS * sr, total - start)
            t = (start + np.arange(n)) / sr
            tone = 0.2 * np.sin(2 * np.pi * (1500 + 200 * np.sin(t)) * t) * (np.sin(t / 3) > 0.6)
            fh.write((0.05 * rng.standard_normal(n) + tone).astype(np.float32))
    return path


def fake_run(tmp: Path, preset: str, n_classes: int) -> Path:
    """A run folder holding an untrained model of `preset` (no pretrained weights are read)."""
    from birdcore.config.run import load_run_config
    from birdcore.models import build_model
    from birdcore.training.checkpoint import save_checkpoint
    from birdcore.training.runs import create_run

    classes = [f"sp{i:03d}" for i in range(n_classes)]
    cfg = load_run_config(preset, ["model.pretrained=false"])
    run = create_run(tmp / "runs", cfg, tmp, classes)
    model = build_model(cfg, len(classes))
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0, "classes": classes})
    return run.path


def child(mode: str, backend: str, run: str, audio: str, threads: int) -> None:
    """Score `audio` with the model of `run` in this process and print what it did as JSON."""
    from birdcore.inference.predict import PredictOptions, predict_files, score_recording

    if mode == "setup":  # `run` is the folder to build it in; `audio` the class count
        made = fake_run(Path(run), backend, int(audio))
        from birdcore.inference.export import export_onnx_model

        export_onnx_model(made, made / "onnx")
        print(json.dumps({"run": str(made)}))
        return

    if backend == "onnx":
        from birdcore.inference.scorers import OnnxScorer

        scorer = OnnxScorer(Path(run) / "onnx", threads=threads, prefer_network=False)
    else:
        from birdcore.inference.scorers import load_scorer

        scorer = load_scorer(run, backend="torch", threads=threads)
    sr = scorer.info.sample_rate
    t0 = time.perf_counter()
    if mode == "model":
        scorer(np.zeros((PredictOptions().batch_windows, 5 * sr), np.float32))
        seconds, windows = 0.0, 1
    elif mode == "stream":
        res = predict_files([audio], [scorer])
        if res.skipped:
            raise SystemExit(f"skipped: {res.skipped}")
        seconds, windows = res.audio_seconds, len(res.table)
    else:
        from birdcore.audio.io import load_audio

        y = load_audio(audio, sr=sr)
        seconds, windows = len(y) / sr, len(score_recording(y, sr, [scorer], PredictOptions()))
    wall = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "windows": windows, "wall": wall, "hwm_mb": _vm_hwm_mb()}))


def _vm_hwm_mb() -> float:
    """This process's own peak RSS (VmHWM): unlike ru_maxrss, it never includes the parent's
    memory at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(mode: str, backend: str, run: Path, audio: Path | str | None, threads: int) -> dict:
    """Run one child; its JSON plus its peak RSS in MB (ru_maxrss; this parent stays small, never
    importing torch, because Linux counts the parent's RSS at fork in the child's ru_maxrss)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, backend, str(run), str(audio or ""),
           "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} {backend} {audio} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, nargs="+", default=[1.0, 8.0])
    ap.add_argument("--backends", nargs="+", choices=["onnx", "torch"], default=["onnx", "torch"])
    ap.add_argument("--config", default="demo-cpu")
    ap.add_argument("--classes", type=int, default=182)
    ap.add_argument("--file-sr", type=int, default=32000, help="recording rate (≠ the model's: resampled)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-file path at the shortest length")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "BACKEND", "RUN", "AUDIO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, threads=args.threads)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as t:
        tmp = Path(t)
        run = Path(measure("setup", args.config, tmp, str(args.classes), args.threads)["run"])
        print(f"{args.config}, {args.classes} classes, {args.threads} threads, {args.file_sr} Hz mono WAV", flush=True)
        for backend in args.backends:
            base = measure("model", backend, run, None, args.threads)
            print(f"  {backend:<5} model alone (load + one batch): peak {base['peak_mb']:6.0f} MB"
                  f" (VmHWM {base['hwm_mb']:.0f})", flush=True)
        for i, hours in enumerate(sorted(args.hours)):
            t0 = time.perf_counter()
            audio = write_long_recording(tmp / f"rec_{hours:g}h.wav", hours, args.file_sr)
            made = time.perf_counter() - t0
            print(f"  {hours:g} h recording written in {made:.0f} s ({audio.stat().st_size / 2**20:.0f} MB)", flush=True)
            for backend in args.backends:
                modes = ["stream"] + (["whole"] if i == 0 and not args.no_whole else [])
                for mode in modes:
                    r = measure(mode, backend, run, audio, args.threads)
                    print(f"  {hours:g} h {backend:<5} {mode:<6}: peak {r['peak_mb']:6.0f} MB"
                          f" (VmHWM {r['hwm_mb']:.0f}), {r['windows']} windows,"
                          f" real-time factor {r['seconds'] / r['wall']:5.0f}× ({r['wall']:.0f} s)", flush=True)
            audio.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
