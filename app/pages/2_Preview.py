"""Listen to a recording and preview the augmentation chain: waveform and log-mel, original vs augmented."""

import math
from pathlib import Path

import numpy as np
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Preview", icon="🎧")
st.title("Spectrogram & augmentation preview")

from ui import charts, figures  # noqa: E402
from ui import player  # noqa: E402
from ui import preview_widgets as pw  # noqa: E402

from birdcore.audio.display import image_png, level_dbfs, wav_bytes  # noqa: E402
from birdcore.audio.io import AUDIO_EXTENSIONS  # noqa: E402
from birdcore.augment import presets_store  # noqa: E402
from birdcore.augment.preview import preview  # noqa: E402
from birdcore.config.augment import AugmentConfig  # noqa: E402
from birdcore.config.features import MEL_PRESETS, DenoiseConfig, MelConfig, mel_preset  # noqa: E402
from birdcore.errors import AudioError, ConfigError  # noqa: E402
from birdcore.features.mel_frontend import mel_frequencies  # noqa: E402

TRAINING_PAGE = "pages/4_Training.py"
DATASET, UPLOAD = "Dataset recording", "Upload a file"
WINDOWS = (1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0)  # window lengths offered (s)

state = st.session_state

st.caption("Pick a recording and a window, then see and hear what the training augmentations do to it."
           " Same code as training (`birdcore.augment.preview`).")
ds = ui.get_dataset()  # sidebar folder picker; an error box (and None) when the folder does not load
pw.restore_form()

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
        path, shown_name = pw.upload_path(upload), upload.name


# ---- window, front end, noise reduction -----------------------------------------------------------
window = None
offset = 0.0
mel_cfg = mel_preset(state["pv_mel"])
sr = mel_cfg.sample_rate
if path is not None:
    try:
        total = pw.duration(str(path))
    except (AudioError, OSError) as exc:
        pw.audio_error(exc, path, upload)
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
            window = pw.window(str(path), float(offset), float(duration), sr)
        except (AudioError, OSError) as exc:
            pw.audio_error(exc, path, upload)

# ---- augmentation controls (left) · the result (right, kept in view) -------------------------------
# The result column sticks below the header while the controls scroll, so every toggle's effect is
# in sight. Its container key gives it the `st-key-pv_result_col` class the rule below targets.
st.markdown("<style>.st-key-pv_result_col {position: sticky; top: 3.75rem; align-self: flex-start;}</style>",
            unsafe_allow_html=True)
ctl, res = st.columns([1, 1.25], gap="large")
def denoise_form() -> None:
    """The noise-reduction settings (a run setting, applied on the augmented side)."""
    st.caption("Spectral gating (noisereduce) before the augmentations, on the augmented side only — as a run"
               " with `denoise.enabled=true` treats every window. It is a run setting (the `denoise` section,"
               " e.g. as an extra override on the Training page), not part of the saved augmentation config.")
    n1, n2, n3 = st.columns([1, 1.5, 1], vertical_alignment="bottom")
    dn_on = n1.toggle("Noise reduction", **pw.kept("pv_denoise"))
    n2.slider("noise removed", 0.0, 1.0, step=0.05, disabled=not dn_on, **pw.kept("pv_dn_prop"),
              help="prop_decrease: the fraction of the estimated noise removed.")
    n3.checkbox("stationary noise", disabled=not dn_on, **pw.kept("pv_dn_stationary"),
                help="One noise profile for the whole window (fast); off = a running noise floor.")


def transforms_form(groups) -> None:
    """How many of `groups` are on, then their blocks."""
    st.caption(pw.count_on(groups))
    pw.grid(groups)


def mix_form() -> None:
    """Batch mixing and the training window: saved with the config, not shown on one clip."""
    st.caption(pw.count_on(pw.MIX))
    st.info("Mixup and cutmix combine two clips of a training batch, so they cannot be shown on one clip. The"
            " crop mode and the filler of short recordings pick the training window; here you pick it"
            " yourself. These settings are saved with the config and used by training.", icon=":material/info:")
    pw.grid(pw.MIX)
    m1, m2, m3 = st.columns(3)
    m1.selectbox("Mix on", pw.choices(None, "mix_on"), **pw.kept("pv_mix_on"),
                 help="wave: the physical sum of two recordings; mel: mix the normalised images (cheaper).")
    m2.selectbox("Crop (training window)", pw.choices("crop", "mode"), **pw.kept("pv_crop_mode"),
                 help="Which window of a longer recording training reads.")
    m3.number_input("Fill short clips with other audio (p)", 0.0, 1.0, step=0.05, **pw.kept("pv_extend_ratio"),
                    help="extend.other_audio_ratio: probability that a clip shorter than the window is padded"
                         " with another recording instead of silence.")


with ctl:
    st.subheader("Augmentation")
    pw.flash()
    top = st.columns([1, 2], vertical_alignment="bottom")
    top[0].toggle("Augment", help="Off: no random transform at all (as for validation).", **pw.kept("pv_enabled"))
    saved = presets_store.list_presets()
    if state.get("pv_load_name") not in saved:
        state["pv_load_name"] = None  # deleted meanwhile (or nothing chosen yet)
    top[1].selectbox("Saved configs", saved, key="pv_load_name", index=None,
                     placeholder="none saved yet" if not saved else "choose one to load",
                     help=f"Files in {presets_store.augment_dir()}.")
    row = st.columns(2)
    row[0].button("Load", key="pv_load", on_click=pw.load_saved, disabled=not saved, width="stretch")
    row[1].button("Reset to defaults", key="pv_reset", on_click=pw.reset, width="stretch")
    st.caption(pw.summary_on())

    # Expander labels never change: Streamlit identifies an expander by its label, and a label that
    # counted the transforms switched on ("3 of 6 on") made every toggle collapse its own section.
    # The sections are lazy (only an open one draws its widgets, `_pv_form` keeps the values of the
    # others): the ~80 hidden widgets of closed sections made the page settle ~0.9 s later in Chromium
    # (median 3.7 s with them drawn, 2.8 s without).
    for name, draw in (("denoise", denoise_form), ("wave", lambda: transforms_form(pw.WAVE)),
                       ("spec", lambda: transforms_form(pw.SPEC + (pw.CLIP,))), ("mix", mix_form)):
        pw.lazy_section(name, draw)

aug_cfg: AugmentConfig | None = None
try:
    aug_cfg = presets_store.augment_config_from_dict(pw.config_dict())
except ConfigError as exc:
    st.error(f"Invalid augmentation setting — {exc}", icon=":material/error:")
pw.remember_form()

# ---- result -------------------------------------------------------------------------------------------
@st.fragment
def results(window: np.ndarray | None, aug_cfg: AugmentConfig | None, mel_cfg: MelConfig, denoise: DenoiseConfig,
            offset: float, duration: float, shown_name: str) -> None:
    """Seed, re-roll and the side-by-side result. A fragment: a re-roll reruns only this part of the page
    (with the arguments of the last full run), not the form above it."""
    s1, s2, s3 = st.columns([1, 1, 4], vertical_alignment="bottom")
    s1.number_input("Seed", min_value=0, step=1, key="pv_seed", help="The same seed gives the same augmentation.")
    s2.button("Re-roll", key="pv_reroll", icon=":material/casino:", on_click=pw.reroll, width="stretch",
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
    freqs = mel_frequencies(mel_cfg)
    figs = figures.preview_figures(result, freqs, offset)  # one amplitude range and one colour scale for both
    zrange = figs["orig"][1].data[0].zmin, figs["orig"][1].data[0].zmax  # one colour scale for both pictures
    for title, wave, mel, key in (("Original", result.original, result.original_mel, "orig"),
                                  ("Augmented", result.augmented, result.augmented_mel, "aug")):
        clipped = " · peaks above full scale clipped for playback" if np.max(np.abs(wave)) > 1.0 else ""
        st.markdown(f"**{title}** · RMS {level_dbfs(wave):.1f} dBFS{clipped}")
        # A picture with a playhead that follows the player; click it to jump there.
        player.player(wav_bytes(wave, sr), image_png(mel, *zrange), start_s=offset, end_s=offset + duration,
                      height_px=110)
    # A lazy expander, closed until the user opens it (then remembered open): the players above already
    # show both log-mels with a playhead, and drawing these four Plotly charts (two 128 × 501 heatmaps)
    # made the page settle later in Chromium: median ~4.3 s with them, ~3.8 s without (8 visits each).
    zoomable = st.expander("Waveform and log-mel, zoomable", key="pv_zoomable",
                           on_change=ui.remembered("pv_zoomable", "preview.zoomable", False))
    if zoomable.open:
        with zoomable:
            left, right = st.columns(2, gap="small")
            for col, key in ((left, "orig"), (right, "aug")):
                with col:
                    charts.show(figs[key][0], key=f"pv_wave_{key}")
                    charts.show(figs[key][1], key=f"pv_mel_{key}")

    f1, f2 = st.columns([2.2, 1])
    with f1:
        st.markdown("**Transforms that fired** (with their sampled parameters)")
        fired = pw.fired_table(result, freqs)
        if fired.empty:
            st.caption("None fired with this seed. Re-roll, or raise the probabilities.")
        else:
            # A static table, not st.dataframe: a few rows need no grid, and the grid's JavaScript alone
            # held the page's first load back by ~0.4 s in Chromium.
            st.table(fired.set_index("transform"))
    with f2:
        before, after = level_dbfs(result.original), level_dbfs(result.augmented)
        st.metric("RMS original", f"{before:.1f} dBFS")
        st.metric("RMS augmented", f"{after:.1f} dBFS", delta=f"{after - before:+.1f} dB", delta_color="off")


with res, st.container(key="pv_result_col"):
    st.subheader("Original vs augmented")
    results(window, aug_cfg, mel_cfg,
            DenoiseConfig(enabled=state["pv_denoise"], prop_decrease=state["pv_dn_prop"],
                          stationary=state["pv_dn_stationary"]),
            float(offset), float(state["pv_duration"]), shown_name)

# ---- save (left, under the controls) --------------------------------------------------------------
with ctl:
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
