"""Widgets of the Search & label page (`app/pages/3_Search.py`): cached reads of an embedding archive
and of the loop's labels, one row per archive window (spectrogram thumbnail, player, score, one-click
Positive / Negative / Skip), progress callbacks for embedding and retraining, the rounds chart.

Every number comes from the engine (`birdcore.archive`, `birdcore.agile`,
`birdcore.analysis.inspection`); this module decides looks and caching only. Cached reads are keyed
by `archive_stamp`, the sizes and mtimes of the archive's small files (the window table, the loop's
labels and rounds), so a commit, a label or a round shows at once and nothing else re-reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st
from streamlit.source_util import page_icon_and_name

from birdcore import agile, pretrained
from birdcore.analysis import inspection as ins
from birdcore.archive import search
from birdcore.archive.layout import ArchiveLayout, read_manifest
from birdcore.audio.display import wav_bytes

from . import charts, figures
from .errors import USER_ERRORS
from .nav import PAGES_DIR

# label value → (button text, tooltip); the order of the buttons on a row
LABELS = {"positive": ("Positive", "The species is heard in this window."),
          "negative": ("Negative", "The species is not in this window (other species saved for it stay)."),
          "skip": ("Skip", "Not sure: the review queue will not offer this window again for the species.")}
THUMB_FRAMES = 96  # time columns of a thumbnail (max-pooled): small pictures, calls stay visible
_SKIP_DIRS = {"shards", "index", "exports", "datasets"}  # big, or not what the page shows
_MSG = "_srch_flash"
SEARCH_PAGE = PAGES_DIR / "3_Search.py"
ARCHIVE_DIR = "archive"  # a dataset's default archive folder, inside the dataset


def default_archive(root: str | os.PathLike) -> Path:
    """The archive the Search page opens for the dataset at `root` when none was chosen this session."""
    return Path(root) / ARCHIVE_DIR


def page_url(page: Path) -> str:
    """A page's URL relative to the app's pages ("3_Search.py" → "Search", Streamlit's naming): as all pages
    sit one level under the app's base URL, it resolves right from any page, under any `server.baseUrlPath`."""
    return page_icon_and_name(page)[1]


def similar_windows_link(dataset, path: str | os.PathLike, start_s: float) -> None:
    """A "Find similar windows" link to the Search page (`?window=ID`, searched on arrival) when the
    dataset's default archive holds the window of `path` at `start_s`; else a caption saying why not."""
    archive = default_archive(dataset.root)
    try:
        wid = search.window_at(archive, path, start_s)
    except USER_ERRORS as exc:
        st.caption(f"No similar-window search: the archive `{archive}` is unreadable ({exc}).")
        return
    if wid is not None:
        st.link_button("Find similar windows", f"{page_url(SEARCH_PAGE)}?window={wid}", icon=":material/search:",
                       help=f"The Search & label page, searching from archive window {wid} (`{archive}`).")
    elif read_manifest(ArchiveLayout(archive)) is None:
        st.caption("Similar windows: this dataset has no embedding archive yet — press **Embed this dataset**"
                   " on the Search & label page.")
    else:
        st.caption(f"Similar windows: this window is not in the archive `{archive}` — press **Embed this"
                   " dataset** on the Search & label page to add it.")


def birdnet_available() -> bool:
    """Whether the BirdNET extra is installed (read through the package, so tests can patch it)."""
    return bool(pretrained.is_available())


def archive_stamp(root: str | os.PathLike) -> tuple:
    """(path, size, mtime_ns) of every file of the archive outside its vector shards, index and
    exports (two folder levels): it changes with each commit, label and retrain round."""
    out: list[tuple] = []

    def walk(folder: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < 2 and e.name not in _SKIP_DIRS:
                        walk(e.path, depth + 1)
                else:
                    s = e.stat()
                    out.append((e.path, s.st_size, s.st_mtime_ns))
            except OSError:
                continue

    walk(str(root), 0)
    return tuple(out)


@st.cache_data(max_entries=16, show_spinner=False)
def archive_summary(root: str, stamp: tuple) -> dict | None:
    """`birdcore.archive.search.archive_summary`, cached per archive version (`archive_stamp`)."""
    return search.archive_summary(root)


@st.cache_data(max_entries=16, show_spinner=False)
def loop_labels(root: str, stamp: tuple) -> pd.DataFrame:
    """`agile.read_loop_labels(root)`, cached until a file of the archive changes."""
    return agile.read_loop_labels(root)


@st.cache_data(max_entries=16, show_spinner=False)
def rounds(root: str, stamp: tuple) -> pd.DataFrame:
    """`agile.read_rounds(root)`, cached until a file of the archive changes."""
    return agile.read_rounds(root)


def dataset_recordings(ds) -> list[Path]:
    """The dataset's recordings a query window can come from: test soundscapes, then training audio."""
    train = list(dict.fromkeys(ds.audio_paths())) if ds.has_train_audio else []
    return list(ds.soundscapes) + train


def short_path(path: str | os.PathLike, root: Path | None) -> str:
    """`path` relative to the dataset `root` when inside it, else as is."""
    try:
        return str(Path(path).relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)


@st.cache_data(max_entries=128, show_spinner=False)
def clip(path: str, mtime: float, start: float, end: float) -> tuple[bytes, bytes]:
    """The thumbnail picture (PNG) and the WAV bytes of [start, end) s of one recording."""
    sp = ins.spectrogram(path, start, end, max_frames=THUMB_FRAMES)
    y, sr = ins.window_audio(path, start, end)
    return figures.thumbnail_png(sp), wav_bytes(y, sr)


def _save_label(archive: str, window_id: int, species: str, label: str, where: str) -> None:
    """Button callback: one label, saved at once; the outcome is shown on the next run (`flash`)."""
    try:
        agile.label_windows(archive, [int(window_id)], species, label, annotator="app")
    except USER_ERRORS as exc:
        st.session_state[_MSG] = ("error", str(exc))
        return
    st.session_state[_MSG] = ("success", f"Saved: {where} is **{label}** for {species}.")


def flash() -> None:
    """Show (once) the message of the last label click."""
    kind, text = st.session_state.pop(_MSG, (None, None))
    if kind:
        (st.error if kind == "error" else st.success)(text)


def window_rows(rows: pd.DataFrame, archive: Path, species: str, labels: pd.DataFrame, prefix: str,
                root: Path | None = None) -> None:
    """One bordered row per window of `rows` (window_id, path, start_s, end_s, score[, rank, why]):
    thumbnail, player, score and place, and the Positive / Negative / Skip buttons for `species`
    (the window's saved label drawn as the primary button). Button keys: `{prefix}_{label}_{window_id}`."""
    mine = labels[labels["species"] == species] if len(labels) else labels
    saved = dict(zip(mine["window_id"].astype(int), mine["label"])) if len(mine) else {}
    for i, r in enumerate(rows.itertuples(index=False)):
        wid, path, a, b = int(r.window_id), str(r.path), float(r.start_s), float(r.end_s)
        where = f"{short_path(path, root)} {a:g}–{b:g} s"
        with st.container(border=True):
            left, mid, right = st.columns([4, 4, 5], vertical_alignment="center")
            try:
                png, wav = clip(path, Path(path).stat().st_mtime, a, b)
                left.image(png, width="stretch")
                mid.audio(wav, format="audio/wav")
            except USER_ERRORS as exc:
                left.warning(f"{path}: cannot read the audio ({exc})")
            rank = getattr(r, "rank", i + 1)
            mid.markdown(f"**#{rank}** · score **{float(r.score):.3f}**")
            why = getattr(r, "why", None)
            mid.caption(f"{where} · window {wid}" + (f" · {why}" if isinstance(why, str) and why else ""))
            now = saved.get(wid)
            right.caption(f"{species}: " + (f"**{now}**" if now else "not labelled yet"))
            for col, (label, (text, tip)) in zip(right.columns(len(LABELS)), LABELS.items()):
                col.button(text, key=f"{prefix}_{label}_{wid}", width="stretch", help=tip,
                           type="primary" if now == label else "secondary",
                           on_click=_save_label, args=(str(archive), wid, species, label, where))


def label_counts(labels: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """species, common name and one column per label value: the loop's labels so far."""
    if labels is None or labels.empty:
        return pd.DataFrame(columns=["species", "common_name", *LABELS])
    counts = labels.pivot_table(index="species", columns="label", values="window_id", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=list(LABELS), fill_value=0).reset_index()
    counts.insert(1, "common_name", counts["species"].map(names).fillna(""))
    return counts


def progress_bar(text: str) -> Callable[..., None]:
    """An st.progress bar and a callback for it that takes (done, total), a fraction, and/or a text."""
    bar, t0 = st.progress(0.0, text=text), time.perf_counter()

    def update(*args: Any, **kw: Any) -> None:
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        words = [a for a in (*args, *kw.values()) if isinstance(a, str)]
        frac = nums[0] / max(nums[1], 1) if len(nums) >= 2 else (nums[0] if nums else None)
        said = words[0] if words else (f"{nums[0]:.0f} of {nums[1]:.0f}" if len(nums) >= 2 else text)
        bar.progress(min(max(float(frac if frac is not None else 0.0), 0.0), 1.0),
                     text=f"{said} · {time.perf_counter() - t0:.0f} s")

    return update


def rounds_figure(table: pd.DataFrame, names: dict[str, str]) -> charts.Spec | None:
    """Grouped-CV AUC after each round against the species' labels then (positives + negatives), one
    line per species; None when there is no round (or the table lacks those columns)."""
    need = {"round", "species", "auc_after", "positives", "negatives"}
    if table is None or table.empty or not need <= set(table.columns):
        return None
    df = table.assign(n_labels=table["positives"] + table["negatives"]).sort_values(["species", "round"])
    df["species"] = [f"{sp} {names.get(sp, '')}".strip() for sp in df["species"]]
    return charts.lines(df[["species", "round", "n_labels", "auc_after"]], "n_labels", "auc_after", "species",
                        height=300, xlabel="labels of the species (positives + negatives)",
                        ylabel="AUC after the round", yrange=(0, 1.02), tooltip=("round",))
