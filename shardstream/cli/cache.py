"""``shardstream cache``: show or clear the node-local cache of remote shards.

``shardstream cache`` (or ``cache show``) lists each cached set (its content digest) with its
shard count, bytes and last use; ``cache clear`` removes every entry no process is reading and
every staging folder a killed download left. ``--cache-dir`` picks the folder (default:
``$SHARDSTREAM_CACHE``, else ``~/.cache/shardstream/shards``).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from ..read.remote.cache import ShardCache, default_cache_dir

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``cache`` subcommand."""
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the node-local cache of remote shards",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=("show", "clear"),
        default="show",
        help="show the cached sets, or clear the cache (default: show)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help=f"the cache folder (default: {default_cache_dir()})",
    )
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Show or clear the cache; returns 0."""
    cache = ShardCache(root=args.cache_dir or default_cache_dir())
    if args.action == "clear":
        freed = cache.clear()
        print(f"cleared {freed:,} bytes from {cache.root}")
        return 0
    entries = cache.entries()
    sets: dict[str, list] = defaultdict(list)
    for entry in entries:
        sets[entry.path.parent.name].append(entry)
    total = sum(entry.bytes for entry in entries)
    print(f"cache:    {cache.root}")
    print(f"holds:    {len(entries):,} shards of {len(sets):,} sets, {total:,} bytes")
    for digest, held in sorted(sets.items(), key=lambda item: -max(e.last_used for e in item[1])):
        used = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(e.last_used for e in held)))
        size = sum(e.bytes for e in held)
        print(f"  {digest}  {len(held):>6,} shards  {size:>14,} bytes  last used {used}")
    return 0
