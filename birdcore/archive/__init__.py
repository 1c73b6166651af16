"""The embedding archive: every 5-s window of a collection of recordings as a BirdNET embedding,
searchable by similarity (`birdcore embed`, `birdcore search`).

Public API: `embed_archive`, `EmbedConfig`, `EmbedResult`, `search_archive`, `SearchResult`,
`query_vector`, `ArchiveError`; `commands.register` adds the CLI subcommands. Modules: `layout`
(folder shape, manifest), `sources` (SOURCES → files), `window_embeddings` (the BirdNET path),
`window_table` (the commit point), `vector_store` (shards), `vector_index` (FAISS, integrity),
`embed`, `search`, `commands`.

Names are loaded on first use, so `birdcore --help` (which imports `commands`) does not pay for
pandas, faiss or BirdNET.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EmbedConfig": "embed", "EmbedResult": "embed", "embed_archive": "embed",
    "SearchResult": "search", "query_vector": "search", "search_archive": "search",
    "ArchiveError": "layout",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"birdcore.archive.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'birdcore.archive' has no attribute {name!r}")
