"""App timings under Streamlit's AppTest (no browser): page renders and EDA filter changes.

    .venv/bin/python benchmarks/bench_app.py [--repeats 5] [--check] [--json out.json]

1. First render of every page (Home + app/pages/N_*.py) on the demo dataset, two ways:
   - cold: a fresh Python process (imports of pandas/plotly/birdcore included, no caches) —
     what the first visitor of a newly started server waits for;
   - warm: a new session in a process that has rendered the app before, with Streamlit's caches
     and the on-disk duration cache cleared — what every later first visit costs.
   Target ≤ 2 s.
2. EDA on the real 14,852-row BirdCLEF 2022 metadata (../shared): the first render (CSV parsed),
   then filter changes — pick two species, narrow the rating range, clear, scored only, all
   again — each rerun timed. Targets ≤ 2 s and ≤ 1 s.
3. Preview re-roll (target ≤ 1 s) and, with `--runs DIR` holding a finished run, the thresholds
   page's global slider (target ≤ 0.5 s).

`--check` exits 1 when a target is missed. Settings and caches go to a temporary $BIRDCORE_HOME.

    .venv/bin/python benchmarks/bench_app.py --chromium [--pages EDA,Training] [--runs DIR]
    .venv/bin/python benchmarks/bench_app.py --chromium --compare ../before --pages EDA --repeats 3 [--runs DIR]

4. `--chromium`: what a person waits for, in headless Chromium (Playwright's Python API driving the
   system /usr/bin/chromium, launched as tests/browser/conftest.py does). First Streamlit's own floor:
   a one-line page served the same way (no app can paint before it). Then for every page a fresh
   server on 127.0.0.1 — started as `make app` does (app/serve.py: imports, then `streamlit run`;
   `--plain`: `streamlit run app/Home.py`, imports on the first visit) — serves the demo dataset,
   its start-up time is printed, and the page is opened twice:
   - cold: the first visit on the new server (its Python imports and caches included);
   - warm: a new browser session on the same server;
   - again: a second visit in one browser session (new tab, the browser's cache warm);
   - from Home's sidebar: a click on the page's link in a settled Home, 3 s after it settled, in the
     same tab (the way a user moves between pages).
   Each prints first paint (ms from navigation start until the first element of the page's body is
   visible) and settled (until Streamlit's running indicator is gone, no element shows Streamlit's
   loading skeleton and every chart is drawn, held for 1 s). Then, on a server with the real BirdCLEF 2022 metadata, EDA interactions (search, show all,
   log scale, a species, scored only, tabs, map zoom, table page) from the action to
   settled (timed from the input reaching the page; the page's sections are lazy tabs, so opening one is
   an interaction too; a fragment rerun does not flip Streamlit's
   script state, so "settled" there means every chart redrawn and nothing changing for 1 s).
   Targets: first paint ≤ 1 s, settled ≤ 2 s, interaction ≤ 1 s.
5. `--chromium --compare CHECKOUT`: before/after. The page loads of item 4 for CHECKOUT's app (e.g. a
   `git worktree` of an earlier commit) and for this one's, alternating which goes first in each of
   `--repeats` rounds; medians printed. One run after the other would compare two different machines
   whenever the load on this one changes.
6. `--chromium --floor-mix`: each page against a trivial page drawing the same widgets, tables and charts
   (benchmarks/element_floor.py), new-session loads alternating for --repeats rounds: the trivial page is
   what those kinds of elements cost Streamlit in this browser, the difference the page's own work.
7. `--requests`: what a request costs on a kept-alive connection, as a browser fetches Streamlit's scripts:
   60 of them from a one-line app served by stock `streamlit run` and by `streamlit run` with
   `serve.tcp_nodelay` (as app/serve.py serves), over 1 and over 6 connections; totals and medians printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "birdclef2022"
RENDER_TARGET_S = 2.0
FILTER_TARGET_S = 1.0
TIMEOUT_S = 120


def pages() -> list[Path]:
    """Home plus every app/pages/N_Title.py in page order."""
    found = sorted((int(m.group(1)), p) for p in (REPO / "app" / "pages").glob("*.py")
                   if (m := re.match(r"^(\d+)_.+\.py$", p.name)))
    return [REPO / "app" / "Home.py"] + [p for _, p in found]


def page_titles(chosen: str = "") -> list[str]:
    """Home and every page's title (its URL path) in page order; only those named in `chosen`
    (comma-separated, the --pages option) when it names any."""
    titles = ["Home"] + [p.stem.split("_", 1)[1] for p in pages()[1:]]
    wanted = [t.strip() for t in chosen.split(",") if t.strip()]
    return [t for t in titles if t in wanted] if wanted else titles


def page_url(base: str, title: str) -> str:
    """The URL of page `title` on the server at `base` (Home is the root)."""
    return f"{base}/" + ("" if title == "Home" else title)


def _timed_run(at) -> float:
    t0 = time.perf_counter()
    at.run(timeout=TIMEOUT_S)
    dt = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{at._script_path}: {at.exception[0].value}")
    return dt


def cold_render(page: Path, data: Path, home: Path) -> float:
    """Seconds for the first AppTest run of `page` in a fresh interpreter."""
    code = ("import sys, time; from streamlit.testing.v1 import AppTest;"
            f"at = AppTest.from_file({str(page)!r}, default_timeout={TIMEOUT_S});"
            "t0 = time.perf_counter(); at.run(); dt = time.perf_counter() - t0;"
            "assert not at.exception, at.exception[0].value; print(dt)")
    env = {**os.environ, "BIRDCORE_DATA": str(data), "BIRDCORE_HOME": str(home), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=TIMEOUT_S * 2)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def warm_render(page: Path, home: Path) -> float:
    """Seconds for a new session's first run of `page`, caches cleared, modules already imported."""
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    shutil.rmtree(home / "cache", ignore_errors=True)  # durations are read from the headers again
    return _timed_run(AppTest.from_file(str(page), default_timeout=TIMEOUT_S))


def filter_changes(repeats: int) -> tuple[float, dict[str, list[float]]]:
    """First render (dataset load included) and rerun times of the EDA page on the real metadata
    after each filter change."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["BIRDCORE_DATA"] = str(REAL)
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app" / "pages" / "1_EDA.py"), default_timeout=TIMEOUT_S)
    first = _timed_run(at)  # loads and parses the 14,852-row metadata
    steps = {
        "two species": lambda: at.multiselect(key="eda_species").set_value(["skylar", "houspa"]),
        "rating 3.5–5": lambda: at.slider(key="eda_rating").set_value((3.5, 5.0)),
        "clear species": lambda: at.multiselect(key="eda_species").set_value([]),
        "scored only": lambda: at.checkbox(key="eda_scored_only").check(),
        "all again": lambda: (at.checkbox(key="eda_scored_only").uncheck(),
                              at.slider(key="eda_rating").set_value((0.0, 5.0))),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, change in steps.items():
            change()
            times[name].append(_timed_run(at))
    return first, times


def interaction_times(repeats: int, runs_dir: Path | None) -> dict[str, list[float]]:
    """Rerun times of the preview page's re-roll (target ≤ 1 s) and, when a run with out-of-fold
    predictions exists under `runs_dir`, of the thresholds page's global slider (target ≤ 0.5 s)."""
    from streamlit.testing.v1 import AppTest

    out: dict[str, list[float]] = {"preview re-roll": []}
    at = AppTest.from_file(str(REPO / "app" / "pages" / "2_Preview.py"), default_timeout=TIMEOUT_S)
    _timed_run(at)
    for _ in range(repeats * 3):
        at.button(key="pv_reroll").click()
        out["preview re-roll"].append(_timed_run(at))
    if runs_dir is not None:
        os.environ["BIRDCORE_RUNS"] = str(runs_dir)
        at = AppTest.from_file(str(REPO / "app" / "pages" / "5_Thresholds.py"), default_timeout=TIMEOUT_S)
        _timed_run(at)
        out["threshold slider"] = []
        for i in range(repeats * 3):
            (glob,) = [w for w in at.slider if w.label == "Global threshold"]
            glob.set_value(round(0.05 + 0.04 * i, 3))
            out["threshold slider"].append(_timed_run(at))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the filter sequence (default 3)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--runs", type=Path, default=None,
                    help="runs folder holding a finished run (for the threshold-slider timing)")
    ap.add_argument("--chromium", action="store_true", help="time page loads and EDA interactions in Chromium"
                                                              " instead of AppTest")
    ap.add_argument("--plain", action="store_true", help="with --chromium: serve with plain `streamlit run`"
                                                           " (imports on the first visit) instead of app/serve.py")
    ap.add_argument("--pages", default="", help="with --chromium: comma-separated page titles (default: all)")
    ap.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)  # another checkout's app (before/after)
    ap.add_argument("--floor-mix", action="store_true",
                    help="with --chromium: each page against a trivial page drawing the same elements"
                         " (element_floor.py), --repeats alternating new-session loads, medians printed")
    ap.add_argument("--requests", action="store_true",
                    help="time 60 script requests on kept-alive connections, stock Streamlit against"
                         " app/serve.py's socket mend (no browser)")
    ap.add_argument("--compare", type=Path, default=None, metavar="CHECKOUT",
                    help="with --chromium: page loads of CHECKOUT's app (before) against this one's (after),"
                         " interleaved --repeats times, medians printed")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.chromium and args.compare is not None:
        return compare_main(args)
    if args.chromium and args.floor_mix:
        return floor_mix_main(args)
    if args.requests:
        return requests_main()
    if args.chromium:
        return chromium_main(args)
    home = Path(tempfile.mkdtemp(prefix="bench-app-home-"))
    os.environ["BIRDCORE_HOME"] = str(home)
    results: dict = {"render_s": {}, "filter_s": {}}
    missed: list[str] = []
    demo = None

    try:
        from birdcore.demo import ensure_demo_dataset
    except ImportError:
        print("demo dataset generator (birdcore.demo) not available: page renders skipped")
    else:
        demo = Path(ensure_demo_dataset())
        os.environ["BIRDCORE_DATA"] = str(demo)
        print(f"First render on the demo dataset {demo} (target ≤ {RENDER_TARGET_S:.0f} s)")
        for page in pages():
            cold = cold_render(page, demo, home)
            warm = warm_render(page, home)
            results["render_s"][page.name] = {"cold": round(cold, 3), "warm": round(warm, 3)}
            flag = "" if max(cold, warm) <= RENDER_TARGET_S else "  ← over target"
            missed += [f"render {page.name}"] if flag else []
            print(f"  {page.name:<24} cold {cold:5.2f} s   warm {warm:5.2f} s{flag}")

    if REAL.is_dir():
        first, times = filter_changes(args.repeats)
        results["render_s"]["1_EDA.py (real metadata)"] = {"warm": round(first, 3)}
        flag = "" if first <= RENDER_TARGET_S else "  ← over target"
        missed += ["render EDA on real metadata"] if flag else []
        print(f"EDA first render on the real metadata (load included): {first:5.2f} s{flag}")
        print(f"EDA filter change on the real metadata, {args.repeats} repeats (target ≤ {FILTER_TARGET_S:.0f} s)")
        for name, ts in times.items():
            results["filter_s"][name] = {"median": round(statistics.median(ts), 3), "max": round(max(ts), 3)}
            flag = "" if max(ts) <= FILTER_TARGET_S else "  ← over target"
            missed += [f"filter {name}"] if flag else []
            print(f"  {name:<24} median {statistics.median(ts):5.2f} s   max {max(ts):5.2f} s{flag}")
    else:
        print(f"{REAL} not found: filter timings skipped")

    if demo is not None:
        targets = {"preview re-roll": 1.0, "threshold slider": 0.5}
        os.environ["BIRDCORE_DATA"] = str(demo)
        for name, ts in interaction_times(args.repeats, args.runs).items():
            results.setdefault("interaction_s", {})[name] = {"median": round(statistics.median(ts), 3),
                                                             "max": round(max(ts), 3)}
            flag = "" if max(ts) <= targets[name] else "  ← over target"
            missed += [name] if flag else []
            print(f"{name:<24} median {statistics.median(ts):5.2f} s   max {max(ts):5.2f} s"
                  f" (target ≤ {targets[name]} s){flag}")
        if args.runs is None:
            print("threshold slider: pass --runs DIR with a finished run to time it")

    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if missed:
        print("missed targets: " + ", ".join(missed))
    return 1 if (args.check and missed) else 0


# ---- in Chromium ---------------------------------------------------------------------------------
CHROMIUM = Path(os.environ.get("BIRDCORE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
PAINT_TARGET_S = 1.0
SETTLED_TARGET_S = 2.0
PREWARM_PAUSE_MS = 10_000
QUIET_MS = 1000  # idle this long in a row before a page counts as settled (a callback may start a rerun)
# Time on Home before clicking a sidebar link (a user finds the link; meanwhile the page loads the chart
# libraries' scripts in idle time, ui/warmup.py). A click 0 s after settled lands during that load: EDA from the
# sidebar then took 2.8 s instead of 1.0 s.
READ_MS = 3000

# Installed before any page script: records (ms since navigation start) when the first element of the
# page body with text or a drawn box appears — the app's own content, not Streamlit's empty frame.
FIRST_PAINT_JS = """
window.__bcPaint = null;
(function look() {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const el = main && main.querySelector('[data-testid="stElementContainer"]');
  if (el && el.getBoundingClientRect().height > 0 && (el.innerText.trim() || el.querySelector('svg,canvas,img'))) {
    window.__bcPaint = performance.now();
    return;
  }
  setTimeout(look, 10);
})();
"""

# Resolves with the performance.now() at which the page went idle (script not running, no status
# widget, nothing stale, every chart drawn) and stayed idle for `quiet` ms; -1 after `timeout` ms.
SETTLED_JS = """
async ([quiet, timeout]) => {
  const start = performance.now();
  let calm = null;
  while (performance.now() - start < timeout) {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    const charts = document.querySelectorAll('[data-testid="stPlotlyChart"],[data-testid="stVegaLiteChart"]').length;
    const drawn = document.querySelectorAll(
      '[data-testid="stPlotlyChart"]:has(.main-svg),[data-testid="stVegaLiteChart"]:has(svg.marks)').length;
    // A fragment rerun leaves the script state alone but shows the status widget ("Running…") and
    // marks the fragment's elements stale until their new versions arrive.
    // An element whose code Streamlit is still fetching (Plotly's 4.7 MB chunk, the data grid, …)
    // shows a skeleton in its place: the page is not drawn until the skeleton is gone.
    const busy = document.querySelector('[data-testid="stStatusWidget"]') !== null
      || document.querySelector('[data-stale="true"]') !== null
      || document.querySelector('[data-testid="stSkeleton"],[data-testid="stSkeletonElement"]') !== null;
    if (state === 'notRunning' && charts === drawn && !busy) {
      if (calm === null) calm = performance.now();
      if (performance.now() - calm >= quiet) return calm;
    } else {
      calm = null;
    }
    await new Promise(r => setTimeout(r, 15));
  }
  return -1;
}
"""


# A throwaway app (the floors) served as app/serve.py serves ours, minus its imports: Streamlit's
# `streamlit run` with the sockets mended (serve.tcp_nodelay), so a floor stays below what our pages can reach.
FLOOR_LAUNCH = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import serve; serve.tcp_nodelay();"
                " from streamlit.web.cli import main; sys.argv[0] = 'streamlit'; main(prog_name='streamlit')")


class _Server:
    """`streamlit run app/Home.py` of `root` on a free 127.0.0.1 port, as a context manager. `plain`: stock
    `streamlit run`; `floor`: `streamlit run` with this repo's socket mend (`FLOOR_LAUNCH`); neither: the
    root's app/serve.py where it has one, as `make app` starts it."""

    def __init__(self, root: Path, data: Path, home: Path, runs: Path | None, plain: bool = False,
                 floor: bool = False):
        self.root, self.data, self.home, self.runs, self.plain, self.floor = root, data, home, runs, plain, floor
        self.start_s = float("nan")  # launch until the health check answers

    def __enter__(self) -> "_Server":
        import socket
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "BIRDCORE_DATA": str(self.data), "BIRDCORE_HOME": str(self.home), "HF_HUB_OFFLINE": "1"}
        if self.runs is not None:
            env["BIRDCORE_RUNS"] = str(self.runs)
        self.log = tempfile.TemporaryFile()
        # As `make app` starts it: app/serve.py (imports first, then `streamlit run`) where the checkout has it.
        if self.floor:
            launch = ["-c", FLOOR_LAUNCH, str(REPO / "app"), "run", "app/Home.py"]
        elif (self.root / "app" / "serve.py").exists() and not self.plain:
            launch = ["app/serve.py"]
        else:
            launch = ["-m", "streamlit", "run", "app/Home.py"]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, *launch, "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:  # noqa: S310 (local)
                    if r.read().strip() == b"ok":
                        self.start_s = time.monotonic() - t0
                        self.base = base
                        return self
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        self.__exit__()
        raise RuntimeError("streamlit did not start")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _open(browser, url: str, context=None) -> tuple[float, float]:
    """(first paint, settled) in seconds from navigation start, in a new browser session (or in a new
    tab of `context`, whose HTTP cache then holds Streamlit's scripts from an earlier visit)."""
    own = context is None
    if own:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(FIRST_PAINT_JS)
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit", timeout=TIMEOUT_S * 1000)
        settled = page.evaluate(SETTLED_JS, [QUIET_MS, TIMEOUT_S * 1000])
        paint = page.evaluate("window.__bcPaint")
        if settled < 0:
            raise RuntimeError(f"{url}: not settled within {TIMEOUT_S} s")
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"{url}: {page.locator('[data-testid=stException]').first.inner_text()}")
        return (paint if paint is not None else settled) / 1000, settled / 1000
    finally:
        (context if own else page).close()


def _open_again(browser, url: str) -> tuple[float, float]:
    """(first paint, settled) of a second visit in the same browser session: a new tab, the browser's
    cache warm — what a daily user sees opening the page again."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(FIRST_PAINT_JS)
    try:
        _open(browser, url, context)
        return _open(browser, url, context)
    finally:
        context.close()


def _open_via_nav(browser, base: str, title: str) -> float:
    """Seconds from clicking `title` in the sidebar of Home (settled, then read for READ_MS) to settled, in
    the same tab: how a
    user moves between pages (Streamlit swaps the page over its websocket; scripts already loaded in
    the tab, Plotly's among them once any page drew a chart, are not loaded again)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(base + "/", wait_until="commit", timeout=TIMEOUT_S * 1000)
        if page.evaluate(SETTLED_JS, [QUIET_MS, TIMEOUT_S * 1000]) < 0:
            raise RuntimeError(f"{base}/: not settled within {TIMEOUT_S} s")
        page.wait_for_timeout(READ_MS)
        link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
        return _interact(page, link.click)
    finally:
        context.close()


def page_loads(browser, root: Path, data: Path, runs: Path | None, titles: list[str],
               plain: bool = False) -> dict[str, dict]:
    """Cold (fresh server) and warm (new session) first paint and settled times of each page, and the
    server's start (launch until its health check answers)."""
    out = {}
    for title in titles:
        with _Server(root, data, Path(tempfile.mkdtemp(prefix="bench-home-")), runs, plain) as server:
            url = page_url(server.base, title)
            cold = _open(browser, url)
            warm = _open(browser, url)
            again = _open_again(browser, url)
            nav = _open_via_nav(browser, server.base, title) if title != "Home" else float("nan")
        out[title] = {"cold_paint": cold[0], "cold_settled": cold[1], "warm_paint": warm[0], "warm_settled": warm[1],
                      "again_paint": again[0], "again_settled": again[1], "from_home": nav,
                      "server_start": server.start_s}
    return out


BARE_PAGE = 'import streamlit as st\nst.title("Bare page")\nst.write("One line of text.")\n'


def streamlit_floor(browser) -> dict[str, float]:
    """First paint of a one-line Streamlit page served and opened exactly like the app's pages: what
    Streamlit itself costs in this browser on this machine (JS bundle, websocket, script run, paint),
    below which no page of any Streamlit app can paint."""
    root = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (root / "app").mkdir()
    (root / "app" / "Home.py").write_text(BARE_PAGE, encoding="utf-8")
    with _Server(root, root, root / "home", None, floor=True) as server:
        cold = _open(browser, server.base + "/")
        warm = [_open(browser, server.base + "/") for _ in range(3)]
        again = [_open_again(browser, server.base + "/") for _ in range(3)]
    return {"cold_paint": cold[0], "warm_paint": statistics.median(w[0] for w in warm),
            "again_paint": statistics.median(a[0] for a in again)}


def _interact(page, action) -> float:
    """Seconds from the input reaching the page (`action` returned: Playwright has dispatched the
    click or key, its own locating and typing left out) until settled."""
    action()
    t0 = page.evaluate("performance.now()")
    settled = page.evaluate(SETTLED_JS, [QUIET_MS, TIMEOUT_S * 1000])
    if settled < 0:
        raise RuntimeError("not settled")
    return max(settled - t0, 0.0) / 1000


def eda_interactions(browser, root: Path) -> tuple[tuple[float, float], dict[str, float]]:
    """EDA on the real metadata in Chromium: (cold first paint, settled) of the page and the seconds
    from each action to settled (each one a filter or view not seen before: no cache hits)."""
    with _Server(root, REAL, Path(tempfile.mkdtemp(prefix="bench-home-")), None) as server:
        base = server.base
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(FIRST_PAINT_JS)
        page = context.new_page()
        try:
            page.goto(f"{base}/EDA", wait_until="commit", timeout=TIMEOUT_S * 1000)
            settled = page.evaluate(SETTLED_JS, [QUIET_MS, TIMEOUT_S * 1000]) / 1000
            first = (page.evaluate("window.__bcPaint") / 1000, settled)
            # The server imports torch & co. in the background 2 s after its first page (ui.nav's
            # prewarm); let that finish so the interactions time the page, not that one-off import.
            page.wait_for_timeout(PREWARM_PAUSE_MS)
            side = page.locator('[data-testid="stSidebar"]')

            def type_in(selector: str, text: str):
                box = page.locator(selector).first
                return lambda: (box.fill(text), box.press("Enter"))

            steps = {
                "search 'hawaii'": type_in(".st-key-eda_search input", "hawaii"),
                "clear search": type_in(".st-key-eda_search input", ""),
                "show all 152": lambda: page.locator(".st-key-eda_rank_mode button", has_text="All").click(),
                "log scale": lambda: page.locator(".st-key-eda_log label").first.click(),
                "species skylar": type_in(".st-key-eda_species input", "skylar"),
                "scored only": lambda: side.get_by_text("Scored species only").click(),
                "open the Places tab": lambda: page.get_by_role("tab", name="Places").click(),
                "map scored focus": lambda: page.locator(".st-key-eda_map_view button",
                                                         has_text="Scored species focus").click(),
                "open the Recordings tab": lambda: page.get_by_role("tab", name="Recordings").click(),
                "table page 2": type_in(".st-key-eda_table_page input", "2"),
                "all recordings again": lambda: side.get_by_text("Scored species only").click(),
                "back to the Species tab": lambda: page.get_by_role("tab", name="Species").click(),
            }
            times = {}
            for name, action in steps.items():
                try:
                    times[name] = _interact(page, action)
                except Exception as exc:  # a control missing in an older page: report, go on
                    print(f"  {name}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})")
            if page.locator('[data-testid="stException"]').count():
                raise RuntimeError(page.locator('[data-testid="stException"]').first.inner_text())
            return first, times
        finally:
            context.close()


def chromium_main(args) -> int:
    """The --chromium mode: page loads on the demo dataset and EDA interactions on the real metadata."""
    from playwright.sync_api import sync_playwright

    from birdcore.demo import ensure_demo_dataset

    root = args.root.resolve()
    titles = page_titles(args.pages)
    demo = Path(ensure_demo_dataset())
    results: dict = {"load_s": {}, "eda_real_s": {}}
    missed: list[str] = []
    print(f"Chromium ({CHROMIUM}), app {root}, load average {open('/proc/loadavg').read().split()[:3]}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            floor = streamlit_floor(browser)
            results["streamlit_floor_s"] = {k: round(v, 3) for k, v in floor.items()}
            print(f"Streamlit's own floor (a one-line page, same server flags and browser): cold paint"
                  f" {floor['cold_paint']:5.2f} s, warm paint {floor['warm_paint']:5.2f} s, again"
                  f" {floor['again_paint']:5.2f} s (medians of 3)")
            how = "streamlit run app/Home.py" if args.plain else "app/serve.py (imports before it listens)"
            print(f"Page loads on the demo dataset, served by {how} (targets: first paint ≤ {PAINT_TARGET_S:.0f} s,"
                  f" settled ≤ {SETTLED_TARGET_S:.0f} s)")
            for title, t in page_loads(browser, root, demo, args.runs, titles, args.plain).items():
                results["load_s"][title] = {k: round(v, 3) for k, v in t.items()}
                over = [k for k, v in t.items() if k != "server_start"
                        and v > (PAINT_TARGET_S if "paint" in k else SETTLED_TARGET_S)]  # NaN compares False
                missed += [f"{title} {k}" for k in over]
                print(f"  {title:<12} server up {t['server_start']:5.1f} s | cold paint {t['cold_paint']:5.2f} s"
                      f"  settled {t['cold_settled']:5.2f} s   warm paint {t['warm_paint']:5.2f} s"
                      f"  settled {t['warm_settled']:5.2f} s   again paint {t['again_paint']:5.2f} s"
                      f"  settled {t['again_settled']:5.2f} s"
                      + (f"   from Home's sidebar {t['from_home']:5.2f} s" if t['from_home'] == t['from_home'] else "")
                      + ("  ← over target" if over else ""))
            if (REAL / "train_metadata.csv").exists():
                (paint, settled), times = eda_interactions(browser, root)
                results["eda_real_s"] = {"cold_paint": round(paint, 3), "cold_settled": round(settled, 3),
                                         **{k: round(v, 3) for k, v in times.items()}}
                print(f"EDA on the real metadata: cold paint {paint:5.2f} s  settled {settled:5.2f} s;"
                      f" interactions (target ≤ {FILTER_TARGET_S:.0f} s settled):")
                for name, took in times.items():
                    flag = "  ← over target" if took > FILTER_TARGET_S else ""
                    missed += [f"EDA {name}"] if flag else []
                    print(f"  {name:<22} {took:5.2f} s{flag}")
            else:
                print(f"{REAL} not found: EDA interactions skipped")
        finally:
            browser.close()
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if missed:
        print("missed targets: " + ", ".join(missed))
    return 1 if (args.check and missed) else 0


def compare_main(args) -> int:
    """`--chromium --compare CHECKOUT`: the fresh-load and sidebar times of the chosen pages for
    CHECKOUT's app ("before") and this one's ("after"), alternating which goes first in each of
    --repeats rounds, so that a machine that slows down or speeds up meanwhile weighs on both alike."""
    from playwright.sync_api import sync_playwright

    from birdcore.demo import ensure_demo_dataset

    roots = {"before": args.compare.resolve(), "after": args.root.resolve()}
    titles = [t.strip() for t in args.pages.split(",") if t.strip()] or ["EDA"]
    demo = Path(ensure_demo_dataset())
    keys = ("cold_settled", "warm_settled", "again_settled", "from_home")
    seen: dict[tuple[str, str], list[dict]] = {(r, t): [] for r in roots for t in titles}
    print(f"Chromium ({CHROMIUM}); before = {roots['before']}, after = {roots['after']}; {args.repeats} rounds")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for i in range(args.repeats):
                order = list(roots.items()) if i % 2 == 0 else list(roots.items())[::-1]
                for name, root in order:
                    for title, t in page_loads(browser, root, demo, args.runs, titles).items():
                        seen[(name, title)].append(t)
                        print(f"  round {i + 1} {name:<6} {title:<12} "
                              + "  ".join(f"{k} {t[k]:5.2f} s" for k in keys if t[k] == t[k]))
        finally:
            browser.close()
    print("Medians (settled, s):")
    results = {}
    for (name, title), ts in seen.items():
        med = {k: statistics.median(t[k] for t in ts) for k in keys}
        results.setdefault(title, {})[name] = {k: round(v, 3) for k, v in med.items()}
        print(f"  {title:<12} {name:<6} " + "  ".join(f"{k} {v:5.2f}" for k, v in med.items() if v == v))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def floor_mix_main(args) -> int:
    """`--chromium --floor-mix`: each page's new-session load against a trivial page drawing the same
    widgets, tables and charts (benchmarks/element_floor.py), alternating which goes first in each of
    --repeats rounds; medians of first paint and settled, and the difference: the page's own work."""
    from playwright.sync_api import sync_playwright

    from birdcore.demo import ensure_demo_dataset
    from element_floor import INVENTORY_JS, KINDS, write_app

    titles = page_titles(args.pages)
    demo = Path(ensure_demo_dataset())
    print(f"Chromium ({CHROMIUM}); each page against a trivial page with the same elements, {args.repeats}"
          f" rounds of new-session loads; load average {open('/proc/loadavg').read().split()[:3]}")
    seen: dict[tuple[str, str], list[tuple[float, float]]] = {(w, t): [] for w in ("page", "floor") for t in titles}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            with _Server(args.root.resolve(), demo, Path(tempfile.mkdtemp(prefix="bench-home-")), args.runs) as app:
                mixes = {}
                for title in titles:  # a first visit, settled (the server's caches): what the page draws
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    page = context.new_page()
                    page.goto(page_url(app.base, title), wait_until="commit", timeout=TIMEOUT_S * 1000)
                    page.evaluate(SETTLED_JS, [QUIET_MS, TIMEOUT_S * 1000])
                    mixes[title] = page.evaluate(INVENTORY_JS, list(KINDS))
                    context.close()
                    print(f"  {title:<12} draws " + ", ".join(f"{n} {k[2:]}" for k, n in mixes[title].items()))
                root = write_app(Path(tempfile.mkdtemp(prefix="bench-floor-")), mixes,
                                 args.root.resolve() / ".streamlit" / "config.toml")
                with _Server(root, root, root / "home", None, floor=True) as floor:
                    for title in titles:
                        _open(browser, page_url(floor.base, title))
                    for i in range(args.repeats):
                        for title in titles:
                            order = [("page", app), ("floor", floor)]
                            for which, server in (order if i % 2 == 0 else order[::-1]):
                                seen[(which, title)].append(_open(browser, page_url(server.base, title)))
        finally:
            browser.close()
    print("Medians, s (first paint / settled):")
    results = {}
    for title in titles:
        med = {w: tuple(statistics.median(x[j] for x in seen[(w, title)]) for j in (0, 1)) for w in ("page", "floor")}
        own = med["page"][1] - med["floor"][1]
        results[title] = {"page": med["page"], "floor": med["floor"], "own_settled": round(own, 3), "mix": mixes[title]}
        print(f"  {title:<12} page {med['page'][0]:5.2f} / {med['page'][1]:5.2f}   same elements on a trivial page"
              f" {med['floor'][0]:5.2f} / {med['floor'][1]:5.2f}   the page's own work {own:+5.2f} s settled")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def requests_main(files: int = 60) -> int:
    """`--requests`: seconds for `files` of Streamlit's own scripts fetched over kept-alive HTTP connections
    (1, then 6 at once, as a browser does), from stock `streamlit run` and from `streamlit run` with
    serve.tcp_nodelay; the median request and the total."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    import streamlit

    names = sorted(p.name for p in (Path(streamlit.__file__).parent / "static" / "static" / "js").glob("*.js"))
    paths = [f"/static/js/{n}" for n in names[:files]]
    root = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (root / "app").mkdir()
    (root / "app" / "Home.py").write_text(BARE_PAGE, encoding="utf-8")

    def fetch(base: str, connections: int) -> tuple[float, float]:
        where = urlsplit(base)
        took: list[float] = []

        def worker(share: list[str]) -> None:
            conn = http.client.HTTPConnection(where.hostname, where.port, timeout=TIMEOUT_S)
            try:
                for path in share:
                    t0 = time.perf_counter()
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: HTTP {response.status}")
                    took.append(time.perf_counter() - t0)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(paths[i::connections],)) for i in range(connections)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0, statistics.median(took)

    print(f"{len(paths)} of Streamlit's scripts over kept-alive connections (a one-line app, 127.0.0.1)")
    for label, how in (("stock streamlit run", {"plain": True}), ("with serve.tcp_nodelay", {"floor": True})):
        with _Server(root, root, root / "home", None, **how) as server:
            for connections in (1, 6):
                fetch(server.base, connections)  # the files in the page cache, the connections' first use
                total, median = fetch(server.base, connections)
                print(f"  {label:<24} {connections} connection{'s' if connections > 1 else ' '}: total"
                      f" {total * 1000:6.0f} ms, median request {median * 1000:5.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
