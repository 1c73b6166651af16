"""Start the workbench: load the engine's heavy modules, then serve app/Home.py with Streamlit.

    python app/serve.py [--no-preload] [streamlit run options, e.g. --server.port 8502]

`make app` runs this. Plain `streamlit run app/Home.py` also works; the differences are when the
imports are paid and how fast the server answers a browser (`tcp_nodelay`).

Streamlit imports a page's modules when a visitor first opens it. For the pages behind torch and
timm that is 3–6 s on 2 cores, spent while the visitor looks at a half-drawn page (the Preview page
settled 8.6 s after a cold visit, 3.0 s after a warm one). A server that imports them before it
listens — the URL is printed when that is done — serves its first visitor as fast as its hundredth.
The modules are every top-level import of Home.py and app/pages/*.py, found by parsing the files (a
page added later is covered without editing a list), plus the modules the pages import lazily
(`ui.nav.HEAVY_MODULES`).
"""

from __future__ import annotations

import ast
import functools
import importlib
import logging
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent


def page_files() -> list[Path]:
    """Home.py and every page script under app/pages/."""
    return [APP_DIR / "Home.py", *sorted((APP_DIR / "pages").glob("*.py"))]


def top_level_imports(path: Path) -> list[str]:
    """Absolute module names imported at the top level of `path` (`from . import x` skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            # `from ui import charts`: charts may be a submodule rather than a name in ui/__init__
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def modules_to_preload() -> list[str]:
    """The lazily imported heavy modules first (their order matters, see `ui.nav`), then every page's
    top-level imports, each once."""
    sys.path.insert(0, str(APP_DIR))  # `import ui`, as under `streamlit run app/Home.py`
    with _no_runtime_warnings():
        from ui.nav import HEAVY_MODULES

    seen: dict[str, None] = dict.fromkeys(HEAVY_MODULES)
    for page in page_files():
        seen.update(dict.fromkeys(top_level_imports(page)))
    return list(seen)


def preload(names: list[str]) -> tuple[int, float]:
    """Import `names`; returns (modules imported, seconds). A name that is not a module (an attribute
    from `from x import y`) or that fails to import is skipped: its page shows that error itself."""
    t0 = time.perf_counter()
    with _no_runtime_warnings():
        done = _import_all(names)
    return done, time.perf_counter() - t0


@contextmanager
def _no_runtime_warnings():
    """Decorating a function with st.cache_data before the runtime exists logs "No runtime found" once
    per function: harmless (the cache storage is chosen on the first call, under the runtime), so muted.
    Streamlit sets a level on each of its loggers, so the parent's level would not reach them."""
    from streamlit.logger import get_logger

    # …and a cached call outside a script run (the default model, `warm_model`) logs "missing
    # ScriptRunContext" for its spinner, which has no page to show on yet.
    quiet = [get_logger(f"streamlit.runtime.caching.{api}") for api in ("cache_data_api", "cache_resource_api")]
    quiet.append(get_logger("streamlit.runtime.scriptrunner_utils.script_run_context"))
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


def _import_all(names: list[str]) -> int:
    done = 0
    for name in names:
        try:
            importlib.import_module(name)
            done += 1
        except ImportError:
            continue
        except Exception as exc:  # noqa: BLE001 — a broken optional part must not stop the server
            print(f"birdcore: preloading {name} failed ({type(exc).__name__}: {exc}); its page will say more",
                  file=sys.stderr)
    return done


def warm_model() -> None:
    """Load the model the scoring pages open on (`ui.models.warm_default_model`) before serving, so a new
    server's first visit to Inspection does not wait for it. Any failure is only reported: the page
    says more when it is opened."""
    t0 = time.perf_counter()
    try:
        with _no_runtime_warnings():
            from ui.models import warm_default_model

            label = warm_default_model()
    except Exception as exc:  # noqa: BLE001 — a broken run or dataset must not stop the server
        print(f"birdcore: the default model was not loaded ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    if label:
        print(f"birdcore: default model {label} loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
              flush=True)


def tcp_nodelay() -> bool:
    """Make the server's connections send at once (TCP_NODELAY), as asyncio means them to.

    Streamlit 1.67 binds its listening socket itself as `socket.socket(family=…)`, whose `proto` is 0.
    asyncio turns Nagle's algorithm off only on sockets whose `proto` is IPPROTO_TCP, so on every accepted
    connection it stayed on: a response written in two parts (headers, then the file) waited for the
    browser's delayed ACK, 40 ms, on every request of a kept-alive connection. A fresh page load fetches
    ~60 scripts and each new kind of element ~10–40 more, six at a time: 44 ms per request against 1.5 ms
    with it off (benchmarks/bench_app.py --requests; --chromium for the page loads). Re-wrapping the bound socket
    lets the kernel report its real protocol; nothing else changes. Returns whether it was applied (False
    when this Streamlit binds its sockets some other way: then there is nothing to mend here)."""
    try:
        from streamlit.web.server.starlette import starlette_server
    except ImportError:
        return False
    bind = getattr(starlette_server, "_bind_socket", None)
    if bind is None or getattr(bind, "birdcore_tcp", False):
        return bind is not None

    @functools.wraps(bind)
    def bind_tcp(*args, **kwargs):
        sock = bind(*args, **kwargs)
        if sock.type == socket.SOCK_STREAM and sock.proto == 0:
            blocking = sock.getblocking()
            sock = socket.socket(fileno=sock.detach())  # family, type and protocol read back from the kernel
            sock.setblocking(blocking)
        return sock

    bind_tcp.birdcore_tcp = True
    starlette_server._bind_socket = bind_tcp
    return True


def main(argv: list[str] | None = None) -> int:
    """Preload (unless --no-preload), then hand the remaining arguments to `streamlit run app/Home.py`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--no-preload" in args:
        args.remove("--no-preload")
    else:
        print("birdcore: loading the engine (torch, timm, pandas, plotly) before serving …", file=sys.stderr,
              flush=True)
        done, took = preload(modules_to_preload())
        print(f"birdcore: {done} modules loaded in {took:.1f} s", file=sys.stderr, flush=True)
        warm_model()
    tcp_nodelay()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", "run", str(APP_DIR / "Home.py"), *args]
    return streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main())
