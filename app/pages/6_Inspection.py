"""Look inside one recording: species × window probabilities, spectrogram, ground truth, listen per window."""

from pathlib import Path

import pandas as pd
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Clip inspection", icon="🔎")
st.title("Clip inspection")

from ui import figures, player, search_widgets  # noqa: E402

from birdcore.analysis import inspection as ins  # noqa: E402
from birdcore.analysis import selftrain_view  # noqa: E402
from birdcore.annotation import store as ann  # noqa: E402
from birdcore.audio.display import image_png, wav_bytes  # noqa: E402
from birdcore.audio.windows import WINDOW_S  # noqa: E402
from birdcore.data import uploads  # noqa: E402
from birdcore.errors import BirdcoreError  # noqa: E402
from birdcore.inference import catalog  # noqa: E402
from birdcore.settings import birdcore_home  # noqa: E402

ds = ui.require_dataset()
st.caption("What a model hears in each 5-s window of a recording, next to the spectrogram and, where"
           " labels exist, the truth. Click a cell of the probability grid (or use the window slider) to listen.")
names = {c: ds.common_name(c) for c in ds.species}


# ---- cached engine calls -------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner="Scoring the windows …")
def probs_of(_model: catalog.LoadedModel, key: str, classes: tuple, backend: str, stamp: float, path: str,
             mtime: float) -> pd.DataFrame:
    """Window probabilities per (model, its classes — BirdNET's follow the dataset —, backend, file version)."""
    return catalog.recording_probs([_model], path)


@st.cache_data(max_entries=16, show_spinner="Computing the spectrogram …")
def spec_of(path: str, mtime: float, _mel, mel_key: str) -> ins.Spectrogram:
    return ins.spectrogram(path, mel=_mel, max_frames=900)


@st.cache_data(max_entries=16, show_spinner=False)
def window_player(path: str, mtime: float, start: float, end: float) -> tuple[bytes, bytes]:
    """(WAV, PNG) of one window for the player beside the heatmap (cached: going back is instant)."""
    sp = ins.spectrogram(path, start, end, max_frames=400)
    y, sr = ins.window_audio(path, start, end)
    return wav_bytes(y, sr), image_png(sp.db, cmap="magma")


@st.cache_data(max_entries=32, show_spinner=False)
def spectrogram_png(path: str, mtime: float, mel_key: str, span: tuple, bounds: tuple, selected: tuple,
                    _sp: ins.Spectrogram) -> bytes:
    """The whole recording's spectrogram picture with `selected` highlighted (cached per window:
    going back to one is instant)."""
    return figures.spectrogram_picture(_sp, span, bounds=bounds, selected=selected)


# ---- which recording ---------------------------------------------------------------------------
unlabeled = selftrain_view.unlabeled_soundscapes(ds.root)
sources = ((["Test soundscape"] if ds.soundscapes else []) + (["Unlabeled soundscape"] if unlabeled else [])
           + (["Training recording"] if ds.has_train_audio else []) + ["Upload"])
source = st.radio("Recording", sources, horizontal=True, key="insp_source")
path: Path | None = None
clip_species: list[str] = []
if source == "Test soundscape":
    path = st.selectbox("Soundscape", ds.soundscapes, key="insp_soundscape", format_func=lambda p: p.stem)
elif source == "Unlabeled soundscape":
    path = st.selectbox("Unlabeled soundscape", unlabeled, key="insp_unlabeled", format_func=lambda p: p.stem)
elif source == "Training recording":
    fn = st.selectbox("Training recording", ds.metadata["filename"].tolist(), key="insp_train",
                      format_func=lambda f: f"{f} — {names.get(f.split('/')[0], '')}")
    path = ds.train_audio_dir / fn
    clip_species = ins.clip_labels(ds.metadata, fn)  # a training clip's species are known
else:
    limit = float(st.get_option("server.maxUploadSize"))
    up = st.file_uploader(f"Audio file (≤ {limit:g} MB)", type=["ogg", "wav", "flac", "mp3"], key="insp_upload")
    if up is not None:
        with ui.error_box():
            path = uploads.store_upload(up.getvalue(), up.name, birdcore_home() / "uploads", limit)
if path is None:
    st.info("Choose or upload a recording.")
    st.stop()
try:
    grid = ins.window_grid(path)
except BirdcoreError as exc:
    ui.show_error(exc)
    st.stop()
file_id, mtime = path.stem, path.stat().st_mtime

# ---- which model: the best finished run by default (catalog.find_models ranks them) ---------------
refs = catalog.find_models([ui.runs_dir()], ui.REPO_ROOT / "models")
model = probs = None
left, right = st.columns([3, 1])
if not [r for r in refs if r.kind != catalog.BIRDNET_KIND]:
    st.info(f"No trained model yet (no run with checkpoints/best.pt in `{ui.runs_dir()}`, no exported model in"
            " `models/`): train one on the Training page. The spectrogram and labels are shown below.")
if refs:
    # No default when no run scored (failed, F1 0, still on its first epoch) and for BirdNET: a page
    # that opens on a recording must not open on an error.
    ref = left.selectbox("Model", refs, index=catalog.default_index(refs), key="insp_model",
                         format_func=lambda r: r.label, placeholder="Choose a model (none has a score yet)")
    backend = right.radio("Backend", ["torch", "onnx"], horizontal=True, key="insp_backend",
                          disabled=ref is None or ref.kind != "run",
                          help="Exported models run with ONNX Runtime; BirdNET with LiteRT.")
    if ref is not None:
        try:
            model = ui.load_ref(ref, backend, ds)
            catalog.check_classes(model.classes, ds.species, where=ref.label)
            probs = probs_of(model, ref.key, tuple(model.classes), backend, catalog.model_stamp(ref), str(path),
                             mtime)
        except BirdcoreError as exc:
            ui.show_error(exc)
            model = probs = None
    for note in model.notes if model else []:
        st.caption(note)

# ---- thresholds --------------------------------------------------------------------------------
thresholds = 0.5
if model is not None:
    use_run = model.thresholds is not None and st.checkbox(
        "Use the model's tuned thresholds (thresholds.json)", value=True, key="insp_use_run_thr",
        help=f"Per-class thresholds from {model.thresholds_path}.")
    if use_run:
        thresholds = model.thresholds
        st.caption(f"Per-class thresholds from `{model.thresholds_path}`"
                   f" (global {model.thresholds.global_threshold:.3f}).")
    else:
        thresholds = st.slider("Threshold (all species)", 0.0, 1.0, 0.5, 0.01, key="insp_thr",
                               help="A species counts as detected when its probability ≥ the threshold."
                                    + ("" if model.thresholds else " No thresholds.json for this model: tune one on"
                                                                   " the Thresholds page."))

# ---- ground truth ---------------------------------------------------------------------------------
events = ins.read_events(ds.root / "test_events.csv")
# The labels file chosen on the Annotation page for this dataset, else its default location.
labels_path = Path(st.session_state.get("labels_files", {}).get(str(ds.root)) or ann.default_labels_path(ds.root))
try:
    saved = ann.read_annotations(labels_path)
except BirdcoreError as exc:
    ui.show_error(exc)
    saved = None
species_cols = model.classes if model is not None else ds.species
truth, truth_sources = ins.truth_matrix(file_id, grid["start"], species_cols, test=ds.test, labels=ds.test_labels,
                                        events=events, annotations=saved, clip_species=clip_species)

# ---- window selection: the slider, or a click on a grid cell (applied once per new click) --------
n = len(grid)
if st.session_state.get("insp_window", 0) >= n:
    st.session_state["insp_window"] = 0
labels = figures.window_labels(grid["start"], grid["end"])  # also the grid's column names
# The grid's selection stays in its state on every later rerun: apply a cell only when it is new,
# or the slider could never leave a clicked window.
click = figures.clicked_window(st.session_state.get("insp_heatmap"), labels)
if click and click[1] != st.session_state.get("_insp_click_done"):
    st.session_state["_insp_click_done"] = click[1]
    st.session_state["insp_window"] = min(click[0], n - 1)
w = st.select_slider("Window", options=list(range(n)), format_func=lambda i: labels[i], key="insp_window") \
    if n > 1 else 0  # a slider needs two options
w0, w1 = float(grid["start"].iat[w]), float(grid["end"].iat[w])
# Play as soon as the window changes (a click or the slider), not on the page's first draw.
shown_key = f"{path}|{w}"
autoplay = st.session_state.get("_insp_shown") not in (None, shown_key)
st.session_state["_insp_shown"] = shown_key
known = truth.loc[w0]
present = [c for c in truth.columns if known[c] == 1.0]

# ---- probability grid, with the chosen window's player beside it ---------------------------------
heat_col, win_col = st.columns([3, 2]) if probs is not None else (None, st.container())
if probs is not None:
    with heat_col:
        st.subheader("Probabilities per window")
        peak = probs[model.classes].max(axis=0).fillna(-1)
        rows = sorted(model.classes, key=lambda c: -peak[c])
        if len(rows) > 25:  # a 152-class model: the 25 most active species, plus every labelled one
            labelled = [c for c in rows if c in truth.columns and (truth[c] == 1.0).any()]
            rows = rows[:25] + [c for c in labelled if c not in rows[:25]]
        # A table, not a Plotly heatmap: the grid's script is on the page anyway (insp_top), Plotly's
        # would cost ~1.7 s of every fresh page load. Many windows: the grid scrolls sideways,
        # species names pinned.
        styler = figures.probability_grid(probs, rows, truth, names)
        headers = figures.grid_headers(list(styler.data.columns), w)
        st.dataframe(styler, key="insp_heatmap", on_select="rerun", selection_mode="single-cell", width="stretch",
                     height=min(38 + 35 * len(rows), 600),
                     column_config={"_index": st.column_config.Column("species", width="medium")}
                     | {c: st.column_config.Column(label=h, width="small") for c, h in headers.items()})
        st.caption(f"{len(rows)} of {len(model.classes)} species, most active first; darker = more probable."
                   f" {figures.CHECK} = labelled present"
                   + (f" ({', '.join(truth_sources)})" if truth_sources else " (no labels for this recording)")
                   + f"; {figures.SELECTED.strip()} = the window playing beside. Click a cell to hear its window.")
with win_col:
    st.subheader(f"Window {labels[w]}")
    with ui.error_box():
        end = min(w1, w0 + WINDOW_S)
        wav, png = window_player(str(path), mtime, w0, end)
        player.player(wav, png, start_s=w0, end_s=end, label=file_id, height_px=110, autoplay=autoplay)
        search_widgets.similar_windows_link(ds, path, w0)
    st.markdown("**Labelled present:** " + (", ".join(f"{c} ({names.get(c, c)})" for c in present) if present else
                ("nothing" if known.notna().any() else "no labels for this window")))
    if probs is not None:
        top = ins.top_species(probs.iloc[[w]], model.classes, thresholds, k=8)
        top.insert(4, "common_name", top["species"].map(lambda c: names.get(c, c)))
        top["labelled"] = top["species"].map(lambda c: {1.0: "present", 0.0: "absent"}.get(known.get(c), "—"))
        detected = top.loc[top["detected"], "species"].tolist()
        st.markdown("**Detected (prob ≥ threshold):** " + (", ".join(detected) if detected else "none"))
        st.dataframe(top.drop(columns=["start", "end", "rank"]), hide_index=True, key="insp_top",
                     column_config={"prob": st.column_config.ProgressColumn("prob", min_value=0.0, max_value=1.0,
                                                                            format="%.3f"),
                                    "threshold": st.column_config.NumberColumn(format="%.3f")})
    else:
        st.caption("Pick a model to see its top species for this window.")

# ---- spectrogram ------------------------------------------------------------------------------------
st.subheader("Spectrogram")
mel = model.mel if model is not None else None
try:
    sp = spec_of(str(path), mtime, mel, repr(mel))
    span = (float(grid["start"].iat[0]), float(grid["end"].iat[-1]))  # the scored windows, the last one padded
    bounds = grid["start"].tolist()[1:] + [span[1]]
    # A picture, not a Plotly chart: no Plotly script for the browser to load (see the grid above).
    st.image(spectrogram_png(str(path), mtime, repr(mel), span, tuple(bounds), (w0, w1), sp), width="stretch",
             output_format="PNG")  # lossless: JPEG would blur the 1-px bound lines
    st.caption(f"{span[0]:g}–{span[1]:g} s (the whole recording, left to right) ·"
               f" {figures.hz_label(float(sp.freqs.min()))}–{figures.hz_label(float(sp.freqs.max()))} Hz"
               f" (mel scale, low at the bottom). Lines: window bounds; window {labels[w]} bright between"
               " blue edges, the rest dimmed.")
except BirdcoreError as exc:
    ui.show_error(exc)

# ---- a self-training round's pseudo-labels of this recording, beside the model's scores ----------
families = selftrain_view.families(ui.runs_dir())
if source == "Unlabeled soundscape" and families:
    st.subheader("Pseudo-labels")
    c1, c2 = st.columns([3, 1])
    fam_names = [f.path.name for f in families]
    family = families[fam_names.index(c1.selectbox("Self-training family", fam_names, key="insp_family"))]
    rounds = selftrain_view.labelled_rounds(family)
    if not rounds:
        st.caption("This family has no pseudo-labelled round yet.")
    else:
        r = c2.selectbox("Round", rounds, key="insp_round")
        with ui.error_box():
            side = selftrain_view.labels_beside_scores(family, r, file_id, probs)
            st.caption(f"Round {r}'s targets (teacher: {selftrain_view.round_teacher(family, r)}); `p:` columns"
                       " are the model picked above.")
            st.dataframe(side, hide_index=True, key="insp_pseudo")
