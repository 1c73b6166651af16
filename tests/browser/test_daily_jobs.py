"""Issue 16's daily jobs end to end in headless Chromium: filter the EDA (demo data, and the real
BirdCLEF 2022 metadata when ../shared has it), toggle and re-roll a preview without its section
collapsing, label three annotation windows with the keyboard, export Raven tables, click a heatmap
cell and hear that window, move a threshold and save it, build and download a submission, launch a
run and stop it.

Screenshots at 1400 px wide go to tests/artifacts/daily-<page>.png; measured times (seconds until
the page is idle again) to tests/artifacts/daily-timings.txt.
"""

from __future__ import annotations

import importlib.util
import io
import re
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"  # git-ignored
REAL = REPO.parent / "shared" / "data" / "birdclef2022"
TIMINGS: list[str] = []


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wait_until_idle = _load("_browser_pages_daily", HERE / "test_browser.py").wait_until_idle


def timed(page, what: str, action=None) -> float:
    """Seconds from `action` (or now) until the page is idle (script done, every chart drawn)."""
    t0 = time.monotonic()
    if action is not None:
        action()
    page.wait_for_timeout(300)  # let the rerun start before polling for its end
    wait_until_idle(page)
    took = time.monotonic() - t0
    TIMINGS.append(f"{what}: {took:.2f} s")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "daily-timings.txt").write_text("\n".join(TIMINGS) + "\n", encoding="utf-8")
    return took


def screenshot(page, name: str) -> None:
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height + 40, 600), 12000))})
    wait_until_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"daily-{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def watch_requests(page) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    page.on("response", lambda r: seen.append((r.status, r.url)))
    page.on("requestfailed", lambda r: seen.append((0, r.url)))
    return seen


def no_exception(page) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def eda_job(page, base: str, label: str) -> None:
    seen = watch_requests(page)
    timed(page, f"EDA first render ({label})", lambda: page.goto(f"{base}/EDA", wait_until="domcontentloaded"))
    no_exception(page)
    search = page.locator(".st-key-eda_search input")
    timed(page, f"EDA search ({label})", lambda: (search.fill("a"), search.press("Enter")))
    timed(page, f"EDA scored-only filter ({label})",
          lambda: page.locator('[data-testid="stSidebar"]').get_by_text("Scored species only").click())
    no_exception(page)
    # The sections are lazy tabs: the map is drawn once its tab is opened.
    timed(page, f"EDA open the Places tab ({label})", lambda: page.get_by_role("tab", name="Places").click())
    assert page.locator(".st-key-eda_map_view button").count() >= 2
    focus = page.locator(".st-key-eda_map_view button", has_text="Scored species focus")
    if focus.count():
        timed(page, f"EDA map scored focus ({label})", lambda: focus.click())
    # The land outlines come from the app itself; nothing is asked of plotly's CDN.
    assert not [u for _, u in seen if "cdn.plot.ly" in u], [u for _, u in seen if "cdn.plot.ly" in u]
    assert any(s == 200 and "/app/static/topojson/world_" in u for s, u in seen), [u for _, u in seen][-20:]
    no_exception(page)


def test_eda_filter_and_map_on_the_browser_dataset(page, app_url):
    eda_job(page, app_url, "demo")
    screenshot(page, "EDA")


def test_eda_on_the_real_metadata(browser, serve_app, tmp_path):
    if not (REAL / "train_metadata.csv").exists():
        pytest.skip(f"{REAL} not found: the real BirdCLEF 2022 metadata is not on this machine")
    with serve_app(REAL, tmp_path) as base:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            eda_job(page, base, "real 2022 metadata")
            screenshot(page, "EDA-real")
        finally:
            context.close()


def test_preview_toggle_keeps_the_section_open_and_reroll(page, app_url):
    timed(page, "Preview first render", lambda: page.goto(f"{app_url}/Preview", wait_until="domcontentloaded"))
    no_exception(page)
    section = page.locator('[data-testid="stExpander"]', has_text="Waveform").first
    section.locator("summary").click()
    page.wait_for_timeout(300)
    toggle = section.locator('[data-testid="stCheckbox"] label, [data-testid="stToggle"] label').first
    for i in range(2):  # on, then off again: the section must stay open both times
        timed(page, f"Preview toggle {i + 1}", lambda: toggle.click())
        assert section.locator("details").get_attribute("open") is not None, "the section collapsed"
    seed_before = page.locator(".st-key-pv_seed input").input_value()
    timed(page, "Preview re-roll", lambda: page.get_by_role("button", name="Re-roll").click())
    assert int(page.locator(".st-key-pv_seed input").input_value()) == int(seed_before) + 1
    players = [f for f in page.frames if f.locator(".bc-player").count()]
    assert len(players) == 2 and all(f.locator("audio").count() == 1 for f in players)
    no_exception(page)
    screenshot(page, "Preview")


def test_annotation_three_windows_by_keyboard_and_raven_export(page, app_url, tmp_path):
    timed(page, "Annotation first render", lambda: page.goto(f"{app_url}/Annotation", wait_until="domcontentloaded"))
    no_exception(page)
    if page.get_by_text("no audio").count():
        pytest.skip("the browser dataset has no audio to annotate")
    labels = tmp_path / "labels.csv"
    box = page.locator(".st-key-ann_labels_path input")
    timed(page, "Annotation labels file", lambda: (box.fill(str(labels)), box.press("Enter")))
    page.locator("h1").first.click()  # focus off the text field: keys go to the page
    for keys in (("1", "s"), ("n",), ("2", "Enter")):
        for k in keys:
            timed(page, f"Annotation key {k}", lambda k=k: page.keyboard.press(k))
            page.locator("h1").first.click()
    no_exception(page)
    from birdcore.annotation import store as ann

    saved = ann.read_annotations(labels)
    windows = ann.window_species(saved)
    assert len(windows) == 3, saved
    assert sorted(len(v) for v in windows.values()) == [0, 1, 1]  # two with a species, one "no bird"
    timed(page, "Annotation undo", lambda: page.keyboard.press("u"))
    assert len(ann.window_species(ann.read_annotations(labels))) == 2
    timed(page, "Annotation redo by key", lambda: page.keyboard.press("Enter"))
    with page.expect_download() as dl:
        page.locator(".st-key-ann_dl_raven button").first.click()
    data = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names and all(n.endswith(".Table.1.selections.txt") for n in names)
        header = zf.read(names[0]).decode().splitlines()[0].split("\t")
    assert header[:7] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                          "High Freq (Hz)"]
    screenshot(page, "Annotation")


def test_inspection_click_plays_that_window_beside_the_heatmap(page, app_url, browser_runs_dir):
    """Click a cell of the probability grid: the player beside it (not a screen below) loads that
    window and starts playing; then the Thresholds page (charts above the fold; move the global threshold
    by keyboard and save it into the run) and the Training page."""
    timed(page, "Inspection first render", lambda: page.goto(f"{app_url}/Inspection", wait_until="domcontentloaded"))
    no_exception(page)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    heat = page.locator('.st-key-insp_heatmap [data-testid="stDataFrame"]').first
    if not heat.count():
        pytest.skip("no trained model in the browser session's runs folder")
    # The grid is a canvas (glide data grid): click where the second window's column (5–10 s) meets
    # the top species' row. Widths are the page's column_config: species "medium" (200 px), each
    # window "small" (75 px); the header is one row high (35 px, Streamlit's default row height).
    canvas = page.locator('.st-key-insp_heatmap [data-testid="data-grid-canvas"]').first
    box = (canvas if canvas.count() else heat).bounding_box()
    heat_box = heat.bounding_box()
    headers = page.locator(".st-key-insp_heatmap th")  # glide's hidden accessibility table
    assert headers.nth(1).text_content() == "▶ 0–5 s" and headers.nth(2).text_content() == "5–10 s"
    timed(page, "Inspection grid click", lambda: page.mouse.click(box["x"] + 200 + 75 + 75 / 2,
                                                                  box["y"] + 35 + 35 / 2))
    no_exception(page)
    player = page.locator('iframe[srcdoc*="bc-player"]').first
    assert 'data-start="5.000"' in player.get_attribute("srcdoc")
    assert headers.nth(2).text_content() == "▶ 5–10 s"  # the grid marks the window now playing
    pbox = player.bounding_box()
    assert pbox["x"] >= heat_box["x"] + heat_box["width"] - 5 and pbox["y"] < heat_box["y"] + heat_box["height"]
    # Started by itself: it is playing, or already played (a 5-s window may be over by now).
    played = page.frame_locator('iframe[srcdoc*="bc-player"]').locator("audio").evaluate(
        "a => !a.paused || a.played.length > 0")
    assert played, "the clicked window did not start playing"
    # No Plotly chart on the page (its script costs every page load ~1.7 s); the spectrogram is a picture.
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.locator('[data-testid="stImage"] img').count() == 1
    screenshot(page, "Inspection")

    timed(page, "Thresholds first render", lambda: page.goto(f"{app_url}/Thresholds", wait_until="domcontentloaded"))
    no_exception(page)
    hist = page.locator(".st-key-th_hist").first
    if hist.count():
        assert hist.bounding_box()["y"] < 900, "the class charts should be above the fold"
        # The global threshold (0.5, step 0.005): its range input takes the arrow keys.
        page.locator('input[type="range"][aria-label="Global threshold"]').first.focus()
        for _ in range(2):
            timed(page, "Thresholds global threshold key", lambda: page.keyboard.press("ArrowRight"))
        timed(page, "Thresholds save", lambda: page.get_by_role("button", name="Save thresholds.json into the run")
              .click())
        no_exception(page)
        from birdcore.evaluation.thresholds import load_thresholds

        saved = [load_thresholds(p) for p in browser_runs_dir.glob("*/thresholds.json")]
        assert [round(t.global_threshold, 3) for t in saved] == [0.51]
    screenshot(page, "Thresholds")
    timed(page, "Training first render", lambda: page.goto(f"{app_url}/Training", wait_until="domcontentloaded"))
    no_exception(page)
    screenshot(page, "Training")



def test_submission_build_and_download(page, app_url, browser_data_dir, browser_runs_dir):
    """Predict the test soundscapes with the default (best) model and download submission.csv: a
    row_id,target table with one row per test.csv row."""
    if not any(browser_runs_dir.glob("*/checkpoints/best.pt")):
        pytest.skip("no trained model in the browser session's runs folder")
    timed(page, "Submission first render", lambda: page.goto(f"{app_url}/Submission", wait_until="domcontentloaded"))
    no_exception(page)
    predict = page.locator(".st-key-sub_predict button")
    if not predict.count():
        pytest.skip("the browser dataset has no test soundscapes to predict")
    timed(page, "Submission predict", lambda: predict.click())
    no_exception(page)
    with page.expect_download() as dl:
        page.locator(".st-key-sub_download button").first.click()
    assert dl.value.suggested_filename == "submission.csv"
    lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
    test_rows = (browser_data_dir / "test.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "row_id,target" and len(lines) == len(test_rows)
    assert {ln.rsplit(",", 1)[0] for ln in lines[1:]} == {ln.split(",", 1)[0] for ln in test_rows[1:]}
    screenshot(page, "Submission")


def test_training_launch_see_it_running_and_stop(page, app_url, browser_runs_dir):
    """Launch a tiny run from the form, watch the page show it running, press Stop, see it stopped.
    Last in this file: the stopped run it leaves must not change what the tests above see."""
    from birdcore.training.launcher import stop_run
    from birdcore.training.runs import list_runs

    timed(page, "Training first render", lambda: page.goto(f"{app_url}/Training", wait_until="domcontentloaded"))
    no_exception(page)
    if page.locator(".st-key-tr_launch button").is_disabled():
        pytest.skip("Launch is disabled: the browser dataset has no audio to train on")
    form = page.locator('[data-testid="stExpander"]', has_text="Start a new run").first
    if form.locator("details").get_attribute("open") is None:
        form.locator("summary").click()
    page.locator(".st-key-tr_name input").fill("browser-stop")
    page.locator(".st-key-tr_epochs input").fill("50")  # far more than it gets: the test stops it
    page.locator(".st-key-tr_backbone input").fill("resnet10t")
    pretrained = page.locator(".st-key-tr_pretrained input")
    if pretrained.is_checked():
        page.locator(".st-key-tr_pretrained label").click()
    page.locator(".st-key-tr_extra textarea").fill("train.num_workers=0\ndata.clip_seconds=2.0\ntrain.batch_size=12")
    before = {r.run_id for r in list_runs(browser_runs_dir)}
    timed(page, "Training launch", lambda: page.locator(".st-key-tr_launch button").click())
    page.get_by_text("Started run").wait_for(timeout=30_000)
    (run,) = [r for r in list_runs(browser_runs_dir) if r.run_id not in before]
    try:
        deadline = time.monotonic() + 180  # the run's process imports torch and loads the data first
        while run.status()["state"] == "queued" and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert run.status()["state"] == "running", run.status()
        # The monitor refreshes itself every 2 s: its badge turns to "running" without a reload.
        badge = page.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"]',
                             has_text=re.compile(r"running\s*$"))
        try:
            badge.first.wait_for(timeout=30_000)
        except Exception:
            screenshot(page, "Training-not-running")
            raise AssertionError(f"no 'running' badge; run status {run.status()}") from None
        # Never delete a running run. (During the monitor's 2-s refresh Streamlit may briefly hold the
        # old copy of its buttons beside the new one: check every copy.)
        deletes = page.locator(".st-key-tr_delete button").all()
        assert deletes and all(b.is_disabled() for b in deletes)
        screenshot(page, "Training-running")
        # The loss chart grows in place: each 2-s refresh sends new rows under the same spec, and the
        # browser updates the drawn chart rather than drawing a new one (which would flicker).
        line = page.locator(".st-key-tr_loss_chart svg.marks .mark-line path").first
        line.wait_for(timeout=120_000)
        page.evaluate("() => { document.querySelector('.st-key-tr_loss_chart svg.marks').dataset.bcKept = '1'; }")
        first, grown = line.get_attribute("d"), False
        deadline = time.monotonic() + 90
        while not grown and time.monotonic() < deadline:
            page.wait_for_timeout(500)
            grown = line.get_attribute("d") != first
        assert grown, "the loss line did not grow while the run trained"
        assert page.locator(".st-key-tr_loss_chart svg.marks[data-bc-kept='1']").count() == 1, "the chart was redrawn"
        # A click that lands while the 2-s refresh swaps the buttons can be lost with the old copy: the
        # user clicks again, and so does the test (at most three times).
        for _ in range(3):
            page.locator(".st-key-tr_stop button:visible").first.click()
            try:
                page.get_by_text("Stopped after").wait_for(timeout=40_000)
                break
            except Exception:
                continue
        assert run.status()["state"] == "stopped"
        no_exception(page)
        wait_until_idle(page)
        # Streamlit may keep the replaced button (Stop) hidden in the element's place: count what shows.
        assert page.locator(".st-key-tr_resume button:visible").count() in (0, 1)  # offered once a checkpoint exists
    finally:
        stop_run(run)  # the run must never outlive a failed test
