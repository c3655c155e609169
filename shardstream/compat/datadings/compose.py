"""Transform chains that take their random parameters by name, as datadings' ``Compose`` does.

A transform is a callable whose first argument is the value to transform; its other named
arguments are *parameters*. ``Compose(f, g)(value, params)`` calls ``f(value, **p_f)`` and then
``g(result, **p_g)``, where ``p_f`` holds the entries of ``params`` named like ``f``'s
parameters. ``params`` usually comes from the dataset's ``rng(sample)`` callable, so transforms
that share a parameter name (an image and its mask) receive the same random draw.

Differences from datadings 3.4.7, each a fix:

- ``prefix`` works: with ``prefix="mask_"`` the parameter ``size`` is looked up as
  ``params["mask_size"]`` and passed as ``size=``. datadings looked it up under the prefixed
  name but also *passed* it under the prefixed name, so every transform with a parameter failed.
- Parameters come from :func:`inspect.signature`, which knows bound methods, callable objects
  and :func:`functools.partial`: a partial's bound keywords stay parameters (with defaults), and
  builtins such as ``abs`` are accepted. datadings dropped the first argument of every callable
  that is not a plain function, guessing it was ``self``, and warned otherwise.
- A missing required parameter is found before the transform is called and raises
  :class:`~shardstream.errors.MissingFieldError` (a ``KeyError``) naming the transform, the
  parameters and the keys available. datadings turned *any* ``TypeError`` raised while
  transforming into that ``KeyError``, hiding bugs inside transforms; here they propagate.
- A single argument is unpacked as the list of transforms only if it is iterable and not itself
  callable (so a callable container such as ``torch.nn.Sequential`` stays one transform).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ...errors import ConfigError, MissingFieldError

__all__ = ["Compose", "dict2tuple", "no_rng", "transform_parameters"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def no_rng(_: Any) -> dict:
    """The default ``rng``: no parameters for any sample.

    Args:
        _: the sample (ignored).

    Returns:
        An empty dict.
    """
    return {}


def dict2tuple(it: Iterable[Mapping], keys: Iterable[str] = ("image", "label")) -> Iterator[tuple]:
    """Yield ``tuple(sample[k] for k in keys)`` for each sample (or batch dict) of ``it``.

    Args:
        it: samples, or the batches a ``DataLoader`` collates from sample dicts.
        keys: the fields to extract, in order.

    Returns:
        A generator of tuples.

    Raises:
        KeyError: a sample lacks one of ``keys`` (raised while iterating).
    """
    keys = tuple(keys)
    for sample in it:
        yield tuple(sample[k] for k in keys)


def transform_parameters(transform: Callable) -> tuple[tuple[str, bool], ...]:
    """The parameters a transform takes by name, after the value it transforms.

    Args:
        transform: a callable whose first positional argument is the value.

    Returns:
        ``(name, required)`` pairs: every positional-or-keyword and keyword-only parameter after
        the first positional one; ``required`` is True for those without a default. Empty for a
        callable that only takes ``*args`` (e.g. torchvision's class transforms), with a warning
        as in datadings.

    Raises:
        ConfigError: ``transform`` is not callable, accepts no argument at all, or has a
            positional-only parameter without default after the value (it could not be passed by
            name).
    """
    if not callable(transform):
        raise ConfigError(f"transform must be callable, not {transform!r}")
    try:
        signature = inspect.signature(transform)
    except (TypeError, ValueError):
        warnings.warn(
            f"the signature of {transform!r} cannot be read, so it will only receive sample values"
        )
        return ()
    parameters = list(signature.parameters.values())
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    if parameters and parameters[0].kind in _POSITIONAL:
        rest = parameters[1:]
        if has_varargs:
            warnings.warn(f"varargs are ignored for {transform!r}")
    elif has_varargs:
        rest = parameters
        if not any(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest):
            warnings.warn(
                f"{transform!r} only accepts varargs so it will only receive sample values"
            )
    else:
        raise ConfigError(
            f"transforms must accept the value as their first positional argument, but "
            f"{transform!r} has the signature {signature}"
        )
    for p in rest:
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.default is inspect.Parameter.empty:
            raise ConfigError(
                f"transform {transform!r} has the positional-only parameter {p.name!r} after its "
                "value; Compose passes parameters by name, so make it a normal parameter"
            )
    return tuple((p.name, p.default is inspect.Parameter.empty) for p in rest if p.kind in _NAMED)


class Compose:
    """Apply transforms in order, passing each the parameters it names.

    Example, the datadings documentation's own::

        def add(v, number):
            return v + number

        def sub(x, value):
            return x - value

        def rng(_):
            return {"number": random.randrange(1, 10), "value": random.randrange(1, 10)}

        transforms = {"a": Compose(add), "b": Compose(sub), "c": Compose((add, sub))}
        dataset = Dataset(ListReader(samples), transforms=transforms, rng=rng)

    Args:
        *transforms: the transforms, as arguments or as one iterable. Each takes the value as
            its first positional argument; its other named parameters are filled from
            ``params`` when present there (parameters with defaults may be absent).
        prefix: prepended to every parameter name for the lookup in ``params``: with
            ``prefix="mask_"``, a transform's parameter ``size`` receives
            ``params["mask_size"]``.

    Attributes:
        transforms: the transforms (a tuple).
        param_names: per transform, the keys looked up in ``params`` (prefixed names), as in
            datadings.
        prefix: the prefix.

    Raises:
        ConfigError: a transform is not callable or takes no value (see
            :func:`transform_parameters`), or ``prefix`` is not a str.
    """

    def __init__(self, *transforms: Callable, prefix: str = "") -> None:
        single = transforms[0] if len(transforms) == 1 else None
        if isinstance(single, Iterable) and not callable(single) and not isinstance(single, str):
            transforms = tuple(single)
        if not isinstance(prefix, str):
            raise ConfigError(f"Compose: prefix must be a str, got {prefix!r}")
        self.transforms = tuple(transforms)
        self.prefix = prefix
        self._lookups = tuple(
            tuple((prefix + name, name, required) for name, required in transform_parameters(f))
            for f in self.transforms
        )
        self.param_names = [tuple(key for key, _, _ in lookup) for lookup in self._lookups]

    def __call__(self, value: Any, params: Mapping[str, Any]) -> Any:
        """Transform ``value`` with every transform in turn.

        Args:
            value: the value to transform (e.g. a sample's image bytes).
            params: parameters by name, e.g. the dict ``rng(sample)`` returned.

        Returns:
            The last transform's result.

        Raises:
            MissingFieldError: a transform's required parameter is not in ``params`` (a
                ``KeyError``; the message names the transform and the missing keys).
        """
        for transform, lookup in zip(self.transforms, self._lookups):
            kwargs = {}
            for key, name, required in lookup:
                if key in params:
                    kwargs[name] = params[key]
                elif required:
                    self._missing(transform, lookup, params)
            value = transform(value, **kwargs)
        return value

    @staticmethod
    def _missing(transform: Callable, lookup: tuple, params: Mapping[str, Any]) -> None:
        missing = [key for key, _, required in lookup if required and key not in params]
        available = ", ".join(sorted(map(repr, params))) or "nothing"
        raise MissingFieldError(
            f"Required parameters for transform function are missing: {transform!r} needs "
            f"{', '.join(map(repr, missing))} but the parameters hold only {available}. "
            "Incomplete rng function? Missing constants?"
        )

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.transforms))
        prefix = f", prefix={self.prefix!r}" if self.prefix else ""
        return f"{type(self).__name__}({inner}{prefix})"
