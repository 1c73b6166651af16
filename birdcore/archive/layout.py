"""Where an archive keeps what, and its manifest (`archive.json`): one job, the folder's shape.

```
ARCHIVE/archive.json            format, model tag, embedding size, vector dtype, window rule
        windows.parquet         the committed window table: the single commit point of a batch
        shards/shard-NNNNNN.npy vectors of one batch of files (rows in table order of that batch)
        index/index.json        the vector index's metadata (library, file, digest, count, max id)
        index/<file>            the vector index itself
        archive.lock            held by `embed` (and by an index rebuild) so writers never interleave
```
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from birdcore.atomic_io import atomic_write_json
from birdcore.errors import BirdcoreError

FORMAT_VERSION = 1


class ArchiveError(BirdcoreError):
    """An archive folder is missing, of another format or model, or inconsistent beyond repair."""


@dataclass(frozen=True)
class Manifest:
    """What every vector of an archive was made with; a second `embed` must agree."""

    model_tag: str
    dim: int
    # float32 although the embedding cache's values are float16-exact: numpy has no fast float16
    # matrix product (converting 1M float16 vectors costs ~6 s per exact query), float32 memory-maps
    # straight into BLAS. `EmbedConfig(dtype="float16")` halves the disk for exact-search speed.
    dtype: str = "float32"
    window_s: float = 5.0
    hop_s: float = 1.0
    min_last_s: float = 1.5
    format: int = FORMAT_VERSION


@dataclass(frozen=True)
class ArchiveLayout:
    """The paths inside one archive folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "archive.json"

    @property
    def table(self) -> Path:
        return self.root / "windows.parquet"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def lock(self) -> Path:
        """The path `atomic_io.file_lock` locks (it appends `.lock`)."""
        return self.root / "archive"

    def shard_path(self, shard_id: int) -> Path:
        return self.shards / f"shard-{shard_id:06d}.npy"


def read_manifest(layout: ArchiveLayout) -> Manifest | None:
    """The archive's manifest, None when the folder has none yet (a new archive)."""
    if not layout.manifest.is_file():
        return None
    try:
        data = json.loads(layout.manifest.read_text(encoding="utf-8"))
        return Manifest(**data)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{layout.manifest}: not a birdcore archive manifest ({exc})") from None


def ensure_manifest(layout: ArchiveLayout, wanted: Manifest) -> Manifest:
    """Create the manifest of a new archive, or check an existing one matches `wanted`."""
    have = read_manifest(layout)
    if have is None:
        layout.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(layout.manifest, asdict(wanted))
        return wanted
    if have.format != FORMAT_VERSION:
        raise ArchiveError(f"{layout.manifest}: archive format {have.format}, this birdcore reads {FORMAT_VERSION}")
    diff = [k for k in ("model_tag", "dim", "window_s", "hop_s", "min_last_s")
            if getattr(have, k) != getattr(wanted, k)]
    if diff:
        shown = ", ".join(f"{k}={getattr(have, k)} (asked {getattr(wanted, k)})" for k in diff)
        raise ArchiveError(f"{layout.root}: this archive was made with {shown}; use another --archive folder")
    return have


def require_archive(root: str | Path) -> tuple[ArchiveLayout, Manifest]:
    """An existing archive's layout and manifest, or ArchiveError naming the folder."""
    layout = ArchiveLayout(Path(root))
    manifest = read_manifest(layout)
    if manifest is None:
        raise ArchiveError(f"{layout.root}: not an archive (no archive.json); make one with `birdcore embed SOURCES"
                           f" --archive {layout.root}`")
    return layout, manifest
