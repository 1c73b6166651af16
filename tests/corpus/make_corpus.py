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

import errno
import hashlib
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from unittest import mock

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
    add("unknown_secondary", mutated(1, "secondary_labels", "['zzz9']"), "secondary label with no recordings",
        r"line 3, column secondary_labels: unknown species zzz9")
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
    assert len(df) == 0 and list(df.columns) == ANN_HEADER.split(",")


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


# =============================================================================================
# Fault scenarios: crashes, concurrent writers, disk full, read-only. Each returns a `Fault`
# (handled as specified?, what happened, how many saved records were lost). The tests in
# `tests/test_crash_safety.py` assert on them; `benchmarks/reliability_summary.py` tabulates them.
# =============================================================================================

REPO = Path(__file__).resolve().parents[2]
TMP_PATTERN = re.compile(r"^\..+\.tmp$")  # what atomic_path names its temp files


@dataclass
class Fault:
    """Outcome of one fault scenario. `lost` counts saved records (rows, versions) that are gone."""

    name: str
    handled: bool
    detail: str
    lost: int
    data: dict


def stray_temps(folder: Path) -> list[Path]:
    """Temp files `atomic_path` left behind (only a SIGKILL can leave one)."""
    return sorted(p for p in folder.rglob(".*") if p.is_file() and TMP_PATTERN.match(p.name))


class Child:
    """A `python -c CODE ARGS` child whose stdout lines are collected by a thread."""

    def __init__(self, code: str, *args: Any, env: dict | None = None) -> None:
        import tempfile

        self._err = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty child never blocks
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, text=True,
                                     stdout=subprocess.PIPE, stderr=self._err,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_line(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.time() + timeout
        while text not in self.lines:
            if self.proc.poll() is not None and text not in self.lines:
                self._reader.join(1)
                if text in self.lines:
                    return
                raise RuntimeError(f"child exited {self.proc.returncode} before {text!r}: {self.stderr()[-2000:]}")
            if time.time() > deadline:
                raise TimeoutError(f"child did not print {text!r} within {timeout} s")
            time.sleep(0.002)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self, timeout: float = 120.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()


# ---- annotations: concurrent savers ---------------------------------------------------------
_ANN_WRITER = r"""
import sys, time
from pathlib import Path
import birdcore.annotation.store as ann
if sys.argv[5] == "nolock":  # the control: what the lock prevents
    from contextlib import nullcontext
    ann.file_lock = lambda path: nullcontext()
path, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
for i in range(n):
    ann.save_window(path, f"w{k}", i * 5, i * 5 + 5, ["aaa1", "bbb1", "ccc1"][: 1 + (i + k) % 3], annotator=f"writer{k}")
    print(i, flush=True)
"""


def concurrent_annotation_writers(folder: Path, writers: int = 4, saves: int = 8, lock: bool = True) -> Fault:
    """`writers` processes each save `saves` distinct windows into one labels.csv at the same time."""
    folder.mkdir(parents=True, exist_ok=True)
    path, go = folder / "labels.csv", folder / "go"
    children = [Child(_ANN_WRITER, path, k, saves, go, "lock" if lock else "nolock") for k in range(writers)]
    for c in children:
        c.wait_line("ready")
    go.touch()  # release them together, so their read-modify-write cycles overlap
    codes = [c.finish() for c in children]
    errors = [c.stderr()[-500:] for c, rc in zip(children, codes) if rc != 0]
    table = read_annotations(path, classes=CLASSES)
    from birdcore.annotation.store import window_species

    got = window_species(table)
    expected = {(f"w{k}", float(i * 5), float(i * 5 + 5)): set(CLASSES[: 1 + (i + k) % 3])
                for k in range(writers) for i in range(saves)}
    lost = sum(1 for key, species in expected.items() if got.get(key) != species)
    extra = len(set(got) - set(expected))
    handled = not errors and lost == 0 and extra == 0
    return Fault(f"annotations: {writers} concurrent writers × {saves} saves" + ("" if lock else " (control: no lock)"),
                 handled, f"{len(expected) - lost}/{len(expected)} windows kept" + (f"; errors: {errors}" if errors else ""),
                 lost, {"expected": len(expected), "found": len(got), "extra": extra})


# ---- annotations: a saver killed at a random moment / mid-write -----------------------------
_ANN_LOOP = r"""
import sys
from birdcore.annotation.store import save_window
path = sys.argv[1]
print("ready", flush=True)
i = 0
while True:
    save_window(path, "sc", i * 5, i * 5 + 5, ["aaa1"] if i % 2 else [], annotator="loop")
    print(i, flush=True)
    i += 1
"""


def killed_annotation_saver(folder: Path, seed: int) -> Fault:
    """A process saving window after window is SIGKILLed after a seeded random delay: every
    acknowledged save must be in the file, the file must parse, and the lock must be free."""
    from birdcore.annotation.store import save_window, window_species

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    child = Child(_ANN_LOOP, path)
    child.wait_line("0")  # at least one save acknowledged, then a random moment
    time.sleep(random.Random(seed).uniform(0.05, 0.8))
    child.kill()
    acked = [int(x) for x in child.lines if x.isdigit()]
    n_acked = (max(acked) + 1) if acked else 0
    got = window_species(read_annotations(path, classes=CLASSES))
    lost = sum(1 for i in range(n_acked)
               if got.get(("sc", float(i * 5), float(i * 5 + 5))) != ({"aaa1"} if i % 2 else set()))
    t0 = time.perf_counter()
    save_window(path, "after", 0, 5, ["bbb1"])  # would hang if the dead process still held the lock
    relock_s = time.perf_counter() - t0
    ok = lost == 0 and relock_s < 5 and ("after", 0.0, 5.0) in window_species(read_annotations(path))
    return Fault(f"annotations: saver SIGKILLed at a random moment (seed {seed})", ok,
                 f"{n_acked} saves acknowledged, {n_acked - lost} in the file; lock free again in {relock_s:.2f} s",
                 lost, {"acked": n_acked, "strays": len(stray_temps(folder))})


_ANN_DIE_MID = r"""
import os, signal, sys
import birdcore.annotation.store as ann
path = sys.argv[1]
# 400 windows: the table (~20 kB) is bigger than the 8-kB write buffer, so when the process dies
# at row 300 of the next save, a partial temp file really is on disk.
ann.save_windows(path, [("sc", i * 5, i * 5 + 5, ["aaa1"] if i % 2 else []) for i in range(400)], annotator="before")
print("saved", flush=True)
real, count = ann._format_row, [0]
def dying(row):
    count[0] += 1
    if count[0] == 300:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(row)
ann._format_row = dying
ann.save_window(path, "sc", 2000, 2005, ["ccc1"], annotator="crash")
"""


def annotation_save_dies_mid_write(folder: Path) -> Fault:
    """The saving process dies while writing the new table: the old file must be byte-identical."""
    from birdcore.annotation.store import save_window

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    child = Child(_ANN_DIE_MID, path)
    child.wait_line("saved")
    before = path.read_bytes()  # the table as the first save left it
    rc = child.finish()
    strays = stray_temps(folder)
    same = path.read_bytes() == before
    table = read_annotations(path, classes=CLASSES)
    save_window(path, "sc", 2000, 2005, ["ccc1"])  # the next save works and ignores the stray temp
    after = read_annotations(path, classes=CLASSES)
    ok = rc == -signal.SIGKILL and same and len(table) == 400 and len(after) == 401
    return Fault("annotations: process dies mid-write of labels.csv", ok,
                 f"previous file {'byte-identical' if same else 'CHANGED'}; {len(strays)} stray temp file(s)"
                 f" ({', '.join(f'{p.stat().st_size} B' for p in strays)}) ignored by readers",
                 0 if same else 1, {"strays": strays, "rc": rc})


# ---- thresholds -----------------------------------------------------------------------------
_THR_WRITER = r"""
import sys, time
from pathlib import Path
from birdcore.evaluation.thresholds import Thresholds, save_thresholds
path, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
classes = [f"sp{i}" for i in range(200)]  # ~7 kB of JSON: a torn read would show
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
for i in range(n):
    thr = Thresholds(classes=classes, global_threshold=0.1, per_class={c: 0.01 * ((i + k) % 90 + 1) for c in classes},
                     method="grid", source=f"w{k}-{i}")
    save_thresholds(path, thr)
    print(i, flush=True)
"""


def concurrent_threshold_writers(folder: Path, writers: int = 3, saves: int = 10) -> Fault:
    """Writers overwrite one thresholds.json while this process keeps reading it: no read may see
    a torn file, and the final file is one complete version some writer saved."""
    folder.mkdir(parents=True, exist_ok=True)
    path, go = folder / "thresholds.json", folder / "go"
    children = [Child(_THR_WRITER, path, k, saves, go) for k in range(writers)]
    for c in children:
        c.wait_line("ready")
    go.touch()
    reads, torn = 0, []
    while any(c.proc.poll() is None for c in children):
        if path.exists():
            try:
                thr = load_thresholds(path)
                k, i = map(int, thr.source[1:].split("-"))
                assert set(thr.per_class.values()) == {0.01 * ((i + k) % 90 + 1)}
                reads += 1
            except (ConfigError, AssertionError, ValueError) as exc:
                torn.append(str(exc)[:120])
        time.sleep(0.001)
    codes = [c.finish() for c in children]
    final = load_thresholds(path)
    written = {f"w{k}-{i}" for k in range(writers) for i in range(saves)}
    ok = not torn and all(rc == 0 for rc in codes) and final.source in written and not stray_temps(folder)
    return Fault(f"thresholds: {writers} concurrent writers, reader polling", ok,
                 f"{reads} reads during the writes, {len(torn)} torn; final = version {final.source}",
                 len(torn), {"reads": reads, "torn": torn})


_THR_DIE_MID = r"""
import os, pathlib, signal, sys
from birdcore.evaluation.thresholds import Thresholds, save_thresholds
path = sys.argv[1]
save_thresholds(path, Thresholds(classes=["aaa1", "bbb1"], global_threshold=0.1, method="grid", source="v1"))
print("saved", flush=True)
def dying_write_bytes(self, data):  # write half the bytes for real, then die
    with open(self, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path.write_bytes = dying_write_bytes
save_thresholds(path, Thresholds(classes=["aaa1", "bbb1"], global_threshold=0.9, method="grid", source="v2"))
"""


def threshold_save_dies_mid_write(folder: Path) -> Fault:
    """The process dies half-way through writing thresholds v2: v1 must load, byte-identical."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "thresholds.json"
    child = Child(_THR_DIE_MID, path)
    child.wait_line("saved")
    before = path.read_bytes()
    rc = child.finish()
    same = path.read_bytes() == before
    thr = load_thresholds(path)
    strays = stray_temps(folder)
    ok = rc == -signal.SIGKILL and same and thr.source == "v1" and len(strays) == 1
    return Fault("thresholds: process dies mid-write of thresholds.json", ok,
                 f"v1 {'intact' if same else 'CHANGED'} (source {thr.source!r}); stray temp: {len(strays)}",
                 0 if same else 1, {"strays": strays, "rc": rc})


# ---- checkpoints ----------------------------------------------------------------------------
_CKPT_LOOP = r"""
import sys, torch
from birdcore.training.checkpoint import save_checkpoint
path = sys.argv[1]
print("ready", flush=True)
v = 1
while True:
    save_checkpoint(path, {"version": v, "w": torch.full((6_000_000,), float(v))})  # 24 MB
    print(v, flush=True)
    v += 1
"""


def checkpoint_write_killed(folder: Path, seed: int) -> Fault:
    """A process saving a 24-MB checkpoint over and over is SIGKILLed while a save is in flight
    (the seed picks which save; the kill lands once its temp file has data). The file at the
    checkpoint's name must load with weights_only and be one whole version."""
    import torch

    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.pt"
    save_checkpoint(path, {"version": 0, "w": torch.zeros(6_000_000)})
    target_save = random.Random(seed).randint(1, 3)
    child = Child(_CKPT_LOOP, path)
    child.wait_line("ready")
    if target_save > 1:
        child.wait_line(str(target_save - 1))
    deadline, landed = time.time() + 30, "after a completed save"
    while time.time() < deadline and child.proc.poll() is None:
        temps = stray_temps(folder)
        if temps and any(t.exists() and t.stat().st_size > 0 for t in temps):
            landed = "mid-write (temp file had data)"
            break
        time.sleep(0.0005)
    child.kill()
    acked = max([int(x) for x in child.lines if x.isdigit()], default=0)
    try:
        ck = load_checkpoint(path)
        version = int(ck["version"])
        whole = bool(torch.all(ck["w"] == float(version))) and ck["w"].numel() == 6_000_000
    except RunError as exc:
        version, whole = -1, False
        landed += f"; load failed: {exc}"
    ok = whole and acked <= version <= acked + 1
    return Fault(f"checkpoint: writer SIGKILLed during save #{target_save} (seed {seed})", ok,
                 f"kill landed {landed}; last acknowledged v{acked}, file holds v{version} "
                 f"({'whole' if whole else 'BROKEN'}); {len(stray_temps(folder))} stray temp",
                 0 if ok else 1, {"landed": landed, "version": version, "acked": acked})


# ---- disk full and read-only (simulated: the OS call raises) ---------------------------------
def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@contextmanager
def failing_writes(code: int, where: str):
    """Make writes fail with errno `code` at `where`: "write" (half the bytes land, then the error),
    "fsync" (delayed allocation reports ENOSPC at fsync), "create" (no new file can be made)."""
    with ExitStack() as stack:
        if where == "write":
            real_write = os.write

            def half_write(fd, data):
                if len(data) > 1:
                    real_write(fd, bytes(data[: len(data) // 2]))
                raise _oserror(code)
            def half_write_bytes(self, data):
                with open(self, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                raise _oserror(code)
            stack.enter_context(mock.patch("os.write", half_write))
            stack.enter_context(mock.patch.object(Path, "write_bytes", half_write_bytes))
        elif where == "fsync":
            stack.enter_context(mock.patch("os.fsync", side_effect=_oserror(code)))
        elif where == "create":
            stack.enter_context(mock.patch("tempfile.mkstemp", side_effect=_oserror(code)))
            real_open = os.open

            def no_create(p, flags, *a, **k):
                if flags & (os.O_WRONLY | os.O_RDWR):
                    raise _oserror(code)
                return real_open(p, flags, *a, **k)
            stack.enter_context(mock.patch("os.open", no_create))
            real_mkdir = Path.mkdir

            def no_mkdir(self, *a, **k):
                if self.exists():
                    return real_mkdir(self, *a, **k)
                raise _oserror(code)
            stack.enter_context(mock.patch.object(Path, "mkdir", no_mkdir))
        else:
            raise ValueError(where)
        yield


def _writers(folder: Path) -> dict[str, tuple[Path, Callable[[], Any]]]:
    """name → (file it writes, a call that writes a new version). Each file already holds v1."""
    import torch

    from birdcore.annotation.store import save_window
    from birdcore.atomic_io import append_line
    from birdcore.evaluation.thresholds import save_thresholds
    from birdcore.training.checkpoint import save_checkpoint

    thr = folder / "thresholds.json"
    save_thresholds(thr, Thresholds(classes=CLASSES, global_threshold=0.1, method="grid", source="v1"))
    labels = folder / "labels.csv"
    save_window(labels, "sc", 0, 5, ["aaa1"])
    ckpt = folder / "last.pt"
    save_checkpoint(ckpt, {"epoch": 1, "w": torch.ones(1000)})
    metrics = folder / "metrics.jsonl"
    append_line(metrics, '{"kind": "epoch", "epoch": 0}')
    return {
        "thresholds.json": (thr, lambda: save_thresholds(thr, Thresholds(classes=CLASSES, global_threshold=0.5,
                                                                             method="grid", source="v2"))),
        "labels.csv": (labels, lambda: save_window(labels, "sc", 5, 10, ["bbb1"])),
        "checkpoint": (ckpt, lambda: save_checkpoint(ckpt, {"epoch": 2, "w": torch.ones(100_000)})),
        "metrics line": (metrics, lambda: append_line(metrics, '{"kind": "epoch", "epoch": 1, "pad": "' + "x" * 6000 + '"}')),
    }


WORDS = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


def failed_write(folder: Path, writer: str, code: int, where: str) -> Fault:
    """`writer` hits errno `code` at `where`: a BirdcoreError naming the file and the reason,
    the previous version byte-identical, no temp file left behind."""
    from birdcore.errors import BirdcoreError

    folder.mkdir(parents=True, exist_ok=True)
    target, call = _writers(folder)[writer]
    before = target.read_bytes()
    err: BaseException | None = None
    with failing_writes(code, where):
        try:
            call()
        except BaseException as exc:  # judged below
            err = exc
    msg = str(err)
    clear = (isinstance(err, BirdcoreError) and isinstance(err, OSError) and err.errno == code
             and str(target) in msg and WORDS[code] in msg)
    same = target.read_bytes() == before
    strays = stray_temps(folder)
    name = f"{WORDS[code]} ({where}): {writer}"
    detail = (f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised") + \
        (f"; {len(strays)} temp file(s) left" if strays else "")
    return Fault(name, clear and same and not strays, detail, 0 if same else 1,
                 {"error": err, "strays": strays})


def failed_run_creation(folder: Path, code: int, where: str) -> Fault:
    """`create_run` in a runs folder where writes fail: RunError naming the folder and the reason,
    and no half-made run folder left behind."""
    from birdcore.config.run import RunConfig
    from birdcore.errors import RunError
    from birdcore.training.runs import create_run, list_runs

    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    err: BaseException | None = None
    with failing_writes(code, where):
        try:
            create_run(runs, RunConfig(name="x"), folder, CLASSES)
        except BaseException as exc:
            err = exc
    left = sorted(p.name for p in runs.iterdir())
    clear = isinstance(err, RunError) and str(runs) in str(err) and WORDS[code] in str(err)
    return Fault(f"{WORDS[code]} ({where}): new run folder", clear and not left,
                 (f"{type(err).__name__}: {str(err).replace(str(folder), '<dir>')}" if err else "no error raised")
                 + (f"; left behind: {left}" if left else ""), len(left), {"error": err, "left": left, "runs": list_runs(runs)})


# ---- a real small file system (root only): the true ENOSPC / EROFS paths ---------------------
@contextmanager
def tmpfs(folder: Path, size: str = "2m"):
    """Mount a small tmpfs at `folder` (yields False when mounting is not possible here)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path) -> int:
    """Write a filler file until the file system is full; returns its size in bytes."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        block = b"\0" * 65536
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    # the last partial block may leave a few bytes; take them too
    try:
        with open(filler, "ab", buffering=0) as fh:
            while fh.write(b"\0"):
                pass
    except OSError:
        pass
    return filler.stat().st_size


def real_full_disk(folder: Path) -> list[Fault] | None:
    """Every writer on a truly full tmpfs (None when tmpfs cannot be mounted here)."""
    from birdcore.errors import BirdcoreError

    out: list[Fault] = []
    with tmpfs(folder) as mounted:
        if not mounted:
            return None
        writers = _writers(folder)
        fill_disk(folder)
        for name, (target, call) in writers.items():
            before = target.read_bytes()
            try:
                call()
                err = None
            except BaseException as exc:
                err = exc
            msg = str(err)
            same = target.read_bytes() == before
            strays = stray_temps(folder)
            clear = isinstance(err, BirdcoreError) and str(target) in msg and "disk full" in msg
            out.append(Fault(f"disk full (real tmpfs): {name}", clear and same and not strays,
                             (f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised")
                             + (f"; {len(strays)} temp file(s) left" if strays else ""),
                             0 if same else 1, {"error": err}))
    return out


def real_read_only(folder: Path) -> list[Fault] | None:
    """Every writer on a tmpfs remounted read-only (None when not possible here)."""
    from birdcore.errors import BirdcoreError

    out: list[Fault] = []
    with tmpfs(folder) as mounted:
        if not mounted:
            return None
        writers = _writers(folder)
        if subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode != 0:
            return None
        for name, (target, call) in writers.items():
            before = target.read_bytes()
            try:
                call()
                err = None
            except BaseException as exc:
                err = exc
            msg = str(err)
            clear = isinstance(err, BirdcoreError) and str(target) in msg and "read-only" in msg
            same = target.read_bytes() == before
            out.append(Fault(f"read-only file system (real): {name}", clear and same,
                             f"{type(err).__name__}: {msg.replace(str(target), '<file>')}" if err else "no error raised",
                             0 if same else 1, {"error": err}))
    return out


# ---- training runs: SIGKILL at random moments and injected crash points, then resume --------
TRAIN_EPOCHS = 3
TRAIN_OVERRIDES = [  # tiny: 6 train recordings, 2 steps per epoch, resnet10t from scratch, 2-s clips
    "train.num_workers=0", "data.clip_seconds=2.0", "train.batch_size=3", "train.log_every_steps=1",
    f"train.epochs={TRAIN_EPOCHS}", "train.patience=10", "train.n_folds=2", "model.pretrained=false",
    'model.backbone="resnet10t"', "mel.n_mels=32",
]


def tiny_tone_data(root: Path) -> Path:
    """3 species × 4 recordings of 2–3 s of learnable tones (tests/helpers/synth.py)."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from helpers.synth import make_tone_dataset

    return make_tone_dataset(root, n_species=3, per_species=4, seconds=2.2)


def tiny_run(data_dir: Path, runs_dir: Path):
    from birdcore.config.run import load_run_config
    from birdcore.training.launcher import prepare_run

    return prepare_run(data_dir, load_run_config("demo-cpu", TRAIN_OVERRIDES), runs_dir)


def run_problems(run, epochs: int = TRAIN_EPOCHS) -> list[str]:
    """Everything wrong with a run that should be complete (empty list = complete and consistent).

    status finished and truthful; every metrics line whole JSON; one start line; epoch lines
    0..E-1 once each, in order; step numbers 1..N strictly increasing with the right epoch;
    last.pt at epoch E recording the final metrics size; best.pt loadable with weights_only and
    agreeing with status and the OOF table on the best epoch and score.
    """
    import pandas as pd

    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint

    problems: list[str] = []
    st = run.status()
    if st.get("state") != "finished" or st.get("stale") or st.get("error") or st.get("pid") is not None:
        problems.append(f"status not a clean finish: { {k: st.get(k) for k in ('state', 'stale', 'error', 'pid')} }")
    if st.get("epoch") != epochs:
        problems.append(f"status epoch {st.get('epoch')} != {epochs}")
    raw = run.metrics_path.read_bytes()
    lines = raw.split(b"\n")
    if lines[-1] != b"":
        problems.append("metrics.jsonl does not end with a newline (torn last line)")
    records = []
    for n, line in enumerate(lines[:-1], start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            problems.append(f"metrics.jsonl line {n} is not whole JSON: {line[:60]!r}")
    kinds = [r.get("kind") for r in records]
    if kinds.count("start") != 1 or kinds[:1] != ["start"]:
        problems.append(f"expected one start line first, got kinds {kinds[:3]}... ({kinds.count('start')} starts)")
    epoch_lines = [r["epoch"] for r in records if r.get("kind") == "epoch"]
    if epoch_lines != list(range(epochs)):
        problems.append(f"epoch lines {epoch_lines} != {list(range(epochs))}")
    steps = [(r["step"], r["epoch"]) for r in records if r.get("kind") == "step"]
    nums = [s for s, _ in steps]
    if nums != sorted(set(nums)) or not nums:
        problems.append(f"step numbers not strictly increasing: {nums}")
    start = next((r for r in records if r.get("kind") == "start"), {})
    spe = start.get("steps_per_epoch")
    if spe and nums != list(range(1, spe * epochs + 1)):
        problems.append(f"steps {nums} != 1..{spe * epochs}")
    if spe and any(e != (s - 1) // spe for s, e in steps):
        problems.append(f"a step line has the wrong epoch: {steps}")
    # order: every step of epoch e precedes epoch e's line, which precedes epoch e+1's steps
    seq = [(r["epoch"], 0 if r["kind"] == "step" else 1) for r in records if r.get("kind") in ("step", "epoch")]
    if seq != sorted(seq):
        problems.append("metrics lines are out of order")
    try:
        last = load_checkpoint(run.last_checkpoint)
        if last["epoch"] != epochs or last["metrics_size"] != len(raw):
            problems.append(f"last.pt epoch {last['epoch']} / metrics_size {last['metrics_size']} vs {epochs} / {len(raw)}")
        best = load_checkpoint(run.best_checkpoint)  # weights_only=True inside
        if best["epoch"] != st.get("best_epoch"):
            problems.append(f"best.pt is epoch {best['epoch']} but status says best_epoch {st.get('best_epoch')}")
        if best["classes"] != run.classes or not best["model"]:
            problems.append("best.pt lacks the classes or the weights")
        monitor = run.read_config()[0].train.monitor
        scores = {r["epoch"]: r.get(monitor) for r in records if r.get("kind") == "epoch"}
        if st.get("best_epoch") in scores and scores[st["best_epoch"]] != st.get("best_score"):
            problems.append(f"status best_score {st.get('best_score')} != epoch line {scores[st['best_epoch']]}")
        valid = [v for v in scores.values() if v is not None]
        if valid and st.get("best_score") != max(valid):
            problems.append(f"status best_score {st.get('best_score')} is not the best epoch score {max(valid)}")
    except RunError as exc:
        problems.append(str(exc))
    if run.oof_path.exists():
        oof_epochs = set(pd.read_parquet(run.oof_path, columns=["epoch"])["epoch"])
        if oof_epochs != {st.get("best_epoch")}:
            problems.append(f"oof_predictions are from epoch {oof_epochs}, best is {st.get('best_epoch')}")
    else:
        problems.append("oof_predictions.parquet missing")
    return problems


def _wait_for(pred: Callable[[], bool], timeout: float, what: str, proc_alive: Callable[[], bool]) -> None:
    deadline = time.time() + timeout
    while not pred():
        if not proc_alive():
            raise RuntimeError(f"the training process ended before {what}")
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.001)


def landed_phase(run) -> str:
    """Where a kill landed, read back from the run folder."""
    from birdcore.errors import RunError
    from birdcore.training.checkpoint import load_checkpoint

    records = run.metrics()[0] if run.metrics_path.exists() else []
    if not records:
        return "start-up (nothing logged yet)"
    try:
        done = load_checkpoint(run.last_checkpoint)["epoch"] if run.last_checkpoint.exists() else 0
    except RunError:
        done = -1
    epoch_lines = sum(1 for r in records if r.get("kind") == "epoch")
    if epoch_lines > done:
        return f"end-of-epoch writes (epoch {epoch_lines - 1} logged, last.pt still at {done})"
    steps = [r for r in records if r.get("kind") == "step" and r["epoch"] == done]
    return f"mid-epoch {done} ({len(steps)} step(s) logged)" if steps else f"between epochs (after epoch {done - 1})"


def kill_training_at(run, phase: str, seed: int) -> dict:
    """Launch `run` the way the app does and SIGKILL it in `phase` after a seeded random delay:
    "start-up" (0.1–1.5 s after launch), "mid-epoch" (0–50 ms after the first step line of a random
    epoch) or "end-of-epoch" (0–30 ms after a random epoch's metrics line: best.pt / OOF /
    last.pt / status are being written). Returns what was seen."""
    from birdcore.training.launcher import launch_run

    rng = random.Random(f"{phase}-{seed}")
    pid = launch_run(run, extra_env={"OMP_NUM_THREADS": "1"})

    def alive() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def has(kind: str, epoch: int) -> Callable[[], bool]:
        return lambda: any(r.get("kind") == kind and r.get("epoch") == epoch for r in run.metrics()[0])

    if phase == "start-up":
        time.sleep(rng.uniform(0.1, 1.5))
    elif phase == "mid-epoch":
        epoch = rng.randrange(TRAIN_EPOCHS)
        _wait_for(has("step", epoch), 240, f"a step of epoch {epoch}", alive)
        time.sleep(rng.uniform(0.0, 0.05))  # the epoch's next step takes ~0.1–0.3 s
    elif phase == "end-of-epoch":
        epoch = rng.randrange(TRAIN_EPOCHS)
        _wait_for(has("epoch", epoch), 240, f"the metrics line of epoch {epoch}", alive)
        time.sleep(rng.uniform(0.0, 0.03))
    else:
        raise ValueError(phase)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    return {"pid": pid, "landed": landed_phase(run), "status_after_kill": run.status()}


# The same `birdcore train` process, with one crash point injected: it SIGKILLs itself right after
# the epoch line (before any checkpoint), right after last.pt (before best.pt and the OOF table),
# right after best.pt, or half-way through writing last.pt (a partial temp file is on disk).
_INJECTED = r"""
import io, os, signal, sys
import birdcore.training.loop as loop
run_dir, point, at_epoch, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if point == "after_epoch_line":
    real_log = loop.RunFolder.log
    def log(self, record):
        real_log(self, record)
        if record.get("kind") == "epoch" and record["epoch"] == at_epoch:
            die()
    loop.RunFolder.log = log
else:
    if point == "after_best_inflated":  # epoch `at_epoch` of this attempt scores best of all
        from birdcore.training.runs import open_run
        monitor = open_run(run_dir).read_config()[0].train.monitor
        # die between last.pt and best.pt (the engine writes last.pt first)
        point, real_metrics, calls = "after_last", loop.compute_all, [0]
        def compute_all(*a, **k):
            out = real_metrics(*a, **k)
            calls[0] += 1
            if calls[0] == at_epoch + 1:  # one validation per epoch
                out = {**out, monitor: 2.0}  # above any real score: this epoch becomes the best
            return out
        loop.compute_all = compute_all
    real_save = loop.save_checkpoint
    def save(path, payload):
        name = os.path.basename(str(path))
        if point == "mid_last_write" and name == "last.pt" and payload["epoch"] == at_epoch + 1:
            import torch
            from birdcore.atomic_io import atomic_path
            buf = io.BytesIO()
            torch.save(payload, buf)
            with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
                fh.write(buf.getbuffer()[: buf.tell() // 2])
                fh.flush()
                os.fsync(fh.fileno())
                die()
        real_save(path, payload)
        if point == "after_best" and name == "best.pt" and payload["epoch"] == at_epoch:
            die()
        if point == "after_last" and name == "last.pt" and payload["epoch"] == at_epoch + 1:
            die()
    loop.save_checkpoint = save
from birdcore.cli import main
sys.exit(main(["train", "--resume" if resume else "--run", run_dir]))
"""
INJECTION_POINTS = ("after_epoch_line", "after_best", "after_last", "mid_last_write", "after_best_inflated")


def crash_training_at(run, point: str, epoch: int, resume: bool) -> dict:
    """Run `birdcore train` on `run` with crash point `point` at epoch `epoch`; returns what was seen."""
    if point not in INJECTION_POINTS:
        raise ValueError(f"unknown crash point {point!r} (one of {INJECTION_POINTS})")
    child = Child(_INJECTED, run.path, point, epoch, "resume" if resume else "fresh", env={"OMP_NUM_THREADS": "1"})
    rc = child.finish(timeout=300)
    return {"rc": rc, "landed": landed_phase(run), "status_after_kill": run.status(),
            "strays": stray_temps(run.path), "stderr": child.stderr()[-2000:]}
