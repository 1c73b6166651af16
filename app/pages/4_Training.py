"""Start training runs in the background and watch them live: config form, curves, log, comparison."""

from typing import get_args, get_type_hints

import pandas as pd
import streamlit as st
import ui  # before birdcore: puts the repo root on sys.path when birdcore is not installed

# Title first, then the heavy imports below (torch, plotly, the engine): a fresh server draws
# the page at once instead of a blank screen for the seconds the imports take.
ui.page_setup("Training", icon="🏋️")
st.title("Training")

from ui import charts  # noqa: E402
from ui import runs as rui  # noqa: E402

from birdcore.analysis import run_compare, selftrain_view  # noqa: E402
from birdcore.augment import presets_store  # noqa: E402
from birdcore.config.data import DataConfig  # noqa: E402
from birdcore.config.run import PRESETS, preset  # noqa: E402
from birdcore.config.train import LossConfig  # noqa: E402
from birdcore.errors import RunError  # noqa: E402
from birdcore.training.launcher import (  # noqa: E402
    check_resumable,
    config_values,
    launch_run,
    prepare_run,
    run_config,
    stop_run,
)
from birdcore.training.runs import list_runs, open_run  # noqa: E402

RUNS = ui.runs_dir()
ds = ui.get_dataset()  # sidebar folder picker; an error box (and None) when the folder does not load

# ---- the form: widget key → config field. Values start from the chosen preset. -----------------
FORM = (("tr_name", "name"), ("tr_backbone", "model.backbone"), ("tr_pretrained", "model.pretrained"),
        ("tr_epochs", "train.epochs"), ("tr_lr", "train.lr"), ("tr_batch", "train.batch_size"),
        ("tr_fold", "train.fold"), ("tr_loss", "loss.kind"), ("tr_class_weights", "loss.class_weights"),
        ("tr_secondary", "data.secondary_weight"), ("tr_rating", "data.rating_weight"),
        ("tr_device", "train.device"))
PRESET_AUGMENT = "preset default"


def _choices(cls, name: str) -> list[str]:
    """The allowed values of a Literal config field, from the engine's dataclass."""
    return list(get_args(get_type_hints(cls)[name]))


def _seed_form() -> None:
    """Fill every form widget from the selected preset (first visit, or the preset changed)."""
    values = config_values(preset(st.session_state["tr_preset"]), [dotted for _, dotted in FORM])
    for key, dotted in FORM:
        st.session_state[key] = values[dotted]
    st.session_state["tr_augment"] = PRESET_AUGMENT


if "tr_preset" not in st.session_state or st.session_state["tr_preset"] not in PRESETS:
    st.session_state["tr_preset"] = "demo-cpu" if "demo-cpu" in PRESETS else next(iter(PRESETS))
if "tr_epochs" not in st.session_state:
    _seed_form()

# Open when there is nothing to watch yet; otherwise the runs below are what the page is for.
with st.expander("Start a new run", expanded=not list_runs(RUNS), icon=":material/rocket_launch:"):
    st.selectbox("Preset", list(PRESETS), key="tr_preset", on_change=_seed_form,
                 help="Changing the preset refills the form with its values.")
    augment_options = [PRESET_AUGMENT] + presets_store.list_presets()
    if st.session_state.get("tr_augment") not in augment_options:
        st.session_state["tr_augment"] = PRESET_AUGMENT  # a saved file was deleted meanwhile
    with st.form("tr_form", border=False):
        c1, c2, c3, c4 = st.columns(4)
        c1.text_input("Run name", key="tr_name", help="Part of the run folder's name.")
        c2.text_input("Backbone (timm name)", key="tr_backbone")
        devices = list(dict.fromkeys(["auto", "cpu", "cuda", st.session_state["tr_device"]]))  # + a preset's cuda:N
        c3.selectbox("Device", devices, key="tr_device", help="auto = CUDA when present, else CPU.")
        c4.selectbox("Augmentation config", augment_options, key="tr_augment",
                     help=f"Saved from the Preview page into {presets_store.augment_dir()}.")
        # No min/max on the numbers: birdcore validates, and its message names the field.
        c1.number_input("Epochs", step=1, key="tr_epochs")
        c2.number_input("Learning rate", step=1e-4, format="%.5f", key="tr_lr")
        c3.number_input("Batch size", step=1, key="tr_batch")
        c4.number_input("Validation fold", step=1, key="tr_fold", help="-1 trains on everything, no validation.")
        c1.selectbox("Loss", _choices(LossConfig, "kind"), key="tr_loss")
        c2.selectbox("Class weights", _choices(LossConfig, "class_weights"), key="tr_class_weights")
        c3.number_input("Secondary-label weight", step=0.05, format="%.2f", key="tr_secondary",
                        help="Target value of species in secondary_labels (primary = 1).")
        c4.selectbox("Rating weight", _choices(DataConfig, "rating_weight"), key="tr_rating",
                     help="linear: per-recording loss weight rating / 5.")
        c1.checkbox("Pretrained weights", key="tr_pretrained")
        st.text_area("More overrides (one key=value per line)", key="tr_extra", height=80,
                     placeholder="train.num_workers=0\ndata.clip_seconds=5.0",
                     help="Any RunConfig field, as `birdcore train --set`.")
        # Why Launch is greyed out, said next to it (a run without audio would only fail later).
        no_launch = ("Choose a dataset folder in the sidebar to launch a run." if ds is None else
                     f"`{ds.root}` has no train_audio/ folder: training needs the recordings, not only the"
                     " metadata." if not ds.has_train_audio else None)
        launch = st.form_submit_button("Launch", key="tr_launch", type="primary", icon=":material/play_arrow:",
                                       disabled=no_launch is not None, help=no_launch)
    if no_launch:
        st.caption(no_launch)
if launch and no_launch is None:  # outside the expander: the outcome stays visible if it collapses
    with ui.error_box():  # ConfigError (form values), DatasetError (audio missing) → message box
        choice = st.session_state["tr_augment"]  # a config saved by the Preview page, or the preset's own
        cfg = run_config(st.session_state["tr_preset"], {dotted: st.session_state[key] for key, dotted in FORM},
                         augment=None if choice == PRESET_AUGMENT else presets_store.load(choice),
                         extra=st.session_state.get("tr_extra", ""))
        new = prepare_run(ds.root, cfg, RUNS)
        pid = launch_run(new)  # a background process: the page only watches the run folder
        st.session_state["tr_run"] = new.run_id
        st.success(f"Started run `{new.run_id}` (process {pid}).")

# ---- all runs ------------------------------------------------------------------------------
st.subheader("Runs")
table, skipped = run_compare.runs_table(RUNS)
st.caption(f"Run folders in `{RUNS}` (set `BIRDCORE_RUNS` to use another folder).")
if skipped:
    st.warning(f"Skipped {ui.count(len(skipped), 'folder')} that are not valid runs: " + "; ".join(skipped[:5])
               + (" …" if len(skipped) > 5 else ""), icon=":material/folder_off:")
if table.empty:
    st.info("No runs yet: start one above (or with `birdcore train --runs …`).")
    st.stop()

# Text cells with "—" where a run has no value yet (an empty cell reads as a display bug).
shown = table.assign(
    progress=[f"{0 if pd.isna(e) else e}/{'?' if pd.isna(t) else t}" for e, t in zip(table["epoch"], table["epochs"])],
    best_score=["—" if pd.isna(v) else f"{v:.4f}" for v in table["best_score"]],
    best_epoch=["—" if pd.isna(v) or v < 0 else str(int(v) + 1) for v in table["best_epoch"]],
    created_at=table["created_at"].fillna("—"),
)[["run_id", "name", "state", "progress", "monitor", "best_score", "best_epoch", "created_at", "has_oof"]]
st.dataframe(shown, hide_index=True, key="tr_table", column_config={
    "run_id": "run", "best_score": "best score", "best_epoch": "best epoch", "created_at": "created",
    "has_oof": st.column_config.CheckboxColumn("OOF predictions"),
})

# ---- one run, live ---------------------------------------------------------------------------
ids = table["run_id"].tolist()
if st.session_state.get("tr_run") not in ids:
    st.session_state.pop("tr_run", None)  # deleted since: fall back to the newest run
# Plain ids: the state is in the table (a picker label that changes is not redrawn in the browser).
run_id = st.selectbox("Run to watch", ids, key="tr_run", bind="query-params")


def monitor(run_id: str, seen: tuple) -> None:
    """Status, progress, curves and log of one run; reruns itself every 2 s while the run is active.

    `seen` = (state, epoch) as the runs table showed them: when the run moves on (starts, ends an
    epoch, finishes), the whole page reruns once so the table and pickers follow.
    """
    try:
        run = open_run(run_id, RUNS)
    except RunError as exc:  # deleted meanwhile
        ui.show_error(exc)
        return
    status = run_compare.run_status(run)
    state = status.get("state", "unknown")
    active = state in run_compare.ACTIVE_STATES
    if seen[0] in run_compare.ACTIVE_STATES and (state, status.get("epoch")) != seen:
        st.rerun()  # redraw the whole page once; a finished run also stops the polling this way
    # Incremental: only the lines appended since the last refresh are read (offset kept per run).
    tail = st.session_state.setdefault(f"tr_tail::{run.path}", run_compare.MetricsTail(run.metrics_path))
    tail.update()
    epochs, steps = run_compare.epoch_frame(tail.epochs), run_compare.step_frame(tail.steps)
    monitor_metric = status.get("monitor") or "micro_f1"

    head, act1, act2 = st.columns([4, 1, 1])
    with head:
        st.badge(state, icon=rui.STATE_ICONS.get(state), color=rui.STATE_COLORS.get(state, "gray"))
    if active and act1.button("Stop run", key="tr_stop", icon=":material/stop:"):
        if stop_run(run):
            st.toast(f"Stop requested: {run_id} stops after its current step.")
        else:
            st.toast(f"{run_id} is not running.")
    resumable = state in ("stopped", "failed") and run.last_checkpoint.is_file()
    if resumable and act1.button("Resume", key="tr_resume", icon=":material/play_arrow:",
                                 help="Continue from the last saved epoch (checkpoints/last.pt)."):
        with ui.error_box():  # RunError: someone else trains it meanwhile
            check_resumable(run)
            pid = launch_run(run, resume=True)
            st.toast(f"Resumed {run_id} (process {pid}).")
            st.rerun()
    # Delete asks once more; a run that is training cannot be deleted (the engine refuses too).
    confirm_key = f"tr_confirm_delete::{run_id}"
    # Callbacks (not `if button:`): the confirmation shows, or goes, in the same rerun as the click.
    act2.button("Delete", key="tr_delete", icon=":material/delete:", disabled=active,
                help="Stop the run first." if active else "Delete the run folder (asks to confirm).",
                on_click=st.session_state.__setitem__, args=(confirm_key, True))
    if st.session_state.get(confirm_key) and not active:
        st.warning(f"Delete `{run.path}` with its checkpoints, predictions and thresholds? This cannot be undone.",
                   icon=":material/delete_forever:")
        yes, no = st.columns([1, 5])
        if yes.button("Yes, delete", key="tr_delete_yes", type="primary"):
            st.session_state.pop(confirm_key, None)
            with ui.error_box():
                run_compare.delete_run(run)
                st.session_state.pop("tr_run", None)
                st.toast(f"Deleted {run_id}.")
                st.rerun()
        no.button("Cancel", key="tr_delete_no", on_click=st.session_state.pop, args=(confirm_key, None))
    done, total = status.get("epoch") or 0, status.get("epochs") or 0
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Epoch", f"{done}/{total}")
    best = status.get("best_score")
    best_epoch = status.get("best_epoch")
    m2.metric(f"Best {rui.metric_label(monitor_metric)}", "—" if best is None else f"{best:.4f}",
              help=None if best_epoch is None else
              "BirdNET's own scores (no epoch beat them)" if best_epoch < 0 else f"at epoch {best_epoch + 1}")
    m3.metric("Time left", run_compare.format_duration(run_compare.eta_seconds(status)) if active else "—")
    m4.metric("Samples/s", f"{steps['samples_per_s'].iloc[-1]:.1f}" if not steps.empty else "—")
    spe = tail.start.get("steps_per_epoch") if tail.start else None
    within = run_compare.epoch_progress(steps, spe) if active else None
    if within is not None and total:  # moves every logged step, not only at epoch ends
        ep, frac = within
        st.progress(min((ep + frac) / total, 1.0),
                    text=f"epoch {ep + 1} of {total}: {frac:.0%} of its {ui.count(spe, 'step')}")
    elif total:
        st.progress(min(done / total, 1.0), text=f"{done} of {ui.count(total, 'epoch')}")
    if status.get("validation"):
        st.caption(f"Validation: {status['validation']}")
    if active and status.get("phase"):
        st.caption(f"Now: {status['phase']}")

    if state == "failed":
        st.error(f"Run failed: {status.get('error') or 'no error recorded'}", icon=":material/error:")
        if status.get("traceback"):
            with st.expander("Traceback"):
                st.code(status["traceback"], language="text")
    if status.get("skipped"):
        st.warning(f"{ui.count(status['skipped'], 'unreadable audio file')} skipped; they are listed in"
                   f" `{run.path / 'skipped.csv'}`.", icon=":material/music_off:")
    if state == "stopped":
        st.info(f"Stopped after {ui.count(done, 'epoch')}. Continue it with "
                f"`birdcore train --resume {run.path}`.")

    left, right = st.columns(2)
    with left:
        if steps.empty and epochs.empty:  # no empty axes: say what will come
            st.info("The loss appears here after the first training step"
                    + (" (the run is loading data and the model)." if active else "."), icon=":material/hourglass:")
        else:
            charts.show(rui.loss_figure(steps, epochs, spe), key="tr_loss_chart")
    with right:
        chosen = st.pills("Validation metrics", list(run_compare.EPOCH_METRICS), selection_mode="multi",
                          key="tr_metric_pick", default=list(run_compare.EPOCH_METRICS),
                          format_func=rui.metric_label, label_visibility="collapsed", wrap=True)
        long = epochs.melt(id_vars=["epoch"], value_vars=chosen, var_name="metric", value_name="value") \
            .dropna(subset=["value"]) if chosen and not epochs.empty else None
        if long is None or long.empty:
            st.caption("No validated epoch yet.")
        else:
            long["epoch"] = long["epoch"] + 1  # 1 = the first epoch, as in "epoch 2/12"
            fig = rui.lines(long, "epoch", "value", "metric", title="Validation metrics", xlabel="epoch",
                            names={m: rui.metric_label(m) for m in chosen}, yrange=(0, 1.02))
            charts.show(rui.epoch_axis(fig), key="tr_metric_chart")

    log = run_compare.log_tail(run.log_path, lines=30)
    with st.expander("Log (last 30 lines of train.log)", expanded=state == "failed" and bool(log)):
        if log:
            st.code(log, language="text")
        else:
            st.caption("No train.log: the run was started outside the app, or has not written anything yet.")


row = table.set_index("run_id").loc[run_id]
seen = (row["state"], None if pd.isna(row["epoch"]) else int(row["epoch"]))
st.fragment(monitor, run_every="2s" if seen[0] in run_compare.ACTIVE_STATES else None)(run_id, seen)

# ---- several runs ------------------------------------------------------------------------------
st.subheader("Compare runs")
with_scores = table.loc[table["best_score"].notna(), "run_id"].tolist()
if "tr_compare" not in st.session_state:
    st.session_state["tr_compare"] = with_scores[:3]
else:  # runs deleted since: drop them instead of failing
    st.session_state["tr_compare"] = [r for r in st.session_state["tr_compare"] if r in ids]
c1, c2 = st.columns([3, 1])
picked = c1.multiselect("Runs", ids, key="tr_compare", placeholder="Choose runs to compare")
metric = c2.selectbox("Metric", [*run_compare.EPOCH_METRICS, "val_loss", "train_loss"], key="tr_compare_metric",
                      format_func=rui.metric_label)
curves = None
with ui.error_box():  # a run deleted since the table was read
    curves = run_compare.metric_curves([open_run(r, RUNS) for r in picked], [metric]) if picked else None
if curves is None or curves.empty:
    st.caption("Pick runs with at least one validated epoch.")
else:
    curves["epoch"] = curves["epoch"] + 1
    charts.show(rui.epoch_axis(rui.lines(curves, "epoch", "value", "run_id", title=rui.metric_label(metric),
                                         xlabel="epoch", height=340)), key="tr_compare_chart")

# ---- what differs between two runs' configs -----------------------------------------------------
if len(ids) > 1:
    with st.expander("Config diff of two runs", icon=":material/difference:"):
        d1, d2 = st.columns(2)
        a = d1.selectbox("Run A", ids, key="tr_diff_a")
        b = d2.selectbox("Run B", ids, index=1, key="tr_diff_b")
        with ui.error_box():  # a run deleted meanwhile, a broken config.json
            diff = run_compare.config_diff(open_run(a, RUNS), open_run(b, RUNS))
            if diff.empty:
                st.caption("Same config.")
            else:
                st.dataframe(diff, hide_index=True, key="tr_diff")

# ---- self-training families (`birdcore self-train`) --------------------------------------------
families = selftrain_view.families(RUNS)
if families:
    st.subheader("Self-training rounds")
    names = [f.path.name for f in families]
    family = families[names.index(st.selectbox("Family", names, key="tr_family"))]
    with ui.error_box():
        st.dataframe(selftrain_view.rounds_table(family), hide_index=True)
        passed = selftrain_view.passed_per_species(family)
        if not passed.empty:
            st.caption("Pseudo-labelled windows that passed the floor (and the cap), per species and round")
            st.dataframe(passed.pivot(index="species", columns="round", values="windows"))
