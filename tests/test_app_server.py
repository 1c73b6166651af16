"""The real Streamlit server starts from `app/Home.py`, answers its health check and serves the app.

`streamlit_server` is also used by the browser tests (tests/browser/conftest.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0  # app/serve.py imports torch & co. before it listens: ~4 s quiet, more under load


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URL we built)
        return resp.status, resp.read().decode("utf-8", "replace")


@contextmanager
def streamlit_server(data_dir: Path | str, home_dir: Path, log_path: Path) -> Iterator[str]:
    """Run the app as `make app` does (app/serve.py: preload, then `streamlit run app/Home.py`) on a
    free local port; yield its base URL; stop it afterwards.

    The command is an argument list (no shell). BIRDCORE_DATA selects the dataset and
    BIRDCORE_HOME keeps the app's settings away from the user's own. Fails with the server log
    when the health check does not answer "ok" within START_TIMEOUT_S.
    """
    port = free_port()
    cmd = [sys.executable, "app/serve.py",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    env = {**os.environ, "BIRDCORE_DATA": str(data_dir), "BIRDCORE_HOME": str(home_dir), "HF_HUB_OFFLINE": "1"}
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                status, body = _get(f"{base}/_stcore/health")
                if status == 200 and body.strip() == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no health 'ok' within {START_TIMEOUT_S:.0f} s:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_server_starts_and_serves(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train_metadata.csv").write_text("primary_label,secondary_labels,rating,filename\n"
                                             "zzaaa1,[],4.0,zzaaa1/XC1.ogg\n", encoding="utf-8")
    log_path = tmp_path / "streamlit.log"
    with streamlit_server(data, tmp_path / "home", log_path) as base:
        status, body = _get(f"{base}/_stcore/health")
        assert (status, body.strip()) == (200, "ok")
        status, html = _get(f"{base}/")
        assert status == 200 and "<div id=\"root\">" in html.replace("'", '"')
        assert base.startswith("http://127.0.0.1:")
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    # The engine was loaded before the server listened (what `make app` relies on for fast first visits).
    assert log.index("modules loaded in") < log.index("URL"), log[-3000:]
