"""Species counts, ratings, co-occurring species, call types, places, times of day, durations, recordists."""

import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed
from ui import charts

from birdcore.analysis import eda

PREVIEW_PAGE = "pages/2_Preview.py"

ui.page_setup("EDA", icon="📊")
ds = ui.require_dataset()
st.title("Exploratory data analysis")

# ---- filters: every chart below shows only the recordings that pass them -----------------------
names = dict(zip(ds.metadata["primary_label"], ds.metadata["common_name"]))
with st.sidebar:
    st.subheader("Filters")
    species = st.multiselect("Species", ds.species, key="eda_species", placeholder="All species",
                             format_func=lambda c: f"{c} — {names[c]}" if names.get(c) else c)
    scored_only = st.checkbox("Scored species only", key="eda_scored_only", disabled=not ds.scored,
                              help="The species the competition scores (scored_birds.json).")
    rating = st.slider("Rating", 0.0, 5.0, (0.0, 5.0), step=0.5, key="eda_rating",
                       help="0.0 means the recording was not rated.")
flt = eda.EdaFilter(species=tuple(species), scored_only=scored_only, rating_range=tuple(rating))
meta = eda.filter_recordings(ds, flt)
st.caption(f"{len(meta):,} of {ui.count(len(ds.metadata), 'recording')} match the filters.")
if meta.empty:
    st.warning("No recordings match the filters. Widen the rating range or clear the species choice.")
    st.stop()

# ---- species ---------------------------------------------------------------------------------
st.subheader("Recordings per species")
log = st.toggle("Log scale", key="eda_log", on_change=ui.remembered("eda_log", "eda.log_scale", False))
counts = eda.species_counts(meta, ds.scored)
charts.show(charts.split_bar(counts, "species", "recordings", "scored", labels=("scored", "not scored"),
                             log=log, hover="common_name", xlabel="species", ylabel="recordings"),
            key="eda_species_counts")

# ---- ratings ---------------------------------------------------------------------------------
st.subheader("Ratings")
left, right = st.columns(2)
with left:
    charts.show(charts.bar(eda.rating_histogram(meta), "rating", "recordings", title="All recordings",
                           xlabel="rating (0.0 = not rated)", ylabel="recordings"), key="eda_rating_hist")
with right:
    stats = eda.rating_by_species(meta, top_n=30)
    charts.show(charts.box_stats(stats, title=f"Per species (top {len(stats)} by recordings, unrated left out)",
                                 height=320, ylabel="rating"), key="eda_rating_species")

# ---- co-occurrence ---------------------------------------------------------------------------
st.subheader("Species heard together (secondary labels)")
with_sec = int((meta["secondary_labels"].map(len) > 0).sum())
st.caption(f"{with_sec:,} of {ui.count(len(meta), 'recording')} list secondary species.")
if with_sec:
    left, right = st.columns(2)
    with left:
        pairs = eda.cooccurrence_pairs(meta, top_n=20)
        pairs["name_a"], pairs["name_b"] = pairs["species_a"].map(names), pairs["species_b"].map(names)
        st.dataframe(pairs, hide_index=True, height=420, key="eda_pairs")
    with right:
        charts.show(charts.heatmap(eda.cooccurrence_matrix(meta, top_n=15), title="Top 15 co-occurring species",
                                   colorbar_title="recordings"), key="eda_cooc")

# ---- call types, time of day -------------------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("Call types")
    types = eda.type_counts(meta, top_n=15)
    charts.show(charts.bar(types, "type", "recordings", horizontal=True, xlabel="recordings"), key="eda_types")
with right:
    st.subheader("Time of day")
    hours, no_time = eda.time_of_day_histogram(meta)
    charts.show(charts.bar(hours, "hour", "recordings", height=380, xlabel="hour (local time of recording)",
                           ylabel="recordings"), key="eda_hours")
    st.caption(f"{ui.count(no_time, 'recording')} without a usable time ('?', 'xx:xx' …), not shown.")

# ---- places ----------------------------------------------------------------------------------
st.subheader("Where the recordings were made")
outlines = st.toggle("Land and borders (downloaded from cdn.plot.ly; blank map when offline)", key="eda_outlines",
                     on_change=ui.remembered("eda_outlines", "eda.map_outlines", False))
points, no_coords = eda.locations(meta, ds.scored)
charts.show(charts.geo_points(points, "scored", labels=("scored", "not scored"), hover="species",
                              outlines=outlines, height=460), key="eda_map")
if no_coords:
    st.caption(f"{ui.count(no_coords, 'recording')} without coordinates, not shown.")

# ---- durations (audio headers; lazy, cached) -------------------------------------------------------
st.subheader("Durations")
if not ds.has_train_audio:
    st.info("Durations are read from the audio file headers in `train_audio/`. This dataset folder has"
            " metadata only — download the BirdCLEF audio from Kaggle and unzip it beside"
            " train_metadata.csv to see them.")
else:
    memo = st.session_state.setdefault("eda_durations", {})  # root → table, kept for this session
    durations = memo.get(str(ds.root))
    if durations is None:
        durations = eda.cached_durations(ds)  # stat calls only; no audio opened
    small = len(ds.metadata) <= eda.AUTO_READ_MAX_FILES
    if durations is None and (small or st.button(f"Read durations of {ui.count(len(ds.metadata), 'recording')}",
                                                  key="eda_read_durations")):
        progress = st.progress(0.0, text="Reading audio headers …")
        durations = eda.read_durations(ds, progress=lambda done, total: progress.progress(done / total))
        progress.empty()
    if durations is None:
        st.caption("Reading every header takes a while on the full dataset; the result is cached on disk.")
    else:
        memo[str(ds.root)] = durations
        summary = eda.duration_summary(durations, meta)
        charts.show(charts.histogram_bars(eda.duration_histogram(durations, meta), "start_s", "end_s", "recordings",
                                          label="seconds", xlabel="duration (s)", ylabel="recordings"),
                    key="eda_durations_hist")
        st.caption(f"{ui.count(summary['readable'], 'recording')}, {summary['total_s'] / 3600:.1f} h in total; median"
                   f" {summary['median_s']:.1f} s, longest {summary['max_s']:.0f} s."
                   + (f" {ui.count(summary['missing'], 'file')} missing." if summary["missing"] else "")
                   + (f" {ui.count(summary['unreadable'], 'file')} unreadable." if summary["unreadable"] else ""))

# ---- people and licences ---------------------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("Top recordists")
    charts.show(charts.bar(eda.top_values(meta, "author", top_n=15), "author", "recordings", horizontal=True,
                           xlabel="recordings"), key="eda_authors")
with right:
    st.subheader("Licences")
    charts.show(charts.bar(eda.license_counts(meta, top_n=10), "short", "recordings", horizontal=True,
                           hover="license", xlabel="recordings"), key="eda_licenses")

# ---- the recordings themselves, with a way to listen ----------------------------------------------
st.subheader("Recordings")
table = eda.recordings_table(meta)
event = st.dataframe(table, key="eda_table", on_select="rerun", selection_mode="single-row",
                     hide_index=True, height=360)
rows = [r for r in event.selection.rows if r < len(table)]  # a stale selection may outlive a filter change
if rows:
    filename = table.at[rows[0], "filename"]
    st.session_state["preview_filename"] = filename
    if not ui.page_link(PREVIEW_PAGE, label=f"Listen to {filename} in Preview", icon=":material/headphones:"):
        st.caption(f"Selected `{filename}`. The Preview page is not available in this app yet.")
else:
    st.caption("Select a row to open that recording in the Preview page.")
