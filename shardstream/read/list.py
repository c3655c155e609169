"""ListReader: a reader over samples held in memory, with datadings' key and label handling.

Each sample is a dict. ``"key"`` identifies it (the sample's index when absent) and ``"label"``
holds an optional class label that is replaced by its position in the list of all labels.

Differences from datadings 3.4.7:

- A label that is not in ``labels`` raises :class:`~shardstream.errors.LabelError` when the
  reader is created, not ``KeyError`` on the first ``get`` of that sample.
- A label file is read as UTF-8 and each line is stripped of all surrounding whitespace
  (datadings strips only newlines and spaces).
- ``labels`` may be any iterable (it is turned into a list once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

from natsort import natsorted

from ..errors import DuplicateKeyError, InvalidKeyError, LabelError
from ..format.codec import packb
from .reader import Reader, normalize_index, normalize_range

__all__ = ["ListReader", "load_labels", "noop", "sorted_labels"]

#: Labels given to a reader: a list in the wanted order, or a file with one label per line.
Labels = Iterable[Any] | str | os.PathLike


def noop(sample: dict) -> None:
    """Do nothing; the default ``initfun`` and ``convertfun``."""


def load_labels(path: str | os.PathLike) -> list[str]:
    """Read a label file: one label per line, surrounding whitespace stripped.

    Args:
        path: the label file (UTF-8).

    Returns:
        The labels in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f]


_NO_LABEL = object()


def sorted_labels(samples: Iterable[dict]) -> list[Any]:
    """Collect the distinct ``"label"`` values of ``samples``, naturally sorted (``b2 < b10``).

    Samples without a ``"label"`` field are skipped.

    Args:
        samples: the sample dicts.

    Returns:
        The labels, :func:`natsort.natsorted`.

    Raises:
        LabelError: a sample's label is ``None`` (it cannot be sorted; pass ``labels`` instead)
            or unhashable.
    """
    labels = set()
    for sample in samples:
        label = sample.get("label", _NO_LABEL)
        if label is None:
            raise LabelError(
                f"sample {sample.get('key')!r} has None as label; pass the list of labels to the "
                "reader (labels=[...]) to use None as a label"
            )
        if label is not _NO_LABEL:
            try:
                labels.add(label)
            except TypeError:
                raise LabelError(
                    f"sample {sample.get('key')!r} has the unhashable label {label!r:.80}; "
                    "labels must be hashable (str, int, ...)"
                ) from None
    return natsorted(labels)


class ListReader(Reader):
    """Reader over a sequence of sample dicts held in memory.

    ``initfun`` runs once per sample, in place, when the reader is created; the (possibly
    changed) sample then gets its ``"key"`` set to ``sample.get("key", index)``. On every
    ``get`` the reader makes a shallow copy of the sample; with ``numeric_labels`` it moves
    ``"label"`` to ``"_label"`` and stores the label's position in ``labels`` as ``"label"``,
    then calls ``convertfun`` on the copy.

    Args:
        samples: an indexable sequence of dicts (not a one-shot iterator); kept by reference.
        labels: the labels in the wanted order, or the path of a file with one label per line.
            If ``None`` or empty, the ``"label"`` values of all samples, natsorted.
        numeric_labels: replace labels by their position in ``labels``.
        initfun: ``initfun(sample)`` modifies each sample in place at creation.
        convertfun: ``convertfun(sample)`` modifies the shallow copy returned by ``get``.

    Attributes:
        labels: the list of all labels; a sample's numeric label indexes it.

    Raises:
        DuplicateKeyError: two samples have the same key.
        InvalidKeyError: a sample's key is unhashable.
        LabelError: a sample has a ``None`` label and ``labels`` is not given, or (with
            ``numeric_labels``) a label is not in ``labels``.
    """

    def __init__(
        self,
        samples: Sequence[dict],
        labels: Labels | None = None,
        numeric_labels: bool = True,
        initfun: Callable[[dict], Any] = noop,
        convertfun: Callable[[dict], Any] = noop,
    ) -> None:
        super().__init__()
        self._samples = samples
        self._convertfun = convertfun
        self._numeric_labels = numeric_labels
        self._index: dict[Hashable, int] = {}
        for i, sample in enumerate(samples):
            initfun(sample)
            key = sample.get("key", i)
            try:
                first = self._index.setdefault(key, i)
            except TypeError:
                raise InvalidKeyError(
                    f"sample {i} has the unhashable key {key!r:.80}; keys must be str or int"
                ) from None
            if first != i:
                raise DuplicateKeyError(
                    f"duplicate key {key!r}: samples {first} and {i} both use it; keys must be "
                    "unique"
                )
            sample["key"] = key
        self.labels = _resolve_labels(labels, samples)
        self._label_index: dict[Any, int] = {}
        if numeric_labels:
            for i, label in enumerate(self.labels):
                self._label_index[str(label)] = i
            for i, label in enumerate(self.labels):
                self._label_index[label] = i
            if labels is not None:  # labels collected from the samples are all known
                self._check_labels_known()

    def _check_labels_known(self) -> None:
        for sample in self._samples:
            if "label" in sample and not _is_known(sample["label"], self._label_index):
                raise LabelError(
                    f"sample {sample['key']!r} has label {sample['label']!r}, which is not in "
                    f"the reader's labels ({len(self.labels)} labels, e.g. "
                    f"{list(self.labels[:5])!r}); add it to labels or pass numeric_labels=False"
                )

    def __len__(self) -> int:
        """Number of samples."""
        return len(self._samples)

    def __contains__(self, key: object) -> bool:
        """Whether a sample has this key."""
        try:
            return key in self._index
        except TypeError:  # unhashable keys are never sample keys
            return False

    def find_key(self, index: int) -> Any:
        """Key of the sample at ``index`` (negative counts from the end).

        Raises:
            IndexError: ``index`` out of range.
        """
        return self._samples[normalize_index(index, len(self._samples))]["key"]

    def find_index(self, key: Any) -> int:
        """Index of the sample with ``key``.

        Raises:
            KeyError: no sample has this key.
        """
        try:
            return self._index[key]
        except TypeError:
            raise KeyError(key) from None

    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """Return a converted shallow copy of the sample at ``index``.

        Args:
            index: sample index; negative counts from the end.
            yield_key: return ``(key, sample)``.
            raw: return the sample packed with msgpack (``bytes``).
            copy: ignored; samples are always fresh copies.

        Returns:
            The sample dict, its msgpack bytes, or ``(key, either)``.

        Raises:
            IndexError: ``index`` out of range.
        """
        sample = dict(self._samples[normalize_index(index, len(self._samples))])
        if self._numeric_labels and "label" in sample:
            sample["_label"] = sample["label"]
            sample["label"] = self._label_index[sample["label"]]
        self._convert(sample)
        key = sample["key"]
        out: dict | bytes = packb(sample) if raw else sample
        return (key, out) if yield_key else out

    def _convert(self, sample: dict) -> None:
        """Finish a sample copy in place before ``get`` returns it (subclasses add loading)."""
        self._convertfun(sample)

    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Iterate over samples ``[start, stop)``, clamped like a slice; arguments as :meth:`get`."""
        start, stop = normalize_range(start, stop, len(self._samples))
        for index in range(start, stop):
            yield self.get(index, yield_key, raw, copy)


def _resolve_labels(labels: Labels | None, samples: Sequence[dict]) -> list[Any]:
    if isinstance(labels, (str, os.PathLike)):
        return load_labels(labels)
    labels = [] if labels is None else list(labels)
    return labels or sorted_labels(samples)


def _is_known(label: Any, label_index: dict[Any, int]) -> bool:
    try:
        return label in label_index
    except TypeError:  # unhashable label
        return False
