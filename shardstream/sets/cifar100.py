"""``shardstream write CIFAR100``: CIFAR-100, as datadings writes it.

Reads ``cifar-100-python.tar.gz`` in place (its batch pickles are read without running code: see
shardstream.sets._cifar_python) and writes ``train.msgpack`` and ``test.msgpack``.
Samples are ``{"key": "bos_taurus_s_000507.png", "image": <PNG bytes>, "label": <fine label
0-99>, "coarse_label": <0-19>}``. As datadings does, a file name that occurs again in the same
split gets its count appended (``"name.png2"``).

``--layout binary`` writes shardstream's earlier files instead, from ``cifar-100-binary.tar.gz``:
``OUTDIR/cifar100-train.msgpack`` and ``cifar100-test.msgpack`` (plus ``.labels.txt``), keys
``"train/000123"`` (see shardstream.sets._cifar).

See https://www.cs.toronto.edu/~kriz/cifar.html
"""

from __future__ import annotations

from . import _cifar
from ._cifar_python import CIFAR100_PYTHON
from ._cifar_set import CifarSet
from .sources import SourceFile

__all__ = [
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "items",
    "label_names",
    "coarse_label_names",
]

NAME = "CIFAR100"
"""datadings' name of the set (``cifar100`` works too: names are matched in any case)."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (CIFAR100_PYTHON.source,)
"""The archive the set is written from (``--layout binary``: ``cifar-100-binary.tar.gz``)."""

FIELDS = (
    ("key", "str: the image's file name (a repeated name in a split gets its count appended)"),
    ("image", "bytes: RGB PNG, 32 x 32"),
    ("label", "int: the fine class, 0-99"),
    ("coarse_label", "int: the coarse class, 0-19"),
)
"""The sample's keys, in order."""


_SET = CifarSet(python=CIFAR100_PYTHON, binary=_cifar.CIFAR100_LAYOUT)

add_arguments = _SET.add_arguments
items = _SET.items
label_names = _SET.label_names
coarse_label_names = _SET.coarse_label_names
