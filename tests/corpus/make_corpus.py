"""Generate the bad-input corpus into a folder and describe how each case must be handled.

Nothing binary is committed: every file is written here, deterministically (fixed seeds), into a
temporary folder at test time. Each `Case` names

- the loader a user's file goes through (`load_audio`, `load_dataset`, `load_run_config`,
  `load_thresholds`, `read_annotations`),
- for a bad input: the exact typed error, the text that names the offending file (its full
  path) and a regex for the problem, so a message like "invalid file" would fail the test;
- for an input that is odd but valid (stereo, 8/96 kHz, 0.2 s, 30 min, silence, BOM, extra
  columns, `?` times ...): a `check` asserting the correct handling (mono, resampled length,
  the window read without decoding the whole file ...).

`verify(case)` runs one case and reports whether it was handled and whether the load changed
any corpus file ("lost data": a loader must never rewrite or delete what it reads).

Usage as a script: `python tests/corpus/make_corpus.py OUT_DIR` writes the corpus and lists it.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make `birdcore` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from birdcore.annotation.store import read_annotations
from birdcore.audio.io import audio_info, audio_stats, fit_length, load_audio
from birdcore.config.run import load_run_config
from birdcore.data.dataset import load_dataset
from birdcore.errors import AudioError, ConfigError, DatasetError
from birdcore.evaluation.thresholds import Thresholds, load_thresholds

SR = 32000
CLASSES = ["aaa1", "bbb1", "ccc1"]
LONG_SECONDS = 30 * 60          # the "30-minute recording" case
LONG_MARK_AT = 1500.0           # a 1 kHz tone sits at 1500–1505 s of it, silence elsewhere
WINDOW_BUDGET_S = 1.0           # a 5-s window of the long file must load within this (it takes ms)


@dataclass(frozen=True)
class Case:
    """One corpus entry.

    `error` is None for valid inputs; then `check(result)` asserts the correct handling.
    `names` is the text the error message must contain to name the file (its full path).
    """

    name: str
    group: str
    path: Path
    what: str
    load: Callable[[Path], Any]
    error: type[Exception] | None = None
    problem: str | None = None
    names: str = ""
    check: Callable[[Any], None] | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass
class Outcome:
    """What `verify` saw: handled as specified, a one-line detail, and how many files changed."""

    case: Case
    handled: bool
    detail: str
    lost: int
    seconds: float


# ------------------------------------------------------------------------------------ helpers
def _tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))


def _band_level(y: np.ndarray, sr: int, hz: float, width: float = 200.0) -> float:
    """Spectral magnitude around `hz` relative to the strongest bin (0..1)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    band = (freqs > hz - width) & (freqs < hz + width)
    return float(spec[band].max() / spec.max())


def _wav_header(sr: int, frames: int, channels: int = 1) -> bytes:
    """A canonical 44-byte PCM-16 WAV header that *declares* `frames` samples of data."""
    data_bytes = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -------------------------------------------------------------------------------------- audio
def _check_stereo(y: np.ndarray) -> None:
    # left = tone, right = -0.5 * tone: the mono mix must be their mean, 0.25 * tone, at 32 kHz
    assert y.ndim == 1 and y.dtype == np.float32, (y.shape, y.dtype)
    assert len(y) == 2 * SR, len(y)
    assert abs(_peak_hz(y, SR) - 1000) < 5
    assert abs(np.abs(y[SR // 2: -SR // 2]).max() - 0.25 * 0.8) < 0.01, np.abs(y).max()


def _check_8k(y: np.ndarray) -> None:
    assert y.dtype == np.float32 and len(y) == 2 * SR, len(y)  # 2 s at 8 kHz → 64,000 samples
    assert abs(_peak_hz(y, SR) - 1000) < 5


def _check_96k(y: np.ndarray) -> None:
    assert y.dtype == np.float32 and len(y) == 2 * SR, len(y)  # 2 s at 96 kHz → 64,000 samples
    assert abs(_peak_hz(y, SR) - 1000) < 5
    # the 20 kHz component is above the new Nyquist (16 kHz): it must be filtered out, not folded
    # back to 32 - 20 = 12 kHz (aliasing)
    assert _band_level(y, SR, 12000.0) < 0.01


def _check_short(y: np.ndarray) -> None:
    assert len(y) == int(0.2 * SR) and np.abs(y).max() > 0.1, len(y)
    padded = fit_length(y, 5 * SR)  # what the clip readers do: pad with silence to the window
    assert len(padded) == 5 * SR and not padded[len(y):].any()


def _load_long(p: Path) -> dict:
    """Header duration, then a 5-s window at 1500 s; records what it cost and what was decoded."""
    read_sizes: list[int] = []
    real_read = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        read_sizes.append(frames)
        return real_read(self, frames, *args, **kwargs)

    t0 = time.perf_counter()
    info = audio_info(p)
    t1 = time.perf_counter()
    sf.SoundFile.read = counting_read
    try:
        window = load_audio(p, offset=LONG_MARK_AT, duration=5.0)
    finally:
        sf.SoundFile.read = real_read
    t2 = time.perf_counter()
    return {"duration": info.duration, "info_s": t1 - t0, "window": window, "window_s": t2 - t1,
            "read_sizes": read_sizes}


def _check_long(r: dict) -> None:
    assert r["duration"] == LONG_SECONDS, r["duration"]
    assert r["info_s"] < WINDOW_BUDGET_S and r["window_s"] < WINDOW_BUDGET_S, (r["info_s"], r["window_s"])
    # only the 5-s window was asked of the decoder (a full decode would read 57.6 M samples)
    assert r["read_sizes"] and max(r["read_sizes"]) <= 5 * SR, r["read_sizes"]
    w = r["window"]
    assert len(w) == 5 * SR and abs(_peak_hz(w, SR) - 1000) < 5 and np.abs(w).max() > 0.3


def _check_silence(y: np.ndarray) -> None:
    # Decision: silence is valid audio (an empty recording), so it loads as zeros; the model gets
    # silence. `audio_stats` flags it for the app / EDA.
    assert len(y) == 3 * SR and np.isfinite(y).all()
    stats = audio_stats(y)
    assert stats.silent and stats.peak < 1e-4


def _audio_cases(root: Path) -> list[Case]:
    d = root / "audio"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    cases: list[Case] = []

    def bad(name: str, fname: str, what: str, problem: str) -> None:
        p = d / fname
        cases.append(Case(f"audio/{name}", "audio", p, what, load_audio, AudioError, problem, str(p)))

    def good(name: str, fname: str, what: str, check: Callable, load: Callable = load_audio) -> None:
        cases.append(Case(f"audio/{name}", "audio", d / fname, what, load, check=check))

    (d / "empty.ogg").write_bytes(b"")
    bad("empty_file", "empty.ogg", "0-byte .ogg", r"file is empty \(0 bytes\)")

    full = d / "_source.ogg"  # a valid 5-s recording, the source of the truncations
    sf.write(full, 0.3 * rng.standard_normal(5 * SR).astype(np.float32), SR, format="OGG", subtype="VORBIS")
    data = full.read_bytes()
    full.unlink()
    (d / "truncated.ogg").write_bytes(data[: len(data) // 2])
    bad("truncated_ogg", "truncated.ogg", "first half of a valid .ogg", r"truncated or corrupt")
    # cut exactly between two pages: every page left is whole, only the end-of-stream page is gone
    (d / "truncated_at_page.ogg").write_bytes(data[: data.rfind(b"OggS")])
    bad("truncated_ogg_page_boundary", "truncated_at_page.ogg", "an .ogg missing its last page",
        r"truncated or corrupt: the Ogg stream has no end-of-stream page")
    (d / "truncated_head.ogg").write_bytes(data[:300])
    bad("truncated_ogg_header", "truncated_head.ogg", "an .ogg cut inside its headers", r"cannot read audio header")

    (d / "random.ogg").write_bytes(rng.bytes(20000))
    bad("random_bytes", "random.ogg", "20 kB of random bytes named .ogg", r"cannot read audio header")

    (d / "header_only.wav").write_bytes(_wav_header(SR, SR))
    bad("wav_header_no_data", "header_only.wav", "WAV header declaring 1 s, no data",
        r"truncated.*declares 32000 samples.*holds 0")
    (d / "truncated.wav").write_bytes(_wav_header(SR, SR) + (_tone(440, 0.5, SR) * 32767).astype("<i2").tobytes())
    bad("wav_truncated", "truncated.wav", "WAV header declaring 1 s, 0.5 s of data",
        r"truncated.*declares 32000 samples.*holds 16000")
    sf.write(d / "zero_frames.wav", np.zeros(0, dtype=np.float32), SR)
    bad("wav_zero_frames", "zero_frames.wav", "valid WAV with 0 samples", r"no audio samples")

    y = _tone(300, 1.0, SR, 0.1)
    y[1234] = np.nan
    sf.write(d / "nan.wav", y, SR, subtype="FLOAT")
    bad("nan_samples", "nan.wav", "float WAV with one NaN sample", r"1 samples are NaN or infinite")
    y = _tone(300, 1.0, SR, 0.1)
    y[[10, 20, 30]] = [np.inf, -np.inf, np.inf]
    sf.write(d / "inf.wav", y, SR, subtype="FLOAT")
    bad("inf_samples", "inf.wav", "float WAV with ±inf samples", r"3 samples are NaN or infinite")

    (d / "folder.ogg").mkdir()
    bad("directory", "folder.ogg", "a folder named .ogg", r"not a regular file")

    tone = _tone(1000, 2.0, 44100, 0.8)
    sf.write(d / "stereo.wav", np.stack([tone, -0.5 * tone], axis=1), 44100)
    good("stereo_44k", "stereo.wav", "stereo 44.1 kHz WAV", _check_stereo)
    sf.write(d / "rate_8k.wav", _tone(1000, 2.0, 8000), 8000)
    good("rate_8k", "rate_8k.wav", "8 kHz WAV", _check_8k)
    sf.write(d / "rate_96k.flac", _tone(1000, 2.0, 96000, 0.4) + _tone(20000, 2.0, 96000, 0.4), 96000)
    good("rate_96k", "rate_96k.flac", "96 kHz FLAC with a 20 kHz tone", _check_96k)
    sf.write(d / "short.ogg", _tone(2000, 0.2, SR), SR, format="OGG", subtype="VORBIS")
    good("short_0.2s", "short.ogg", "0.2-s .ogg", _check_short)
    sf.write(d / "silence.ogg", np.zeros(3 * SR, dtype=np.float32), SR, format="OGG", subtype="VORBIS")
    good("all_silence", "silence.ogg", "3 s of digital silence", _check_silence)

    # 30 minutes of Ogg Vorbis written block by block (never 57.6 M samples in memory at once).
    with sf.SoundFile(d / "long_30min.ogg", "w", samplerate=SR, channels=1, format="OGG", subtype="VORBIS") as fh:
        block = np.zeros(60 * SR, dtype=np.float32)
        mark = int(LONG_MARK_AT) // 60
        for minute in range(LONG_SECONDS // 60):
            if minute == mark:
                marked = block.copy()
                marked[: 5 * SR] = _tone(1000, 5.0, SR)
                fh.write(marked)
            else:
                fh.write(block)
    good("long_30min", "long_30min.ogg", "30-min .ogg, 5-s window at 25 min", _check_long, _load_long)
    return cases


# ----------------------------------------------------------------------------------- metadata
HEADER = ["primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
          "common_name", "author", "license", "rating", "time", "url", "filename"]


def _rows() -> list[list[str]]:
    return [
        ["aaa1", "[]", "['call']", "10.0", "20.0", "Alpha one", "Alpha", "Ann", "CC BY", "4.0", "08:00", "u1", "aaa1/XC1.ogg"],
        ["aaa1", "['bbb1']", "['call', 'song']", "10.5", "20.5", "Alpha one", "Alpha", "Ann", "CC BY", "3.5", "07:30", "u2", "aaa1/XC2.ogg"],
        ["bbb1", "[]", "[]", "-5.0", "100.0", "Beta one", "Beta", "Bob", "CC BY", "0.0", "18:00", "u3", "bbb1/XC3.ogg"],
        ["ccc1", "['aaa1', 'bbb1']", "['song']", "", "", "Gamma one", "Gamma", "Cy", "CC BY", "5.0", "06:15", "u4", "ccc1/XC4.ogg"],
    ]


def _csv_text(header: list[str], rows: list[list[str]], sep: str = ",", eol: str = "\n") -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if (sep in v or '"' in v) else v
    return eol.join(sep.join(cell(v) for v in r) for r in [header, *rows]) + eol


def _write_dataset(folder: Path, text: str | bytes, scored: str = '["bbb1"]') -> Path:
    folder.mkdir(parents=True)
    meta = folder / "train_metadata.csv"
    meta.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    (folder / "scored_birds.json").write_text(scored)
    # a small taxonomy makes primary labels checkable (unknown species code → error)
    (folder / "eBird_Taxonomy_v2021.csv").write_text(
        "SPECIES_CODE,PRIMARY_COM_NAME,SCI_NAME\n" + "".join(f"{c},{c.title()},Sci {c}\n" for c in CLASSES))
    return meta


def _check_extra_columns(ds) -> None:
    assert ds.species == CLASSES and len(ds.metadata) == 4
    assert ds.metadata["my_notes"].tolist() == ["n0", "n1", "n2", "n3"]  # kept, not dropped


def _check_bom(ds) -> None:
    assert "primary_label" in ds.metadata.columns and ds.species == CLASSES  # BOM not in the name
    assert ds.common_name("aaa1") == "Aaa1"


def _check_odd_times(ds) -> None:
    m = ds.metadata
    assert m["time"].tolist() == ["?", "xx:xx", "25:00", "06:15"]  # text kept as written
    assert m["time_minutes"].isna().tolist() == [True, True, True, False]
    assert m["time_minutes"].iloc[3] == 375.0


def _check_crlf(ds) -> None:
    assert ds.species == CLASSES and ds.metadata["filename"].iloc[-1] == "ccc1/XC4.ogg"
    assert ds.metadata.loc[1, "secondary_labels"] == ["bbb1"]


def _metadata_cases(root: Path) -> list[Case]:
    d = root / "metadata"
    cases: list[Case] = []

    def add(name: str, text: str | bytes, what: str, problem: str | None = None,
            check: Callable | None = None, scored: str = '["bbb1"]', culprit: str = "train_metadata.csv") -> None:
        folder = d / name
        _write_dataset(folder, text, scored)
        names = str((folder / culprit).resolve())
        error = None if check else DatasetError
        cases.append(Case(f"metadata/{name}", "metadata", folder, what, load_dataset, error, problem, names, check))

    def mutated(row: int, col: str, value: str) -> str:
        rows = _rows()
        rows[row][HEADER.index(col)] = value
        return _csv_text(HEADER, rows)

    add("empty_file", "", "0-byte train_metadata.csv", r"is empty \(0 bytes\)")
    add("header_only", _csv_text(HEADER, []), "header, no rows", r"header but no rows")
    no_rating = [c for c in HEADER if c != "rating"]
    add("missing_column", _csv_text(no_rating, [[v for c, v in zip(HEADER, r) if c != "rating"] for r in _rows()]),
        "no rating column", r"lacks column\(s\) rating")
    add("wrong_delimiter", _csv_text(HEADER, _rows(), sep=";"), "semicolon-separated",
        r"another delimiter; it must be comma-separated")
    add("non_utf8", _csv_text(HEADER, _rows()).replace("Ann", "J\xf6rg").encode("latin-1"),
        "Latin-1 bytes (ö)", r"not UTF-8 text \(byte \d+\)")
    add("ragged_row", _csv_text(HEADER, _rows()) + "aaa1,[],[],1,2,A,A,A,CC,4.0,08:00,u,aaa1/XC9.ogg,EXTRA\n",
        "a row with 14 fields", r"not a valid CSV.*Expected 13 fields")
    add("duplicated_filenames", mutated(2, "filename", "aaa1/XC1.ogg"), "a filename listed twice",
        r"1 duplicated filename\(s\), e\.g\. aaa1/XC1\.ogg")
    add("unknown_primary", mutated(3, "primary_label", "zzz9"), "primary_label not in the taxonomy",
        r"line 5, column primary_label: unknown species code zzz9")
    add("unknown_secondary", mutated(1, "secondary_labels", "['zzz9']"), "secondary label not in the taxonomy",
        r"line 3, column secondary_labels: unknown species code zzz9")
    add("malformed_list", mutated(1, "secondary_labels", "['bbb1'"), "unclosed list string",
        r"line 3, column secondary_labels: .*is not a list of strings")
    add("list_not_strings", mutated(1, "secondary_labels", "[1, 2]"), "list of numbers",
        r"line 3, column secondary_labels: .*is not a list of strings")
    add("malformed_type", mutated(0, "type", "call"), "type that is not a list",
        r"line 2, column type: 'call' is not a list of strings")
    add("rating_too_high", mutated(1, "rating", "7.5"), "rating 7.5",
        r"line 3, column rating: 7\.5 is outside the valid range 0\.0\.\.5\.0")
    add("rating_negative", mutated(2, "rating", "-1"), "rating -1",
        r"line 4, column rating: -1\.0 is outside the valid range")
    add("rating_text", mutated(0, "rating", "good"), "rating 'good'", r"line 2, column rating: 'good' is not a number")
    add("rating_empty", mutated(0, "rating", ""), "empty rating", r"line 2, column rating: value is empty")
    add("latitude_out_of_range", mutated(0, "latitude", "95"), "latitude 95",
        r"line 2, column latitude: 95\.0 is outside the valid range -90\.0\.\.90\.0")
    add("longitude_out_of_range", mutated(3, "longitude", "-200"), "longitude -200",
        r"line 5, column longitude: -200\.0 is outside the valid range -180\.0\.\.180\.0")
    add("empty_primary_label", mutated(1, "primary_label", " "), "blank primary_label",
        r"line 3, column primary_label: value is empty")
    add("scored_truncated_json", _csv_text(HEADER, _rows()), "scored_birds.json cut off",
        r"not valid JSON", scored='["bbb1", "aa', culprit="scored_birds.json")

    extra = [[*r, f"n{i}"] for i, r in enumerate(_rows())]
    add("extra_columns", _csv_text([*HEADER, "my_notes"], extra), "an extra column", check=_check_extra_columns)
    add("bom", b"\xef\xbb\xbf" + _csv_text(HEADER, _rows()).encode(), "UTF-8 BOM", check=_check_bom)
    odd = _rows()
    for r, t in zip(odd, ["?", "xx:xx", "25:00", "06:15"]):
        r[HEADER.index("time")] = t
    add("time_question_mark", _csv_text(HEADER, odd), "time '?', 'xx:xx', '25:00'", check=_check_odd_times)
    add("crlf_line_ends", _csv_text(HEADER, _rows(), eol="\r\n"), "Windows line ends", check=_check_crlf)
    return cases


# ------------------------------------------------------------------------------------- config
def _config_cases(root: Path) -> list[Case]:
    d = root / "config"
    d.mkdir(parents=True)
    cases: list[Case] = []

    def add(name: str, content: Any, what: str, problem: str) -> None:
        p = d / f"{name}.json"
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, str):
            p.write_text(content)
        else:
            p.write_text(json.dumps(content, indent=2))
        cases.append(Case(f"config/{name}", "config", p, what, load_run_config, ConfigError, problem, str(p)))

    add("unknown_key", {"name": "x", "colour": "red"}, "top-level key 'colour'", r"colour: unknown field")
    add("unknown_nested_key", {"train": {"epochz": 3}}, "train.epochz", r"train\.epochz: unknown field")
    add("wrong_type_int", {"train": {"epochs": "ten"}}, "epochs 'ten'", r"train\.epochs: expected an integer, got 'ten'")
    add("wrong_type_bool", {"model": {"pretrained": "yes"}}, "pretrained 'yes'", r"model\.pretrained: expected true/false")
    add("wrong_type_section", {"train": 5}, "section as a number", r"train: expected a mapping")
    add("wrong_type_list", {"augment": {"wave_order": "gain"}}, "a string where a list goes",
        r"augment\.wave_order: expected a list")
    add("out_of_range_lr", {"train": {"lr": 5}}, "lr 5", r"train\.lr: 5\.0 must be <= 1\.0")
    add("out_of_range_clip", {"data": {"clip_seconds": 0}}, "clip_seconds 0", r"data\.clip_seconds: 0\.0 must be >= 0\.5")
    add("out_of_range_fold", {"train": {"fold": 7}}, "fold 7 of 5", r"train\.fold: 7 must be <= 4")
    add("nan_value", '{"train": {"lr": NaN}}', "lr NaN (JSON extension)", r"train\.lr: expected a finite number")
    add("infinite_value", '{"train": {"weight_decay": Infinity}}', "weight_decay Infinity",
        r"train\.weight_decay: expected a finite number")
    add("bad_choice", {"loss": {"kind": "mse"}}, "loss.kind 'mse'", r"loss\.kind: 'mse' is not one of")
    add("inconsistent_rates", {"data": {"sample_rate": 48000}}, "mel and data rates differ",
        r"mel\.sample_rate: 32000 differs from data\.sample_rate 48000")
    add("truncated_json", json.dumps({"name": "x", "train": {"epochs": 3, "lr": 0.001}})[:30], "file cut off",
        r"invalid JSON at line 1 column \d+")
    add("empty_file", "", "0-byte file", r"file is empty")
    add("not_an_object", [1, 2], "a JSON list", r"expected a mapping of fields, got list")
    add("non_utf8", '{"name": "J\xf6rg"}'.encode("latin-1"), "Latin-1 bytes", r"not UTF-8 text")
    folder = d / "folder.json"
    folder.mkdir()
    cases.append(Case("config/directory", "config", folder, "a folder named .json", load_run_config, ConfigError,
                      r"cannot read config file", str(folder)))
    return cases


# --------------------------------------------------------------------------------- thresholds
def _thresholds_cases(root: Path) -> list[Case]:
    d = root / "thresholds"
    d.mkdir(parents=True)
    good = Thresholds(classes=CLASSES, global_threshold=0.1, per_class={"aaa1": 0.2}, method="grid").to_dict()
    cases: list[Case] = []

    def add(name: str, content: Any, what: str, problem: str) -> None:
        p = d / f"{name}.json"
        if isinstance(content, (bytes, str)):
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
        else:
            p.write_text(json.dumps(content, indent=2))
        cases.append(Case(f"thresholds/{name}", "thresholds", p, what, load_thresholds, ConfigError, problem, str(p)))

    add("unknown_key", {**good, "colour": "red"}, "key 'colour'", r"unknown field\(s\) \['colour'\]")
    add("missing_key", {k: v for k, v in good.items() if k != "per_class"}, "no per_class", r"missing field\(s\) \['per_class'\]")
    add("wrong_type", {**good, "global_threshold": "0.5"}, "threshold as text", r"global_threshold: expected a number, got '0\.5'")
    add("wrong_type_bool", {**good, "global_threshold": True}, "threshold true", r"global_threshold: expected a number")
    add("out_of_range", {**good, "per_class": {"aaa1": 1.5}}, "per-class 1.5", r"per_class\.aaa1: 1\.5 is outside \[0, 1\]")
    add("negative", {**good, "global_threshold": -0.1}, "global -0.1", r"global_threshold: -0\.1 is outside \[0, 1\]")
    add("nan_threshold", json.dumps(good).replace('"global_threshold": 0.1', '"global_threshold": NaN'),
        "global NaN", r"global_threshold: nan is outside \[0, 1\]")
    add("unknown_species", {**good, "per_class": {"zzz9": 0.2}}, "per-class species not in classes",
        r"per_class: species not in classes: \['zzz9'\]")
    add("wrong_schema", {**good, "schema_version": 2}, "schema_version 2", r"schema_version: expected 1, got 2")
    add("truncated_json", json.dumps(good, indent=2)[:60], "file cut off", r"not valid JSON \(truncated\?\)")
    add("empty_file", "", "0-byte file", r"not valid JSON \(truncated\?\) at line 1 column 1")
    add("not_an_object", "[0.1, 0.2]", "a JSON list", r"expected a JSON object, got list")
    add("non_utf8", b'{"source": "J\xf6rg"}', "Latin-1 bytes", r"cannot read thresholds file")
    return cases


# -------------------------------------------------------------------------------- annotations
ANN_HEADER = "file_id,start,end,species,annotator,updated_at"
ANN_ROWS = ["sc1,0,5,aaa1,ann,2026-01-02T03:04:05+00:00",
            "sc1,0,5,bbb1,ann,2026-01-02T03:04:05+00:00",
            "sc1,5,10,,ann,2026-01-02T03:04:06+00:00"]


def _read_labels(p: Path):
    return read_annotations(p, classes=CLASSES)


def _check_labels_bom_blank(df) -> None:
    assert len(df) == 3 and df["species"].tolist() == ["aaa1", "bbb1", ""]
    assert df["start"].tolist() == [0.0, 0.0, 5.0]


def _check_labels_header_only(df) -> None:
    # An old six-column file reads with the optional band columns too (low_hz, high_hz).
    assert len(df) == 0 and list(df.columns) == ANN_HEADER.split(",") + ["low_hz", "high_hz"]


def _annotation_cases(root: Path) -> list[Case]:
    d = root / "annotations"
    d.mkdir(parents=True)
    cases: list[Case] = []

    def add(name: str, content: str | bytes, what: str, problem: str | None = None, check: Callable | None = None) -> None:
        p = d / f"{name}.csv"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        error = None if check else DatasetError
        cases.append(Case(f"annotations/{name}", "annotations", p, what, _read_labels, error, problem, str(p), check))

    def rows(*extra: str, header: str = ANN_HEADER) -> str:
        return "\n".join([header, *ANN_ROWS, *extra]) + "\n"

    add("unknown_column", rows(header=ANN_HEADER + ",colour").replace("+00:00\n", "+00:00,red\n"),
        "extra column 'colour'", r"line 1: unknown column\(s\) \['colour'\]")
    add("missing_column", "\n".join(["file_id,start,end,species,annotator",
                                     *(r.rsplit(",", 1)[0] for r in ANN_ROWS)]) + "\n",
        "no updated_at column", r"line 1: missing column\(s\) \['updated_at'\]")
    add("wrong_type", rows("sc2,abc,5,aaa1,ann,2026-01-02T03:04:05+00:00"), "start 'abc'",
        r"line 5, field start: 'abc' is not a number")
    add("nan_time", rows("sc2,nan,5,aaa1,ann,2026-01-02T03:04:05+00:00"), "start 'nan'",
        r"line 5, field start: 'nan' is not a finite number")
    add("negative_start", rows("sc2,-1,5,aaa1,ann,2026-01-02T03:04:05+00:00"), "start -1",
        r"line 5, field start: '-1' is negative")
    add("end_before_start", rows("sc2,5,5,aaa1,ann,2026-01-02T03:04:05+00:00"), "end == start",
        r"line 5, field end: '5' is not after start '5'")
    add("unknown_species", rows("sc2,0,5,zzz9,ann,2026-01-02T03:04:05+00:00"), "species zzz9",
        r"line 5, field species: unknown species code 'zzz9'")
    add("bad_timestamp", rows("sc2,0,5,aaa1,ann,yesterday"), "updated_at 'yesterday'",
        r"line 5, field updated_at: 'yesterday' is not an ISO 8601 time")
    add("wrong_field_count", "\n".join([ANN_HEADER, ANN_ROWS[0], "sc1,0,5", ANN_ROWS[2]]) + "\n",
        "a short row mid-file", r"line 3: expected 6 fields, got 3$")
    add("truncated", rows()[:-20], "file cut inside its last row", r"the file looks truncated")
    add("empty_file", "", "0-byte file", r"empty file")
    add("non_utf8", rows().replace("ann", "J\xf6rg").encode("latin-1"), "Latin-1 bytes", r"not UTF-8 text \(byte \d+\)")
    add("bom_blank_lines", b"\xef\xbb\xbf" + ("\n".join([ANN_HEADER, ANN_ROWS[0], "", ANN_ROWS[1], ANN_ROWS[2]]) + "\n\n").encode(),
        "BOM and blank lines", check=_check_labels_bom_blank)
    add("header_only", ANN_HEADER + "\n", "header, no rows", check=_check_labels_header_only)
    return cases


# --------------------------------------------------------------------------------------- API
GROUPS: dict[str, Callable[[Path], list[Case]]] = {
    "audio": _audio_cases, "metadata": _metadata_cases, "config": _config_cases,
    "thresholds": _thresholds_cases, "annotations": _annotation_cases,
}


def make_corpus(root: str | Path, groups: list[str] | None = None) -> list[Case]:
    """Write the corpus (all groups, or `groups`) under `root` (created) and return its cases."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for g in groups or list(GROUPS):
        cases += GROUPS[g](root)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


def verify(case: Case) -> Outcome:
    """Load `case` and judge the result (never raises for a wrong outcome; see `Outcome`)."""
    folder = case.path.parent if case.group != "metadata" else case.path
    before = _snapshot(folder)
    t0 = time.perf_counter()
    try:
        result = case.load(case.path)
    except Exception as exc:  # judged below: the expected typed error, or anything else
        msg = str(exc)
        if case.valid:
            handled, detail = False, f"valid input rejected: {type(exc).__name__}: {msg}"
        elif type(exc) is not case.error:
            handled, detail = False, f"wrong error type {type(exc).__name__}: {msg}"
        elif case.names not in msg:
            handled, detail = False, f"message does not name {case.names}: {msg}"
        elif not re.search(case.problem or "", msg):
            handled, detail = False, f"message does not say /{case.problem}/: {msg}"
        else:
            handled, detail = True, f"{type(exc).__name__}: {msg.replace(case.names, '<file>')}"
    else:
        if not case.valid:
            handled, detail = False, f"accepted silently (expected {case.error.__name__})"
        else:
            try:
                case.check(result)
                handled, detail = True, "loads; handled correctly"
            except AssertionError as exc:
                handled, detail = False, f"loaded but wrong: {exc}"
    seconds = time.perf_counter() - t0
    after = _snapshot(folder)
    lost = sum(1 for k, v in before.items() if after.get(k) != v)
    return Outcome(case, handled, detail, lost, seconds)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    for c in make_corpus(out):
        print(f"{c.name:40s} {c.path}")
