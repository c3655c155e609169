"""``shardstream write CIFAR10``: CIFAR-10, as datadings writes it.

Reads ``cifar-10-python.tar.gz`` in place (its batch pickles are read without running code: see
shardstream.sets._cifar_python) and writes ``train.msgpack`` (data_batch_1 to 5) and
``test.msgpack``. Samples are ``{"key": "leptodactylus_pentadactylus_s_000004.png", "image":
<PNG bytes>, "label": 0-9}``; the PNG is Pillow's with ``optimize=True``, as datadings writes it.

``--layout binary`` writes shardstream's earlier files instead, from ``cifar-10-binary.tar.gz``:
``OUTDIR/cifar10-train.msgpack`` and ``cifar10-test.msgpack`` (plus ``.labels.txt``), keys
``"train/000123"`` (see shardstream.sets._cifar).

See https://www.cs.toronto.edu/~kriz/cifar.html
"""

from __future__ import annotations

from . import _cifar
from ._cifar_python import CIFAR10_PYTHON
from ._cifar_set import CifarSet
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items", "label_names"]

NAME = "CIFAR10"
"""datadings' name of the set (``cifar10`` works too: names are matched in any case)."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (CIFAR10_PYTHON.source,)
"""The archive the set is written from (``--layout binary``: ``cifar-10-binary.tar.gz``)."""

FIELDS = (
    ("key", "str: the image's file name, e.g. leptodactylus_pentadactylus_s_000004.png"),
    ("image", "bytes: RGB PNG, 32 x 32"),
    ("label", "int: the class, 0-9"),
)
"""The sample's keys, in order."""


_SET = CifarSet(python=CIFAR10_PYTHON, binary=_cifar.CIFAR10_LAYOUT)

add_arguments = _SET.add_arguments
items = _SET.items
label_names = _SET.label_names
