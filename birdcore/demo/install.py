"""Install a freshly built demo dataset into its folder without touching the user's files.

`birdcore.demo.generator` builds a dataset in a hidden temp folder beside `out`; this module brings
it into `out` and guarantees:

- never deletes or overwrites a file the demo did not write. The marker (`MARKER_NAME`) lists a
  checksum per file the demo wrote (`checksum`: sha256, an Ogg file's without its random stream
  serial), so a demo file tells itself apart from a user's. Only paths named like the demo's
  (`OWN_NAME`) are ever replaced or removed, whatever an (edited) marker lists; a user's file or
  folder where a demo file goes, or a link on the way there, stops a repair (`merge_into`) with a
  BirdcoreError before anything changes. Old demo files the new build no longer writes are removed
  only when the old marker lists them unchanged. Only `replace_folder` (`overwrite=True`,
  `--overwrite`) replaces the whole folder, and it logs what that deletes.
- the marker is written last: a folder is complete only once its final marker is in place.
- crash-safe: every file moves in by one rename (a reader sees the old file or the new one, never a
  half-written one); before the first one moves, an "incomplete" marker that still recognises every
  demo file, old or new, is written, so a crash midway leaves a folder the next start repairs. A
  new folder is renamed into place whole.

`check_target` / `check_ensure_target` refuse a folder that is not the demo's to fill, with
messages naming the flag that would replace it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath

from birdcore.atomic_io import atomic_path, atomic_write_json
from birdcore.errors import BirdcoreError

MARKER_NAME = ".birdcore-demo.json"
# The logger generate_demo_dataset documents (its --overwrite warning), kept when this code moved here.
log = logging.getLogger("birdcore.demo.generator")

# ------------------------------------------------------------------------- the marker
# Every path the generator writes (relative, POSIX). Only files named like this are ever replaced or
# removed by a repair, whatever an (edited) marker lists.
OWN_NAME = re.compile(r"(train_metadata|eBird_Taxonomy_v2021|test|sample_submission|test_labels|test_events)\.csv"
                      r"|scored_birds\.json|train_audio/[a-z0-9]+/XC\d+\.ogg|test_soundscapes/soundscape_\d+\.ogg"
                      r"|unlabeled_soundscapes/soundscape_\d+\.ogg|unlabeled_truth\.csv")


def read_marker(out: Path) -> dict | None:
    """The folder's marker, or None when it has none or it cannot be read as a JSON object."""
    try:
        marker = json.loads((out / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _ogg_without_serial(data: bytes) -> bytes | None:
    """`data` with every Ogg page's stream serial number and CRC zeroed; None if not a whole Ogg stream.

    libsndfile gives each stream a random serial number (and so each page another CRC): two builds
    of one seed differ only there, so this is what a demo Ogg's checksum is taken of."""
    buf, pos = bytearray(data), 0
    while pos < len(buf):
        if buf[pos:pos + 4] != b"OggS" or pos + 27 > len(buf):
            return None
        n_segments = buf[pos + 26]
        body = sum(buf[pos + 27:pos + 27 + n_segments])  # the segment table holds the body's lacing values
        buf[pos + 14:pos + 18] = bytes(4)
        buf[pos + 22:pos + 26] = bytes(4)
        pos += 27 + n_segments + body
    return bytes(buf) if pos == len(buf) else None


def checksum(path: Path) -> str:
    """sha256 of the file's bytes; of an Ogg file's bytes without its stream serial (same audio, same sum)."""
    data = path.read_bytes()
    if path.suffix == ".ogg":
        data = _ogg_without_serial(data) or data
    return hashlib.sha256(data).hexdigest()


def written_files(root: Path) -> dict[str, str]:
    """{relative POSIX path: sha256} of every file a build wrote under `root`."""
    return {p.relative_to(root).as_posix(): checksum(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MARKER_NAME}


def _known_hashes(marker: dict | None) -> dict[str, set[str]]:
    """Path -> the checksums of the files the demo wrote there: the marker's `files` and, after an
    interrupted repair, its `earlier_files`. Malformed entries are skipped: they can only make
    fewer files count as the demo's, never more."""
    known: dict[str, set[str]] = {}
    files = (marker or {}).get("files")
    for rel, sha in (files.items() if isinstance(files, dict) else ()):
        if isinstance(rel, str) and isinstance(sha, str):
            known.setdefault(rel, set()).add(sha)
    earlier = (marker or {}).get("earlier_files")
    for rel, shas in (earlier.items() if isinstance(earlier, dict) else ()):
        if isinstance(rel, str) and isinstance(shas, list):
            known.setdefault(rel, set()).update(s for s in shas if isinstance(s, str))
    return known


# ------------------------------------------------------------ whose file is it (repair)
def _linked_folder(out: Path, rel: str) -> str | None:
    """The first folder on the way to `out/rel` that is a link or not a folder (None if all fine).

    The demo never writes through a link: it would write outside `out`, into somebody's files."""
    for parent in reversed(PurePosixPath(rel).parents[:-1]):
        p = out / parent
        if p.is_symlink():
            return f"{parent} (a link where the demo needs a folder)"
        if p.exists() and not p.is_dir():
            return f"{parent} (a file where the demo needs a folder)"
    return None


def _check_dest(out: Path, rel: str, new_sha: str, known: dict[str, set[str]],
                listed: bool = True) -> tuple[str | None, str | None]:
    """(why `out/rel` cannot take the demo's new file, or None; checksum of the demo file there, or None).

    A file there is the demo's when the marker recorded its checksum, or when it holds exactly what
    the demo writes now (e.g. a folder marked before markers listed checksums). Anything else is a
    user's: edited since the demo wrote it, or never written by the demo. `listed` is False for a
    marker without a file list (written before markers had one): it cannot tell which.
    """
    why = _linked_folder(out, rel)
    if why:
        return why, None
    dest = out / rel
    if dest.is_symlink():
        return f"{rel} (a link)", None
    if not dest.exists():
        return None, None
    if not dest.is_file():
        return f"{rel} ({'a folder' if dest.is_dir() else 'not a plain file'})", None
    sha = checksum(dest)
    if sha in known.get(rel, ()) or sha == new_sha:
        return None, sha
    if rel in known:
        return f"{rel} (changed since the demo wrote it)", None
    if not listed:
        return f"{rel} (not what the demo writes now; the marker lists no checksums to tell if it is the demo's)", None
    return f"{rel} (not written by the demo)", None


def _stale_files(out: Path, known: dict[str, set[str]], new_files: dict[str, str]) -> list[str]:
    """Old demo files the new build no longer writes: named like the demo's, listed by the marker
    and unchanged since. Anything else stays."""
    stale = []
    for rel, shas in sorted(known.items()):
        if rel in new_files or not OWN_NAME.fullmatch(rel) or _linked_folder(out, rel):
            continue
        p = out / rel
        if p.is_file() and not p.is_symlink() and checksum(p) in shas:
            stale.append(rel)
    return stale


# ------------------------------------------------------------------- moving files in
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _install_file(src: Path, dest: Path) -> None:
    """Move one finished file into place by a rename: a reader (or a crash) sees the old file or the
    new one, never a half-written one."""
    _fsync_file(src)  # the rename must not reach the disk before the data does
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_path(dest) as part:  # `out` is on another file system (a mount point): copy beside it
            shutil.copyfile(src, part)


def _remove_stale(out: Path, rel: str) -> None:
    path = out / rel
    path.unlink(missing_ok=True)
    if path.parent.parent == out / "train_audio":  # a species folder the demo made; rmdir keeps a non-empty one
        try:
            path.parent.rmdir()
        except OSError:
            pass


def merge_into(tmp: Path, out: Path, marker: dict) -> None:
    """Move the new build's own files from `tmp` into the existing folder `out`, one rename each,
    leaving every other file there alone. BirdcoreError, before anything changes, when a user's file
    or folder sits where a demo file goes."""
    old_marker = read_marker(out)
    known = _known_hashes(old_marker)
    listed = isinstance((old_marker or {}).get("files"), dict)
    new_files: dict[str, str] = marker["files"]
    obstacles, ours = [], {}
    for rel, sha in new_files.items():
        why, existing = _check_dest(out, rel, sha, known, listed)
        if why:
            obstacles.append(why)
        elif existing:
            ours[rel] = existing
    if obstacles:
        raise BirdcoreError(_in_the_way_message(out, obstacles))
    stale = _stale_files(out, known, new_files)
    # Before the first file moves: an "incomplete" marker that still recognises every demo file in the
    # folder, old or new, so a crash from here on is detected and repaired by the next start.
    earlier = {rel: set(shas) for rel, shas in known.items()}
    for rel, sha in ours.items():
        earlier.setdefault(rel, set()).add(sha)
    atomic_write_json(out / MARKER_NAME, marker | {"complete": False,
                                                   "earlier_files": {k: sorted(v) for k, v in earlier.items()}})
    for rel in new_files:
        _install_file(tmp / rel, out / rel)
    for rel in stale:
        _remove_stale(out, rel)
    atomic_write_json(out / MARKER_NAME, marker)  # last: only now is the folder complete


def replace_folder(tmp: Path, out: Path) -> None:
    """overwrite=True: the new build replaces the whole folder; say what that deletes."""
    if out.exists():
        n, examples = _contents(out)
        if n:
            log.warning("demo dataset: replacing %s deletes everything in it: %s", out, _describe(n, examples))
    _swap_into_place(tmp, out)


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------- messages
_COUNT_LIMIT = 10_000  # a message need not walk a huge folder to say "10000+ files"


def _contents(out: Path) -> tuple[int, list[str]]:
    """(number of files under `out`, counted up to _COUNT_LIMIT; the first few of them, relative)."""
    n, examples = 0, []
    for p in out.rglob("*"):
        if p.is_file() or p.is_symlink():
            n += 1
            if len(examples) < 3:
                examples.append(p.relative_to(out).as_posix())
            if n >= _COUNT_LIMIT:
                break
    return n, examples


def _describe(n: int, examples: list[str]) -> str:
    """'3 files: a, b, c' / '12 files: a, b, c…' / '10000+ files: …' / 'no files'."""
    if not n:
        return "no files"
    count = f"{n}+" if n >= _COUNT_LIMIT else str(n)
    return f"{count} file{'s' if n != 1 else ''}: {', '.join(examples)}{'…' if n > len(examples) else ''}"


_REPLACE_HINT = "pass --overwrite (overwrite=True) to replace the whole folder, which deletes everything in it"


def _in_the_way_message(out: Path, obstacles: list[str]) -> str:
    shown = "; ".join(obstacles[:5]) + ("; …" if len(obstacles) > 5 else "")
    return (f"demo dataset folder {out}: cannot complete it without overwriting your files: {len(obstacles)} path(s)"
            f" where the demo writes its own files hold something else: {shown}. Nothing was changed. Move them"
            f" away, write the demo to another folder (another --out), or {_REPLACE_HINT}"
            f" ({_describe(*_contents(out))})")


def check_target(out: Path, overwrite: bool) -> None:
    """generate_demo_dataset: the folder must be empty (or new) unless `overwrite`."""
    if out.exists() and not out.is_dir():
        raise BirdcoreError(f"demo dataset target {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        ours = " (it holds a demo dataset: --if-missing completes it and keeps your other files)" \
            if (out / MARKER_NAME).exists() else ""
        raise BirdcoreError(f"demo dataset folder {out} exists and is not empty{ours}; {_REPLACE_HINT}"
                            f" ({_describe(*_contents(out))}), or choose an empty folder")


def check_ensure_target(out: Path) -> None:
    """ensure_demo_dataset completes only its own folder: a non-empty one without the marker is not."""
    if out.exists() and not out.is_dir():
        raise BirdcoreError(f"demo dataset target {out} exists and is not a folder; choose another path")
    if out.is_dir() and not (out / MARKER_NAME).exists() and any(out.iterdir()):
        raise BirdcoreError(f"demo dataset folder {out} exists, is not empty and has no {MARKER_NAME}: it is not a"
                            f" demo dataset, so it is left alone. Choose another folder (another --out), or"
                            f" {_REPLACE_HINT} ({_describe(*_contents(out))})")
