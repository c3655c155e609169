"""What the commands share for URL inputs: ``--storage-options JSON`` and a remote ``info``."""

from __future__ import annotations

import argparse
from typing import Any

from ..read.remote.url import parse_storage_options

__all__ = ["add_storage_options", "storage_options_of"]


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--storage-options JSON`` (fsspec options for URL inputs) to a command."""
    parser.add_argument(
        "--storage-options",
        metavar="JSON",
        default=None,
        help="fsspec options for a URL input (s3://, gs://, https://), e.g. "
        '\'{"endpoint_url": "http://127.0.0.1:9000", "anon": true}\' (default: none; '
        "credentials and endpoints also come from the environment)",
    )


def storage_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed ``--storage-options`` of ``args`` (``{}`` when not given).

    Raises:
        ConfigTypeError: not a JSON object.
    """
    return parse_storage_options(getattr(args, "storage_options", None))


def remote_info(args: argparse.Namespace) -> int:
    """``shardstream info URL``: what the manifest (or offsets) tells and sample 0's fields.

    Costs the opening's requests plus one byte range (sample 0); no shard is downloaded whole.

    Raises:
        RemoteStorageError, DatasetNotFoundError: the URL cannot be read.
    """
    from ..read.open import open_dataset
    from .info import describe_value, format_size

    with open_dataset(args.infile, storage_options=storage_options_of(args)) as reader:
        shards = [getattr(shard, "spec", None) for shard in getattr(reader, "shards", [])]
        count = len(reader)
        kind = "manifest" if args.infile.endswith(".manifest") else "packed file"
        print(f"{'path:':<10}{args.infile} ({kind}, {len(shards)} shards, remote)")
        print(f"{'samples:':<10}{count:,}")
        sizes = [spec.bytes for spec in shards if spec is not None and spec.bytes is not None]
        if len(sizes) == len(shards):
            print(f"{'data:':<10}{format_size(sum(sizes))}")
        if count == 0:
            return 0
        key, first = reader.get(0, yield_key=True)
        print(f"fields:   (sample 0, key {key!r})")
        if isinstance(first, dict):
            width = max(len(str(name)) for name in first) if first else 0
            for name, value in first.items():
                kind_text, detail = describe_value(value)
                print(f"  {str(name):<{width}}  {kind_text:<10}  {detail}".rstrip())
    return 0
