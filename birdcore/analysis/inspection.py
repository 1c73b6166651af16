"""What a person looks at in one recording, without Streamlit: the window grid, the most probable
species per window, ground truth per window, a dB mel spectrogram and a window's audio.

Windows are BirdCLEF's (`birdcore.audio.windows`): 5 s, ending at 5, 10, … s, a trailing partial
window kept when it holds ≥ 1.5 s.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from birdcore.annotation.store import annotations_to_labels
from birdcore.audio.io import audio_info, load_audio
from birdcore.audio.windows import MIN_LAST_S, WINDOW_S, window_count
from birdcore.config.features import MelConfig
from birdcore.errors import DatasetError
from birdcore.evaluation.thresholds import Thresholds, threshold_vector


def window_grid(path: str | os.PathLike, window_s: float = WINDOW_S) -> pd.DataFrame:
    """The scored windows of a recording from its header: columns start, end (s).

    Same count as prediction (`inference.windows.window_count`); the last window may run past
    the end of the audio (it is zero-padded when scored).
    """
    info = audio_info(path)
    n = window_count(info.frames, info.samplerate, window_s, MIN_LAST_S)
    ends = np.arange(1, n + 1) * float(window_s)
    return pd.DataFrame({"start": ends - window_s, "end": ends})


def top_species(probs: pd.DataFrame, classes: Sequence[str], thresholds: Thresholds | float,
                k: int | None = 5) -> pd.DataFrame:
    """Per window, the `k` most probable species (all when None): columns start, end, rank, species,
    prob, threshold, detected (prob ≥ threshold). NaN probabilities (no opinion) are left out."""
    thr = threshold_vector(thresholds, classes)
    p = probs[list(classes)].to_numpy(dtype=float)
    rows = []
    for i in range(len(probs)):
        order = [j for j in np.argsort(-np.nan_to_num(p[i], nan=-1.0), kind="stable") if not math.isnan(p[i, j])]
        for rank, j in enumerate(order[:k] if k else order, start=1):
            rows.append((float(probs["start"].iat[i]), float(probs["end"].iat[i]), rank, classes[j],
                         float(p[i, j]), float(thr[j]), bool(p[i, j] >= thr[j])))
    return pd.DataFrame(rows, columns=["start", "end", "rank", "species", "prob", "threshold", "detected"])


def detections(probs: pd.DataFrame, classes: Sequence[str],
               thresholds: Thresholds | float) -> dict[float, list[str]]:
    """Window start (s) → species with prob ≥ threshold, most probable first."""
    top = top_species(probs, classes, thresholds, k=None)
    out: dict[float, list[str]] = {float(s): [] for s in probs["start"]}
    for s, sp in top.loc[top["detected"], ["start", "species"]].itertuples(index=False, name=None):
        out[float(s)].append(sp)  # top_species is ranked, so the lists are most probable first
    return out


# ----------------------------------------------------------------------------- ground truth
def read_events(path: str | os.PathLike) -> pd.DataFrame | None:
    """test_events.csv (file_id, species, start, end in s) of the demo dataset; None when absent."""
    p = Path(path)
    if not p.is_file():
        return None
    df = pd.read_csv(p, dtype={"file_id": str, "species": str})
    missing = {"file_id", "species", "start", "end"} - set(df.columns)
    if missing:
        raise DatasetError(f"{p}: lacks column(s) {sorted(missing)}; expected file_id,species,start,end")
    for col in ("start", "end"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            raise DatasetError(f"{p}: line {int(np.flatnonzero(bad)[0]) + 2}, column {col}: not a number")
    return df


def truth_matrix(file_id: str, starts: Sequence[float], species: Sequence[str], *, window_s: float = WINDOW_S,
                 test: pd.DataFrame | None = None, labels: pd.DataFrame | None = None,
                 events: pd.DataFrame | None = None, annotations: pd.DataFrame | None = None,
                 clip_species: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Ground truth of one recording: (matrix index = window start, columns = species, 1.0 / 0.0 /
    NaN = unknown; the sources used). Later sources override earlier ones:

    0. `clip_species` (a training recording's labels, `clip_labels`): present in every window — a
       weak, whole-clip label (exact for a one-window clip); other species stay unknown;
    1. `labels` (row_id,target, e.g. test_labels.csv) joined to `test` (test.csv): scored birds only;
    2. `events` (test_events.csv): complete for a file of test.csv or listed in it — every species
       known, present when an event overlaps the window (the demo's rule, see annotations);
    3. `annotations` (birdcore.annotation.store): every species known in the windows a person checked.
    """
    starts = [float(s) for s in starts]
    mat = pd.DataFrame(np.nan, index=pd.Index(starts, name="start"), columns=list(species))
    sources: list[str] = []
    clip = [c for c in (clip_species or ()) if c in mat.columns]
    if clip:
        mat.loc[:, clip] = 1.0
        sources.append("train_metadata.csv (whole clip)")
    grid = pd.DataFrame([(f"{file_id}_{sp}_{s + window_s:g}", file_id, sp, s + window_s, s) for s in starts
                         for sp in species], columns=["row_id", "file_id", "bird", "end_time", "start"])
    if labels is not None and test is not None:
        mine = test[test["file_id"].astype(str) == str(file_id)].merge(labels, on="row_id", how="inner")
        mine = mine[mine["bird"].isin(mat.columns)]
        for e, b, t in mine[["end_time", "bird", "target"]].itertuples(index=False, name=None):
            if float(e) - window_s in mat.index:
                mat.loc[float(e) - window_s, b] = float(bool(t))
        if len(mine):
            sources.append("test_labels.csv")
    in_test = test is not None and str(file_id) in set(test["file_id"].astype(str))
    if events is not None and (in_test or str(file_id) in set(events["file_id"].astype(str))):
        ev = events[events["file_id"].astype(str) == str(file_id)]
        cover = pd.DataFrame([(file_id, 0.0, starts[-1] + window_s if starts else window_s, "", "", "")] +
                             [(file_id, float(a), float(b), s, "", "") for s, a, b in
                              ev[["species", "start", "end"]].itertuples(index=False, name=None)],
                             columns=["file_id", "start", "end", "species", "annotator", "updated_at"])
        _overlay(mat, grid, annotations_to_labels(cover, grid, window_s=window_s))
        sources.append("test_events.csv")
    if annotations is not None and len(annotations):
        got = annotations_to_labels(annotations[annotations["file_id"] == str(file_id)], grid, window_s=window_s)
        if len(got):
            _overlay(mat, grid, got)
            sources.append("annotations")
    return mat, sources


def clip_labels(metadata: pd.DataFrame, filename: str) -> list[str]:
    """A training recording's species from train_metadata.csv: its primary label, then its
    secondary labels (a list column, or their text form); [] when the file is not listed."""
    rows = metadata[metadata["filename"] == filename]
    if rows.empty:
        return []
    row = rows.iloc[0]
    secondary = row.get("secondary_labels", [])
    if isinstance(secondary, str):  # "['a', 'b']" when the metadata was read without parsing
        secondary = [t.strip(" '\"") for t in secondary.strip("[]").split(",") if t.strip(" '\"")]
    elif not isinstance(secondary, (list, tuple)):
        secondary = []
    return list(dict.fromkeys([str(row["primary_label"]), *map(str, secondary)]))


def _overlay(mat: pd.DataFrame, grid: pd.DataFrame, labels: pd.DataFrame) -> None:
    hit = grid.merge(labels, on="row_id", how="inner")
    for s, b, t in hit[["start", "bird", "target"]].itertuples(index=False, name=None):
        mat.loc[s, b] = float(bool(t))


# ---------------------------------------------------------------------------- spectrogram, audio
@dataclass
class Spectrogram:
    """dB mel image (n_mels, frames), frame times (s from the recording start), mel centre frequencies (Hz)."""

    db: np.ndarray
    times: np.ndarray
    freqs: np.ndarray


def spectrogram(path: str | os.PathLike, start: float = 0.0, end: float | None = None, *,
                mel: MelConfig | None = None, max_frames: int | None = 1200) -> Spectrogram:
    """dB mel spectrogram of [start, end) s of a recording (whole file when `end` is None).

    Frames are max-pooled in time down to at most `max_frames` (a minute at hop 512 has 3,751
    frames — too many cells for a browser chart); calls stay visible because max keeps peaks.
    """
    mel = mel or MelConfig()
    dur = None if end is None else max(0.0, float(end) - float(start))
    y = load_audio(path, sr=mel.sample_rate, offset=float(start), duration=dur)
    db = _compute_db(y, mel)
    hop_s = mel.hop_length / mel.sample_rate
    times = float(start) + np.arange(db.shape[1]) * hop_s
    if max_frames and db.shape[1] > max_frames:
        f = int(math.ceil(db.shape[1] / max_frames))
        n = db.shape[1] // f * f
        pooled = db[:, :n].reshape(db.shape[0], -1, f).max(axis=2)
        if n < db.shape[1]:
            pooled = np.concatenate([pooled, db[:, n:].max(axis=1, keepdims=True)], axis=1)
        db, times = pooled, times[::f][: pooled.shape[1]]
    return Spectrogram(db.astype(np.float32), times, _mel_centres(mel))


def _mel_centres(mel: MelConfig) -> np.ndarray:
    from birdcore.features.mel_frontend import mel_frequencies

    return mel_frequencies(mel)


def _compute_db(y: np.ndarray, mel: MelConfig) -> np.ndarray:
    from birdcore.features.mel_frontend import compute_mel

    return compute_mel(y, mel, stage="db")

def window_audio(path: str | os.PathLike, start: float, end: float) -> tuple[np.ndarray, int]:
    """The samples of [start, end) s at the file's own rate (for listening), and that rate."""
    info = audio_info(path)
    return load_audio(path, sr=None, offset=float(start), duration=float(end) - float(start)), info.samplerate

