"""The active-learning loop on an embedding archive (`birdcore label`, `queue`, `retrain`,
`export-labels`): label archive windows for a species, a review queue from the current head,
retrain the BirdNET-started head through an ordinary `birdnet-head` run, re-score the archive from
its stored vectors, and export the labels to the rest of the workbench.

Public API: `label_windows`, `read_loop_labels`, `review_queue`, `retrain`, `LoopRound`,
`read_rounds`, `latest_scores`, `LoopError` (module `loop`); `export_dataset`,
`export_labels_table`, `export_raven` (module `export`); `commands.register` adds the CLI
subcommands. Names are loaded on first use, so `birdcore --help` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "label_windows": "loop", "read_loop_labels": "loop", "review_queue": "loop", "retrain": "loop",
    "LoopRound": "loop", "read_rounds": "loop", "latest_scores": "loop", "LoopError": "loop",
    "labels_path": "loop",
    "export_dataset": "export", "export_labels_table": "export", "export_raven": "export",
}

__all__ = [
    "LoopError", "LoopRound", "export_dataset", "export_labels_table", "export_raven", "label_windows",
    "labels_path", "latest_scores", "read_loop_labels", "read_rounds", "retrain", "review_queue",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"birdcore.agile.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'birdcore.agile' has no attribute {name!r}")
