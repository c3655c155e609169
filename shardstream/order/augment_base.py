"""The Augment base class: a wrapper that changes the order in which a reader is iterated.

Augments keep datadings' interface (context manager, ``len``, ``iter``, ``rawiter``, ``seek``) and
add ``state_dict()`` / ``load_state_dict()`` (the :mod:`.state` contract). Every augment counts a sample as consumed *before*
yielding it, so a state taken after ``k`` yielded samples resumes with sample ``k + 1`` (datadings
counts it only when the iterator is resumed, so breaking out of a loop and iterating again
repeats the last sample).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, SupportsIndex

from ..checks import check_int
from ..errors import ConfigError
from ..read.reader import Reader
from .state import StateCounter, StatefulMixin, StateSpec

__all__ = ["Augment"]


class Augment(StatefulMixin, ABC):
    """Base class of the wrappers that change how a reader's samples are iterated.

    An augment is a context manager that enters and exits the wrapped reader, and ``len(augment)``
    is the wrapped reader's length (also for Range, Repeater and Cycler, as in datadings).
    ``state_dict()`` / ``load_state_dict()`` come from :class:`~.state.StatefulMixin`: a state
    taken after ``k`` yielded samples resumes with sample ``k + 1``.

    Warning:
        Augments are not thread safe. ``seek`` and ``load_state_dict`` affect iterators created
        afterwards; do not interleave an old iterator with them.

    Args:
        reader: the reader (or, for Repeater and Cycler, the augment) to wrap.
    """

    def __init__(self, reader: Reader | Augment) -> None:
        self._reader = reader

    @property
    def reader(self) -> Reader | Augment:
        """The wrapped reader (or augment)."""
        return self._reader

    def __enter__(self) -> Augment:
        self._reader.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self._reader.__exit__(exc_type, exc_val, exc_tb)

    def __len__(self) -> int:
        return len(self._reader)

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    @abstractmethod
    def iter(
        self, yield_key: bool = False, raw: bool = False, copy: bool = True, chunk_size: int = 16
    ) -> Iterator[Any]:
        """Iterate from the current position to the end of the pass.

        Args:
            yield_key: yield ``(key, sample)`` pairs.
            raw: yield msgpack-encoded bytes instead of decoded dicts.
            copy: if False, raw samples may be ``memoryview`` objects into the reader's buffer.
            chunk_size: samples read at once; bigger values can raise throughput and memory use.

        Returns:
            An iterator over the samples.

        Raises:
            ConfigError: ``chunk_size < 1``.
        """

    def rawiter(self, yield_key: bool = False) -> Iterator[Any]:
        """Iterate like :meth:`iter` yielding msgpack-encoded bytes (or ``(key, bytes)``).

        Args:
            yield_key: yield ``(key, bytes)`` pairs.

        Returns:
            An iterator over the encoded samples.
        """
        return self.iter(yield_key=yield_key, raw=True)

    @abstractmethod
    def seek(self, index: int) -> None:
        """Move to the ``index``-th sample of the augment's order.

        Args:
            index: position in the augment's order, counted from the start of its first pass.

        Raises:
            IndexError: ``index`` is negative or past the augment's order.
        """

    @abstractmethod
    def _pass_finished(self) -> bool:
        """Whether the last sample of the current pass has been yielded (or the pass is empty).

        A wrapper that calls :meth:`iter` once per pass (Repeater, Cycler) needs this to know
        whether its next call starts a new pass.
        """


# --- helpers shared by the augment modules ----------------------------------------------------


def require_reader(reader: object, owner: str) -> Reader:
    """Check that ``owner`` wraps a :class:`Reader` (it needs random access).

    Raises:
        ConfigError: ``reader`` is not a Reader.
    """
    if not isinstance(reader, Reader):
        raise ConfigError(
            f"{owner} needs a Reader (random access by index), got {type(reader).__name__}"
        )
    return reader


def require_source(source: object, owner: str) -> Reader | Augment:
    """Check that ``owner`` wraps a :class:`Reader` or an :class:`Augment`.

    Raises:
        ConfigError: ``source`` is neither.
    """
    if not isinstance(source, (Reader, Augment)):
        raise ConfigError(f"{owner} wraps a Reader or an augment, got {type(source).__name__}")
    return source


def check_chunk_size(chunk_size: object) -> int:
    """Return ``chunk_size`` as an int after checking it is a positive integer.

    Raises:
        ConfigError: ``chunk_size`` is not an integer >= 1.
    """
    return check_int(
        chunk_size, "chunk_size", low=1, message="chunk_size must be an integer >= 1, got {value!r}"
    )


def check_seek_index(index: object, limit: int | None, owner: str) -> int:
    """Return ``index`` as an int after checking ``0 <= index < limit``.

    Args:
        index: the position given to ``seek``.
        limit: one past the largest valid position; ``None`` for unbounded.
        owner: the augment's name, for the message.

    Raises:
        IndexError: ``index`` is out of range.
        ConfigError: ``index`` is not an integer.
    """
    try:
        if not isinstance(index, SupportsIndex):
            raise TypeError
        value = operator.index(index)
    except TypeError:
        raise ConfigError(f"{owner}.seek index must be an integer, got {index!r}") from None
    if value < 0 or (limit is not None and value >= limit):
        if limit is None:
            allowed = "it must be >= 0"
        elif limit == 0:
            allowed = "it has no samples to seek to"
        else:
            allowed = f"it must be in [0, {limit})"
        raise IndexError(f"index {value} out of range for {owner}: {allowed}")
    return value


def pass_finished(source: Reader | Augment) -> bool:
    """Whether ``source`` has yielded the last sample of its pass (its next ``iter`` restarts)."""
    if isinstance(source, Augment):
        return source._pass_finished()
    return source.position >= len(source)


def source_state(source: Reader | Augment) -> dict[str, Any]:
    """The state of a wrapped source: an augment's own state, or a reader's position.

    A reader that has finished its pass is saved at position 0 (its next ``iter`` restarts
    there); the wrapper accounts for the finished pass itself.
    """
    if isinstance(source, Augment):
        return source.state_dict()
    n = len(source)
    return _reader_spec(n, "").state({"position": source.position if source.position < n else 0})


def _reader_spec(length: int, owner: str) -> StateSpec:
    """The state of a plain reader wrapped by ``owner``: its length and position."""
    return StateSpec(
        kind="Reader",
        config={"length": length},
        counters=(StateCounter("position", high=max(0, length - 1)),),
        label=f"{owner} source",
    )


def check_source_state(source: Reader | Augment, state: object, owner: str) -> None:
    """Check a source state from :func:`source_state` without loading it.

    Raises:
        StateMismatchError: ``state`` does not fit ``source``.
    """
    if isinstance(source, Augment):
        return  # the augment checks its state when it loads it, before changing anything
    _reader_spec(len(source), owner).load(state)


def load_source_state(source: Reader | Augment, state: Mapping[str, Any]) -> None:
    """Load a state checked by :func:`check_source_state` into ``source``."""
    if isinstance(source, Augment):
        source.load_state_dict(state)
    elif len(source):
        source.seek(int(state["position"]))
