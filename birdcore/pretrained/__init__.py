"""Optional pretrained models (BirdNET V2.4) for scoring, embeddings and pseudo-labels.

Importing this package is cheap and needs no extra: the TFLite runtime is imported only when a
model is loaded. Check `is_available()` first, or catch `ModelError` from `load_birdnet()`, whose
message names the install command (`pip install .[birdnet]`). BirdNET's model licence is
CC BY-NC-SA 4.0 (non-commercial).
"""

from __future__ import annotations

from birdcore.pretrained.birdnet import (
    CHUNK_SAMPLES,
    SAMPLE_RATE,
    BirdNET,
    embed_chunks,
    embed_windows,
    is_available,
    load_birdnet,
    predict_files,
    score_windows,
    window_plan,
)
from birdcore.pretrained.embedding_cache import EmbeddingCache
from birdcore.pretrained.label_map import birdnet_to_ebird, codes_to_indices, coverage
from birdcore.pretrained.teacher import pseudo_labels, write_pseudo_labels

__all__ = [
    "BirdNET", "CHUNK_SAMPLES", "EmbeddingCache", "SAMPLE_RATE", "birdnet_to_ebird", "codes_to_indices",
    "coverage", "embed_chunks", "embed_windows", "is_available", "load_birdnet", "predict_files", "pseudo_labels",
    "score_windows", "window_plan", "write_pseudo_labels",
]
