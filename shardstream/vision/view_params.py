"""One sample's colour parameters per view kind, kept as the draws they come from until collation.

A DINO sample's colour parameters are ten arrays per view kind (``global_1``, ``global_2``,
``local``), computed from one block of uniforms and one batch of op orders
(:class:`~shardstream.vision.recipes.PhotometricDraws`). Made per sample in a loader worker and
collated leaf by leaf, those 30 small arrays cost more than the draws themselves (~40 us per
image of Python steps next to a ~0.9 ms decode). :class:`ViewParams` holds the draws only: read
as a mapping it is ``{kind: {key: array}}`` exactly as
:meth:`~shardstream.vision.dino.DinoPreset.draw_params` returns it (computed on first access),
and :func:`collate_view_params` stacks a batch's draws and computes every sample's parameters at
once. The arithmetic is elementwise, so the batch holds the very values the per-sample dicts
would have collated to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..engine.scratch import BatchBuffers
from .recipes import PhotometricDraws

__all__ = ["ViewParams", "collate_view_params"]

Kinds = tuple[tuple[str, int | slice], ...]
"""Each view kind's name and where its views are along the draws' view axis."""


class ViewParams(Mapping):
    """A sample's colour parameters per view kind, as its draws (a read-only mapping).

    Args:
        draws: the views' :class:`~shardstream.vision.recipes.PhotometricDraws`.
        kinds: ``(name, index or slice)`` per view kind: an index gives that view's values
            alone (0-d, or ``(4,)`` for ``order``), a slice those views' values.
        u: the sample's uniforms (:meth:`~shardstream.vision.recipes.PhotometricDraws.draw_uniforms`).
        order: its op orders.
    """

    __slots__ = ("_draws", "_kinds", "_params", "order", "u")

    def __init__(self, draws: PhotometricDraws, kinds: Kinds, u: np.ndarray, order: np.ndarray):
        self._draws = draws
        self._kinds = kinds
        self.u = u
        self.order = order
        self._params: dict[str, dict[str, np.ndarray]] | None = None

    def as_dict(self) -> dict[str, dict[str, np.ndarray]]:
        """``{kind: {key: array}}``: what ``draw_params`` returns for the same draws."""
        if self._params is None:
            values = self._draws.values(self.u, self.order)
            self._params = {
                name: {key: value[where, ...] for key, value in values.items()}
                for name, where in self._kinds
            }
        return self._params

    def __getitem__(self, kind: str) -> dict[str, np.ndarray]:
        return self.as_dict()[kind]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def __reduce__(self) -> tuple:
        return (dict, (self.as_dict(),))  # elsewhere (pickled) it is the plain dict


def collate_view_params(
    params: Sequence[Any], field: str, buffers: BatchBuffers
) -> dict[str, dict[str, np.ndarray]] | None:
    """A batch of samples' :class:`ViewParams` as the default collation of their dicts.

    Args:
        params: one per sample, in batch order (anything but a :class:`ViewParams` among them
            makes this return ``None``).
        field: the batch field's name (the buffers' names are ``field.kind.key``, as the
            default collation names them).
        buffers: where the batch's arrays are made.

    Returns:
        ``{kind: {key: array with a leading batch axis}}``, or ``None`` when the samples do
        not share one ``PhotometricDraws`` and kinds (the caller then collates their dicts).
    """
    first = params[0]
    if not all(
        type(p) is ViewParams and p._draws is first._draws and p._kinds == first._kinds
        for p in params
    ):
        return None
    u = np.stack([p.u for p in params])
    order = np.stack([p.order for p in params])
    values = first._draws.values(u, order)
    batch: dict[str, dict[str, np.ndarray]] = {}
    for name, where in first._kinds:
        kind: dict[str, np.ndarray] = {}
        for key, value in values.items():
            part = value[:, where, ...]
            out = buffers.array(f"{field}.{name}.{key}", part.shape, part.dtype)
            np.copyto(out, part)
            kind[key] = out
        batch[name] = kind
    return batch
