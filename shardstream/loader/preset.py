"""The extension point for per-sample work: what a preset given to ``Loader.preset()`` provides.

A preset turns the raw bytes of a sample into training inputs in the loader's workers and
finishes the batch where the batches go. The protocols here are structural (any object with the
members qualifies; the presets in :mod:`shardstream.vision` do not import them) and checked at
run time, so a wrong object is refused when the chain is built, naming what it lacks.

- :class:`Preset` (required): ``fields``, ``worker(sample, rng)`` and ``device(batch)``.
- :class:`DeviceAware` (optional): ``for_device(device)`` returns the preset to run for batches
  going to ``device`` (e.g. colour in the workers on a CPU).
- :class:`Collating` (optional): ``collate(samples, buffers)`` merges a batch's worker outputs in
  the worker, instead of the default collation, into arrays it takes from the ``buffers`` the
  engine hands it.
- :class:`InPlace` (optional): ``in_place_fields()`` names batch arrays the worker writes each
  sample's rows into directly (``worker(sample, rng, out={name: rows})``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..engine.scratch import FRESH, BatchBuffers
from ..errors import ConfigTypeError

__all__ = ["Collating", "DeviceAware", "InPlace", "Preset", "check_preset"]


@runtime_checkable
class Preset(Protocol):
    """Per-sample work in the workers and a device step on the consuming side."""

    @property
    def fields(self) -> Sequence[str]:
        """The packed fields the worker reads (given to it as raw bytes)."""
        ...

    def worker(self, sample: dict[str, Any], rng: np.random.Generator) -> Any:
        """One sample's work: ``sample`` holds the raw bytes of :attr:`fields` (and ``"index"``);
        ``rng`` is the sample's own random stream."""
        ...

    def device(self, batch: Any) -> Any:
        """The batch's last step, run where the batches go (after the transfer to the device)."""
        ...


@runtime_checkable
class DeviceAware(Protocol):
    """A preset that splits its work according to where the batches go."""

    def for_device(self, device: Any) -> Preset:
        """The preset to run for batches going to ``device`` (``None``: the CPU)."""
        ...


@runtime_checkable
class Collating(Protocol):
    """A preset that merges a batch's worker outputs itself (in the worker)."""

    def collate(self, samples: list[Any], buffers: BatchBuffers = FRESH) -> Any:
        """The batch made of the worker outputs ``samples``, its arrays taken from ``buffers``
        (the engine's: a worker process reuses them, or places them in the batch's slot)."""
        ...


@runtime_checkable
class InPlace(Protocol):
    """A preset whose worker writes some batch fields in place."""

    def in_place_fields(self) -> Mapping[str, tuple[tuple[int, ...], Any]]:
        """``{name: (per-sample shape, dtype)}`` of the fields written in place."""
        ...

    def worker(
        self,
        sample: dict[str, Any],
        rng: np.random.Generator,
        out: Mapping[str, np.ndarray] | None = None,
    ) -> Any:
        """One sample's work, writing the in-place fields into ``out``'s rows when given."""
        ...


def check_preset(preset: object) -> Preset:
    """``preset`` as a :class:`Preset`, refused when it lacks a required member.

    Raises:
        ConfigTypeError: ``preset`` lacks ``fields``, ``worker`` or ``device`` (named).
    """
    if not isinstance(preset, Preset):
        missing = [name for name in ("fields", "worker", "device") if not hasattr(preset, name)]
        raise ConfigTypeError(f"preset: {type(preset).__name__} has no {missing[0]!r}")
    return preset
