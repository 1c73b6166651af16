"""The Inspection, Annotation and Submission pages under AppTest, on a tiny trained model.

Checks content against the engine (heatmap cells = birdcore.analysis.inspection predictions, the submission =
make_submission's), navigation and saving, and that broken inputs give messages, not tracebacks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.apptest import chart, charts_with_key, plotly_array, start_page, texts, vega  # noqa: F401
from streamlit.testing.v1 import AppTest
from test_inspection import (
    tiny_trained,  # one tiny model per session, shared with the engine tests
)

from birdcore.analysis import inspection as ins
from birdcore.annotation import queue
from birdcore.annotation import store as ann
from birdcore.data.dataset import load_dataset
from birdcore.inference import catalog
from birdcore.submission.submit import make_submission
from birdcore.submission.table import (
    build_submission,
    evaluate_submission,
    write_submission,
)

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
INSPECT = REPO / "app" / "pages" / "6_Inspection.py"
ANNOTATE = REPO / "app" / "pages" / "7_Annotation.py"
SUBMIT = REPO / "app" / "pages" / "8_Submission.py"
TIMEOUT = 120  # model loading and scoring on 2 shared cores


def start(script: Path, **state) -> AppTest:
    return start_page(script, TIMEOUT, **state)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data, runs = tiny_trained(tmp_path_factory)
    ds = load_dataset(data)
    ref = catalog.find_models([runs], None, birdnet=False)[0]
    return ds, runs, ref, catalog.load_model(ref, "torch")


@pytest.fixture(scope="module")
def other_dataset(env, tmp_path_factory):
    """The same audio with other species codes (t0sq1 …): the trained model does not fit it."""
    ds = env[0]
    root = tmp_path_factory.mktemp("other") / "data"
    shutil.copytree(ds.root, root, ignore=shutil.ignore_patterns("annotations"))
    for name in ("train_metadata.csv", "scored_birds.json", "test.csv", "test_labels.csv", "sample_submission.csv"):
        (root / name).write_text((root / name).read_text().replace("sp1", "sq1"))
    for d in (root / "train_audio").iterdir():
        d.rename(d.with_name(d.name.replace("sp1", "sq1")))
    return root


@pytest.fixture(autouse=True)
def app_env(env, tmp_path, monkeypatch):
    ds, runs = env[0], env[1]
    monkeypatch.setenv("BIRDCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIRDCORE_DATA", str(ds.root))
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: False)  # the BirdNET extra is optional


# Dataframes without selection carry no element id in AppTest: find them by their columns.
FRAMES = {"insp_top": ["species", "common_name", "prob"], "sub_table": ["row_id", "target"]}


def frame(at: AppTest, key: str):
    found = [d.value for d in at.dataframe if list(d.value.columns[:len(FRAMES[key])]) == FRAMES[key]]
    assert found, f"no dataframe {key!r}"
    return found[0]


@pytest.fixture
def media(monkeypatch) -> dict:
    """Media id → the bytes the page handed to Streamlit (downloads, audio): AppTest drops its media
    store after each run, so keep a copy of what is added."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    loaded, real = {}, MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        file_id = real(self, path_or_data, mimetype, kind, filename)
        loaded[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return loaded


def download_data(at: AppTest, key: str, media: dict) -> bytes:
    """The bytes behind the download button `key` of the last run (see the `media` fixture)."""
    dl = next(d for d in at.get("download_button") if d.proto.id.endswith(key))
    return media[Path(dl.proto.url).stem]


def save_next(at: AppTest) -> None:
    [b for b in at.button if b.label == "Save & next"][0].click().run()


def audio_url(at: AppTest) -> str:
    """The window player's page (its WAV and picture are data: URLs inside it)."""
    return player_html(at)


def player_html(at: AppTest) -> str:
    found = [h.proto.srcdoc for h in at.get("iframe") if "bc-player" in h.proto.srcdoc]
    assert len(found) == 1, "no window player"
    return found[0]


def player_picture(html: str) -> np.ndarray:
    """The picture inside a player's HTML (a PNG data: URL) as an RGB array."""
    import base64
    import io

    from PIL import Image

    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


# ---- page 6: inspection ------------------------------------------------------------------------------
def grids(at: AppTest) -> list:
    """The probability grids (`st.dataframe(..., key="insp_heatmap")`) of the last run."""
    return [d for d in at.dataframe if d.proto.id.endswith("-insp_heatmap")]


def grid(at: AppTest):
    """The probability grid as (values, shown texts, headers): the numbers and the Styler's display
    values (species × window label), and column name → header drawn."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    found = grids(at)
    assert len(found) == 1, "no probability grid"
    proto = found[0].proto
    values = found[0].value
    shown = convert_arrow_bytes_to_pandas_df(proto.arrow_data.styler.display_values)
    shown.index, shown.columns = values.index, values.columns
    config = json.loads(proto.columns) if proto.columns else {}
    headers = {c: (config.get(c) or {}).get("label") or c for c in values.columns}
    return values, shown, headers


def picture(at: AppTest, media: dict) -> np.ndarray:
    """The whole-recording spectrogram picture (the page's only st.image) as an RGB array."""
    import io

    from PIL import Image

    imgs = [i for e in at.get("image") for i in e.proto.imgs]
    assert len(imgs) == 1, "no spectrogram picture"
    return np.asarray(Image.open(io.BytesIO(media[Path(imgs[0].url).stem])).convert("RGB"))


def no_plotly(at: AppTest) -> bool:
    return not at.get("plotly_chart")


def test_inspection_heatmap_is_the_engine_prediction_and_window_choice_works(env, media):
    ds, _, ref, model = env
    at = start(INSPECT)
    assert not at.error and no_plotly(at)  # Plotly's script would cost every page load ~1.7 s
    probs = catalog.recording_probs([model], ds.soundscapes[0])
    cols = [f"{a:g}–{b:g} s" for a, b in zip(probs["start"], probs["end"])]
    values, shown, headers = grid(at)
    # rows = every species (4 classes < 25), "code — name", most active first; columns = the windows
    codes = [r.split(" — ")[0] for r in values.index]
    assert sorted(codes) == sorted(model.classes) and list(values.columns) == cols
    peaks = [probs[c].max() for c in codes]
    assert peaks == sorted(peaks, reverse=True)
    assert values.index[0] == f"{codes[0]} — {ds.common_name(codes[0])}"
    for code, (_, row) in zip(codes, values.iterrows()):
        np.testing.assert_allclose(row.to_numpy(dtype=float), probs[code].to_numpy(), atol=1e-6)
    # ✓ exactly where test_labels.csv says present; every cell shows its probability, 2 decimals
    fid = ds.soundscapes[0].stem
    truth = dict(zip(ds.test_labels["row_id"], ds.test_labels["target"]))
    want = {(b, f"{float(e) - 5:g}–{e} s") for r, t in truth.items() if t and r.startswith(fid + "_")
            for b, e in [(r.split("_")[-2], r.split("_")[-1])]}
    assert want, "the demo soundscape has labelled birds"
    checked = {(code, col) for code, (_, row) in zip(codes, shown.iterrows()) for col in cols
               if str(row[col]).endswith("✓")}
    assert checked == want
    for code, (_, row) in zip(codes, shown.iterrows()):
        assert [str(v).removesuffix(" ✓") for v in row] == [f"{p:.2f}" for p in probs[code]]
    # the chosen window (the first) marked in its header only
    assert [h for h in headers.values() if h.startswith("▶")] == ["▶ 0–5 s"]
    assert "✓ = labelled present" in texts(at.caption)
    assert "autoplay" not in player_html(at) or "if (false)" in player_html(at)  # no sound on arrival
    # the whole recording's spectrogram as a picture: 60 s over 1200 px, a line at each window bound
    pic0 = picture(at, media)
    assert pic0.shape == (240, 1200, 3)
    for x in range(100, 1200, 100):
        assert (pic0[:, x] == (200, 200, 200)).all(), x
    assert (pic0[:, 98:100] == (127, 219, 255)).all() and (pic0[:, 0:2] == (127, 219, 255)).all()
    assert "0–60 s" in texts(at.caption) and "Hz" in texts(at.caption)

    first_top, first_audio = frame(at, "insp_top"), audio_url(at)
    at.select_slider(key="insp_window").set_value(3).run()
    assert "Window 15–20 s" in texts(at.subheader)
    assert [h for h in grid(at)[2].values() if h.startswith("▶")] == ["▶ 15–20 s"]
    top = frame(at, "insp_top")
    engine = ins.top_species(probs.iloc[[3]], model.classes, 0.5, k=8)
    assert top["species"].tolist() == engine["species"].tolist()
    np.testing.assert_allclose(top["prob"], engine["prob"], atol=1e-6)
    assert audio_url(at) != first_audio and not top.equals(first_top)
    # the highlight moved: 15–20 s (px 300–400) bright, the first window dimmed to 40 %
    pic3 = picture(at, media)
    assert (pic3[:, 300:302] == (127, 219, 255)).all() and (pic3[:, 0:2] != (127, 219, 255)).any()
    np.testing.assert_array_equal((pic3[:, 350].astype(float) * 0.4).astype(np.uint8), pic0[:, 350])
    np.testing.assert_array_equal((pic0[:, 50].astype(float) * 0.4).astype(np.uint8), pic3[:, 50])
    assert pic3[:, 350].max() > pic0[:, 350].max()

    # a click on a grid cell (its selection state: row position, column name) picks that window
    at.session_state["insp_heatmap"] = {"selection": {"rows": [], "columns": [], "cells": [(0, "35–40 s")]}}
    at.run()
    assert not at.exception and "Window 35–40 s" in texts(at.subheader)
    assert "if (true) audio.play()" in player_html(at)  # the clicked window plays at once
    assert 'data-start="35.000"' in player_html(at)
    assert [h for h in grid(at)[2].values() if h.startswith("▶")] == ["▶ 35–40 s"]
    at.select_slider(key="insp_window").set_value(1).run()  # the old click is not re-applied
    assert "Window 5–10 s" in texts(at.subheader)
    at.session_state["insp_heatmap"] = {"selection": {"rows": [], "columns": [], "cells": [(1, "species")]}}
    at.run()  # a click on a species name chooses no window
    assert not at.exception and "Window 5–10 s" in texts(at.subheader)

    at.slider(key="insp_thr").set_value(0.0).run()  # everything with prob ≥ 0 counts as detected
    assert frame(at, "insp_top")["detected"].all()


def test_labels_saved_on_annotation_page_show_on_inspection_page(env, tmp_path):
    ds = env[0]
    labels = tmp_path / "labels.csv"
    at = AppTest.from_file(str(REPO / "app" / "Home.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/7_Annotation.py").run()  # as in the app: one session across pages
    at.text_input(key="ann_labels_path").set_value(str(labels)).run()
    at.multiselect[0].set_value(["t3sp1"])  # t3sp1 is not scored: test_labels.csv says nothing about it
    save_next(at)
    at.switch_page("pages/6_Inspection.py").run()
    assert not at.exception and not at.error
    _, shown, _ = grid(at)
    row = shown.loc["t3sp1 — Tone t3sp1"]
    assert str(row["0–5 s"]).endswith(" ✓") and not str(row["5–10 s"]).endswith("✓")
    assert "annotations" in texts(at.caption) and "t3sp1 (Tone t3sp1)" in texts(at.markdown)
    assert ann.read_annotations(labels)["file_id"].tolist() == [ds.soundscapes[0].stem]


def test_inspection_without_models_still_shows_the_recording(env, tmp_path, monkeypatch, media):
    monkeypatch.setenv("BIRDCORE_RUNS", str(tmp_path / "no-runs"))
    at = start(INSPECT)
    assert "No trained model yet" in texts(at.info)
    assert picture(at, media).shape == (240, 1200, 3) and not grids(at) and no_plotly(at)
    assert player_html(at) and not at.error


def test_inspection_defaults_to_the_best_scored_run_and_never_to_birdnet(env, tmp_path, monkeypatch, media):
    """With BirdNET installed but no run that scored, the page opens on the recording, no error."""
    runs = env[1]
    monkeypatch.setattr("birdcore.pretrained.is_available", lambda: True)
    monkeypatch.setenv("BIRDCORE_RUNS", str(tmp_path / "no-runs"))
    at = start(INSPECT)
    assert not at.error and at.selectbox(key="insp_model").value is None
    assert picture(at, media).size and player_html(at) and not grids(at)
    monkeypatch.setenv("BIRDCORE_RUNS", str(runs))  # the trained run: picked, its score in the label
    at = start(INSPECT)
    ref = at.selectbox(key="insp_model").value
    assert ref is not None and ref.kind == "run" and " · " in ref.label and grids(at)


def test_inspection_training_clip_shows_its_labels_across_its_window(env, media):
    at = start(INSPECT)
    at.radio(key="insp_source").set_value("Training recording").run()
    fn = at.selectbox(key="insp_train").value
    primary = fn.split("/")[0]
    assert not at.error
    values, shown, headers = grid(at)
    n = len(values.columns)
    assert n >= 1 and list(headers.values())[0] == "▶ 0–5 s"
    # the clip's species labelled present in every window (a whole-clip label)
    row = shown.loc[[r for r in shown.index if r.startswith(primary + " — ")][0]]
    assert all(str(v).endswith(" ✓") for v in row)
    assert "train_metadata.csv" in texts(at.caption) and primary in texts(at.markdown)
    # the picture spans the clip's windows, not a sliver of a longer axis: window 1 fills 1/n of it
    pic = picture(at, media)
    width = 1200 // n
    assert pic.shape == (240, 1200, 3)
    assert (pic[:, 0:2] == (127, 219, 255)).all() and (pic[:, width - 2:width] == (127, 219, 255)).all()
    assert f"0–{5 * n:g} s" in texts(at.caption)


def test_inspection_broken_run_folder_is_a_message(env, tmp_path, monkeypatch, media):
    broken = tmp_path / "runs" / "20990101-000000-broken-0000"
    shutil.copytree(env[2].path, broken, ignore=shutil.ignore_patterns("onnx"))
    (broken / "checkpoints" / "best.pt").write_bytes(b"garbage")
    monkeypatch.setenv("BIRDCORE_RUNS", str(tmp_path / "runs"))
    at = start(INSPECT)
    assert "cannot load checkpoint" in texts(at.error) and picture(at, media).size


def test_inspection_model_of_another_dataset_is_a_message(env, other_dataset, monkeypatch):
    monkeypatch.setenv("BIRDCORE_DATA", str(other_dataset))
    at = start(INSPECT)
    assert "none of its 4 classes" in texts(at.error) and "is a species of this dataset" in texts(at.error)


# ---- page 7: annotation -----------------------------------------------------------------------------------
def test_annotation_navigation_save_and_exports(env, tmp_path):
    ds = env[0]
    labels = tmp_path / "labels.csv"
    fid = ds.soundscapes[0].stem
    at = start(ANNOTATE, ann_labels_path=str(labels), ann_annotator="tester")
    assert f"{fid} · 0–5 s  (1/12)" in texts(at.subheader)
    at.button(key="ann_next").click().run()
    assert "5–10 s  (2/12)" in texts(at.subheader)
    at.button(key="ann_prev").click().run()
    assert "0–5 s  (1/12)" in texts(at.subheader) and not labels.exists()  # moving saves nothing

    at.multiselect[0].set_value(["t1sp1"])
    save_next(at)
    assert not at.exception and "5–10 s  (2/12)" in texts(at.subheader)
    saved = ann.read_annotations(labels)
    rows = saved[["file_id", "start", "end", "species", "annotator"]].values.tolist()
    assert rows == [[fid, 0.0, 5.0, "t1sp1", "tester"]]
    assert "1 of 12 windows labelled" in str(at.get("progress")[0].proto.text)

    save_next(at)  # nothing chosen: "checked, empty"
    assert "10–15 s  (3/12)" in texts(at.subheader)
    assert ann.window_species(ann.read_annotations(labels))[(fid, 5.0, 10.0)] == set()

    at.button(key="ann_prev").click().run()
    at.button(key="ann_prev").click().run()
    assert at.multiselect[0].value == ["t1sp1"] and "Saved before: t1sp1." in texts(at.caption)  # back: as saved
    at.button(key="ann_next").click().run()
    assert at.multiselect[0].value == [] and "Saved before: checked, nothing there." in texts(at.caption)
    at.button(key="ann_prev").click().run()

    assert any(d.label.startswith("Raven selection tables (1 file") for d in at.get("download_button"))
    at.button(key="ann_write_truth").click().run()
    truth = (tmp_path / "annotation_labels.csv").read_text().splitlines()
    assert truth[0] == "row_id,target"
    assert sorted(truth[1:]) == sorted([f"{fid}_t0sp1_5,False", f"{fid}_t1sp1_5,True", f"{fid}_t0sp1_10,False",
                                        f"{fid}_t1sp1_10,False"])


def test_annotation_prefill_from_model_and_uncertain_queue(env, tmp_path):
    ds, _, ref, model = env
    at = start(ANNOTATE, ann_labels_path=str(tmp_path / "labels.csv"))
    at.selectbox(key="ann_model").set_value(at.selectbox(key="ann_model").options[1]).run()
    at.slider(key="ann_thr").set_value(0.2).run()
    probs = catalog.recording_probs([model], ds.soundscapes[0])
    want = ins.detections(probs, model.classes, 0.2)[0.0]
    assert at.multiselect[0].value == want
    assert "prob ≥ threshold" in texts(at.caption)

    at.radio(key="ann_mode").set_value("Most uncertain windows (test soundscapes)").run()
    table = catalog.predict_table([model], ds.soundscapes).table
    first = queue.uncertain_windows(table, model.classes, 0.2).iloc[0]
    assert f"{first['file_id']} · {first['start']:g}–{first['end']:g} s  (1/24)" in texts(at.subheader)


def test_annotation_broken_labels_file_is_a_message(env, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file_id,start,end,species,annotator,updated_at\nsc,0,5,t0sp1,a,2026-01-01T00:0")
    at = start(ANNOTATE, ann_labels_path=str(labels))
    assert "truncated" in texts(at.error) and str(labels) in texts(at.error)


# ---- page 8: submission -------------------------------------------------------------------------------------
def test_submission_is_valid_equals_make_submission_and_is_scored(env, tmp_path):
    ds, runs, ref, model = env
    at = start(SUBMIT)
    assert f"{len(ds.test)} rows" in texts(at.markdown)
    at.button(key="sub_predict").click().run()
    assert not at.exception and not at.error
    sub = frame(at, "sub_table")
    assert sub["row_id"].tolist() == ds.test["row_id"].tolist()
    engine, _ = make_submission([ref.path], ds.root)  # no thresholds.json: 0.5 for every class
    assert sub["target"].tolist() == engine["target"].tolist()
    assert "Valid: 48 rows" in texts(at.success)
    metrics = {m.label: m.value for m in at.metric}
    score = evaluate_submission(engine, ds.test_labels, scored=ds.scored)
    assert metrics["BirdCLEF 2022 score"] == f"{score['birdclef2022']:.4f}"
    [download] = at.get("download_button")
    assert download.proto.label == "Download submission.csv"
    written = write_submission(tmp_path / "submission.csv", engine, ds.test).read_bytes()
    # The media URL is a hash of (bytes, mime type, file name): equal URLs mean equal bytes.
    media_id = pytest.importorskip("streamlit.runtime.memory_media_file_storage")._calculate_file_id
    assert download.proto.url.endswith(f"/{media_id(written, 'text/csv', 'submission.csv')}.csv")
    rates = vega(at, "sub_rates").series("species", "value")
    predicted, labelled = rates["predicted"], rates["labelled (test_labels.csv)"]
    assert sorted(predicted["x"]) == sorted(ds.scored) and labelled["x"] == predicted["x"]
    truth = ds.test.merge(ds.test_labels, on="row_id").groupby("bird")["target"].mean()
    assert labelled["y"] == pytest.approx([truth[b] for b in labelled["x"]])

    at.slider(key="sub_thr_value").set_value(0.1).run()
    low = build_submission(catalog.predict_table([model], ds.soundscapes).table, ds.test, 0.1, model.classes)
    assert frame(at, "sub_table")["target"].tolist() == low["target"].tolist()
    assert {m.label: m.value for m in at.metric}["BirdCLEF 2022 score"] == \
        f"{evaluate_submission(low, ds.test_labels, scored=ds.scored)['birdclef2022']:.4f}"


def test_submission_refuses_or_warns_about_a_thresholds_file_for_other_classes(env, tmp_path):
    ds, runs, ref, model = env
    from birdcore.evaluation.thresholds import Thresholds, save_thresholds

    foreign = save_thresholds(tmp_path / "foreign.json", Thresholds(["zzzzz1", "yyyyy1"], 0.3, {"zzzzz1": 0.2}))
    partial = save_thresholds(tmp_path / "partial.json", Thresholds(model.classes[:1], 0.3, {model.classes[0]: 0.2}))
    at = start(SUBMIT)
    at.button(key="sub_predict").click().run()
    at.radio(key="sub_thr_mode").set_value("A thresholds file").run()
    at.text_input(key="sub_thr_path").set_value(str(foreign)).run()
    assert not at.exception and "foreign.json" in texts(at.error)
    assert not [s for s in at.success if "Valid:" in s.value]  # no submission from a file for other classes
    at.text_input(key="sub_thr_path").set_value(str(partial)).run()
    assert not at.exception and not at.error
    assert f"has no threshold for {len(model.classes) - 1} of {len(model.classes)} classes" in texts(at.warning)
    assert "Valid: 48 rows" in texts(at.success)


def test_submission_errors_are_messages(env, other_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("BIRDCORE_DATA", str(other_dataset))
    at = start(SUBMIT)
    at.button(key="sub_predict").click().run()
    assert not at.exception and "none of its 4 classes" in texts(at.error)
    assert not [d for d in at.dataframe if list(d.value.columns) == FRAMES["sub_table"]]

    monkeypatch.setenv("BIRDCORE_RUNS", str(tmp_path / "none"))
    at = start(SUBMIT)
    assert "No model yet" in texts(at.info)


def test_submission_budget_planner_times_the_chosen_model(env):
    ds, runs, ref, model = env
    at = start(SUBMIT)
    at.number_input(key="sub_budget_audio").set_value(700.0).run()
    at.number_input(key="sub_budget_limit").set_value(10_000.0).run()
    at.button(key="sub_budget_go").click().run()
    assert not at.exception and not at.error
    verdict = texts(at.success)
    assert "700 min of audio" in verdict and "fits" in verdict
    report = at.code[0].value
    assert f"{ref.path}:" in report and "x real time alone" in report  # the engine's lines, this model's timing
    at.number_input(key="sub_budget_limit").set_value(1.0).run()  # a limit no model meets: advice, no crash
    at.number_input(key="sub_budget_audio").set_value(100_000.0).run()
    at.button(key="sub_budget_go").click().run()
    assert not at.exception and "does NOT fit" in texts(at.warning)
    assert "suggestion:" in at.code[0].value


def test_annotation_keys_species_no_bird_undo_and_raven_per_file(env, tmp_path, media):
    import io
    import zipfile

    import json
    import re

    ds = env[0]
    labels = tmp_path / "labels.csv"
    fid = ds.soundscapes[0].stem
    at = start(ANNOTATE, ann_labels_path=str(labels), ann_annotator="tester", ann_quick=["t1sp1", "t2sp1"])
    # Every shortcut clicks a button the page draws (a key that clicks nothing would be a dead key).
    script = next(h.proto.srcdoc for h in at.get("iframe") if "__birdcoreKeys" in h.proto.srcdoc)
    keymap = json.loads(re.search(r"__birdcoreKeys = (\{.*?\});", script).group(1))
    assert {"ArrowRight", "ArrowLeft", "s", "Enter", "n", "0", "u", "ctrl+z", "1", "2"} <= set(keymap)
    buttons = {b.key for b in at.button} | {"ann_save"}
    assert set(keymap.values()) <= buttons, set(keymap.values()) - buttons
    assert keymap["1"] == "ann_key_1" and keymap["n"] == "ann_nobird" and keymap["u"] == "ann_undo"
    assert "3" not in keymap  # two species on keys: no third key

    at.button(key="ann_key_2").click().run()  # species key 2 toggles t2sp1 on …
    assert at.multiselect[0].value == ["t2sp1"]
    at.button(key="ann_key_1").click().run()
    at.button(key="ann_key_2").click().run()  # … and off again
    assert at.multiselect[0].value == ["t1sp1"]
    save_next(at)
    at.button(key="ann_nobird").click().run()  # "no bird": checked and empty, then the next window
    assert "10–15 s  (3/12)" in texts(at.subheader)
    got = ann.window_species(ann.read_annotations(labels))
    assert got == {(fid, 0.0, 5.0): {"t1sp1"}, (fid, 5.0, 10.0): set()}

    at.button(key="ann_undo").click().run()  # undo the "no bird": window 2 unsaved again, and shown
    assert "5–10 s  (2/12)" in texts(at.subheader)
    assert ann.window_species(ann.read_annotations(labels)) == {(fid, 0.0, 5.0): {"t1sp1"}}

    # The player's picture is the spectrogram: the neighbours, the window edges marked, the current
    # window framed, cut to the frequency zoom. No Plotly chart unless the detail view is opened.
    html = player_html(at)
    assert 'data-start="0.000" data-end="15.000"' in html  # 0–15 s around the 5–10 s window
    assert re.findall(r'class="mk" style="left:([\d.]+)%"', html) == ["33.333", "66.667"]  # edges at 5 and 10 s
    assert 'class="hl" style="left:33.333%;width:33.333%"' in html
    assert not at.get("plotly_chart")
    sp = ins.spectrogram(ds.soundscapes[0], 0.0, 15.0, max_frames=None)
    assert player_picture(html).shape[0] == len(sp.freqs)
    at.slider(key="ann_fzoom").set_value((1.0, 8.0)).run()
    in_band = int(((sp.freqs >= 1000) & (sp.freqs <= 8000)).sum())
    assert "1–8 kHz" in player_html(at) and player_picture(player_html(at)).shape[0] == in_band < len(sp.freqs)
    at.session_state["ann_detail"] = True  # what opening the zoomable view in the browser sets
    at.run()
    assert chart(at, "ann_spec")["layout"]["yaxis"]["range"] == [1000.0, 8000.0]
    xs = plotly_array(chart(at, "ann_spec")["data"][0]["x"])
    assert xs[0] < 1.0 and xs[-1] > 14.0
    at.session_state["ann_detail"] = False
    at.run()

    ann.save_window(labels, "other_file", 0, 5, ["t0sp1"])
    at.run()
    dl = next(d for d in at.get("download_button") if d.proto.id.endswith("ann_dl_raven"))
    assert dl.label.startswith("Raven selection tables (2 files")
    from birdcore.annotation import store

    # The page's zip: window 0–5 was saved at full zoom (no band), so it spans the full range,
    # whatever the zoom is now (1–8 kHz).
    with zipfile.ZipFile(io.BytesIO(download_data(at, "ann_dl_raven", media))) as zf:
        assert sorted(zf.namelist()) == sorted([f"{fid}.Table.1.selections.txt", "other_file.Table.1.selections.txt"])
        rows = [line.split("\t") for line in zf.read(f"{fid}.Table.1.selections.txt").decode().splitlines()]
    assert rows[0] == store.RAVEN_FILE_COLUMNS
    assert rows[1] == ["1", "Spectrogram 1", "1", "0.000", "5.000", "0.000", "16000.000", "t1sp1"]


def test_annotation_saves_the_frequency_zoom_as_the_band_undoes_it_and_exports_it(env, tmp_path, media):
    import io
    import zipfile

    ds = env[0]
    labels = tmp_path / "labels.csv"
    fid = ds.soundscapes[0].stem
    at = start(ANNOTATE, ann_labels_path=str(labels), ann_annotator="tester", ann_quick=["t1sp1", "t2sp1"])
    at.slider(key="ann_fzoom").set_value((1.0, 8.0)).run()
    at.button(key="ann_key_1").click().run()
    save_next(at)  # window 0–5: t1sp1, heard in 1–8 kHz
    at.slider(key="ann_fzoom").set_value((0.0, 16.0)).run()
    at.button(key="ann_key_2").click().run()
    save_next(at)  # window 5–10: t2sp1 at full zoom = no band
    saved = ann.read_annotations(labels)
    assert ann.window_bands(saved) == {(fid, 0.0, 5.0): (1000.0, 8000.0), (fid, 5.0, 10.0): None}
    assert labels.read_text().splitlines()[1].endswith(",1000,8000")

    # Back to 0–5: re-save it as "no bird" (key path) in another band, then undo: species and band come back.
    at.button(key="ann_prev").click().run()
    at.button(key="ann_prev").click().run()
    assert "Saved before: t1sp1 (band 1–8 kHz)." in texts(at.caption)
    at.slider(key="ann_fzoom").set_value((2.0, 4.5)).run()
    at.button(key="ann_nobird").click().run()
    saved = ann.read_annotations(labels)
    assert ann.window_species(saved)[(fid, 0.0, 5.0)] == set()
    assert ann.window_bands(saved)[(fid, 0.0, 5.0)] == (2000.0, 4500.0)
    at.button(key="ann_undo").click().run()
    assert not at.exception and "0–5 s  (1/12)" in texts(at.subheader)
    saved = ann.read_annotations(labels)
    assert ann.window_species(saved) == {(fid, 0.0, 5.0): {"t1sp1"}, (fid, 5.0, 10.0): {"t2sp1"}}
    assert ann.window_bands(saved) == {(fid, 0.0, 5.0): (1000.0, 8000.0), (fid, 5.0, 10.0): None}

    # The page's Raven zip: each selection's Low/High Freq is its label's band, else the full range —
    # not the zoom shown now (2–4.5 kHz).
    with zipfile.ZipFile(io.BytesIO(download_data(at, "ann_dl_raven", media))) as zf:
        rows = [line.split("\t") for line in zf.read(f"{fid}.Table.1.selections.txt").decode().splitlines()]
    assert rows[1:] == [["1", "Spectrogram 1", "1", "0.000", "5.000", "1000.000", "8000.000", "t1sp1"],
                        ["2", "Spectrogram 1", "1", "5.000", "10.000", "0.000", "16000.000", "t2sp1"]]
    assert "Low/High Freq = each label's saved band" in texts(at.caption) and "0–16 kHz" in texts(at.caption)
