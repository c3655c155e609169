"""What the commands share for URLs: ``--storage-options JSON``, opening URL inputs, the class
names and shard sizes of remote sets, and refusing URL outputs where only local ones work."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DatasetNotFoundError, LocalOutputRequiredError
from ..format.manifest import is_manifest
from ..read.open import open_dataset
from ..read.reader import Reader
from ..read.remote.retry import call_with_retries
from ..read.remote.url import parse_storage_options, protocol_of, url_filesystem
from ..write.remote import is_remote_output

__all__ = [
    "add_storage_options",
    "fsspec_defaults",
    "is_remote",
    "open_input",
    "remote_data_sizes",
    "remote_text",
    "require_local_output",
    "storage_options_of",
]

#: Whether a dataset argument is a URL read through fsspec (``file://`` URLs are paths).
is_remote = is_remote_output


def add_storage_options(parser: argparse.ArgumentParser | Any) -> None:
    """Add ``--storage-options JSON`` (fsspec options for URL inputs and outputs) to a command
    (or an argument group)."""
    parser.add_argument(
        "--storage-options",
        metavar="JSON",
        default=None,
        help="fsspec options for a URL input or output (s3://, gs://, https://), e.g. "
        '\'{"endpoint_url": "http://127.0.0.1:9000", "anon": true}\' (default: none; '
        "credentials and endpoints also come from the environment)",
    )


def storage_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed ``--storage-options`` of ``args`` (``{}`` when not given).

    Raises:
        ConfigTypeError: not a JSON object.
    """
    return parse_storage_options(getattr(args, "storage_options", None))


def open_input(args: argparse.Namespace, spec: str) -> Reader:
    """Open the dataset argument ``spec`` (a path, glob or URL) with the command's
    ``--storage-options``.

    Raises:
        DatasetNotFoundError, RemoteStorageError, MissingDependencyError, ...: as
            :func:`~shardstream.read.open.open_dataset`.
    """
    return open_dataset(spec, storage_options=storage_options_of(args))


@contextmanager
def fsspec_defaults(specs: list[str | None], storage_options: dict[str, Any]) -> Iterator[None]:
    """Make ``storage_options`` fsspec's defaults for the protocols of the URLs in ``specs``
    while the block runs (for commands whose data goes through APIs that take no options, such
    as ``train``): set in ``fsspec.config.conf`` and in ``FSSPEC_<PROTOCOL>`` (JSON), which
    loader processes started meanwhile read. Both are restored afterwards."""
    protocols = sorted({protocol_of(s) for s in specs if s is not None and is_remote_output(s)})
    if not storage_options or not protocols:
        yield
        return
    import fsspec.config  # delayed: fsspec is optional (the remote extras)

    saved = [
        (p, fsspec.config.conf.get(p), os.environ.get(f"FSSPEC_{p.upper()}")) for p in protocols
    ]
    try:
        for protocol, conf, _ in saved:
            merged = {**(conf or {}), **storage_options}
            fsspec.config.conf[protocol] = merged
            os.environ[f"FSSPEC_{protocol.upper()}"] = json.dumps(merged)
        yield
    finally:
        for protocol, conf, env in saved:
            if conf is None:
                fsspec.config.conf.pop(protocol, None)
            else:
                fsspec.config.conf[protocol] = conf
            if env is None:
                os.environ.pop(f"FSSPEC_{protocol.upper()}", None)
            else:
                os.environ[f"FSSPEC_{protocol.upper()}"] = env


def remote_text(url: str, storage_options: dict[str, Any] | None) -> str | None:
    """The UTF-8 text of the object ``url``, or ``None`` if there is none.

    Raises:
        RemoteStorageError: the storage refused or could not be reached.
    """
    fs, path = url_filesystem(url, storage_options)
    try:
        data = call_with_retries(lambda: fs.cat_file(path), url=url, what="read")
    except DatasetNotFoundError:
        return None
    return data.decode("utf-8")


def remote_data_sizes(url: str, storage_options: dict[str, Any] | None) -> list[int]:
    """The data file sizes of the remote set ``url`` (a manifest's shards, or one data file).

    Raises:
        DatasetNotFoundError, RemoteStorageError, CorruptIndexError: as reading the set does.
    """
    if is_manifest(url):
        text = remote_text(url, storage_options)
        if text is None:
            raise DatasetNotFoundError(url)
        try:
            return [int(shard["bytes"]) for shard in json.loads(text)["shards"]]
        except (ValueError, KeyError, TypeError):
            pass  # the reader reports a bad manifest with its own message
    fs, path = url_filesystem(url, storage_options)
    return [int(call_with_retries(lambda: fs.size(path), url=url, what="look at"))]


def require_local_output(command: str, path: str, why: str) -> None:
    """Refuse a URL output where the command writes local files only.

    Args:
        command: the command's name (``export webdataset``, ...).
        path: the output argument.
        why: what would need a local path.

    Raises:
        LocalOutputRequiredError: ``path`` is a URL.
    """
    if is_remote_output(path):
        raise LocalOutputRequiredError(
            f"shardstream {command}: {path}: the output must be a local path ({why}); write it "
            "locally, then copy it to object storage"
        )
