"""What the clip-inspection, annotation and submission pages compute, without Streamlit.

- Models: `find_models` (runs with `checkpoints/best.pt`, exported ONNX folders, the optional BirdNET
  baseline), `load_model` (+ its run's thresholds.json, mel settings, class checks) and
  `predict_table` / `recording_probs` (window probabilities; one model or an ensemble).
- Reading results: `window_grid`, `top_species`, `detections`, `uncertain_windows` (the
  annotation queue: probability closest to the threshold first).
- Ground truth per window: `truth_matrix` from test_labels.csv, test_events.csv and annotations.
- Pictures and sound: `spectrogram` (dB mel, seconds and Hz axes), `window_audio`.
- Submission: `submission_bytes` (exactly what `write_submission` writes), `positive_rates`,
  `parse_thresholds`.

Everything here is a plain function of paths and tables, so the app can cache it (predictions are
keyed by model path, backend, recording path and its mtime). Windows are BirdCLEF's: 5 s, ending
at 5, 10, … s (`end_time`), a trailing partial window kept when it holds ≥ 1.5 s.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .annotations import annotations_to_labels
from .audio import audio_info, load_audio
from .config.features import MelConfig
from .errors import AudioError, BirdcoreError, ConfigError, DatasetError, ModelError, SubmissionError
from .inference.predict import PredictOptions, PredictResult, predict_files
from .inference.scorers import BUNDLE_FILE, ONNX_FILE, load_scorer
from .inference.windows import window_count
from .submission import write_submission
from .thresholds import Thresholds, load_thresholds

BIRDNET_KIND = "birdnet"
WINDOW_S = 5.0
MIN_LAST_S = 1.5


# ----------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelRef:
    """A model the user can pick: kind "run" | "exported" | "birdnet", its folder ("" for BirdNET)."""

    kind: str
    path: str
    label: str

    @property
    def key(self) -> str:
        """Stable id for caches and widget state."""
        return f"{self.kind}:{self.path}"


BIRDNET_REF = ModelRef(BIRDNET_KIND, "", "BirdNET baseline (V2.4, pretrained)")


def find_models(runs_dirs: Iterable[str | os.PathLike], models_dir: str | os.PathLike | None = None,
                birdnet: bool | None = None) -> list[ModelRef]:
    """Usable models: runs holding `checkpoints/best.pt` (newest first), exported folders
    (`model.onnx` + `bundle.json`) directly under `models_dir`, then BirdNET when `birdnet` (None =
    when the optional extra is installed). A run still training is listed: best.pt is written atomically.
    """
    from .training.runs import list_runs

    out: list[ModelRef] = []
    for d in runs_dirs:
        for run in list_runs(d):
            if run.best_checkpoint.is_file():
                out.append(ModelRef("run", str(run.path), f"run {run.run_id}"))
    if models_dir is not None and Path(models_dir).is_dir():
        for p in sorted(Path(models_dir).iterdir()):
            if (p / ONNX_FILE).is_file() and (p / BUNDLE_FILE).is_file():
                out.append(ModelRef("exported", str(p), f"exported {p.name} (ONNX)"))
    if birdnet is None:
        from .pretrained import is_available

        birdnet = is_available()
    if birdnet:
        out.append(BIRDNET_REF)
    return out


def model_stamp(ref: ModelRef) -> float:
    """mtime of the model's weights (0 for BirdNET): part of cache keys, so a run that keeps
    training (a new best.pt) is reloaded and re-scored."""
    for f in (Path(ref.path) / "checkpoints" / "best.pt", Path(ref.path) / ONNX_FILE) if ref.path else ():
        if f.is_file():
            return f.stat().st_mtime
    return 0.0


@dataclass
class LoadedModel:
    """A model ready to score: scorers (run/exported) or the BirdNET handle, and what goes with it."""

    ref: ModelRef
    classes: list[str]
    scorers: list = field(default_factory=list)
    birdnet: Any = None
    taxonomy_csv: str | None = None
    mel: MelConfig = field(default_factory=MelConfig)
    thresholds: Thresholds | None = None
    thresholds_path: str | None = None
    notes: list[str] = field(default_factory=list)


def check_classes(model_classes: Sequence[str], species: Sequence[str], *, need: Iterable[str] = (),
                  where: str = "model") -> list[str]:
    """The model classes that are dataset species; ModelError when there are none (a model of
    another dataset) or when a species in `need` (e.g. test.csv's birds) is not a model class."""
    known = set(species)
    shared = [c for c in model_classes if c in known]
    if not shared:
        shown = ", ".join(list(model_classes)[:5]) + (" …" if len(model_classes) > 5 else "")
        raise ModelError(f"{where}: none of its {len(model_classes)} classes ({shown}) is a species of this"
                         " dataset — it was trained on another dataset")
    lacking = sorted(set(need) - set(model_classes))
    if lacking:
        raise ModelError(f"{where}: {len(lacking)} species of test.csv are not model classes"
                         f" ({', '.join(lacking[:5])}); pick a model trained on this dataset's species")
    return shared


def load_model(ref: ModelRef, backend: str = "torch", *, species: Sequence[str] | None = None,
               taxonomy_csv: str | os.PathLike | None = None, threads: int | None = None) -> LoadedModel:
    """Load `ref` for `backend` ("torch" | "onnx"; exported folders always run ONNX).

    BirdNET needs `species` (its columns are restricted to them) and the dataset's eBird taxonomy
    (to map its labels); ModelError when it maps none of them (e.g. the fictional demo species).
    Thresholds: the folder's thresholds.json when present. Raises ModelError / RunError /
    ConfigError with the folder named (a broken run folder never raises anything else).
    """
    if ref.kind == BIRDNET_KIND:
        return _load_birdnet(ref, species, taxonomy_csv)
    folder = Path(ref.path)
    if ref.kind == "exported":
        backend = "onnx"
    from .training.runs import RunFolder

    try:
        cfg, _ = RunFolder(folder).read_config()
        mel = cfg.mel
    except Exception:  # noqa: BLE001 - an exported folder without its config still scores; mel is cosmetic
        mel = MelConfig()
    try:
        scorer = load_scorer(folder, backend=backend, threads=threads)
    except BirdcoreError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # weights that do not fit the config
        raise ModelError(f"{folder}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
    thr_path = folder / "thresholds.json"
    thresholds = load_thresholds(thr_path) if thr_path.is_file() else None
    return LoadedModel(ref, list(scorer.info.classes), [scorer], mel=mel, thresholds=thresholds,
                       thresholds_path=str(thr_path) if thresholds else None)


def _load_birdnet(ref: ModelRef, species: Sequence[str] | None, taxonomy_csv: Any) -> LoadedModel:
    from .pretrained import birdnet_to_ebird, coverage, load_birdnet

    if not species:
        raise ModelError("BirdNET baseline: no dataset species to restrict its 6,522 classes to")
    if taxonomy_csv is None or not Path(taxonomy_csv).is_file():
        raise ModelError("BirdNET baseline: eBird_Taxonomy_v2021.csv is missing from the dataset folder; it maps"
                         " BirdNET's scientific names to the dataset's species codes")
    model = load_birdnet()
    known, unknown = coverage(birdnet_to_ebird(model.labels, taxonomy_csv), species)
    if not known:
        raise ModelError(f"BirdNET baseline: it knows none of this dataset's {len(species)} species (no scientific"
                         " name in eBird_Taxonomy_v2021.csv matches a BirdNET label; fictional demo species?)")
    notes = [f"BirdNET has no class for {len(unknown)} of {len(species)} species (e.g. {', '.join(unknown[:5])});"
             " their cells stay empty"] if unknown else []
    return LoadedModel(ref, list(species), birdnet=model, taxonomy_csv=str(taxonomy_csv), notes=notes)


def predict_table(models: Sequence[LoadedModel], paths: Sequence[str | os.PathLike], *,
                  window_s: float = WINDOW_S, fill_missing: float = float("nan"),
                  progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """Window probabilities of `paths`: table file_id, end_time, <classes> (one row per window).

    Several run/exported models are averaged (one class list needed, else ModelError). BirdNET runs
    alone; species it lacks get `fill_missing` (NaN = no opinion; pass 0.0 for a submission).
    `progress(done, total)` is called per file. Unreadable files are listed in `.skipped`.
    """
    if not models:
        raise ModelError("no model chosen")
    if any(m.birdnet is not None for m in models):
        if len(models) > 1:
            raise ModelError("the BirdNET baseline cannot be ensembled with trained models (other classes);"
                             " pick it alone")
        from .pretrained import birdnet as bn

        m = models[0]
        ok, skipped = [], []
        for p in paths:  # birdnet.predict_files stops at the first bad file; check headers first
            try:
                audio_info(p)
                ok.append(Path(p))
            except Exception as exc:  # noqa: BLE001 - reported per file like predict_files does
                skipped.append((str(p), str(exc)))
        table = bn.predict_files(ok, classes=m.classes, taxonomy_csv=m.taxonomy_csv, window_s=window_s,
                                 fill_missing=fill_missing, model=m.birdnet, progress=progress)
        return PredictResult(table=table, skipped=skipped, classes=list(m.classes))
    scorers = [s for m in models for s in m.scorers]
    return predict_files(paths, scorers, PredictOptions(window_s=window_s, min_last_s=MIN_LAST_S), progress=progress)


def recording_probs(models: Sequence[LoadedModel], path: str | os.PathLike,
                    window_s: float = WINDOW_S) -> pd.DataFrame:
    """One recording's window probabilities: columns start, end (s), then one per class.

    Raises the file's AudioError when it cannot be decoded.
    """
    res = predict_table(models, [path], window_s=window_s)
    if res.skipped:
        raise AudioError(res.skipped[0][1])
    table = res.table.drop(columns=["file_id"]).reset_index(drop=True)
    end = table.pop("end_time").astype(float)
    table.insert(0, "end", end)
    table.insert(0, "start", end - window_s)
    return table


def window_grid(path: str | os.PathLike, window_s: float = WINDOW_S) -> pd.DataFrame:
    """The scored windows of a recording from its header: columns start, end (s).

    Same count as prediction (`inference.windows.window_count`); the last window may run past
    the end of the audio (it is zero-padded when scored).
    """
    info = audio_info(path)
    n = window_count(info.frames, info.samplerate, window_s, MIN_LAST_S)
    ends = np.arange(1, n + 1) * float(window_s)
    return pd.DataFrame({"start": ends - window_s, "end": ends})


# ------------------------------------------------------------------------ reading predictions
def threshold_vector(thresholds: Thresholds | float, classes: Sequence[str]) -> np.ndarray:
    """Per-class thresholds in `classes` order from a Thresholds object or one number."""
    if isinstance(thresholds, Thresholds):
        return thresholds.for_classes(list(classes))
    return np.full(len(classes), float(thresholds))


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


def uncertain_windows(table: pd.DataFrame, classes: Sequence[str], thresholds: Thresholds | float, *,
                      window_s: float = WINDOW_S, exclude: Iterable[tuple[str, float, float]] = (),
                      limit: int | None = None) -> pd.DataFrame:
    """Windows ranked by doubt: the smallest |prob − threshold| over species comes first.

    `table`: `predict_table(...).table` (file_id, end_time, <classes>). Returns file_id, start, end,
    species (the doubtful one), prob, threshold, margin. `exclude`: (file_id, start, end) keys
    already annotated. These windows teach a model most per label (uncertainty sampling).
    """
    thr = threshold_vector(thresholds, classes)
    p = table[list(classes)].to_numpy(dtype=float)
    margin = np.abs(p - thr[None, :])
    margin = np.where(np.isnan(margin), np.inf, margin)
    j = margin.argmin(axis=1) if len(p) else np.zeros(0, int)
    end = table["end_time"].astype(float).to_numpy()
    out = pd.DataFrame({"file_id": table["file_id"].astype(str).to_numpy(), "start": np.round(end - window_s, 3),
                        "end": np.round(end, 3), "species": [classes[k] for k in j],
                        "prob": p[np.arange(len(p)), j], "threshold": thr[j], "margin": margin[np.arange(len(p)), j]})
    out = out[np.isfinite(out["margin"])]
    done = set(exclude)
    if done:
        out = out[[k not in done for k in zip(out["file_id"], out["start"], out["end"])]]
    out = out.sort_values(["margin", "file_id", "start"], kind="stable").reset_index(drop=True)
    return out.head(limit) if limit else out


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
                 events: pd.DataFrame | None = None, annotations: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, list[str]]:
    """Ground truth of one recording: (matrix index = window start, columns = species, 1.0 / 0.0 /
    NaN = unknown; the sources used). Later sources override earlier ones:

    1. `labels` (row_id,target, e.g. test_labels.csv) joined to `test` (test.csv): scored birds only;
    2. `events` (test_events.csv): complete for a file of test.csv or listed in it — every species
       known, present when an event overlaps the window (the demo's rule, see annotations);
    3. `annotations` (birdcore.annotations): every species known in the windows a person checked.
    """
    starts = [float(s) for s in starts]
    mat = pd.DataFrame(np.nan, index=pd.Index(starts, name="start"), columns=list(species))
    sources: list[str] = []
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


def mel_frequencies(mel: MelConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band (the front end's own scale)."""
    from .features.mel_frontend import mel_frequencies as centres

    return centres(mel)


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
    return Spectrogram(db.astype(np.float32), times, mel_frequencies(mel))


def _compute_db(y: np.ndarray, mel: MelConfig) -> np.ndarray:
    from .features.mel_frontend import compute_mel

    return compute_mel(y, mel, stage="db")


def store_upload(data: bytes, name: str, folder: str | os.PathLike, max_mb: float) -> Path:
    """Save an uploaded recording as `<folder>/<name>-<sha1 of content><ext>` and return the path.

    Content-addressed, so re-uploading the same file reuses it (and cached predictions keyed by
    path stay valid). ConfigError when it exceeds `max_mb` MB or its extension is not audio.
    """
    import hashlib

    from .audio import AUDIO_EXTENSIONS

    ext = Path(name).suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        raise ConfigError(f"{name}: not an audio file this app reads ({', '.join(AUDIO_EXTENSIONS)})")
    if len(data) > max_mb * 1024 * 1024:
        raise ConfigError(f"{name}: {len(data) / 2**20:.1f} MB is over the {max_mb:g} MB upload limit"
                          " (server.maxUploadSize in .streamlit/config.toml)")
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem)[:40].strip("-.") or "upload"
    out = Path(folder) / f"{stem}-{hashlib.sha1(data).hexdigest()[:10]}{ext}"  # the name keeps file_id readable
    if not out.is_file():
        from .atomic_io import atomic_write_bytes

        atomic_write_bytes(out, data)
    return out


def window_audio(path: str | os.PathLike, start: float, end: float) -> tuple[np.ndarray, int]:
    """The samples of [start, end) s at the file's own rate (for listening), and that rate."""
    info = audio_info(path)
    return load_audio(path, sr=None, offset=float(start), duration=float(end) - float(start)), info.samplerate


# ----------------------------------------------------------------------------------- submission
def submission_bytes(sub: pd.DataFrame, test_df: pd.DataFrame) -> bytes:
    """The exact bytes `write_submission` writes for `sub` (validated first: SubmissionError)."""
    with tempfile.TemporaryDirectory(prefix="birdcore-sub-") as tmp:
        out = write_submission(Path(tmp) / "submission.csv", sub, test_df)
        return out.read_bytes()


def positive_rates(sub: pd.DataFrame, test_df: pd.DataFrame, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per bird of test.csv: rows, positives (target True), rate = positives / rows, most first; with
    `labels` (row_id,target ground truth) also `labelled_rate`, the share truly present (NaN if unlabelled)."""
    ids = test_df["row_id"].astype(str)
    df = pd.DataFrame({"species": test_df["bird"].astype(str).to_numpy(),
                       "target": sub.set_index("row_id").loc[ids, "target"].astype(bool).to_numpy()})
    if labels is not None:
        df["truth"] = ids.map(dict(zip(labels["row_id"].astype(str), labels["target"].astype(float)))).to_numpy()
    g = df.groupby("species", sort=True).agg(rows=("target", "size"), positives=("target", "sum"),
                                             **({"labelled_rate": ("truth", "mean")} if labels is not None else {}))
    g = g.reset_index()
    g.insert(3, "rate", g["positives"] / g["rows"])
    return g.sort_values(["rate", "species"], ascending=[False, True], kind="stable").reset_index(drop=True)


def parse_thresholds(data: bytes, where: str = "thresholds") -> Thresholds:
    """A thresholds JSON given as bytes (an upload), strictly validated (ConfigError names `where`)."""
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: not a thresholds JSON file ({exc})") from None
    return Thresholds.from_dict(raw, where)


def read_submission_bytes(data: bytes, where: str = "submission.csv") -> pd.DataFrame:
    """A submission CSV (an upload) as a table for `validate_submission`: exactly "True"/"False"
    become bools; anything else (1, "yes", blanks) stays text so the validator names it."""
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{where}: cannot parse as CSV ({str(exc).strip()[:160]})") from None
    if "target" in df.columns:
        mapped = df["target"].map({"True": True, "False": False})
        df["target"] = mapped.where(mapped.notna(), df["target"]) if mapped.isna().any() else mapped.astype(bool)
    return df


def check_predictions(result: PredictResult) -> None:
    """SubmissionError when a soundscape could not be read (a submission needs every window)."""
    if result.skipped:
        path, err = result.skipped[0]
        raise SubmissionError(f"{len(result.skipped)} soundscape(s) could not be read, e.g. {err}")
