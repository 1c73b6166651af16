"""Self-training (`birdcore self-train`): (1) rounds on the demo dataset's unlabeled soundscapes;
(2) distillation from BirdNET into the `demo-cpu` CNN on real audio (../shared/data/real-birds-wna10).

(1) The demo dataset (generated into a temp folder unless --data): round 0 trains on the labelled
    recordings only; then families start from that same round 0 (`--round0`) with soft, hard and
    power-transformed (p^2) pseudo-labels of the 12 unlabeled soundscapes, each round taught by the
    one before. Every round is scored on the held-out test soundscapes (their truth is
    test_labels.csv: BirdCLEF 2022 score at the run's monitor threshold, and macro AUC over the
    scored birds) and the labels' quality on the unlabeled windows is read from
    `unlabeled_truth.csv` (measurement only). Time per round = labelling + training.
(2) The 100 real clips (10 species BirdNET knows, 10 clips each) split by clip: 5 per species are
    "unlabeled" (BirdNET labels their windows, soft), 5 per species are a labelled dataset whose
    windows are only for measuring. The student (`demo-cpu`, `pseudo.only`: BirdNET's labels alone)
    and BirdNET are scored on the same held-out windows: macro AUC.

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python benchmarks/bench_selftrain.py [--epochs 6] [--skip-birdnet]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WNA10 = REPO.parent / "shared" / "data" / "real-birds-wna10"
TAXONOMY = REPO.parent / "shared" / "data" / "birdclef2022" / "eBird_Taxonomy_v2021.csv"


def demo_rounds(data: Path, work: Path, epochs: int, rounds: int, variant_rounds: int) -> pd.DataFrame:
    from birdcore.config.pseudo import PseudoLabelConfig, SelfTrainConfig
    from birdcore.selftrain import create_family, run_family

    sets = [f"train.epochs={epochs}", f"train.patience={epochs}", "train.num_workers=1"]
    runs = work / "runs"
    first = create_family(data, "demo-cpu", sets, SelfTrainConfig(rounds=rounds), runs)
    out = [run_family(first, say=print).assign(labels="soft")]
    round0 = out[0]["run"].iloc[0]
    variants = {"hard": PseudoLabelConfig(mode="hard", floor=0.5), "soft p^2": PseudoLabelConfig(power=2.0)}
    for name, labels in variants.items():
        fam = create_family(data, "demo-cpu", sets, SelfTrainConfig(rounds=variant_rounds, labels=labels,
                                                                      round0=str(runs / round0)), runs)
        out.append(run_family(fam, say=print).assign(labels=name).iloc[1:])
    return pd.concat(out, ignore_index=True)


def birdnet_distillation(work: Path, epochs: int) -> dict:
    from birdcore.config.pseudo import PseudoLabelConfig
    from birdcore.config.run import load_run_config
    from birdcore.evaluation.metrics import macro_roc_auc
    from birdcore.inference.catalog import ModelRef, load_model, predict_table
    from birdcore.selftrain.teachers import label_windows, score_windows
    from birdcore.training.launcher import prepare_run, run_in_process

    rec = pd.read_csv(WNA10 / "recordings.csv")
    rec["half"] = rec.groupby("ebird_code").cumcount() % 2  # 0: unlabeled pool, 1: labelled / measured
    unl = work / "wna-unlabeled"
    unl.mkdir(parents=True)
    for f in rec.loc[rec["half"] == 0, "filename"]:
        (unl / Path(f).name).symlink_to((WNA10 / f).resolve())
    labelled = rec[rec["half"] == 1]
    table = work / "wna-labelled.csv"
    labelled.assign(filename=[str((WNA10 / f).resolve()) for f in labelled["filename"]])[
        ["filename", "ebird_code"]].to_csv(table, index=False)
    data = work / "wna-data"
    import subprocess

    subprocess.run([sys.executable, "-m", "birdcore", "import", str(table), "--out", str(data), "--taxonomy",
                    str(TAXONOMY)], check=True, capture_output=True)
    classes = sorted(rec["ebird_code"].unique())
    paths = sorted(unl.iterdir())
    t0 = time.time()
    scores = score_windows(["birdnet"], paths, classes, taxonomy_csv=TAXONOMY)
    pl = label_windows(scores, paths, classes, PseudoLabelConfig(floor=0.05), "birdnet")
    pl_path = work / "wna-pseudo.csv"
    pl.to_csv(pl_path, index=False)
    label_s = time.time() - t0
    cfg = load_run_config("demo-cpu", [f"train.epochs={epochs}", "train.fold=-1", "train.num_workers=1",
                                       "pseudo.only=true", f'pseudo.labels="{pl_path}"', 'pseudo.teacher="birdnet"'])
    t1 = time.time()
    run = prepare_run(data, cfg, work / "runs")
    run_in_process(run)
    train_s = time.time() - t1
    held = [str((WNA10 / f).resolve()) for f in labelled["filename"]]
    truth_by_id = dict(zip([Path(f).stem for f in held], labelled["ebird_code"]))
    student = predict_table([load_model(ModelRef("run", str(run.path), "student"))], held).table
    teacher = score_windows(["birdnet"], [Path(p) for p in held], classes, taxonomy_csv=TAXONOMY)

    def auc(tab: pd.DataFrame) -> float:
        tab = tab.sort_values(["file_id", "end_time"]).reset_index(drop=True)
        y = np.array([[truth_by_id[f] == c for c in classes] for f in tab["file_id"]], float)
        return float(macro_roc_auc(y, np.nan_to_num(tab[classes].to_numpy(float))))

    return {"windows_labelled_by_birdnet": len(pl), "held_out_windows": len(student),
            "teacher_birdnet_auc": round(auc(teacher), 4), "student_demo_cpu_auc": round(auc(student), 4),
            "label_s": round(label_s, 1), "train_s": round(train_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="a demo dataset (default: generate one)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the soft-label family")
    ap.add_argument("--variant-rounds", type=int, default=2, help="rounds of the hard and p^2 families")
    ap.add_argument("--skip-birdnet", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-selftrain-"))
    try:
        if not args.skip_demo:
            data = args.data
            if data is None:
                from birdcore.demo import generate_demo_dataset

                data = generate_demo_dataset(work / "demo", seed=0)
            table = demo_rounds(data, work, args.epochs, args.rounds, args.variant_rounds)
            cols = ["labels", "round", "teacher", "passed_windows", "teacher_unlabeled_macro_auc", "val_score",
                    "heldout_birdclef2022", "heldout_macro_auc", "label_s", "train_s", "round_s"]
            print("\n== demo dataset: self-training rounds (held-out = test_soundscapes) ==")
            print(table[cols].to_string(index=False))
        if not args.skip_birdnet:
            from birdcore.pretrained import is_available

            if not (is_available() and WNA10.is_dir()):
                print("\nBirdNET distillation skipped: needs the BirdNET extra and ../shared/data/real-birds-wna10")
            else:
                print("\n== BirdNET → demo-cpu distillation, real-birds-wna10 (same held-out windows) ==")
                for k, v in birdnet_distillation(work, args.epochs * 2).items():
                    print(f"{k:28s} {v}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
