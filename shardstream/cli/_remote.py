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
