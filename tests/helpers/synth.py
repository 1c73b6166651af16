"""Small learnable datasets written by the tests (BirdCLEF layout, tones per species)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

HEADER = ("primary_label,secondary_labels,type,latitude,longitude,scientific_name,common_name,author,"
          "license,rating,time,url,filename")

# Each species: (centre Hz, syllable s, gap s, sweep Hz) — distinct bands and rhythms.
VOICES = [(1500, 0.12, 0.10, 0.0), (3000, 0.30, 0.15, 800.0), (5000, 0.06, 0.06, 0.0), (7500, 0.20, 0.25, -1500.0),
          (2200, 0.45, 0.20, 0.0), (9500, 0.08, 0.12, 600.0)]


def voice(code_idx: int, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A call sequence of species `code_idx` with small random variation."""
    f0, syl, gap, sweep = VOICES[code_idx]
    f0 *= rng.uniform(0.95, 1.05)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    t = rng.uniform(0, 0.3)
    while t + syl < seconds:
        n = int(syl * sr)
        tt = np.arange(n) / sr
        freq = f0 + sweep * tt / syl
        env = np.hanning(n)
        y[int(t * sr): int(t * sr) + n] += (0.5 * env * np.sin(2 * np.pi * np.cumsum(freq) / sr)).astype(np.float32)
        t += syl + gap * rng.uniform(0.8, 1.2)
    return y


def make_tone_dataset(root: Path, n_species: int = 4, per_species: int = 12, seconds: float = 3.0,
                      seed: int = 0, sr: int = 32000, soundscapes: int = 0) -> Path:
    """Write a tiny dataset: species `t0sp1`.. with tone voices + noise; returns `root`."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    codes = [f"t{i}sp1" for i in range(n_species)]
    rows = []
    for i, code in enumerate(codes):
        (root / "train_audio" / code).mkdir(parents=True, exist_ok=True)
        for j in range(per_species):
            dur = seconds * rng.uniform(0.8, 1.3)
            y = voice(i, dur, sr, rng) + 0.02 * rng.standard_normal(int(dur * sr)).astype(np.float32)
            fn = f"{code}/XC{i}{j:03d}.ogg"
            sf.write(root / "train_audio" / fn, y, sr, format="OGG", subtype="VORBIS")
            rows.append(f"{code},[],['song'],{10 + i},{20 + i},Sci {code},Tone {code},Tester,CC BY,"
                        f"{rng.choice([3.0, 4.0, 5.0])},08:00,https://example.org/{j},{fn}")
    (root / "train_metadata.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    (root / "scored_birds.json").write_text(json.dumps(codes[: max(1, n_species // 2)]))
    if soundscapes:
        _write_soundscapes(root, codes, soundscapes, sr, rng)
    return root


def _write_soundscapes(root: Path, codes: list[str], count: int, sr: int, rng: np.random.Generator) -> None:
    scored = json.loads((root / "scored_birds.json").read_text())
    (root / "test_soundscapes").mkdir(exist_ok=True)
    test_rows, label_rows = [], []
    for s in range(count):
        fid = f"soundscape_{1000 + s}"
        y = 0.02 * rng.standard_normal(60 * sr).astype(np.float32)
        present = {}
        for w in range(12):
            if rng.random() < 0.5:
                k = int(rng.integers(len(codes)))
                y[w * 5 * sr:(w + 1) * 5 * sr] += voice(k, 5.0, sr, rng)
                present.setdefault(w, set()).add(codes[k])
        sf.write(root / "test_soundscapes" / f"{fid}.ogg", y, sr, format="OGG", subtype="VORBIS")
        for w in range(12):
            for bird in scored:
                rid = f"{fid}_{bird}_{(w + 1) * 5}"
                test_rows.append(f"{rid},{fid},{bird},{(w + 1) * 5}")
                label_rows.append(f"{rid},{bird in present.get(w, set())}")
    (root / "test.csv").write_text("row_id,file_id,bird,end_time\n" + "\n".join(test_rows) + "\n")
    (root / "sample_submission.csv").write_text(
        "row_id,target\n" + "\n".join(r.split(",")[0] + ",False" for r in test_rows) + "\n")
    (root / "test_labels.csv").write_text("row_id,target\n" + "\n".join(label_rows) + "\n")


def shuffled_label_copy(src: Path, dst: Path, seed: int) -> Path:
    """Copy dataset `src` to `dst` with `primary_label` permuted: the learning tests' chance control."""
    import shutil

    import pandas as pd

    shutil.copytree(src, dst)
    meta = pd.read_csv(dst / "train_metadata.csv")
    meta["primary_label"] = np.random.default_rng(seed).permutation(meta["primary_label"].to_numpy())
    meta.to_csv(dst / "train_metadata.csv", index=False)
    return dst


def write_unlabeled_soundscapes(root: Path, n_species: int, count: int = 6, seconds: float = 30.0,
                                sr: int = 32000, seed: int = 7, p_call: float = 0.7) -> pd.DataFrame:
    """Write `root/unlabeled_soundscapes/scape_<k>.ogg` (tone voices of `make_tone_dataset`'s species
    in some 5-s windows) and return their truth: file_id, end_time, path, one 0/1 column per code."""
    rng = np.random.default_rng(seed)
    codes = [f"t{i}sp1" for i in range(n_species)]
    folder = root / "unlabeled_soundscapes"
    folder.mkdir(parents=True, exist_ok=True)
    n_win = int(seconds // 5)
    rows = []
    for s in range(count):
        fid = f"scape_{s}"
        y = 0.02 * rng.standard_normal(int(seconds * sr)).astype(np.float32)
        for w in range(n_win):
            row = {"file_id": fid, "end_time": (w + 1) * 5, "path": str((folder / f"{fid}.ogg").resolve())}
            row.update({c: 0 for c in codes})
            if rng.random() < p_call:
                k = int(rng.integers(n_species))
                y[w * 5 * sr:(w + 1) * 5 * sr] += voice(k, 5.0, sr, rng)
                row[codes[k]] = 1
            rows.append(row)
        sf.write(folder / f"{fid}.ogg", y, sr, format="OGG", subtype="VORBIS")
    return pd.DataFrame(rows)
