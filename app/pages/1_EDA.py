"""Species counts, ratings, co-occurring species, call types, places, times of day, durations, recordists."""

import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed
from ui import charts, eda_views

from birdcore.analysis import eda

PREVIEW_PAGE = "pages/2_Preview.py"

ui.page_setup("EDA", icon="📊")
state = st.session_state
st.title("Exploratory data analysis")  # before the dataset loads: the page is never blank meanwhile
ds = ui.require_dataset()

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
views = eda_views.tables(ds, flt)
st.caption(f"{views['matches']:,} of {ui.count(len(ds.metadata), 'recording')} match the filters.")
if not views["matches"]:
    st.warning("No recordings match the filters. Widen the rating range or clear the species choice.")
    st.stop()

# The sections are lazy tabs: only the open one runs and is drawn. Measured in Chromium on the real
# metadata (152 species), a filter change that redrew all ten charts, two tables and the map of one long
# page took ~2 s to settle, nearly all of it the browser drawing the charts (then Plotly; the script's rerun: 0.4 s).
# Inside a tab, a section whose own controls change only that section (search / top-N / log, matrix
# size, map zoom, table page) is an st.fragment: moving them reruns that section alone. Every table
# and figure comes from a per-filter cache, so going back to a tab is a cache hit.


# ---- species: a ranked list that reads at 150–1,000 species -------------------------------------
@st.fragment
def species_and_ratings(ds, flt: eda.EdaFilter, views: dict) -> None:
    """The ranked species list and, beside the rating histogram, the ratings of the species it shows."""
    st.subheader("Recordings per species")
    counts = views["counts"]
    c1, c2, c3, c4 = st.columns([2.2, 1.6, 1, 1], vertical_alignment="bottom")
    query = c1.text_input("Find species", key="eda_search", placeholder="code or common name, e.g. hawaii",
                          help="Keeps species whose code or common name contains the text; ranks stay those of"
                               " the full list.")
    mode = c2.segmented_control("Show", list(eda.RANK_MODES), key="eda_rank_mode", default="top",
                                format_func={"top": "Top N", "bottom": "Bottom N", "all": "All"}.get) or "top"
    top_n = c3.number_input("N", 5, 1000, 30, step=5, key="eda_rank_n", disabled=mode == "all")
    with c4:
        log = st.toggle("Log scale", key="eda_log", on_change=ui.remembered("eda_log", "eda.log_scale", False))
    ranked, fig = eda_views.ranked(ds, flt, query, mode, int(top_n), log)
    st.caption(f"{len(ranked)} of {ui.count(len(counts), 'species', 'species')} shown, ranked by recordings"
               + (f" · matching “{query.strip()}”" if query.strip() else "") + ".")
    if fig is None:
        st.info(f"No species code or common name contains “{query.strip()}”.")
    else:
        # A list taller than the screen scrolls in its own box, so the charts below stay in reach.
        with st.container(height=min(charts.height(fig) + 16, 560), border=False):
            charts.show(fig, key="eda_species_counts")

    st.subheader("Ratings")
    left, right = st.columns(2)
    with left:
        charts.show(eda_views.summary_figures(ds, flt)["rating_hist"], key="eda_rating_hist")
    with right:
        shown = tuple(ranked["species"][:eda_views.MAX_BOXES]) if not ranked.empty else ()
        stats = eda_views.ratings(ds, flt, shown)
        if stats.empty:
            st.caption("None of the species shown has a rated recording.")
        else:
            stats = stats.merge(ranked[["species", "label"]], on="species", how="left")
            more = f", first {eda_views.MAX_BOXES}" if len(ranked) > eda_views.MAX_BOXES else ""
            fig = charts.box_stats(stats, title=f"Per species: the {len(stats)} listed on the left{more} (unrated"
                                   " left out)", horizontal=True, labels="label", ylabel="rating")
            with st.container(height=min(charts.height(fig) + 16, 560), border=False):
                charts.show(fig, key="eda_rating_species")


@st.fragment
def cooccurrence(ds, flt: eda.EdaFilter, views: dict) -> None:
    """Pairs of species heard together, and their matrix for the N most co-occurring species."""
    st.subheader("Species heard together (secondary labels)")
    with_sec = views["with_secondary"]
    st.caption(f"{with_sec:,} of {ui.count(views['matches'], 'recording')} list secondary species.")
    if with_sec:
        left, right = st.columns(2)
        with left:
            st.dataframe(views["pairs"], hide_index=True, height=420, key="eda_pairs")
        with right:
            n = st.select_slider("Species in the matrix", [5, 10, 15, 20, 30, 40], value=15, key="eda_cooc_n")
            charts.show(eda_views.cooccurrence_figure(ds, flt, n), key="eda_cooc")


@st.fragment
def places(ds, flt: eda.EdaFilter, views: dict) -> None:
    """The recording places map with its zoom choices and land outlines."""
    st.subheader("Where the recordings were made")
    focus = views["focus"]
    extents = {"World": None, "Fit the filtered recordings": views["fit"]}
    if focus is not None:
        extents["Scored species focus"] = focus
    if state.get("eda_map_view") not in extents:
        state["eda_map_view"] = "World"
    m1, m2 = st.columns([3, 1], vertical_alignment="bottom")
    zoom = m1.segmented_control("Zoom", list(extents), key="eda_map_view",
                                help="Scored species focus: the region where most scored species were recorded"
                                     " together (Hawaii for BirdCLEF 2022).")
    outlines = m2.toggle("Land and borders", key="eda_outlines",
                         on_change=ui.remembered("eda_outlines", "eda.map_outlines", True),
                         help="Natural Earth outlines shipped with the app (app/static/topojson): no download.")
    charts.show(eda_views.map_figure(ds, flt, outlines, extents.get(zoom or "World")), key="eda_map", geo=True)
    st.caption(f"{len(views['clusters']):,} places, a marker's area grows with its recordings."
               + (f" {ui.count(views['no_coords'], 'recording')} without coordinates, not shown."
                  if views["no_coords"] else ""))


def side_by_side(ds, flt: eda.EdaFilter, *parts: tuple[str, str, str]) -> None:
    """Summary figures of the filtered recordings in columns: (heading, figure name, caption) each,
    the chart keyed `eda_<figure name>`."""
    figs = eda_views.summary_figures(ds, flt)
    for col, (heading, name, caption) in zip(st.columns(len(parts)), parts):
        with col:
            st.subheader(heading)
            charts.show(figs[name], key=f"eda_{name}")
            if caption:
                st.caption(caption)


def durations_section(ds, flt: eda.EdaFilter) -> None:
    """Durations from the audio headers: read at once for a small dataset, on request for a large one
    (then cached on disk)."""
    st.subheader("Durations")
    if not ds.has_train_audio:
        st.info("Durations are read from the audio file headers in `train_audio/`. This dataset folder has"
                " metadata only — download the BirdCLEF audio from Kaggle and unzip it beside"
                " train_metadata.csv to see them.")
        return
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
        return
    memo[str(ds.root)] = durations
    meta = eda.filter_recordings(ds, flt)
    summary = eda.duration_summary(durations, meta)
    charts.show(charts.histogram_bars(eda.duration_histogram(durations, meta), "start_s", "end_s", "recordings",
                                      label="seconds", xlabel="duration (s)", ylabel="recordings"),
                key="eda_durations_hist")
    st.caption(f"{ui.count(summary['readable'], 'recording')}, {summary['total_s'] / 3600:.1f} h in total; median"
               f" {summary['median_s']:.1f} s, longest {summary['max_s']:.0f} s."
               + (f" {ui.count(summary['missing'], 'file')} missing." if summary["missing"] else "")
               + (f" {ui.count(summary['unreadable'], 'file')} unreadable." if summary["unreadable"] else ""))


# ---- the recordings themselves, a page at a time, with a way to listen ------------------------------
@st.fragment
def recordings(ds, flt: eda.EdaFilter, matches: int) -> None:
    """The filtered recordings, one page of rows at a time; selecting a row offers it in Preview."""
    st.subheader("Recordings")
    pages = max((matches + eda.TABLE_PAGE_ROWS - 1) // eda.TABLE_PAGE_ROWS, 1)
    p1, p2 = st.columns([1, 4], vertical_alignment="bottom")
    if state.get("eda_table_page", 1) > pages:  # a narrower filter: its last page, not an out-of-range error
        state["eda_table_page"] = pages
    wanted = p1.number_input("Page", 1, pages, 1, key="eda_table_page") if pages > 1 else 1
    table, page, pages = eda_views.table_page(ds, flt, wanted)
    first = (page - 1) * eda.TABLE_PAGE_ROWS
    p2.caption(f"Rows {first + 1:,}–{first + len(table):,} of {matches:,}"
               + (f", page {page} of {pages}." if pages > 1 else "."))
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


sections = {
    "Species": lambda: species_and_ratings(ds, flt, views),
    "Heard together": lambda: cooccurrence(ds, flt, views),
    "Calls & times": lambda: side_by_side(ds, flt, ("Call types", "types", ""), (
        "Time of day", "hours", f"{ui.count(views['no_time'], 'recording')} without a usable time ('?', 'xx:xx' …),"
                                " not shown.")),
    "Places": lambda: places(ds, flt, views),
    "Durations": lambda: durations_section(ds, flt),
    "Recordists & licences": lambda: side_by_side(ds, flt, ("Top recordists", "authors", ""),
                                                  ("Licences", "licenses", "")),
    "Recordings": lambda: recordings(ds, flt, views["matches"]),
}
for tab, draw in zip(st.tabs(list(sections), key="eda_tab", on_change="rerun"), sections.values()):
    if tab.open:
        with tab:
            draw()
