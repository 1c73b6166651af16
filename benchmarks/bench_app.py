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
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
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


if __name__ == "__main__":
    sys.exit(main())
