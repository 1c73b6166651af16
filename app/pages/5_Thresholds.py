"""Tune decision thresholds on a run's out-of-fold predictions: per-class curves, live scores, save."""

from pathlib import Path

import pandas as pd
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Thresholds", icon="🎚️")
st.title("Decision thresholds")

from ui import charts  # noqa: E402
from ui import runs as rui  # noqa: E402

from birdcore.analysis import run_compare  # noqa: E402
from birdcore.errors import BirdcoreError  # noqa: E402
from birdcore.evaluation import curves as tc  # noqa: E402
from birdcore.evaluation.metrics import per_class_report  # noqa: E402
from birdcore.evaluation.thresholds import class_thresholds  # noqa: E402
from birdcore.training.runs import open_run  # noqa: E402

st.caption("A species counts as detected when its score ≥ its threshold. Tuned on the run's out-of-fold"
           " (validation) predictions, so the scores here are optimistic; the BirdCLEF 2022 score rewards"
           " thresholds far below 0.5.")
RUNS = ui.runs_dir()


@st.cache_data(max_entries=8, show_spinner="Reading out-of-fold predictions …")
def load_oof(path: str, mtime_ns: int, size: int) -> tc.Oof:
    """The OOF arrays, read once per file version (mtime and size are the cache key)."""
    return tc.read_oof(path)


@st.cache_data(max_entries=8, show_spinner=False)
def oof_epoch(path: str, mtime_ns: int, size: int) -> int | None:
    return tc.oof_epoch(path)


@st.cache_data(max_entries=16, show_spinner=False)
def scored_species(data_dir: str) -> list[str]:
    """The dataset's scored species, [] when the run's dataset is gone (they only order the list)."""
    try:
        return list(ui.load_dataset_cached(data_dir).scored)
    except Exception:  # noqa: BLE001 - a moved or broken dataset must not hide the thresholds
        return []


# ---- which run: best first (the model pickers' rule), optionally of one dataset -----------------
table, skipped = run_compare.runs_table(RUNS)
ready = run_compare.rank_runs(table[table["has_oof"]])
waiting = table[~table["has_oof"]]
if ready.empty:
    st.info(f"No run in `{RUNS}` has out-of-fold predictions yet: a run writes `oof_predictions.parquet`"
            " after its first validated epoch. Start one on the Training page.")
    if not waiting.empty:
        st.caption("Not ready: " + ", ".join(f"{r} ({s})" for r, s in zip(waiting["run_id"], waiting["state"])))
    st.stop()

ALL = "all datasets"
datasets = list(dict.fromkeys(d for d in ready["data_dir"] if d))
p1, p2 = st.columns([1, 2])
if len(datasets) > 1:
    if st.session_state.get("th_dataset") not in [ALL, *datasets]:
        st.session_state.pop("th_dataset", None)
    chosen_ds = p1.selectbox("Dataset", [ALL, *datasets], key="th_dataset", format_func=lambda d: d if d == ALL
                             else Path(d).name, help="Only runs trained on this dataset folder.")
    if chosen_ds != ALL:
        ready = ready[ready["data_dir"] == chosen_ds]
else:
    p1.caption("Dataset: " + (f"`{datasets[0]}`" if datasets else "—"))
ids = ready["run_id"].tolist()
labels = dict(zip(ready["run_id"], ready["label"]))
if st.session_state.get("th_run") not in ids:
    st.session_state.pop("th_run", None)  # deleted since, or of another dataset: fall back to the best run
run_id = p2.selectbox("Run", ids, key="th_run", bind="query-params", format_func=lambda r: labels.get(r, r),
                      help="Best finished run first; failed or scoreless runs last.")
if not waiting.empty:
    st.caption(f"Not ready (no OOF predictions yet): {', '.join(waiting['run_id'])}")

try:
    run = open_run(run_id, RUNS)
    stat = run.oof_path.stat()
    y_true, y_score, classes = load_oof(str(run.oof_path), stat.st_mtime_ns, stat.st_size)
    epoch = oof_epoch(str(run.oof_path), stat.st_mtime_ns, stat.st_size)
    data_dir = str(run.read_config()[1].get("data_dir", ""))
except (BirdcoreError, OSError) as exc:  # deleted or rewritten meanwhile, unreadable table
    ui.show_error(exc)
    st.stop()
scored = set(scored_species(data_dir)) if data_dir else set()
order = tc.order_classes(classes, scored)
col = {c: i for i, c in enumerate(classes)}

# ---- the thresholds being edited: one store per run (kept when a running run rewrites its OOF
# table); the widgets only mirror it ----
store_key = f"th_store::{run_id}"
if store_key not in st.session_state:
    store = {"global": 0.5, "per_class": {}, "method": "fixed", "metric": "birdclef2022", "note": None}
    try:
        saved = tc.load_run_thresholds(run)
    except BirdcoreError as exc:
        saved = None
        store["note"] = ("warning", f"Ignoring the run's thresholds.json: {exc}")
    if saved is not None:
        store.update({"global": saved.global_threshold, "method": saved.method,
                      "metric": saved.metric if saved.metric in tc.TUNE_METRICS else "birdclef2022",
                      "per_class": {c: v for c, v in saved.per_class.items()
                                    if c in col and v != saved.global_threshold}})
        store["note"] = ("info", f"Started from the run's thresholds.json ({saved.method}, {saved.metric}).")
    st.session_state[store_key] = store
store = st.session_state[store_key]
gkey, mkey = f"th_global::{run_id}", f"th_metric::{run_id}"
st.session_state[gkey] = store["global"]
st.session_state.setdefault(mkey, store["metric"])


# Any hand edit makes the values "fixed" (no longer the tuner's) and clears the last message.
def on_global() -> None:
    store.update({"global": float(st.session_state[gkey]), "method": "fixed", "note": None})


def on_class(cls: str, key: str) -> None:
    store["per_class"][cls] = float(st.session_state[key])
    store.update({"method": "fixed", "note": None})


def follow_global(cls: str) -> None:
    store["per_class"].pop(cls, None)
    store.update({"method": "fixed", "note": None})


def optimise() -> None:
    """The engine's tuner on this run's OOF predictions (nothing written until "Save")."""
    try:
        thr, summary = tc.tune_run_thresholds(run.path, st.session_state[mkey], save=False)
    except BirdcoreError as exc:
        store["note"] = ("error", str(exc))
        return
    # Classes the tuner left at the global value (too few positives) keep following the global slider.
    store.update({"global": thr.global_threshold, "method": "grid",
                  "per_class": {c: v for c, v in thr.per_class.items() if c in col and v != thr.global_threshold}})
    store["note"] = ("success", f"Optimised for {rui.metric_label(summary['metric'])}: {summary['at_0.5']:.4f} at"
                     f" 0.5 → {summary['per_class']:.4f} with per-class thresholds (global"
                     f" {summary['global_threshold']:.3f}, {ui.count(summary['tuned_classes'], 'class', 'classes')}"
                     " with their own value).")


def reset() -> None:
    store.update({"global": 0.5, "per_class": {}, "method": "fixed", "note": None})


def save() -> None:
    thr = tc.make_thresholds(y_true, y_score, classes, store["global"], store["per_class"], st.session_state[mkey],
                             method=store["method"], source=f"app: run {run_id}")
    try:
        path = tc.save_run_thresholds(run, thr)
    except OSError as exc:
        store["note"] = ("error", f"Could not save: {exc}")
        return
    store["note"] = ("success", f"Saved `{path}` (atomic write).")


# ---- controls and the overall score ------------------------------------------------------------
c1, c2 = st.columns([1, 3])
metric = c1.selectbox("Metric", list(tc.TUNE_METRICS), key=mkey, format_func=rui.metric_label,
                      help="What the scores below and the optimiser use.")
c2.slider("Global threshold", 0.0, 1.0, step=0.005, format="%.3f", key=gkey, on_change=on_global,
          help="Used by every class without its own threshold.")
with st.container(horizontal=True):
    st.button("Optimise all", key="th_optimise", on_click=optimise, type="primary", icon=":material/tune:",
              help="Tune the global and per-class thresholds for the chosen metric (birdcore tune-thresholds).")
    st.button("Save thresholds.json into the run", key="th_save", on_click=save, icon=":material/save:",
              help=f"Into the run folder: {run.thresholds_path}")
    st.button("Reset to 0.5", key="th_reset", on_click=reset, icon=":material/restart_alt:")
if store.get("note"):
    kind, text = store["note"]
    getattr(st, kind)(text)

# ---- one class ---------------------------------------------------------------------------------
st.subheader("Per class")
support = dict(zip(classes, y_true.sum(axis=0).tolist()))
# A click on a row of the table below picks that class (applied once per new click, like the
# heatmap on the Inspection page; the table lists the classes in `order`).
picked_rows = (st.session_state.get("th_table") or {}).get("selection", {}).get("rows", [])
if picked_rows and picked_rows != st.session_state.get("_th_rows_done"):
    st.session_state["_th_rows_done"] = picked_rows
    if 0 <= picked_rows[0] < len(order):
        st.session_state[f"th_class::{run_id}"] = order[picked_rows[0]]
k1, k2, k3 = st.columns([2, 3, 1])
cls = k1.selectbox("Class", order, key=f"th_class::{run_id}",
                   format_func=lambda c: f"{c}{' ★' if c in scored else ''} · {support[c]} positive"
                                         f"{'' if support[c] == 1 else 's'}",
                   help="Scored species (★) first.")
ckey = f"th_cls::{run_id}::{cls}"
own = cls in store["per_class"]
st.session_state[ckey] = store["per_class"].get(cls, store["global"])
threshold = k2.slider(f"Threshold of {cls}", 0.0, 1.0, step=0.005, format="%.3f", key=ckey,
                      on_change=on_class, args=(cls, ckey),
                      help="Moving it gives the class its own threshold.")
with k3:
    st.write("")
    st.button("Follow global", key=f"th_follow::{run_id}", on_click=follow_global, args=(cls,), disabled=not own,
              help="Drop this class's own threshold.")
k2.caption("Own threshold." if own else "Follows the global threshold.")

t_c, s_c = y_true[:, col[cls]], y_score[:, col[cls]]
point = tc.operating_point(t_c, s_c, threshold)
h1, h2, h3 = st.columns(3)
with h1:
    charts.show(rui.histogram_figure(tc.score_histograms(t_c, s_c, bins=40), threshold), key="th_hist")
with h2:
    charts.show(rui.curve_figure(tc.threshold_curve(t_c, s_c), point, tc.CURVE_METRICS), key="th_curve")
with h3:
    pr = tc.pr_curve(t_c, s_c)
    if pr.empty:
        st.caption(f"{cls} has no positive validation recordings: no precision–recall curve.")
    else:
        charts.show(rui.pr_figure(pr, point), key="th_pr")
st.caption(f"At {threshold:.3f}: TP {point['tp']}, FP {point['fp']}, FN {point['fn']}, TN {point['tn']}.")

# ---- the overall score (below the charts: those are what a person tunes by eye) ----------------
scores = tc.overall_scores(y_true, y_score, classes, store["global"], store["per_class"], metric)
s1, s2, s3 = st.columns(3)
s1.metric("At 0.5", f"{scores['at_0.5']:.4f}")
s2.metric(f"At the global threshold ({store['global']:.3f})", f"{scores['global']:.4f}",
          delta=f"{scores['global'] - scores['at_0.5']:+.4f}")
s3.metric("With per-class thresholds", f"{scores['per_class']:.4f}",
          delta=f"{scores['per_class'] - scores['at_0.5']:+.4f}",
          help=f"{ui.count(len(store['per_class']), 'class', 'classes')} with their own threshold, the rest at the"
               " global one.")
st.caption(f"{ui.count(y_true.shape[0], 'validation recording')} × {ui.count(len(classes), 'class', 'classes')}"
           f" ({len(scored & set(classes))} scored)"
           + (f", predictions of the run's best epoch so far ({epoch + 1})." if epoch is not None else "."))

# ---- all classes -------------------------------------------------------------------------------
st.subheader("All classes")
report = per_class_report(y_true, y_score, classes, class_thresholds(classes, store["global"], store["per_class"]))
report.insert(1, "scored", report["species"].isin(scored))
report.insert(2, "own threshold", report["species"].isin(store["per_class"].keys()))
report = report.set_index("species").loc[order].reset_index()
# Numbers as text with "—" where a metric is undefined (no positives: no AP, no AUC).
for c in ("precision", "recall", "f1", "ap", "auc", "threshold", "balanced_acc"):
    if c in report.columns:
        report[c] = ["—" if pd.isna(v) else f"{v:.3f}" for v in report[c]]
st.caption("Click a row to look at that class above.")
st.dataframe(report, hide_index=True, key="th_table", on_select="rerun", selection_mode="single-row",
             column_config={"balanced_acc": "½(TPR+TNR)"})
