"""Predict the test soundscapes with one model or an ensemble, check the submission, download it, score it."""

import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Submission", icon="📤")
st.title("Submission")

from ui import charts  # noqa: E402

from birdcore.errors import BirdcoreError  # noqa: E402
from birdcore.evaluation.thresholds import (  # noqa: E402
    Thresholds,
    check_thresholds_cover,
    load_thresholds,
)
from birdcore.inference import catalog  # noqa: E402
from birdcore.inference.base import BACKENDS  # noqa: E402
from birdcore.submission import budget, report  # noqa: E402
from birdcore.submission.submit import model_thresholds, soundscapes_for_test  # noqa: E402
from birdcore.submission.table import (  # noqa: E402
    build_submission,
    evaluate_submission,
    validate_submission,
)

ds = ui.require_dataset()
st.caption("One `row_id,target` row per test.csv row: is the bird present in that 5-s window of that soundscape?"
           " A row is True when the (ensemble-averaged) probability ≥ the bird's threshold.")
state = st.session_state




# ---- what to predict ------------------------------------------------------------------------------
if ds.test is None:
    st.info(f"`{ds.root / 'test.csv'}` not found: it lists the rows a submission must have.")
    st.stop()
try:
    files = soundscapes_for_test(ds)
except BirdcoreError as exc:
    ui.show_error(exc)
    st.stop()
birds = sorted(set(ds.test["bird"]))
st.markdown(f"**test.csv:** {ui.count(len(ds.test), 'row')} · {ui.count(len(files), 'soundscape')} ·"
            f" {ui.count(len(birds), 'bird')}")

refs = catalog.find_models([ui.runs_dir()], ui.REPO_ROOT / "models")
if not refs:
    st.info(f"No model yet: no run with checkpoints/best.pt in `{ui.runs_dir()}` and no exported model in"
            " `models/`. Train one on the Training page.")
    st.stop()
c1, c2 = st.columns([3, 1])
chosen = c1.multiselect("Models (several = ensemble, probabilities averaged)", refs, default=refs[:1], key="sub_models",
                        format_func=lambda r: r.label)
backend = c2.selectbox("Backend", BACKENDS, key="sub_backend",
                       help="ONNX Runtime is ~3× faster than torch on CPU; OpenVINO (optional extra) a little"
                            " faster still. A run is exported to <run>/onnx on first use."
                            " Exported models never run in torch.")
if not chosen:
    st.info("Choose at least one model.")
    st.stop()
run_key = (tuple(r.key for r in chosen), backend, tuple(catalog.model_stamp(r) for r in chosen))

with st.expander("Will this ensemble fit the competition's CPU budget?"):
    st.caption("Times the chosen models on this machine (decode included) and extrapolates: BirdCLEF 2023–2026"
               " notebooks get 90–120 CPU minutes for ~700 minutes of test audio. Same as `birdcore budget`.")
    b1, b2, b3 = st.columns(3)
    audio_min = b1.number_input("Test audio (minutes)", 1.0, 100_000.0, 700.0, step=50.0, key="sub_budget_audio")
    limit_min = b2.number_input("CPU limit (minutes)", 1.0, 10_000.0, 90.0, step=10.0, key="sub_budget_limit")
    probe_own = b3.toggle("Time on these test soundscapes", value=True, key="sub_budget_own",
                          help="Off: two minutes of synthetic audio.")
    timed = [r for r in chosen if r.kind != catalog.BIRDNET_KIND]
    if len(timed) < len(chosen):
        st.caption("BirdNET's own scores are not timed here (it is not part of a Kaggle CNN ensemble).")
    if timed and st.button("Measure", key="sub_budget_go"):
        with st.spinner("Timing the models …"):
            try:
                plan = budget.plan_budget([r.path for r in timed], audio_min, limit_min, backend=backend,
                                          probe=files[:2] if probe_own else None)
                state["sub_budget"] = (run_key, plan.fits, plan.lines())
            except BirdcoreError as exc:
                ui.show_error(exc)
    got = state.get("sub_budget")
    if got and got[0] == run_key:
        (st.success if got[1] else st.warning)(next(line for line in got[2] if " predicted;" in line))
        st.code("\n".join(got[2]), language=None)

if st.button(f"Predict {ui.count(len(files), 'test soundscape')}", type="primary", key="sub_predict"):
    bar = st.progress(0.0, text="Loading models …")
    try:
        models = [ui.load_ref(r, backend, ds) for r in chosen]
        for r, m in zip(chosen, models):
            catalog.check_classes(m.classes, ds.species, need=birds if m.birdnet is None else (), where=r.label)
        result = catalog.predict_table(models, files, fill_missing=0.0, progress=lambda done, total: bar.progress(
            done / total, text=f"{done}/{total} soundscapes"))
        report.check_predictions(result)
        made = model_thresholds(chosen, result.classes)  # an ensemble's are made for its average
        state["sub_result"] = {"key": run_key, "table": result.table, "classes": result.classes,
                               "thresholds": made.thresholds, "thresholds_path": made.where,
                               "thresholds_how": made.how,
                               "seconds": result.audio_seconds, "notes": [n for m in models for n in m.notes]}
    except BirdcoreError as exc:
        state.pop("sub_result", None)
        ui.show_error(exc)
    bar.empty()

res = state.get("sub_result")
if res is None or res["key"] != run_key:
    st.caption("Press Predict to score the soundscapes with the chosen model(s).")
else:
    for note in res["notes"]:
        st.caption(note + " — they are predicted False.")
    # ---- thresholds --------------------------------------------------------------------------------
    st.subheader("Thresholds")
    own_label = "The model's thresholds.json" if res.get("thresholds_how") is None else "The ensemble's thresholds"
    options = (([own_label] if res["thresholds"] is not None else []) + ["One value for all", "A thresholds file"])
    how = st.radio("Thresholds", options, horizontal=True, key="sub_thr_mode", label_visibility="collapsed")
    if res.get("thresholds_how") and res["thresholds"] is None:
        st.caption(f"Ensemble: {res['thresholds_how']}.")
    thr = None
    if how == own_label:
        thr = res["thresholds"]
        if res.get("thresholds_how"):
            st.caption(f"Ensemble thresholds: {res['thresholds_how']} (global {thr.global_threshold:.3f}).")
        else:
            st.caption(f"Per-class thresholds from `{res['thresholds_path']}` (global {thr.global_threshold:.3f}).")
    elif how == "A thresholds file":
        c1, c2 = st.columns(2)
        up = c1.file_uploader("Upload thresholds.json", type=["json"], key="sub_thr_upload")
        typed = c2.text_input("…or its path", key="sub_thr_path")
        with ui.error_box():
            if up is not None:
                thr = Thresholds.from_bytes(up.getvalue(), up.name)
            elif typed:
                thr = load_thresholds(typed)
        if thr is None:
            st.caption("Upload or name a thresholds JSON (written by the Thresholds page or"
                       " `birdcore tune-thresholds`).")
    else:
        if "sub_thr_value" not in state:  # the slider's state is dropped while hidden: keep the last value
            state["sub_thr_value"] = state.get("_sub_thr_keep", 0.5)
        thr = st.slider("Threshold", 0.0, 1.0, step=0.005, key="sub_thr_value",
                        help="Low values pay off in the BirdCLEF 2022 score (winners used 0.05–0.3).")
        state["_sub_thr_keep"] = thr
    if isinstance(thr, Thresholds):  # a file made for other classes must not fall back to the global silently
        where = res["thresholds_path"] if how == own_label else (up.name if up else typed)
        with ui.error_box(stop=True):  # no class in common: the error, and no submission
            note = check_thresholds_cover(thr, res["classes"], where)
        if note:
            st.warning(note, icon=":material/warning:")
    if thr is None:
        st.stop()

    # ---- the submission ----------------------------------------------------------------------------
    st.subheader("Submission")
    try:
        sub = build_submission(res["table"], ds.test, thr, res["classes"])
        validate_submission(sub, ds.test)
    except BirdcoreError as exc:
        ui.show_error(exc)
        st.stop()
    st.success(f"Valid: {ui.count(len(sub), 'row')}, the rows of test.csv in their order;"
               f" {int(sub['target'].sum()):,} True ({sub['target'].mean():.1%}).", icon=":material/check_circle:")
    st.download_button("Download submission.csv", report.submission_bytes(sub, ds.test), file_name="submission.csv",
                       mime="text/csv", type="primary", key="sub_download")
    left, right = st.columns([2, 3])
    left.dataframe(sub, hide_index=True, height=360, key="sub_table")
    rates = report.positive_rates(sub, ds.test, ds.test_labels)
    # The truth beside it (when the dataset has labels) shows over- and under-calling at a glance.
    fig = charts.grouped_bar(rates, "species", [("rate", "predicted", charts.BASE),
                                                ("labelled_rate", "labelled (test_labels.csv)", charts.MUTED)],
                             title="Share of windows predicted present", height=360, xlabel="species",
                             ylabel="positive rate", percent=True)
    with right:
        charts.show(fig, key="sub_rates")

    # ---- score (datasets with ground truth, e.g. the demo) -------------------------------------------------
    if ds.test_labels is not None:
        st.subheader("Score against test_labels.csv")
        with ui.error_box():
            score = evaluate_submission(sub, ds.test_labels, scored=ds.scored or None)
            c1, c2, c3 = st.columns(3)
            c1.metric("BirdCLEF 2022 score", f"{score['birdclef2022']:.4f}",
                      help="Mean over species of ½·(TPR + TNR) — macro balanced accuracy; species without"
                           " positives are skipped. All-True and all-False both score 0.5.")
            c2.metric("micro F1", f"{score['micro_f1']:.4f}")
            c3.metric("macro F1", f"{score['macro_f1']:.4f}")
            st.dataframe(score["per_species"], hide_index=True, key="sub_per_species",
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in ("precision", "recall", "f1", "balanced_acc")})

# ---- check a submission file made elsewhere --------------------------------------------------------------
with st.expander("Check a submission.csv made elsewhere"):
    up = st.file_uploader("submission.csv", type=["csv"], key="sub_check_upload")
    if up is not None:
        try:
            other = report.read_submission_bytes(up.getvalue(), up.name)
            validate_submission(other, ds.test)
            st.success(f"{up.name}: valid ({ui.count(len(other), 'row')}).")
        except BirdcoreError as exc:
            ui.show_error(exc)
