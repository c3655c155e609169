"""The one implementation of the ``CIFAR10`` and ``CIFAR100`` converters, parametrised by variant.

A :class:`CifarSet` pairs a variant's python-version archive (datadings' layout, the default; see
:mod:`shardstream.sets._cifar_python`) with its binary-version archive (``--layout binary``,
shardstream's earlier files; see :mod:`shardstream.sets._cifar`). The converter modules
:mod:`~shardstream.sets.cifar10` and :mod:`~shardstream.sets.cifar100` bind its methods as their
``add_arguments``, ``items`` and ``label_names``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..write.conversion import SizedItems
from . import _datadings, _layouts
from ._cifar import CifarLayout, CifarSplit, cifar_coarse_label_names, cifar_items
from ._cifar import cifar_label_names as binary_label_names
from ._cifar_python import PythonLayout, split_items

__all__ = ["CifarSet"]


@dataclass(frozen=True, kw_only=True)
class CifarSet:
    """A CIFAR variant as a ``shardstream write`` converter.

    Attributes:
        python: the python-version archive's layout (the default output, as datadings writes it).
        binary: the binary-version archive's layout (``--layout binary``); its ``name``
            (``"cifar10"``) prefixes the earlier layout's output names.
    """

    python: PythonLayout
    binary: CifarLayout

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add datadings' options (``INDIR``, ``-o``, ``-s``, ``--shuffle``) and ``--layout``.

        Args:
            parser: the set's parser.
        """
        _datadings.add_arguments(parser)
        _layouts.add_layout_arguments(
            parser,
            legacy="binary",
            reads=self.binary.source.name,
            splits=tuple(self.binary.splits),
        )

    def items(self, args: argparse.Namespace) -> dict[str, SizedItems | CifarSplit]:
        """The items of each output file, in datadings' order (or the earlier layout's).

        Args:
            args: the parsed options.

        Returns:
            Output file name -> items.

        Raises:
            SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or
                wrong.
            DatasetFormatError: the archive does not have the expected layout.
            UnsafeDataError: a batch pickle refers to anything but a numpy array.
            ConfigError: conflicting options (see
                :func:`~shardstream.sets._layouts.resolve_indir`).
        """
        _layouts.resolve_indir(args)
        if _layouts.is_legacy(args):
            splits = cifar_items(self.binary, args)
            return _layouts.legacy_outputs(self.binary.name, splits)
        outputs: dict[str, SizedItems | CifarSplit] = {**split_items(self.python, args)}
        return outputs

    def label_names(self, args: argparse.Namespace) -> list[str]:
        """``--layout binary``: the (fine) class names, written as ``<output>.labels.txt``;
        else none (datadings writes no names).

        Args:
            args: the parsed options.

        Raises:
            See :meth:`items`.
        """
        _layouts.resolve_indir(args)
        if not _layouts.is_legacy(args):
            return []
        return binary_label_names(self.binary, args)

    def coarse_label_names(self, args: argparse.Namespace) -> list[str]:
        """``--layout binary``: the coarse class names (CIFAR-100's 20; none for CIFAR-10).

        Args:
            args: the parsed options.

        Raises:
            See :meth:`items`.
        """
        _layouts.resolve_indir(args)
        return cifar_coarse_label_names(self.binary, args)
