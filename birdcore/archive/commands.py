"""`birdcore embed` and `birdcore search`: the archive's command line, registered by `register(sub)`.

`birdcore.cli` adds them through its `_EXTRA_COMMANDS` list; the option types and the progress bar
are the CLI's own (`birdcore.cli_options`). User errors raise `BirdcoreError`
subclasses, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from birdcore.cli_options import THREADS, check_output_dir, number, progress_bar
from birdcore.errors import ConfigError

K = number(int, 1, hi=100_000)
FILES_PER_BATCH = number(int, 1, hi=100_000)
MAX_SECONDS = 7 * 24 * 3600.0  # a week-long recording; beyond it a span is a typo, not audio
SECONDS = number(float, 0, MAX_SECONDS, unit=" s")


def _cmd_embed(args: argparse.Namespace) -> int:
    from birdcore.archive.embed import EmbedConfig, embed_archive

    check_output_dir(args.archive, "--archive")
    cfg = EmbedConfig(num_threads=args.threads, files_per_batch=args.files_per_batch, build_index=not args.no_index)
    with progress_bar("embed") as bar:
        result = embed_archive(args.sources, args.archive, cfg, progress=bar, ray_address=args.ray)
    for line in result.lines():
        print(line)
    return 0


def format_hits(hits) -> list[str]:
    """The hits as an aligned text table (rank, score, start, end, window id, file)."""
    out = [f"{'rank':>4}  {'score':>7}  {'start_s':>8}  {'end_s':>8}  {'window':>8}  file"]
    for h in hits.itertuples(index=False):
        out.append(f"{h.rank:>4}  {h.score:>7.4f}  {h.start_s:>8g}  {h.end_s:>8g}  {h.window_id:>8}  {h.path}")
    return out


def _cmd_search(args: argparse.Namespace) -> int:
    from birdcore.archive.search import search_archive

    if args.start is not None and args.end is not None and not args.start < args.end:
        raise ConfigError(f"--start {args.start:g} must be before --end {args.end:g}")
    result = search_archive(args.archive, args.query, k=args.k, exact=args.exact, start_s=args.start,
                            end_s=args.end, num_threads=args.threads)
    print(f"query   {result.query}")
    print(f"search  {result.detail}, {result.seconds:.2f} s")
    for note in result.notes:
        print(f"note    {note}")
    for line in format_hits(result.hits):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `embed` and `search` subcommands to the CLI's subparsers."""
    p = sub.add_parser("embed", help="embed every 5-s window of recordings into a searchable archive (BirdNET)")
    p.add_argument("sources", nargs="+", type=Path,
                   help="dataset folders (train_metadata.csv: train_audio + test_soundscapes), folders of recordings"
                        " (sub-folders included) or audio files")
    p.add_argument("--archive", required=True, type=Path, help="archive folder (created when new; re-runs add only"
                                                                 " new or changed files)")
    p.add_argument("--threads", type=THREADS, default=2, help="CPU threads for BirdNET (default 2)")
    p.add_argument("--files-per-batch", type=FILES_PER_BATCH, default=16,
                   help="files per commit: a kill loses at most one batch (default 16)")
    p.add_argument("--no-index", action="store_true", help="skip updating the approximate index (search builds it)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="embed on a running Ray cluster (HOST:PORT of its head, or auto); needs the Ray extra, and"
                        " on several machines the embedding cache ($BIRDCORE_EMBEDDING_CACHE) and the recordings"
                        " must be on a folder shared at the same path by every node")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("search", help="the archive windows most similar to a query clip")
    p.add_argument("--archive", required=True, type=Path, help="archive folder made by `birdcore embed`")
    p.add_argument("--query", required=True, type=Path, help="audio file; its first 5-s window unless --start/--end")
    p.add_argument("--start", type=SECONDS, default=None, help="query span start (s): the windows overlapping the"
                                                               " span are averaged")
    p.add_argument("--end", type=number(float, 0, MAX_SECONDS, lo_open=True, unit=" s"), default=None,
                   help="query span end (s)")
    p.add_argument("-k", type=K, default=10, help="how many hits (default 10)")
    p.add_argument("--exact", action="store_true", help="brute-force cosine over every window (default: the"
                                                        " approximate index)")
    p.add_argument("--threads", type=THREADS, default=2, help="CPU threads for BirdNET (default 2)")
    p.set_defaults(func=_cmd_search)
