"""The ``--layout`` option of the sets whose earlier shardstream files stay available.

``shardstream write CIFAR10``, ``CIFAR100`` and ``ILSVRC2012`` (``imagenet``) write what
datadings writes by default. ``--layout binary`` (CIFAR) or ``--layout shardstream``
(ILSVRC2012) writes the files of shardstream <= 0.x instead: keys such as ``"train/000123"``,
``OUTDIR/<name>-<split>.msgpack`` with a ``.labels.txt`` each. The earlier options ``--indir``,
``--download``, ``--md5`` and ``--split`` are accepted in both layouts where they make sense.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["add_layout_arguments", "is_legacy", "resolve_indir", "legacy_outputs"]


def add_layout_arguments(
    parser: argparse.ArgumentParser, *, legacy: str, reads: str, splits: Sequence[str]
) -> None:
    """Add ``--layout datadings|LEGACY`` and the earlier options.

    Args:
        parser: the set's parser (datadings' options already added).
        legacy: the name of the earlier layout (``"binary"``, ``"shardstream"``).
        reads: what the earlier layout reads, for the help text.
        splits: the splits ``--split`` may name.
    """
    parser.add_argument(
        "--layout",
        choices=("datadings", legacy),
        default="datadings",
        help=f"datadings (default): the files datadings writes; {legacy}: shardstream's "
        f"earlier files from {reads} (keys '<split>/...', OUTDIR/<name>-<split>.msgpack)",
    )
    group = parser.add_argument_group("earlier shardstream options")
    group.add_argument(
        "--indir", dest="indir_option", metavar="DIR", default=None, help="the same as INDIR"
    )
    group.add_argument(
        "--download",
        action="store_true",
        help="accepted for earlier command lines (missing files are downloaded unless "
        "--no-download)",
    )
    group.add_argument(
        "--md5",
        metavar="NAME=MD5",
        action="append",
        default=[],
        help="expect MD5 for source file NAME instead of the official md5 (repeatable)",
    )
    group.add_argument(
        "--split",
        action="append",
        choices=tuple(splits),
        default=None,
        help=f"--layout {legacy} only: convert only this split (repeatable)",
    )


def is_legacy(args: argparse.Namespace) -> bool:
    """Whether ``--layout`` names the earlier layout."""
    return getattr(args, "layout", "datadings") != "datadings"


def resolve_indir(args: argparse.Namespace) -> None:
    """Fold ``--indir`` into ``INDIR`` and refuse ``--split`` outside the earlier layout.

    Raises:
        ConfigError: ``--indir`` and ``INDIR`` name different folders, or ``--split`` is given
            with ``--layout datadings`` (datadings writes every split).
    """
    option = getattr(args, "indir_option", None)
    if option is not None:
        if args.indir not in (".", option):
            raise ConfigError(f"--indir {option} and INDIR {args.indir} differ; give one")
        args.indir = option
    if getattr(args, "split", None) and not is_legacy(args):
        raise ConfigError("--split needs the earlier layout (--layout); datadings writes all")


def legacy_outputs(name: str, splits: Mapping[str, Any]) -> dict[str, Any]:
    """The earlier layout's output file names: ``<name>-<split>.msgpack`` -> items."""
    return {f"{name}-{split}.msgpack": items for split, items in splits.items()}
