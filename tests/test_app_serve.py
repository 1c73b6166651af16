"""app/serve.py: which modules the launcher loads before Streamlit serves, and that a bad one is skipped."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "app"))

import serve  # noqa: E402


def test_top_level_imports_are_parsed_not_executed(tmp_path):
    page = tmp_path / "9_Page.py"
    page.write_text(
        "import os, json as j\n"
        "from pathlib import Path\n"
        "from ui import charts, figures  # submodules or names\n"
        "from . import sibling\n"
        "raise SystemExit('a page is never run by the launcher')\n"
        "def later():\n"
        "    import torch\n", encoding="utf-8")
    assert serve.top_level_imports(page) == ["os", "json", "pathlib", "pathlib.Path", "ui", "ui.charts",
                                             "ui.figures"]


def test_every_page_import_and_the_heavy_modules_are_preloaded():
    names = serve.modules_to_preload()
    from ui.nav import HEAVY_MODULES

    assert names[:len(HEAVY_MODULES)] == list(HEAVY_MODULES)  # scipy.stats before torch (see ui.nav)
    assert len(names) == len(set(names))
    for page in serve.page_files():
        missing = set(serve.top_level_imports(page)) - set(names)
        assert not missing, f"{page.name}: {missing}"
    assert {"torch", "birdcore.inference.catalog", "birdcore.analysis.eda", "ui.charts"} <= set(names)


def test_preload_skips_what_cannot_be_imported(capsys, tmp_path, monkeypatch):
    (tmp_path / "broken_optional_part.py").write_text("raise RuntimeError('no weights here')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    done, took = serve.preload(["json", "no_such_module_xyz", "json.not_a_submodule", "broken_optional_part",
                                "csv"])
    assert done == 2 and took >= 0
    err = capsys.readouterr().err
    assert "broken_optional_part failed (RuntimeError: no weights here)" in err


@pytest.mark.slow
def test_launcher_help_reaches_streamlit_without_preloading():
    out = subprocess.run([sys.executable, "app/serve.py", "--no-preload", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "streamlit run" in out.stdout and "loading the engine" not in out.stderr


def _accepted_nodelay(bind) -> int:
    """TCP_NODELAY of a connection accepted by asyncio on a listening socket from `bind`, as uvicorn serves."""
    import asyncio

    async def run() -> int:
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = bind("127.0.0.1", 0, 8)
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
        return value

    # In a thread of its own: an earlier test (Playwright's sync API) may leave this thread's loop running.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=30)


def test_server_connections_are_sent_without_delay(monkeypatch):
    """Streamlit's own listening socket leaves Nagle's algorithm on for every connection (asyncio only turns
    it off for sockets whose protocol reads IPPROTO_TCP); after `tcp_nodelay` asyncio turns it off."""
    from streamlit.web.server.starlette import starlette_server

    monkeypatch.setattr(starlette_server, "_bind_socket", starlette_server._bind_socket)  # undone after the test
    assert _accepted_nodelay(starlette_server._bind_socket) == 0, (
        "this Streamlit already serves without Nagle's delay: serve.tcp_nodelay can go")
    assert serve.tcp_nodelay() and serve.tcp_nodelay()  # applied once, a second call changes nothing
    assert _accepted_nodelay(starlette_server._bind_socket) != 0
    listener = starlette_server._bind_socket("127.0.0.1", 0, 8)
    try:  # still what Streamlit asked for: listening, non-blocking, inheritable
        assert listener.getblocking() is False and listener.get_inheritable()
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        listener.close()
