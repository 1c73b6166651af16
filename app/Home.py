"""Home: which dataset is loaded, what it holds, and the way to every page."""

from pathlib import Path

import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

from birdcore.analysis import eda
from ui import pictures


@st.cache_data(max_entries=8, show_spinner=False)
def ratings_png(ratings: tuple[str, ...], counts: tuple[int, ...]) -> bytes:
    return pictures.bar_png(ratings, counts, title="Ratings (0.0 = not rated)", xlabel="rating",
                            ylabel="recordings", width_px=720, height_px=270)


def ratings_caption(hist) -> str:
    """The histogram in words: what a picture cannot say on hover."""
    rated = hist[hist["rating"] > 0]
    top = rated.loc[rated["recordings"].idxmax()] if rated["recordings"].sum() else None
    unrated = int(hist.loc[hist["rating"] == 0, "recordings"].sum())
    return ((f"Most common rating {top['rating']:.1f} ({int(top['recordings']):,} recordings); " if top is not None
             else "No rated recordings; ") + f"{unrated:,} not rated.")


ui.page_setup("Home", icon="🐦")
st.title("BirdCLEF workbench")
st.caption("Explore BirdCLEF data, listen to recordings, train and evaluate sound-event models.")

ds = ui.get_dataset()

if ds is None:
    demo = ui.demo_dir()
    if Path(st.session_state[ui.DATASET_KEY]).expanduser() == demo and not demo.exists():
        st.subheader("No demo dataset yet")
        try:
            from birdcore.demo import ensure_demo_dataset
        except ImportError:
            st.info("The demo generator is not part of this version. Point the sidebar at a BirdCLEF"
                    " folder (the one holding train_metadata.csv).")
        else:
            st.write(f"Generate a small synthetic dataset with audio in `{demo}` (fictional species),"
                     " or point the sidebar at a downloaded BirdCLEF folder.")
            if st.button("Generate the demo dataset", type="primary", key="home_make_demo"):
                with st.spinner("Synthesising demo recordings …"), ui.error_box():
                    ensure_demo_dataset(demo)
                    st.rerun()
else:
    s = ds.summary()
    st.subheader(f"Dataset `{ds.root}`")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Recordings", f"{s['recordings']:,}")
    c2.metric("Species", s["species"])
    c3.metric("Scored species", s["scored_species"] or "—")
    c4.metric("With secondary labels", f"{s['with_secondary_labels']:,}")

    left, right = st.columns([3, 2])
    with left:
        # A picture, not a Plotly chart: Home is the first page of a day, and Plotly's JavaScript would
        # hold its first load back by ~1.7 s (ui/pictures.py). The EDA page has the interactive one.
        ratings = eda.rating_histogram(ds.metadata)
        st.image(ratings_png(tuple(ratings["rating"].map("{:.1f}".format)), tuple(ratings["recordings"])),
                 caption=ratings_caption(ratings), width="stretch")
    with right:
        st.markdown("**What is here**")
        if ds.has_train_audio:
            missing = ui.missing_audio(ds)
            if missing:
                st.warning(f"train_audio/: {len(missing):,} of {s['recordings']:,} listed files are missing"
                           f" (e.g. {missing[0]})")
            else:
                st.success(f"train_audio/: all {s['recordings']:,} recordings present")
        else:
            st.warning("train_audio/: not found — metadata only (EDA works; listening and training need the audio)")
        if s["soundscapes"]:
            st.success(f"test_soundscapes/: {s['soundscapes']} soundscape files")
        else:
            st.info("test_soundscapes/: none (soundscape inference needs them)")
        st.markdown(f"- test.csv: {s['test_rows']:,} rows" if ds.test is not None else "- test.csv: not found")
        st.markdown(f"- test labels: {'yes' if s['has_test_labels'] else 'no'}")
        # The model the scoring pages start on (the best finished run), so a day starts from it.
        # Imported here, not at the top: the catalog pulls in the metrics (scipy.stats, seconds on a
        # cold server), and everything above is already on screen by then.
        from birdcore.inference import catalog

        refs = catalog.find_models([ui.runs_dir()], ui.REPO_ROOT / "models", birdnet=False)
        best = catalog.default_index(refs)
        st.markdown("- best model: " + (f"`{refs[best].label}`" if best is not None else
                                         "none yet (train one on the Training page)"))
        for note in ds.notes:
            st.caption(note)

st.subheader("Pages")
pages = ui.list_pages()
if not pages:
    st.caption("No pages yet.")
for page in pages:
    if ui.page_link(f"pages/{page.name}", label=ui.page_title(page)):
        summary = ui.page_summary(page)
        if summary:
            st.caption(summary)
