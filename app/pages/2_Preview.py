"""Listen to a recording and preview the augmentation chain: waveform and log-mel, original vs augmented."""

import copy
import io
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, get_args, get_type_hints

_APP = str(Path(__file__).resolve().parents[1])
if _APP not in sys.path:
    sys.path.insert(0, _APP)  # `import ui` when this page runs on its own (AppTest, streamlit run)

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import soundfile as sf
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed
from ui import charts

from birdcore.audio.io import AUDIO_EXTENSIONS, audio_info, audio_stats, load_audio
from birdcore.augment import presets_store
from birdcore.augment.preview import preview
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import to_dict
from birdcore.config.features import MEL_PRESETS, DenoiseConfig, MelConfig, mel_preset
from birdcore.errors import AudioError, ConfigError
from birdcore.features.mel_frontend import mel_frequencies

TRAINING_PAGE = "pages/4_Training.py"
DATASET, UPLOAD = "Dataset recording", "Upload a file"
UPLOAD_PREFIX = "birdcore-upload-"  # temp folder of a session's uploaded file (birdcore decodes paths)
WINDOWS = (1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0)  # window lengths offered (s)
WAVE_POINTS = 1500  # min/max pairs drawn per waveform: enough for the eye, light to send
DEFAULT_P = 0.5     # probability a transform starts from when switched on from p = 0
# Fixed side margins, wide enough for the axis labels and the spectrogram's colour bar, so that the
# waveform and the spectrogram below it share one time scale on screen.
PLOT_LEFT_PX, MEL_COLORBAR_PX = 64, 64

# ---- the form: one block per transform; (field, label, step) — step None = choice or text --------
WAVE = (
    ("gain", "Gain", "Louder or quieter by a gain drawn uniformly in [min, max] dB.",
     (("min_db", "min dB", 1.0), ("max_db", "max dB", 1.0))),
    ("gaussian_noise", "White noise", "Gaussian noise at an SNR drawn in [min, max] dB (higher = quieter noise).",
     (("min_snr_db", "min SNR dB", 1.0), ("max_snr_db", "max SNR dB", 1.0))),
    ("color_noise", "Pink / brown noise", "Coloured noise at an SNR drawn in [min, max] dB.",
     (("color", "colour", None), ("min_snr_db", "min SNR dB", 1.0), ("max_snr_db", "max SNR dB", 1.0))),
    ("background", "Background noise", "A random stretch of a noise recording (a folder or file on the server)"
     " mixed in at an SNR drawn in [min, max] dB. Inactive without a path.",
     (("path", "noise path", None), ("min_snr_db", "min SNR dB", 1.0), ("max_snr_db", "max SNR dB", 1.0))),
    ("pitch_shift", "Pitch shift", "Shift by a number of semitones drawn in [min, max], tempo kept (slow: ~35 ms"
     " per 5-s clip).", (("min_semitones", "min semitones", 0.5), ("max_semitones", "max semitones", 0.5))),
    ("time_stretch", "Time stretch", "Faster (> 1) or slower (< 1) by a rate drawn in [min, max], pitch kept;"
     " the length stays the same.", (("min_rate", "min rate", 0.05), ("max_rate", "max rate", 0.05))),
    ("normalize", "Normalize", "Peak: scale to max |x| = 1. Standard: zero mean, unit std. Erases the absolute"
     " level (and with it the gain augmentation).", (("mode", "mode", None),)),
)
SPEC = (
    ("freq_mask", "Frequency masks", "SpecAugment: up to `masks` horizontal bands of width ≤ max bins.",
     (("count", "masks", 1), ("max_width", "max width (bins)", 1), ("fill", "fill", None))),
    ("time_mask", "Time masks", "SpecAugment: up to `masks` vertical bands of width ≤ max frames.",
     (("count", "masks", 1), ("max_width", "max width (frames)", 1), ("fill", "fill", None))),
    ("spec_shift", "Time shift", "Roll the image along time (circular) by up to ± this fraction of its width.",
     (("max_fraction", "max fraction", 0.05),)),
    ("flip", "Time flip", "Reverse the image in time (calls are not time-symmetric: off by default).", ()),
    ("rotate", "Rotation", "Rotate the image by up to ± max degrees (it hurt top teams: off by default).",
     (("max_degrees", "max degrees", 1.0),)),
)
CLIP = ("clip", "Clamp values", "Replace NaN and clamp the normalised image to [min, max] (a safety net).",
        (("min_value", "min", 0.1), ("max_value", "max", 0.1)))
MIX = (
    ("mixup", "Mixup", "Mix with a random partner of the batch: w·x + (1−w)·x_partner, w ~ Beta(α, α).",
     (("alpha", "alpha", 0.5), ("mode", "labels", None))),
    ("cutmix", "Cutmix", "Replace a time band by the partner's, band fraction ~ Beta(α, α).",
     (("alpha", "alpha", 0.5),)),
)
GROUPS = WAVE + SPEC + (CLIP,) + MIX
OTHER_KEYS = ("pv_enabled", "pv_mix_on", "pv_crop_mode", "pv_extend_ratio")
VIEW_KEYS = ("pv_mel", "pv_duration", "pv_start", "pv_denoise", "pv_dn_prop", "pv_dn_stationary", "pv_seed",
             "pv_source")

state = st.session_state


def _section_class(section: str) -> type:
    return type(getattr(AugmentConfig(), section))


def _choices(section: str, name: str) -> list[str]:
    """Allowed values of a Literal field (from the engine's dataclass, not repeated here)."""
    return list(get_args(get_type_hints(_section_class(section))[name]))


def _cast(section: str, name: str, value: Any) -> Any:
    tp = get_type_hints(_section_class(section))[name]
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    return value


def _form_keys() -> list[str]:
    keys = list(OTHER_KEYS)
    for section, _, _, fields in GROUPS:
        keys += [f"pv_on_{section}"] + ([f"pv_p_{section}"] if section != "clip" else [])
        keys += [f"pv_{section}_{name}" for name, _, _ in fields]
    return keys


def _values_from_config(cfg: AugmentConfig) -> dict[str, Any]:
    """Widget values showing `cfg` (a transform with p = 0 is switched off)."""
    d = to_dict(cfg)
    out: dict[str, Any] = {"pv_enabled": d["enabled"], "pv_mix_on": d["mix_on"], "pv_crop_mode": d["crop"]["mode"],
                           "pv_extend_ratio": float(d["extend"]["other_audio_ratio"])}
    for section, _, _, fields in GROUPS:
        sub = d[section]
        if section == "clip":
            out["pv_on_clip"] = bool(sub["enabled"])
        else:
            out[f"pv_on_{section}"] = sub["p"] > 0
            out[f"pv_p_{section}"] = float(sub["p"]) if sub["p"] > 0 else DEFAULT_P
        for name, _, _ in fields:
            value = sub[name]
            out[f"pv_{section}_{name}"] = "" if value is None else _cast(section, name, value)
    return out


def _seed_form(cfg: AugmentConfig) -> None:
    state["_pv_base"] = to_dict(cfg)  # fields without a widget (wave_order) come from here
    state.update(_values_from_config(cfg))


def _config_dict() -> dict[str, Any]:
    """The form as an AugmentConfig dict (validated by birdcore, not here)."""
    d = copy.deepcopy(state["_pv_base"])
    d["enabled"] = state["pv_enabled"]
    d["mix_on"] = state["pv_mix_on"]
    d["crop"]["mode"] = state["pv_crop_mode"]
    d["extend"]["other_audio_ratio"] = state["pv_extend_ratio"]
    for section, _, _, fields in GROUPS:
        if section == "clip":
            d["clip"]["enabled"] = state["pv_on_clip"]
        else:
            d[section]["p"] = state[f"pv_p_{section}"] if state[f"pv_on_{section}"] else 0.0
        for name, _, _ in fields:
            value = state[f"pv_{section}_{name}"]
            d[section][name] = (value.strip() or None) if name == "path" else value
    return d


def _restore_form() -> None:
    """Widget state is dropped when the user visits another page: put back what they had."""
    if "_pv_base" not in state:
        _seed_form(AugmentConfig())
    saved = state.get("_pv_form", {})
    for key, value in saved.items():
        if key not in state:
            state[key] = value
    defaults = {"pv_mel": "hop512", "pv_duration": 5.0, "pv_denoise": False, "pv_dn_prop": 0.9,
                "pv_dn_stationary": True, "pv_seed": 0, **_values_from_config(AugmentConfig())}
    for key, value in defaults.items():
        if key not in state:
            state[key] = value


def _remember_form() -> None:
    state["_pv_form"] = {k: state[k] for k in (*_form_keys(), *VIEW_KEYS) if k in state}


# ---- callbacks ------------------------------------------------------------------------------------
def _reroll() -> None:
    state["pv_seed"] = int(state.get("pv_seed", 0)) + 1


def _reset() -> None:
    _seed_form(AugmentConfig())
    state["_pv_flash"] = ("info", "Augmentation settings reset to the defaults.")


def _load_saved() -> None:
    name = state.get("pv_load_name")
    if not name:
        return
    try:
        cfg = presets_store.load(name)
    except ConfigError as exc:
        state["_pv_flash"] = ("error", str(exc))
        return
    _seed_form(cfg)
    state["pv_save_name"] = name
    state["_pv_flash"] = ("success", f"Loaded `{name}` from {presets_store.preset_path(name)}.")


# ---- audio ----------------------------------------------------------------------------------------
def _stamp(path: str) -> tuple:
    try:
        s = os.stat(path)
        return s.st_mtime_ns, s.st_size
    except OSError:
        return None, None  # audio_info names the problem


@st.cache_data(max_entries=256, show_spinner=False)
def _duration(path: str, stamp: tuple) -> float:
    return audio_info(path).duration


@st.cache_data(max_entries=16, show_spinner="Decoding …")
def _window(path: str, stamp: tuple, offset: float, duration: float, sr: int) -> np.ndarray:
    """The decoded window (mono float32 at `sr`); cached so a re-roll does not decode again."""
    return load_audio(path, sr=sr, offset=offset, duration=duration)


def _sweep_uploads(max_age_s: float = 86400.0) -> None:
    """Remove upload copies of sessions that ended a day ago or more (Streamlit has no session-end hook)."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*"):
        try:
            if now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _upload_path(up) -> Path:
    """The uploaded file on disk (birdcore decodes paths); one temp copy per session, replaced on a new upload."""
    held = state.get("_pv_upload")
    if held and held[0] == up.file_id and Path(held[1]).is_file():
        return Path(held[1])
    if held:
        shutil.rmtree(Path(held[1]).parent, ignore_errors=True)
    _sweep_uploads()
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    suffix = Path(up.name).suffix.lower()
    path = folder / f"upload{suffix if suffix in AUDIO_EXTENSIONS else '.audio'}"
    path.write_bytes(up.getbuffer())
    state["_pv_upload"] = (up.file_id, str(path))
    return path


def _wav(y: np.ndarray, sr: int) -> bytes:
    """16-bit WAV at the true level: st.audio would scale a numpy array to full scale, which hides gain."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _rms_db(y: np.ndarray) -> float:
    """RMS in dBFS for display (-120 for silence instead of -inf)."""
    return max(audio_stats(y).rms_dbfs, -120.0)


# ---- figures --------------------------------------------------------------------------------------
mel_centres = mel_frequencies


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:.1f}k" if hz >= 1000 else f"{hz:.0f}"


def waveform_figure(y: np.ndarray, sr: int, offset: float, ymax: float, color: str) -> go.Figure:
    """The waveform as its min/max envelope in WAVE_POINTS buckets (a line through both)."""
    n = len(y)
    k = max(1, math.ceil(n / WAVE_POINTS))
    if k == 1:
        t, v = offset + np.arange(n) / sr, y
    else:
        rows = math.ceil(n / k)
        padded = np.pad(y, (0, rows * k - n), mode="edge").reshape(rows, k)
        centre = offset + (np.arange(rows) * k + k / 2) / sr
        t = np.repeat(centre, 2)
        v = np.stack([padded.min(axis=1), padded.max(axis=1)], axis=1).ravel()
    # One constructor call with the layout as a dict: the update_* chain costs ~10 ms per figure.
    # Fixed side margins (see PLOT_LEFT_PX) keep the waveform aligned with the spectrogram below it.
    return go.Figure(
        go.Scatter(x=t.astype(np.float32), y=v.astype(np.float32), mode="lines", line=dict(color=color, width=1),
                   hoverinfo="skip"),
        layout=dict(height=170, margin=dict(l=PLOT_LEFT_PX, r=MEL_COLORBAR_PX, t=10, b=10), showlegend=False,
                    xaxis=dict(title=dict(text="time (s)"), range=[offset, offset + n / sr]),
                    yaxis=dict(title=dict(text="amplitude"), range=[-ymax, ymax], zeroline=False)),
    )


def mel_figure(mel: np.ndarray, times: np.ndarray, freqs: np.ndarray, zrange: tuple[float, float]) -> go.Figure:
    """Log-mel image: x = frame times (s), y = mel bin centre frequencies (Hz), one row per bin.

    The y axis is categorical so every mel bin gets the same height (as the network sees the
    image); its ticks are the centre frequencies of a few bins.
    """
    labels = [f"{f:.0f}" for f in freqs]
    if len(set(labels)) < len(labels):
        labels = [f"{f:.1f}" for f in freqs]
    step = max(1, len(labels) // 8)
    ticks = list(range(0, len(labels) - step // 2, step)) + [len(labels) - 1]  # the top bin labelled too
    return go.Figure(
        go.Heatmap(z=np.asarray(mel, dtype=np.float32), x=times, y=labels, zmin=zrange[0], zmax=zrange[1],
                   colorscale="Viridis", colorbar=dict(thickness=10, len=0.9),
                   hovertemplate="%{x:.2f} s · %{y} Hz · %{z:.2f}<extra></extra>"),
        layout=dict(height=300, margin=dict(l=PLOT_LEFT_PX, r=MEL_COLORBAR_PX, t=10, b=10),
                    xaxis=dict(title=dict(text="time (s)")),
                    yaxis=dict(title=dict(text="frequency (Hz)"), type="category", tickmode="array",
                               tickvals=[labels[i] for i in ticks], ticktext=[_hz_label(freqs[i]) for i in ticks])),
    )


def _fmt_params(name: str, params: dict[str, Any], freqs: np.ndarray, hop: int, sr: int) -> str:
    parts = []
    for key, value in params.items():
        if key == "bands":
            bands = [(a, b) for a, b in value if b > a]
            if name == "freq_mask":
                text = ", ".join(f"bins {a}–{b - 1} ({_hz_label(freqs[a])}–{_hz_label(freqs[b - 1])} Hz)"
                                 for a, b in bands)
            else:
                text = ", ".join(f"frames {a}–{b - 1} ({a * hop / sr:.2f}–{b * hop / sr:.2f} s)" for a, b in bands)
            parts.append(text or "all bands of width 0")
        elif isinstance(value, float):
            parts.append(f"{key} = {value:.4g}")
        else:
            parts.append(f"{key} = {value}")
    return " · ".join(parts)


def _flash() -> None:
    msg = state.pop("_pv_flash", None)
    if msg:
        getattr(st, msg[0])(msg[1])


# ======================================= the page =================================================
ui.page_setup("Preview", icon="🎧")
st.title("Spectrogram & augmentation preview")
st.caption("Pick a recording and a window, then see and hear what the training augmentations do to it."
           " Same code as training (`birdcore.augment.preview`).")
ds = ui.get_dataset()  # sidebar folder picker; an error box (and None) when the folder does not load
_restore_form()

# ---- which audio ----------------------------------------------------------------------------------
has_audio = ds is not None and ds.has_train_audio
request = state.pop("preview_filename", None)  # set by the EDA page's recordings table
if request:
    state["_pv_file"] = request
    state["pv_source"] = DATASET
    for key in ("pv_species", "pv_recording"):
        state.pop(key, None)
if "pv_source" not in state:
    state["pv_source"] = DATASET if has_audio else UPLOAD

path: Path | None = None
shown_name = ""
upload = None
src_col, a_col, b_col = st.columns([1, 1.2, 1.8], vertical_alignment="bottom")
with src_col:
    source = st.radio("Audio", (DATASET, UPLOAD), key="pv_source", horizontal=True)
if source == DATASET:
    if ds is None:
        st.info("No dataset loaded: fix the folder in the sidebar, or upload a recording.")
    elif not has_audio:
        st.info(f"This dataset folder has metadata only: `{ds.train_audio_dir}` was not found, so there is no"
                " audio to listen to. Download the BirdCLEF audio from Kaggle and unzip it beside"
                " train_metadata.csv — or choose **Upload a file** above to preview a recording of your own.")
    else:
        meta = ds.metadata
        wanted = state.get("_pv_file")
        if wanted and wanted not in set(meta["filename"]):
            st.warning(f"`{wanted}` is not listed in this dataset's train_metadata.csv; showing another recording.")
            state["_pv_file"] = wanted = None
        if state.get("pv_species") not in ds.species:
            state["pv_species"] = wanted.split("/")[0] if wanted and wanted.split("/")[0] in ds.species \
                else ds.species[0]
        names = dict(zip(meta["primary_label"], meta["common_name"]))
        with a_col:
            species = st.selectbox("Species", ds.species, key="pv_species",
                                   format_func=lambda c: charts.species_label([c], names)[0])
        rows = meta.loc[meta["primary_label"] == species, ["filename", "rating"]]
        files = rows["filename"].tolist()
        ratings = dict(zip(rows["filename"], rows["rating"]))
        if state.get("pv_recording") not in files:
            state["pv_recording"] = wanted if wanted in files else files[0]
        with b_col:
            rec = st.selectbox("Recording", files, key="pv_recording",
                               format_func=lambda f: f"{f.split('/')[-1]} · rating {ratings[f]:g}",
                               help=f"{ui.count(len(files), 'recording')} of this species.")
        state["_pv_file"] = rec
        path, shown_name = ds.train_audio_dir / rec, rec
else:
    limit = st.get_option("server.maxUploadSize")
    upload = st.file_uploader("Audio file", type=[e.lstrip(".") for e in AUDIO_EXTENSIONS], key="pv_upload",
                              help=f"OGG, WAV, FLAC, MP3, Opus; up to {limit} MB (the server's maxUploadSize).")
    if ds is not None and not has_audio:
        st.info(f"`{ds.root}` has metadata only (`train_audio/` not found): uploads are the way to listen here.",
                icon=":material/info:")
    if upload is not None:
        path, shown_name = _upload_path(upload), upload.name


def _audio_error(exc: BaseException) -> None:
    text = str(exc)
    if upload is not None and path is not None:
        text = text.replace(str(path), f"uploaded file '{upload.name}'")
    st.error(text, icon=":material/error:")


# ---- window, front end, noise reduction -----------------------------------------------------------
window = None
offset = 0.0
mel_cfg = mel_preset(state["pv_mel"])
sr = mel_cfg.sample_rate
if path is not None:
    try:
        total = _duration(str(path), _stamp(str(path)))
    except (AudioError, OSError) as exc:
        _audio_error(exc)
        total = None
    if total is not None:
        c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
        with c2:
            duration = st.selectbox("Window (s)", WINDOWS, key="pv_duration", format_func=lambda s: f"{s:g} s")
        with c3:
            st.selectbox("Mel preset", list(MEL_PRESETS), key="pv_mel",
                         help="hop512: 2021 4th / 2025 2nd place (313 frames per 5 s). hop320: 2022 1st place"
                              " (501 frames, 50–14,000 Hz).")
        mel_cfg = mel_preset(state["pv_mel"])
        sr = mel_cfg.sample_rate
        max_start = math.floor(max(0.0, total - duration) * 10) / 10
        if state.get("_pv_start_for") != str(path) or state.get("pv_start", 0.0) > max_start:
            state["pv_start"] = 0.0  # a new recording starts at its beginning
        state["_pv_start_for"] = str(path)
        with c1:
            if max_start > 0:
                offset = st.slider("Window start (s)", 0.0, max_start, step=0.1, key="pv_start", format="%.1f s",
                                   help=f"{shown_name}: {total:.1f} s long.")
            else:
                st.caption(f"`{shown_name}` is {total:.1f} s long: the whole recording fits the {duration:g}-s window"
                           " (the rest is padded with silence, as in training).")
        try:
            window = _window(str(path), _stamp(str(path)), float(offset), float(duration), sr)
        except (AudioError, OSError) as exc:
            _audio_error(exc)

# ---- augmentation controls ------------------------------------------------------------------------
st.subheader("Augmentation")
_flash()
top = st.columns([1.2, 2.2, 1, 1], vertical_alignment="bottom")
top[0].toggle("Augment", key="pv_enabled", help="Off: no random transform at all (as for validation).")
saved = presets_store.list_presets()
if state.get("pv_load_name") not in saved:
    state["pv_load_name"] = None  # deleted meanwhile (or nothing chosen yet)
top[1].selectbox("Saved configs", saved, key="pv_load_name", index=None,
                 placeholder="none saved yet" if not saved else "choose one to load",
                 help=f"Files in {presets_store.augment_dir()}.")
top[2].button("Load", key="pv_load", on_click=_load_saved, disabled=not saved, width="stretch")
top[3].button("Reset to defaults", key="pv_reset", on_click=_reset, width="stretch")


def transform_block(section: str, label: str, help_text: str, fields: tuple) -> None:
    on = st.toggle(label, key=f"pv_on_{section}", help=help_text)
    if section == "clip":
        cols = st.columns(len(fields))
    else:
        widths = [1.3] + [1.6 if name == "path" else 1 for name, _, _ in fields]
        cols = st.columns(widths) if fields else [st.container()]
        cols[0].slider("probability", 0.0, 1.0, step=0.05, key=f"pv_p_{section}", disabled=not on)
        cols = cols[1:]
    for col, (name, flabel, step) in zip(cols, fields):
        key = f"pv_{section}_{name}"
        with col:
            if name == "path":
                st.text_input(flabel, key=key, disabled=not on, placeholder="/path/to/noise/")
            elif step is None:
                st.selectbox(flabel, _choices(section, name), key=key, disabled=not on)
            else:
                st.number_input(flabel, step=step, key=key, disabled=not on)
    if section == "background" and on and not str(state.get("pv_background_path", "")).strip():
        st.caption("No noise path: inactive (as in training).")


def _count_on(groups) -> str:
    on = [label for section, label, _, _ in groups if state.get(f"pv_on_{section}")
          and not (section == "background" and not str(state.get("pv_background_path", "")).strip())]
    return f"{len(on)} of {len(groups)} on" + (f": {', '.join(on)}" if on else "")


with st.expander(f"Noise reduction · {'on' if state['pv_denoise'] else 'off'}", icon=":material/noise_aware:"):
    st.caption("Spectral gating (noisereduce) before the augmentations, on the augmented side only — as a run"
               " with `denoise.enabled=true` treats every window. It is a run setting (the `denoise` section, e.g."
               " as an extra override on the Training page), not part of the saved augmentation config.")
    n1, n2, n3 = st.columns([1, 1.5, 1], vertical_alignment="bottom")
    dn_on = n1.toggle("Noise reduction", key="pv_denoise")
    n2.slider("noise removed", 0.0, 1.0, step=0.05, key="pv_dn_prop", disabled=not dn_on,
              help="prop_decrease: the fraction of the estimated noise removed.")
    n3.checkbox("stationary noise", key="pv_dn_stationary", disabled=not dn_on,
                help="One noise profile for the whole window (fast); off = a running noise floor.")


def _grid(groups) -> None:
    cols = st.columns(2, gap="large")
    for i, (section, label, help_text, fields) in enumerate(groups):
        with cols[i % 2]:
            transform_block(section, label, help_text, fields)


with st.expander(f"Waveform · {_count_on(WAVE)}", icon=":material/graphic_eq:"):
    _grid(WAVE)
with st.expander(f"Spectrogram · {_count_on(SPEC + (CLIP,))}", icon=":material/grid_on:"):
    _grid(SPEC + (CLIP,))
with st.expander(f"Batch mix & training window · {_count_on(MIX)}", icon=":material/call_merge:"):
    st.info("Mixup and cutmix combine two clips of a training batch, so they cannot be shown on one clip. The"
            " crop mode and the filler of short recordings pick the training window; here you pick it yourself."
            " These settings are saved with the config and used by training.", icon=":material/info:")
    _grid(MIX)
    m1, m2, m3 = st.columns(3)
    m1.selectbox("Mix on", list(get_args(get_type_hints(AugmentConfig)["mix_on"])), key="pv_mix_on",
                 help="wave: the physical sum of two recordings; mel: mix the normalised images (cheaper).")
    m2.selectbox("Crop (training window)", _choices("crop", "mode"), key="pv_crop_mode",
                 help="Which window of a longer recording training reads.")
    m3.number_input("Fill short clips with other audio (p)", 0.0, 1.0, step=0.05, key="pv_extend_ratio",
                    help="extend.other_audio_ratio: probability that a clip shorter than the window is padded"
                         " with another recording instead of silence.")

aug_cfg: AugmentConfig | None = None
try:
    aug_cfg = presets_store.augment_config_from_dict(_config_dict())
except ConfigError as exc:
    st.error(f"Invalid augmentation setting — {exc}", icon=":material/error:")
_remember_form()

# ---- result -------------------------------------------------------------------------------------------
@st.fragment
def results(window: np.ndarray | None, aug_cfg: AugmentConfig | None, mel_cfg: MelConfig, denoise: DenoiseConfig,
            offset: float, duration: float, shown_name: str) -> None:
    """Seed, re-roll and the side-by-side result. A fragment: a re-roll reruns only this part of the page
    (with the arguments of the last full run), not the form above it."""
    s1, s2, s3 = st.columns([1, 1, 4], vertical_alignment="bottom")
    s1.number_input("Seed", min_value=0, step=1, key="pv_seed", help="The same seed gives the same augmentation.")
    s2.button("Re-roll", key="pv_reroll", icon=":material/casino:", on_click=_reroll, width="stretch",
              help="Next seed: new random draws of every transform.")
    state.setdefault("_pv_form", {})["pv_seed"] = int(state["pv_seed"])  # kept across page switches
    if window is None:
        st.info("Choose a recording (or upload one) to see its waveform and spectrogram.")
        return
    if aug_cfg is None:
        st.warning("Fix the setting above to see the augmented version.")
        return
    result = None
    with ui.error_box():
        result = preview(window, aug_cfg, mel_cfg, seed=int(state["pv_seed"]), duration=duration, denoise=denoise)
    if result is None:
        return
    s3.caption(f"seed {int(state['pv_seed'])} · `{shown_name}` from {offset:.1f} s · preview computed in"
               f" {result.seconds * 1000:.0f} ms")
    sr = result.sample_rate
    freqs = mel_centres(mel_cfg)
    times = offset + np.arange(result.original_mel.shape[1]) * result.hop_length / sr
    both = np.concatenate([result.original_mel.ravel(), result.augmented_mel.ravel()])
    zrange = (float(np.nanmin(both)), float(np.nanmax(both)))  # one colour scale: gain shows as brightness
    ymax = max(float(np.max(np.abs(result.original))), float(np.max(np.abs(result.augmented))), 1e-3) * 1.05
    left, right = st.columns(2, gap="medium")
    for col, title, wave, mel, color, key in (
        (left, "Original", result.original, result.original_mel, charts.BASE, "orig"),
        (right, "Augmented", result.augmented, result.augmented_mel, charts.HIGHLIGHT, "aug"),
    ):
        with col:
            clipped = " · peaks above full scale clipped for playback" if np.max(np.abs(wave)) > 1.0 else ""
            st.markdown(f"**{title}** · RMS {_rms_db(wave):.1f} dBFS{clipped}")
            st.audio(_wav(wave, sr), format="audio/wav")
            charts.show(waveform_figure(wave, sr, offset, ymax, color), key=f"pv_wave_{key}")
            charts.show(mel_figure(mel, times, freqs, zrange), key=f"pv_mel_{key}")

    f1, f2 = st.columns([3, 1])
    with f1:
        st.markdown("**Transforms that fired** (with their sampled parameters)")
        fired = pd.DataFrame([{"transform": f.name, "parameters": _fmt_params(f.name, f.params, freqs,
                                                                              result.hop_length, sr)}
                              for f in result.fired], columns=["transform", "parameters"])
        if fired.empty:
            st.caption("None fired with this seed. Re-roll, or raise the probabilities.")
        else:
            st.dataframe(fired, hide_index=True, key="pv_fired", width="stretch")
    with f2:
        before, after = _rms_db(result.original), _rms_db(result.augmented)
        st.metric("RMS original", f"{before:.1f} dBFS")
        st.metric("RMS augmented", f"{after:.1f} dBFS", delta=f"{after - before:+.1f} dB", delta_color="off")


st.subheader("Original vs augmented")
results(window, aug_cfg, mel_cfg,
        DenoiseConfig(enabled=state["pv_denoise"], prop_decrease=state["pv_dn_prop"],
                      stationary=state["pv_dn_stationary"]),
        float(offset), float(state["pv_duration"]), shown_name)

# ---- save ---------------------------------------------------------------------------------------
st.subheader("Save as training config")
v1, v2 = st.columns([3, 1], vertical_alignment="bottom")
v1.text_input("Name", key="pv_save_name", placeholder="e.g. strong-noise",
              help="Letters, digits, spaces and _ - . + ( ). Saved as <name>.json; an existing file of that name"
                   " is replaced.")
if v2.button("Save as training config", key="pv_save", type="primary", disabled=aug_cfg is None, width="stretch"):
    with ui.error_box():
        existed = presets_store.preset_path(state.get("pv_save_name", "")).exists()
        saved_to = presets_store.save(state.get("pv_save_name", ""), aug_cfg)
        st.success(f"{'Replaced' if existed else 'Saved'} `{saved_to}`. The Training page offers it under"
                   " *Augmentation config*.", icon=":material/check_circle:")
        ui.page_link(TRAINING_PAGE, label="Open Training", icon=":material/model_training:")
st.caption("Saved: the augmentation settings above (as `AugmentConfig` JSON, a run's `augment` section). Not saved:"
           " the mel preset and noise reduction (other sections of a run's config) and the seed.")
