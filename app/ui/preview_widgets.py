"""The Preview page's augmentation form and audio plumbing: which widgets edit which `AugmentConfig`
field, the conversion both ways, the form's memory across page switches, its callbacks, the
per-session upload copy and the cached decoding.

Widget keys start with `pv_`; private state (`_pv_…`) holds the form's base config, the values kept
across page switches, the session's upload copy and a one-shot message (`flash`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, get_args, get_type_hints

import numpy as np
import pandas as pd
import streamlit as st

from birdcore.audio.io import audio_info, load_audio
from birdcore.augment import presets_store
from birdcore.config.augment import AugmentConfig
from birdcore.config.base import to_dict
from birdcore.data import scratch
from birdcore.errors import ConfigError

from .figures import hz_label

DEFAULT_P = 0.5     # probability a transform starts from when switched on from p = 0

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
# The form's sections: expander key suffix → (label, icon). Lazy: only an open one draws its widgets.
SECTIONS = {"denoise": ("Noise reduction", ":material/noise_aware:"), "wave": ("Waveform", ":material/graphic_eq:"),
            "spec": ("Spectrogram", ":material/grid_on:"),
            "mix": ("Batch mix & training window", ":material/call_merge:")}
DENOISE_KEYS = ("pv_denoise", "pv_dn_prop", "pv_dn_stationary")
VIEW_KEYS = ("pv_mel", "pv_duration", "pv_start", *DENOISE_KEYS, "pv_seed", "pv_source",
             *(f"pv_x_{name}" for name in SECTIONS))

state = st.session_state


# ---- form ⇄ AugmentConfig ----------------------------------------------------------------------------
def _section_class(section: str | None) -> type:
    return AugmentConfig if section is None else type(getattr(AugmentConfig(), section))


def choices(section: str | None, name: str) -> list[str]:
    """Allowed values of a Literal field of `section` (None: of AugmentConfig itself), from the engine's
    dataclass, not repeated here."""
    return list(get_args(get_type_hints(_section_class(section))[name]))


def _cast(section: str, name: str, value: Any) -> Any:
    tp = get_type_hints(_section_class(section))[name]
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    return value


def form_keys() -> list[str]:
    """Every widget key of the augmentation form."""
    keys = list(OTHER_KEYS)
    for section, _, _, fields in GROUPS:
        keys += [f"pv_on_{section}"] + ([f"pv_p_{section}"] if section != "clip" else [])
        keys += [f"pv_{section}_{name}" for name, _, _ in fields]
    return keys


def values_from_config(cfg: AugmentConfig) -> dict[str, Any]:
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


def seed_form(cfg: AugmentConfig) -> None:
    """Set every widget of the form to show `cfg`."""
    state["_pv_base"] = to_dict(cfg)  # fields without a widget (wave_order) come from here
    values = values_from_config(cfg)
    state.update(values)
    state.setdefault("_pv_form", {}).update(values)


def kept_keys() -> tuple[str, ...]:
    """The widgets whose values live in `_pv_form` (the one source of truth): every change goes
    through `keep` (their on_change), and `restore_form` puts `_pv_form` back into them each run."""
    return (*form_keys(), *DENOISE_KEYS)


def keep(key: str) -> None:
    """on_change of a kept widget: its new value becomes the truth in `_pv_form`."""
    state.setdefault("_pv_form", {})[key] = state[key]


def kept(key: str) -> dict[str, Any]:
    """The widget arguments of a kept widget: `st.toggle(label, **kept("pv_on_gain"))`."""
    return {"key": key, "on_change": keep, "args": (key,)}


def lazy_section(name: str, draw: Callable[[], None]) -> None:
    """One of the form's sections (`SECTIONS`): an expander keyed `pv_x_<name>` that runs `draw` inside
    it only while open. A closed section draws none of its widgets; their values stay in `_pv_form`.

    Why `_pv_form` must be the truth: Streamlit keeps a value set through session state before its
    widget first exists, and once that widget is dropped (a closed section, a visit to another page)
    the old value resurfaces over the user's edit (a gain of −3 dB came back as −15 dB)."""
    label, icon = SECTIONS[name]
    box = st.expander(label, icon=icon, key=f"pv_x_{name}", on_change="rerun")
    if box.open:
        with box:
            draw()


def config_dict() -> dict[str, Any]:
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


def restore_form() -> None:
    """Widget state is dropped when the user visits another page: put back what they had."""
    if "_pv_base" not in state:
        seed_form(AugmentConfig())
    saved = state.setdefault("_pv_form", {})
    kept = set(kept_keys())
    for key, value in saved.items():
        if key in kept or key not in state:  # kept widgets: `_pv_form` is the truth (see lazy_section)
            state[key] = value
    defaults = {"pv_mel": "hop512", "pv_duration": 5.0, "pv_denoise": False, "pv_dn_prop": 0.9,
                "pv_dn_stationary": True, "pv_seed": 0, **values_from_config(AugmentConfig())}
    for key, value in defaults.items():
        if key not in state:
            state[key] = value


def remember_form() -> None:
    """Keep the form's and the view's values for the next visit of the page."""
    state["_pv_form"] = {k: state[k] for k in (*form_keys(), *VIEW_KEYS) if k in state}


# ---- callbacks ------------------------------------------------------------------------------------
def reroll() -> None:
    state["pv_seed"] = int(state.get("pv_seed", 0)) + 1


def reset() -> None:
    seed_form(AugmentConfig())
    state["_pv_flash"] = ("info", "Augmentation settings reset to the defaults.")


def load_saved() -> None:
    """Fill the form from the saved config chosen in `pv_load_name` (a message box either way)."""
    name = state.get("pv_load_name")
    if not name:
        return
    try:
        cfg = presets_store.load(name)
    except ConfigError as exc:
        state["_pv_flash"] = ("error", str(exc))
        return
    seed_form(cfg)
    state["pv_save_name"] = name
    state["_pv_flash"] = ("success", f"Loaded `{name}` from {presets_store.preset_path(name)}.")


def flash() -> None:
    """Show the message a callback left for this run (once)."""
    msg = state.pop("_pv_flash", None)
    if msg:
        getattr(st, msg[0])(msg[1])


# ---- the form's blocks -----------------------------------------------------------------------------
def _background_inactive() -> bool:
    return not str(state.get("pv_background_path", "")).strip()


def transform_block(section: str, label: str, help_text: str, fields: tuple) -> None:
    """On/off toggle, probability slider and parameter inputs of one transform."""
    on = st.toggle(label, help=help_text, **kept(f"pv_on_{section}"))
    if section == "clip":
        cols = st.columns(len(fields))
    else:
        widths = [1.3] + [1.6 if name == "path" else 1 for name, _, _ in fields]
        cols = st.columns(widths) if fields else [st.container()]
        cols[0].slider("probability", 0.0, 1.0, step=0.05, disabled=not on, **kept(f"pv_p_{section}"))
        cols = cols[1:]
    for col, (name, flabel, step) in zip(cols, fields):
        key = f"pv_{section}_{name}"
        with col:
            if name == "path":
                st.text_input(flabel, placeholder="/path/to/noise/", disabled=not on, **kept(key))
            elif step is None:
                st.selectbox(flabel, choices(section, name), disabled=not on, **kept(key))
            else:
                st.number_input(flabel, step=step, disabled=not on, **kept(key))
    if section == "background" and on and _background_inactive():
        st.caption("No noise path: inactive (as in training).")


def count_on(groups) -> str:
    """"2 of 7 on: Gain, White noise" for an expander's title."""
    on = [label for section, label, _, _ in groups if state.get(f"pv_on_{section}")
          and not (section == "background" and _background_inactive())]
    return f"{len(on)} of {len(groups)} on" + (f": {', '.join(on)}" if on else "")


def summary_on() -> str:
    """One line naming every transform switched on, for above the (fixed-label) sections."""
    groups = (*WAVE, *SPEC, CLIP, *MIX)
    on = [label for section, label, _, _ in groups if state.get(f"pv_on_{section}")
          and not (section == "background" and _background_inactive())]
    extra = ["noise reduction"] if state.get("pv_denoise") else []
    if not state.get("pv_enabled", True):
        return "Augment is off: no transform runs."
    return f"On: {', '.join(extra + on)}." if on or extra else "No transform is on."


def grid(groups) -> None:
    """The transform blocks of `groups` in two columns."""
    cols = st.columns(2, gap="large")
    for i, (section, label, help_text, fields) in enumerate(groups):
        with cols[i % 2]:
            transform_block(section, label, help_text, fields)


def fired_params(name: str, params: dict[str, Any], freqs: np.ndarray, hop: int, sr: int) -> str:
    """The sampled parameters of a transform that fired, as text (mask bands in bins/frames, Hz and s)."""
    parts = []
    for key, value in params.items():
        if key == "bands":
            bands = [(a, b) for a, b in value if b > a]
            if name == "freq_mask":
                text = ", ".join(f"bins {a}–{b - 1} ({hz_label(freqs[a])}–{hz_label(freqs[b - 1])} Hz)"
                                 for a, b in bands)
            else:
                text = ", ".join(f"frames {a}–{b - 1} ({a * hop / sr:.2f}–{b * hop / sr:.2f} s)" for a, b in bands)
            parts.append(text or "all bands of width 0")
        elif isinstance(value, float):
            parts.append(f"{key} = {value:.4g}")
        else:
            parts.append(f"{key} = {value}")
    return " · ".join(parts)


def fired_table(result, freqs: np.ndarray) -> pd.DataFrame:
    """transform, parameters: one row per transform that fired in a `birdcore.augment.preview` result."""
    return pd.DataFrame([{"transform": f.name, "parameters": fired_params(f.name, f.params, freqs, result.hop_length,
                                                                          result.sample_rate)}
                         for f in result.fired], columns=["transform", "parameters"])


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
    return load_audio(path, sr=sr, offset=offset, duration=duration)


def duration(path: str) -> float:
    """Length of the recording in s (cached per file version). AudioError / OSError when unreadable."""
    return _duration(path, _stamp(path))


def window(path: str, offset: float, duration: float, sr: int) -> np.ndarray:
    """The decoded window (mono float32 at `sr`); cached per file version, so a re-roll does not decode again."""
    return _window(path, _stamp(path), offset, duration, sr)


def audio_error(exc: BaseException, path: Path | None, upload) -> None:
    """An error box for a recording that does not decode; an uploaded file is named as the user knows
    it, not by its scratch copy's path."""
    text = str(exc)
    if upload is not None and path is not None:
        text = text.replace(str(path), f"uploaded file '{upload.name}'")
    st.error(text, icon=":material/error:")


def upload_path(up) -> Path:
    """The uploaded file on disk (birdcore decodes paths): one scratch copy per session, replaced on a
    new upload; copies of sessions that ended a day ago or more are swept (Streamlit has no session-end hook)."""
    held = state.get("_pv_upload")
    if held and held[0] == up.file_id and Path(held[1]).is_file():
        return Path(held[1])
    if held:
        scratch.remove_scratch(held[1])
    scratch.sweep_scratch()
    path = scratch.scratch_copy(up.getbuffer(), up.name)
    state["_pv_upload"] = (up.file_id, str(path))
    return path
