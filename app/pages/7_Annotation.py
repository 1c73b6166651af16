"""Label windows by ear: step through a recording or a model's most uncertain windows, save species present."""

import re
from pathlib import Path

import pandas as pd
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Annotation", icon="✏️")
st.title("Annotation")

from ui import charts, figures, player, search_widgets, shortcuts  # noqa: E402

from birdcore.analysis import eda  # noqa: E402
from birdcore.analysis import inspection as ins  # noqa: E402
from birdcore.annotation import queue as ann_queue  # noqa: E402
from birdcore.annotation import store as ann  # noqa: E402
from birdcore.audio.display import image_png, wav_bytes  # noqa: E402
from birdcore.errors import BirdcoreError  # noqa: E402
from birdcore.inference import catalog  # noqa: E402

ds = ui.require_dataset()
st.caption("Listen to one 5-s window at a time and mark the species you hear. Labels are saved at once"
           " (safe with several sessions) and serve as ground truth on the Inspection page and for evaluation.")
names = {c: ds.common_name(c) for c in ds.species}
state = st.session_state


# ---- cached engine calls (as on the Inspection page) ----------------------------------------------


@st.cache_data(max_entries=32, show_spinner="Scoring the windows …")
def predict(_model: catalog.LoadedModel, key: str, classes: tuple, stamp: float, paths: tuple,
            mtimes: tuple) -> pd.DataFrame:
    """file_id, end_time, <classes> for `paths` (cached per model, its classes and the file versions)."""
    return catalog.predict_table([_model], list(paths)).table


@st.cache_data(max_entries=8, show_spinner=False)
def window_spec(path: str, mtime: float, start: float, end: float) -> ins.Spectrogram:
    return ins.spectrogram(path, start, end, max_frames=None)


@st.cache_data(max_entries=64, show_spinner=False)
def recording_seconds(path: str, mtime: float) -> float:
    return float(ins.window_grid(path)["end"].max())


@st.cache_data(max_entries=8, show_spinner=False)
def context_player(path: str, mtime: float, start: float, end: float, fmin: float, fmax: float) -> tuple[bytes, bytes]:
    """(WAV, PNG) of the context span, the picture cut to the frequency zoom (cached: a keypress
    that only moves on does not redraw the neighbours it already drew)."""
    sp = window_spec(path, mtime, start, end)
    rows = (sp.freqs >= fmin) & (sp.freqs <= fmax)
    y, sr = ins.window_audio(path, start, end)
    return wav_bytes(y, sr), image_png(sp.db[rows] if rows.any() else sp.db, cmap="magma")


# ---- labels file and annotator -----------------------------------------------------------------------
c1, c2 = st.columns([3, 1])
# Widget state is dropped on a page switch; the chosen file per dataset lives on in a plain key
# ("labels_files"), which the Inspection page also reads for its ground-truth overlay.
kept = state.setdefault("labels_files", {})
if "ann_labels_path" not in state:
    state["ann_labels_path"] = kept.get(str(ds.root), str(ann.default_labels_path(ds.root)))
labels_path = Path(c1.text_input("Labels file", key="ann_labels_path",
                                 help="CSV file_id,start,end,species,annotator,updated_at,low_hz,high_hz;"
                                      " created on the first save."))
kept[str(ds.root)] = str(labels_path)
on_name = ui.remembered("ann_annotator", "annotation.annotator", "")
annotator = c2.text_input("Annotator", key="ann_annotator", on_change=on_name, help="Saved with every label.")
try:
    saved = ann.read_annotations(labels_path, classes=ds.species)
except BirdcoreError as exc:
    ui.show_error(exc)
    st.stop()

# ---- model (optional: prefills the species, ranks windows by doubt) ------------------------------------
refs = catalog.find_models([ui.runs_dir()], ui.REPO_ROOT / "models")
c1, c2 = st.columns([3, 1])
ref = c1.selectbox("Model (suggests species)", [None] + refs, key="ann_model",
                   format_func=lambda r: "No model" if r is None else r.label)
model = None
thresholds = 0.5
if ref is not None:
    try:
        model = ui.load_ref(ref, "torch", ds)
        catalog.check_classes(model.classes, ds.species, where=ref.label)
    except BirdcoreError as exc:
        ui.show_error(exc)
        model = None
if model is not None:
    if model.thresholds is not None:
        thresholds = model.thresholds
        c2.caption(f"Suggestions use the model's thresholds.json (global {model.thresholds.global_threshold:.3f}).")
    else:
        thresholds = c2.slider("Suggest when prob ≥", 0.0, 1.0, 0.5, 0.01, key="ann_thr")

# ---- the queue of windows -------------------------------------------------------------------------------
modes = ["Windows of one recording"] + (["Most uncertain windows (test soundscapes)"] if ds.soundscapes else [])
mode = st.radio("Queue", modes, horizontal=True, key="ann_mode")
probs_table = None
if mode == modes[0]:
    kinds = (["Test soundscape"] if ds.soundscapes else []) + (["Training recording"] if ds.has_train_audio else [])
    if not kinds:
        st.info("This dataset has no audio (no test_soundscapes/, no train_audio/) to annotate.")
        st.stop()
    kind = st.radio("Recording", kinds, horizontal=True, key="ann_kind")
    if kind == "Test soundscape":
        path = st.selectbox("Soundscape", ds.soundscapes, key="ann_soundscape", format_func=lambda p: p.stem)
    else:
        fn = st.selectbox("Training recording", ds.metadata["filename"].tolist(), key="ann_train")
        path = ds.train_audio_dir / fn
    try:
        grid = ins.window_grid(path)
    except BirdcoreError as exc:
        ui.show_error(exc)
        st.stop()
    queue = pd.DataFrame({"path": str(path), "file_id": path.stem, "start": grid["start"], "end": grid["end"]})
    if model is not None:
        with ui.error_box():
            probs_table = predict(model, ref.key, tuple(model.classes), catalog.model_stamp(ref), (str(path),),
                                  (path.stat().st_mtime,))
else:
    if model is None:
        st.info("Choose a model above: it ranks the windows of the test soundscapes by how close its"
                " probability is to the threshold (the windows a label teaches most).")
        st.stop()
    paths = tuple(str(p) for p in ds.soundscapes)
    try:
        mtimes = tuple(Path(p).stat().st_mtime for p in paths)
        probs_table = predict(model, ref.key, tuple(model.classes), catalog.model_stamp(ref), paths, mtimes)
    except BirdcoreError as exc:
        ui.show_error(exc)
        st.stop()
    limit = st.slider("Windows in the queue", 5, 200, 30, 5, key="ann_limit")
    top = ann_queue.uncertain_windows(probs_table, model.classes, thresholds, limit=limit)
    by_id = {Path(p).stem: p for p in paths}
    queue = pd.DataFrame({"path": top["file_id"].map(by_id), "file_id": top["file_id"], "start": top["start"],
                          "end": top["end"]})
if queue.empty:
    st.info("No windows to annotate.")
    st.stop()

# Position in the queue: kept per queue, so switching recordings does not jump to a random window.
qid = f"{mode}|{queue['file_id'].iat[0]}|{len(queue)}" + (f"|{ref.key}|{thresholds}" if mode != modes[0] else "")
if state.get("_ann_qid") != qid:
    state["_ann_qid"], state["ann_pos"] = qid, 0
pos = int(min(max(state.get("ann_pos", 0), 0), len(queue) - 1))
row = queue.iloc[pos]
path, file_id, w0, w1 = Path(row["path"]), str(row["file_id"]), float(row["start"]), float(row["end"])
done_keys = ann.annotated_windows(saved)
is_done = [(f, round(a, 3), round(b, 3)) in done_keys
           for f, a, b in zip(queue["file_id"], queue["start"], queue["end"])]
key = (file_id, round(w0, 3), round(w1, 3))

# ---- suggestions: what was saved for this window, else the model's detections ----------------------------
window_probs = None
if probs_table is not None and model is not None:
    hit = probs_table[(probs_table["file_id"] == file_id) & (probs_table["end_time"].astype(float) == w1)]
    if len(hit):
        window_probs = hit.drop(columns=["file_id"]).rename(columns={"end_time": "end"}).assign(start=w0)
if key in done_keys:
    prefill = sorted(ann.window_species(saved)[key])
    origin = "saved labels"
elif window_probs is not None:
    prefill = [c for c in ins.detections(window_probs, model.classes, thresholds)[w0] if c in names]
    origin = f"{ref.label} (prob ≥ threshold)"
else:
    prefill, origin = [], None


# The frequency zoom's full range: a save at full zoom stores no band (the label is not about a band).
FULL_KHZ = (0.0, 16.0)


def zoom_band() -> tuple[float, float] | None:
    """The frequency zoom as the band (Hz) a save stores, None at the full range."""
    lo, hi = (float(x) for x in state.get("ann_fzoom", FULL_KHZ))
    # Both thumbs on one value is no band at all: save the window without one rather than refuse it.
    return None if (lo, hi) == FULL_KHZ or hi <= lo else (lo * 1000, hi * 1000)


def move(step: int) -> None:
    state["ann_pos"] = int(min(max(state.get("ann_pos", 0) + step, 0), len(queue) - 1))


def _remember_for_undo(file_id: str, w0: float, w1: float) -> None:
    # What the window held before this save (None: never saved) and its band, so "undo" can put both back.
    key = (file_id, round(w0, 3), round(w1, 3))
    before = ann.window_species(saved).get(key)
    state.setdefault("_ann_undo", []).append((str(labels_path), file_id, w0, w1,
                                              None if before is None else sorted(before),
                                              ann.window_bands(saved).get(key), pos))


def toggle_species(species_key: str, code: str) -> None:
    """Species key: add `code` to this window's choice, or take it out."""
    chosen = list(state.get(species_key, []))
    state[species_key] = [c for c in chosen if c != code] if code in chosen else chosen + [code]


def _save(file_id: str, w0: float, w1: float, species: list[str], message: str) -> None:
    """Save `species` ([] = no bird) for the window with the frequency zoom as its band (none at full
    range), undoable; then show `message` and go to the next window, or on failure show the error and stay."""
    try:
        _remember_for_undo(file_id, w0, w1)
        ann.save_window(labels_path, file_id, w0, w1, species, annotator=state.get("ann_annotator", ""),
                        classes=ds.species, band=zoom_band())
    except (BirdcoreError, OSError) as exc:
        state["_ann_undo"].pop()
        state["_ann_error"] = str(exc)
        return
    state["_ann_saved"] = message
    move(1)


def save_no_bird(file_id: str, w0: float, w1: float) -> None:
    """"No bird": save the window as checked with nothing there, then go to the next one."""
    _save(file_id, w0, w1, [], f"Saved {file_id} {w0:g}–{w1:g} s: no bird.")


def undo_last() -> None:
    """Put the window of the last save back as it was (unsaved, or its earlier species and band) and go there."""
    stack = state.get("_ann_undo", [])
    if not stack:
        return
    where, file_id, w0, w1, before, band, at_pos = stack.pop()
    try:
        if before is None:
            ann.remove_window(where, file_id, w0, w1)
        else:
            ann.save_window(where, file_id, w0, w1, before, annotator=state.get("ann_annotator", ""), band=band)
    except (BirdcoreError, OSError) as exc:
        state["_ann_error"] = str(exc)
        return
    for k in [k for k in state if str(k).startswith(f"ann_sp::{file_id}::{w0:g}::")]:
        del state[k]  # the window's choice is re-seeded from what is saved now
    state["ann_pos"] = at_pos
    state["_ann_saved"] = f"Undid the save of {file_id} {w0:g}–{w1:g} s."


def save_and_next(file_id: str, w0: float, w1: float, species_key: str, typed_key: str) -> None:
    """Form callback: save this window's species (typed codes included), then go to the next window."""
    typed = [c for c in re.split(r"[\s,;]+", state.get(typed_key, "") or "") if c]
    unknown = [c for c in typed if c not in names]
    if unknown:
        state["_ann_error"] = f"Unknown species code(s): {', '.join(unknown)} — not a species of this dataset."
        return
    _save(file_id, w0, w1, list(state.get(species_key, [])) + typed, f"Saved {file_id} {w0:g}–{w1:g} s.")


# ---- the window ------------------------------------------------------------------------------------------
done = int(sum(is_done))
st.progress(done / len(queue), text=f"{done} of {ui.count(len(queue), 'window')} labelled")
st.subheader(f"{file_id} · {w0:g}–{w1:g} s  ({pos + 1}/{len(queue)})" + ("  ✓" if key in done_keys else ""))
for flag, show in (("_ann_error", st.error), ("_ann_saved", st.success)):
    if state.get(flag):
        show(state.pop(flag))

# The suggestion is part of the key: a new model or threshold re-seeds the choice. Seeded here rather
# than with `default=`, so species keys (callbacks) can change it too.
skey = f"ann_sp::{file_id}::{w0:g}::{'+'.join(prefill)}"
tkey = f"ann_typed::{file_id}::{w0:g}"
if skey not in state:
    state[skey] = list(prefill)
quick_default = [c for c in (list(ds.scored) or list(ds.species)) if c in names][:9]
quick = [c for c in state.get("ann_quick", quick_default) if c in names][:9]

nav = st.columns([1, 1, 1.3, 1, 3.7])
nav[0].button("◀ Prev", key="ann_prev", on_click=move, args=(-1,), disabled=pos == 0, width="stretch")
nav[1].button("Next ▶", key="ann_next", on_click=move, args=(1,), disabled=pos >= len(queue) - 1, width="stretch",
              help="Skip without saving.")
nav[2].button("No bird (0)", key="ann_nobird", on_click=save_no_bird, args=(file_id, w0, w1), width="stretch",
              help="Save this window as checked, nothing there, and move on.")
nav[3].button("Undo (u)", key="ann_undo", on_click=undo_last, disabled=not state.get("_ann_undo"),
              width="stretch", help="Put the window of the last save back as it was.")
nav[4].caption(shortcuts.HELP)

f1, f2 = st.columns([3, 1], vertical_alignment="bottom")
fmin_k, fmax_k = f1.slider("Frequency zoom (kHz)", *FULL_KHZ, FULL_KHZ, step=0.5, key="ann_fzoom",
                           help="The band shown. A save stores it as the window's band (none at the full range):"
                                " the Low/High Freq of its selections in the Raven export.")
neighbours = f2.selectbox("Neighbours each side", [0, 1, 2, 3], index=1, key="ann_neighbours",
                          help="Windows shown before and after the current one (highlighted).")

left, right = st.columns([3, 2])
with left:
    try:
        mtime = path.stat().st_mtime
        c0, c1 = ann_queue.context_span(w0, w1, recording_seconds(str(path), mtime), neighbours=neighbours)
        bounds = [b for b in ann_queue.window_edges(c0, c1) if c0 < b < c1]
        # The player's picture is the spectrogram to label on: the context span cut to the frequency zoom,
        # window edges marked, the window being labelled framed, a playhead. No Plotly chart on the first
        # view: Plotly's JavaScript alone held the page's first load back by ~1.7 s (ui/pictures.py).
        wav, png = context_player(str(path), mtime, c0, c1, fmin_k * 1000, fmax_k * 1000)
        player.player(wav, png, start_s=c0, end_s=c1, highlight=(w0, w1), height_px=260, seek_s=w0, marks=bounds,
                      label=f"{c0:g}–{c1:g} s, the window being labelled framed; click the picture to jump",
                      axis=f"{fmin_k:g}–{fmax_k:g} kHz (bottom to top), magma: brighter = louder")
        search_widgets.similar_windows_link(ds, path, w0)
        # The same span with a dB readout under the mouse and box zoom, drawn only while open.
        detail = st.expander("Spectrogram with dB readout, zoomable", key="ann_detail",
                             on_change=ui.remembered("ann_detail", "annotation.detail", False))
        if detail.open:
            with detail:
                sp = window_spec(str(path), mtime, c0, c1)
                fig = figures.spectrogram_figure(sp, height=300, left=10, db_decimals=0, bounds=bounds,
                                                 selected=(w0, w1))
                fig.update_yaxes(range=[fmin_k * 1000, fmax_k * 1000])
                charts.show(fig, key="ann_spec")
    except BirdcoreError as exc:
        ui.show_error(exc)
with right:
    keys = st.columns(3)
    for i, code in enumerate(quick):
        on = code in state.get(skey, [])
        keys[i % 3].button(f"{i + 1} · {code}", key=f"ann_key_{i + 1}", on_click=toggle_species, args=(skey, code),
                           type="primary" if on else "secondary", width="stretch", help=names.get(code, code))
    with st.form("ann_form", border=True):
        st.multiselect("Species present (empty = checked, nothing there)", ds.species, key=skey,
                       format_func=lambda c: f"{c} — {names.get(c, c)}")
        st.text_input("…or type codes, comma-separated (Enter saves and moves on)", key=tkey)
        st.form_submit_button("Save & next", type="primary", on_click=save_and_next, key="ann_save",
                              help="Key: s or Enter.",
                              args=(file_id, w0, w1, skey, tkey), width="stretch")
    if key in done_keys:
        band = ann.window_bands(saved).get(key)
        st.caption("Saved before: " + (", ".join(prefill) if prefill else "checked, nothing there")
                   + (f" (band {band[0] / 1000:g}–{band[1] / 1000:g} kHz)." if band else "."))
    elif origin:
        st.caption(f"Prefilled from {origin}." if prefill else f"No species reaches the threshold in {ref.label}.")
    if window_probs is not None:
        top = ins.top_species(window_probs, model.classes, thresholds, k=5)
        st.dataframe(eda.display_table(top[["species", "prob", "threshold", "detected"]]), hide_index=True,
                     key="ann_top",
                     column_config={"prob": st.column_config.ProgressColumn("prob", min_value=0.0, max_value=1.0,
                                                                            format="%.3f")})
    with st.expander("Species keys 1–9"):
        st.multiselect("Species on keys 1–9 (in order)", ds.species, default=quick_default, key="ann_quick",
                       max_selections=9, format_func=lambda c: f"{c} — {names.get(c, c)}")
shortcuts.install({**shortcuts.ANNOTATION_KEYS, **shortcuts.species_keymap(quick)})

# ---- saved labels and exports --------------------------------------------------------------------------------
st.subheader("Saved labels")
st.caption(f"`{labels_path}` · {ui.count(len(ann.annotated_windows(saved)), 'labelled range')} in"
           f" {ui.count(saved['file_id'].nunique(), 'recording')}.")
if saved.empty:
    st.caption("Nothing saved yet.")
else:
    st.dataframe(eda.display_table(saved), hide_index=True, height=240, key="ann_saved")
    c1, c2, c3 = st.columns(3)
    # Labels without a band (saved at full zoom, or before bands existed) span the full range.
    full_hz = {"low_hz": FULL_KHZ[0] * 1000, "high_hz": FULL_KHZ[1] * 1000}
    tables = ann.raven_tables(saved, **full_hz)
    c1.download_button(f"Raven selection tables ({ui.count(len(tables), 'file')}, zip)",
                       ann.raven_zip(saved, **full_hz),
                       file_name=f"{labels_path.stem}.raven.zip", mime="application/zip", key="ann_dl_raven",
                       width="stretch", help="One <file_id>.Table.1.selections.txt per sound file (Begin/End Time,"
                                             " Low/High Freq, Species Code).")
    c1.caption(f"Raven: Low/High Freq = each label's saved band (the frequency zoom when it was saved), else the"
               f" full range {FULL_KHZ[0]:g}–{FULL_KHZ[1]:g} kHz.")
    if ds.test is not None:
        truth = ann.annotations_to_labels(saved, ds.test)
        c2.download_button(f"row_id,target table ({len(truth)} rows)", truth.to_csv(index=False, lineterminator="\n"),
                           file_name="annotation_labels.csv", mime="text/csv", key="ann_dl_truth", width="stretch")
        out = labels_path.with_name("annotation_labels.csv")
        if c3.button("Write row_id,target file", key="ann_write_truth", width="stretch",
                     help="For the Thresholds page and `birdcore evaluate`: the test.csv rows of labelled windows."):
            with ui.error_box():
                ann.write_labels_table(out, truth)
                st.success(f"Wrote `{out}` ({ui.count(len(truth), 'row')}, {int(truth['target'].sum())} True).")
        st.caption("The row_id,target table covers the test.csv rows whose window was labelled; windows nobody"
                   " checked are left out (unknown is not absent).")
