"""What datadings' map-style and iterable datasets share: a reader and the transforms it applies.

A transform is a callable on the whole sample dict, or a dict ``{field: transform(value, params)}``
with ``params = rng(sample)`` (see :class:`~shardstream.compat.datadings.compose.Compose`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...errors import ConfigError, MissingFieldError
from .compose import no_rng

__all__ = ["_TransformedReader"]


def _identity(sample: Any) -> Any:
    return sample


class _FieldTransforms:
    """``sample[field] = transform(sample[field], params)`` for each entry, ``params = rng(sample)``."""

    def __init__(self, transforms: Mapping[str, Callable], rng: Callable[[Any], Mapping]) -> None:
        for field, transform in transforms.items():
            if not callable(transform):
                raise ConfigError(
                    f"transforms[{field!r}] must be callable as transform(value, params), "
                    f"got {transform!r}"
                )
        self.transforms = dict(transforms)
        self.rng = rng

    def __call__(self, sample: dict) -> dict:
        params = self.rng(sample)
        sample["__params__"] = params
        for field, transform in self.transforms.items():
            try:
                value = sample[field]
            except KeyError:
                raise MissingFieldError(
                    f"transforms has an entry for the field {field!r}, but sample "
                    f"{sample.get('key')!r} has only the fields {sorted(map(str, sample))}"
                ) from None
            sample[field] = transform(value, params)
        return sample


class _TransformedReader:
    """The reader and the transform shared by both dataset classes."""

    def __init__(self, reader: Any, transforms: Any = None, rng: Callable | None = None) -> None:
        if not (hasattr(reader, "get") and hasattr(reader, "__len__")):
            raise ConfigError(f"reader must be a Reader (with get and len), got {reader!r}")
        if rng is not None and not callable(rng):
            raise ConfigError(f"rng must be callable as rng(sample) -> dict, got {rng!r}")
        self.reader = reader
        self._rng = rng or no_rng
        self._transforms = transforms
        if transforms is None:
            self.transform: Callable[[Any], Any] = _identity
        elif isinstance(transforms, Mapping):
            self.transform = _FieldTransforms(transforms, self._rng)
        elif callable(transforms):
            self.transform = transforms
        else:
            raise ConfigError(
                "transforms must be None, a callable f(sample) -> sample or a dict "
                f"{{field: transform(value, params)}}, got {transforms!r}"
            )
