"""Save/restore harness for stateful stages: augments now, samplers and loaders later.

A *stage* is anything that is iterated pass by pass (``iterate(stage)`` returns an iterator over
the rest of the current pass; calling it again continues with the next pass) and that has
``state_dict()`` / ``load_state_dict(state)``. The uninterrupted run of a stage is what repeated
``iterate`` calls on a fresh stage yield, one iterator after the other.

The contract checked here: a state taken after ``k`` samples were yielded (while the iterator is
suspended, i.e. mid-``for``-loop) and loaded into a fresh stage makes that stage yield sample
``k + 1`` of the uninterrupted run next, and everything after it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Run", "check_resume_at", "run_save_restore", "take"]


def _json_roundtrip(state: Any) -> Any:
    return json.loads(json.dumps(state))


class Run:
    """A stage and its live iterator: samples are pulled across pass boundaries on demand."""

    def __init__(self, stage: Any, iterate: Callable[[Any], Iterator[Any]] = iter) -> None:
        self.stage = stage
        self._iterate = iterate
        self._it: Iterator[Any] | None = None

    def take(self, count: int) -> list[Any]:
        """Pull ``count`` samples, starting a new pass whenever the current one ends.

        Stops early only when a fresh pass yields nothing (an empty stage).
        """
        out: list[Any] = []
        fresh = False
        while len(out) < count:
            if self._it is None:
                self._it = self._iterate(self.stage)
                fresh = True
            try:
                out.append(next(self._it))
                fresh = False
            except StopIteration:
                self._it = None
                if fresh:
                    break
        return out

    def finish_pass(self) -> list[Any]:
        """Pull the rest of the current pass until its iterator is exhausted."""
        it = self._it if self._it is not None else self._iterate(self.stage)
        self._it = None
        return list(it)


def take(stage: Any, count: int, iterate: Callable[[Any], Iterator[Any]] = iter) -> list[Any]:
    """The first ``count`` samples that repeated passes over ``stage`` yield."""
    return Run(stage, iterate).take(count)


def check_resume_at(
    make_stage: Callable[[], Any],
    k: int,
    reference: list[Any],
    *,
    iterate: Callable[[Any], Iterator[Any]] = iter,
    normalize: Callable[[Any], Any] = lambda sample: sample,
    roundtrip: Callable[[Any], Any] = _json_roundtrip,
) -> dict[str, Any]:
    """Check that a state taken after ``k`` samples resumes ``reference[k:]`` exactly.

    Also checks that taking the state does not disturb the live stage, that saving right after
    loading gives the same state, that a state can be loaded into a stage that was already
    iterated, and that the state survives a JSON round trip.

    Returns:
        The state taken after ``k`` samples.
    """
    total = len(reference)
    expected_head = [normalize(s) for s in reference[:k]]
    expected_tail = [normalize(s) for s in reference[k:]]

    live = Run(make_stage(), iterate)
    assert [normalize(s) for s in live.take(k)] == expected_head
    state = live.stage.state_dict()
    saved = copy.deepcopy(state)

    restored = Run(make_stage(), iterate)
    restored.stage.load_state_dict(roundtrip(state))
    assert restored.stage.state_dict() == saved, "state changed by a save/load round trip"
    assert [normalize(s) for s in restored.take(total - k)] == expected_tail, f"resume at {k}"

    assert [normalize(s) for s in live.take(total - k)] == expected_tail, "state_dict disturbed"
    assert state == saved, "state_dict() returned a dict the stage kept mutating"

    used = Run(make_stage(), iterate)
    used.take(min(total, k + 3) // 2 + 1)
    used.stage.load_state_dict(roundtrip(saved))
    fresh_iterator = Run(used.stage, iterate)
    assert [normalize(s) for s in fresh_iterator.take(total - k)] == expected_tail, "used stage"
    return saved


def run_save_restore(
    make_stage: Callable[[], Any],
    *,
    total: int,
    epoch_length: int | None = None,
    midpoints: Iterable[int] | None = None,
    reference: list[Any] | None = None,
    iterate: Callable[[Any], Iterator[Any]] = iter,
    normalize: Callable[[Any], Any] = lambda sample: sample,
    roundtrip: Callable[[Any], Any] = _json_roundtrip,
) -> list[Any]:
    """Check save/restore of a stage at several points of its first ``total`` samples.

    Resumes from the initial state, several midpoints, both sides of every epoch boundary, the
    end of the run, a resumed run (resume of a resume), and, when ``epoch_length`` says that one
    iterator yields one epoch, from the state after an iterator was exhausted.

    Args:
        make_stage: builds a fresh stage; every call must build an identical one.
        total: samples of the uninterrupted run to compare.
        epoch_length: samples per pass when one ``iterate`` call yields exactly one pass
            (``None`` for endless stages or passes of varying length).
        midpoints: resume points to check instead of the default ones.
        reference: the expected uninterrupted run (e.g. from an oracle); taken from a fresh
            stage when ``None``.
        iterate: turns a stage into an iterator over its current pass (default ``iter``).
        normalize: maps samples to comparable values (default: the sample itself).
        roundtrip: applied to states before loading (default: a JSON round trip).

    Returns:
        The uninterrupted run that was compared against.
    """
    own = take(make_stage(), total, iterate)
    if reference is None:
        reference = own
    else:
        assert [normalize(s) for s in own] == [normalize(s) for s in reference[:total]]
        reference = list(reference[:total])
    total = len(reference)

    if midpoints is None:
        points = {0, 1, total // 3, total // 2, total - 1, total}
        if epoch_length:
            for boundary in range(epoch_length, total + 1, epoch_length):
                points.update({boundary - 1, boundary, boundary + 1})
        midpoints = points
    options = {"iterate": iterate, "normalize": normalize, "roundtrip": roundtrip}
    for k in sorted(p for p in midpoints if 0 <= p <= total):
        check_resume_at(make_stage, k, reference, **options)

    # the initial state resumes the whole run
    initial = make_stage().state_dict()
    fresh = Run(make_stage(), iterate)
    fresh.stage.load_state_dict(roundtrip(initial))
    assert [normalize(s) for s in fresh.take(total)] == [normalize(s) for s in reference]

    # resume of a resume: load at k1, pull some, save again, load into a third stage
    k1 = total // 3
    start = Run(make_stage(), iterate)
    start.take(k1)
    first = Run(make_stage(), iterate)
    first.stage.load_state_dict(roundtrip(start.stage.state_dict()))
    pulled = min(total - k1, max(1, total // 4))
    first.take(pulled)
    second = Run(make_stage(), iterate)
    second.stage.load_state_dict(roundtrip(first.stage.state_dict()))
    tail = [normalize(s) for s in reference[k1 + pulled :]]
    assert [normalize(s) for s in second.take(total - k1 - pulled)] == tail

    # after an iterator ran to exhaustion at the end of an epoch
    if epoch_length and 0 < epoch_length <= total:
        done = Run(make_stage(), iterate)
        assert [normalize(s) for s in done.finish_pass()] == [
            normalize(s) for s in reference[:epoch_length]
        ]
        after = Run(make_stage(), iterate)
        after.stage.load_state_dict(roundtrip(done.stage.state_dict()))
        expected = [normalize(s) for s in reference[epoch_length:]]
        assert [normalize(s) for s in after.take(total - epoch_length)] == expected
    return reference
