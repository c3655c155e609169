"""What a loader chain holds: the settings its builder steps recorded, and the checks on them.

:class:`Chain` is the immutable record a :class:`~shardstream.loader.loader.Loader` copies at each
step; :class:`Mode` its framework step. The functions validate a step against the chain (fields the
samples have, decode methods a field kind allows, a mode a preset can run under) and raise the
errors Deep Lake's loader raises for the same misuse.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..checks import (
    OnError,
    check_seed,
    check_timeout,
    non_negative_int,
    positive_int,
    resolve_on_error,
)
from ..errors import ChainError, ConfigError, ConfigTypeError, CorruptSampleError
from ..order.samplers.seeds import SEED_LIMIT
from ..read.open import open_dataset
from ..read.reader import Reader
from .preset import Preset
from .sample_work import ARRAY, BYTES, IMAGE, OBJECT, field_kind

__all__ = [
    "DECODE_METHODS",
    "Chain",
    "Mode",
    "build_mode",
    "check_decode",
    "check_fields",
    "check_mode_for_preset",
    "check_shuffle",
    "start_chain",
    "check_verifiable",
    "effective_mode",
    "field_kinds",
    "loaded_fields",
    "warn_unseeded",
]

#: decode methods each field kind allows (Deep Lake's table, without its htype-specific ``data``)
DECODE_METHODS: dict[str, frozenset[str]] = {
    IMAGE: frozenset({"numpy", "tobytes", "pil"}),
    BYTES: frozenset({"numpy", "tobytes"}),
    ARRAY: frozenset({"numpy", "tobytes"}),
    OBJECT: frozenset({"numpy"}),
}


@dataclass(frozen=True)
class Mode:
    """The framework step of a chain (``pytorch`` / ``numpy`` / ``tensorflow``) and its options."""

    name: str = "numpy"
    num_workers: int = 0
    collate_fn: Callable | None = None
    tensors: tuple[str, ...] | None = None
    num_threads: int | None = None
    prefetch_factor: int = 2
    return_index: bool = False
    decode_method: Mapping[str, str] | None = None
    persistent_workers: bool = False
    timeout: float | None = None
    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class Chain:
    """Everything a chain's builder steps recorded; each step makes a changed copy."""

    reader: Reader
    seed: int
    seed_given: bool
    ignore_errors: bool
    verbose: bool
    verify: bool
    shared: dict = field(compare=False)  # facts of the dataset computed once (field kinds, sizes)
    view: np.ndarray | None = None
    sample_by_calls: int = 0
    transform: Callable | Mapping[str, Callable | None] | None = None
    transform_set: bool = False
    preset: Preset | None = None
    device: Any = None
    batch_size: int | None = None
    drop_last: bool = False
    shuffle: bool | None = None
    buffer_size: float = 2048
    order: str = "window"
    shards_per_block: int = 4
    offset: int | None = None
    mode: Mode | None = None


def effective_mode(chain: Chain) -> Mode:
    """The chosen mode; without one, numpy's defaults (pytorch's for a preset)."""
    chain = chain
    if chain.mode is not None:
        return chain.mode
    if chain.preset is not None:
        return Mode(name="pytorch", return_index=True)
    return Mode()


def field_kinds(chain: Chain) -> dict[str, str]:
    shared = chain.shared
    if "kinds" not in shared:
        reader = chain.reader
        first = reader.get(0) if len(reader) else {}
        if not isinstance(first, Mapping):  # e.g. a msgpack array: no fields to load
            raise CorruptSampleError(
                getattr(reader, "path", None),
                f"sample 0 is a {type(first).__name__}, not a map of fields",
            )
        shared["kinds"] = {k: field_kind(v) for k, v in first.items() if isinstance(k, str)}
    return shared["kinds"]


def check_fields(chain: Chain, names: Sequence[str], where: str) -> None:
    kinds = field_kinds(chain)
    unknown = [name for name in names if name not in kinds]
    if unknown:
        raise ConfigError(f"{where}: {unknown} not among the fields of the samples ({list(kinds)})")


def loaded_fields(chain: Chain, tensors: Sequence[str] | None) -> list[str]:
    chain = chain
    if chain.preset is not None:
        return list(chain.preset.fields)
    if isinstance(chain.transform, Mapping):
        return [k for k in chain.transform if k != "index"]
    if tensors is not None:
        return list(tensors)
    return list(field_kinds(chain))


def check_decode(chain: Chain, decode_method: Mapping[str, str], loaded: Sequence[str]) -> None:
    if chain.preset is not None:
        raise ConfigError("decode_method cannot be used with .preset(): a preset gets raw bytes")
    if not isinstance(decode_method, Mapping):
        raise ConfigTypeError(
            f"decode_method must be a dict {{field: method}}, got {type(decode_method).__name__}"
        )
    kinds = field_kinds(chain)
    for name, method in decode_method.items():
        if name not in loaded:
            raise ConfigError(f"tensor {name} specified in decode_method not found in tensors.")
        allowed = DECODE_METHODS[kinds[name]]
        if method not in allowed:
            shown = "{" + ", ".join(repr(m) for m in sorted(allowed)) + "}"
            raise ConfigError(
                f"decode_method {method} not supported for tensor {name}. Supported methods "
                f"for this tensor are {shown}"
            )


def build_mode(chain: Chain, name: str, **settings: Any) -> Mode:
    chain = chain
    if chain.mode is not None:
        if chain.mode.name == name:
            raise ChainError(f"already called .{name}()")
        raise ChainError(f"Can't call .{name}() after .{chain.mode.name}()")
    tensors = settings.get("tensors")
    if tensors is not None:
        if isinstance(tensors, str):
            tensors = [tensors]
        tensors = tuple(tensors)
        if "index" in tensors:
            raise ChainError("index is not a tensor, to get index, pass return_index=True")
        if isinstance(chain.transform, Mapping):
            raise ChainError(
                "Tensors have already been specified by passing a dictionary to .transform() method"
            )
        if chain.preset is not None:
            raise ChainError("Tensors have already been specified by .preset()")
        check_fields(chain, list(tensors), "tensors")
        settings["tensors"] = tensors
    settings["num_workers"] = non_negative_int(settings.get("num_workers", 0), "num_workers")
    settings["prefetch_factor"] = positive_int(
        settings.get("prefetch_factor", 2), "prefetch_factor"
    )
    if settings.get("num_threads") is not None:
        settings["num_threads"] = positive_int(settings["num_threads"], "num_threads")
    settings["persistent_workers"] = bool(settings.get("persistent_workers", False))
    settings["timeout"] = check_timeout(settings.get("timeout"))
    collate_fn = settings.get("collate_fn")
    if collate_fn is not None and not callable(collate_fn):
        raise ConfigTypeError(f"collate_fn must be callable, got {type(collate_fn).__name__}")
    mode = Mode(name=name, **settings)
    if chain.preset is not None:
        check_mode_for_preset(mode)
    decode_method = settings.get("decode_method")
    loaded = loaded_fields(chain, tensors)
    if decode_method is not None:
        check_decode(chain, decode_method, loaded)
        mode = replace(mode, decode_method=dict(decode_method))
    elif chain.preset is None:
        images = [name for name in loaded if field_kinds(chain).get(name) == IMAGE]
        if images:
            warnings.warn(
                f"decode_method is not set, so the images in {images} are decoded to numpy "
                f"arrays; pass decode_method={{{images[0]!r}: 'numpy'}} (or 'tobytes' for "
                "the encoded bytes, 'pil' for PIL images) to choose",
                UserWarning,
                stacklevel=4,
            )
    return mode


def check_mode_for_preset(mode: Mode) -> None:
    if mode.name != "pytorch":
        raise ConfigError(
            f".preset() needs .pytorch() (its device step takes torch tensors), not .{mode.name}()"
        )
    if mode.tensors is not None:
        raise ChainError(f"Tensors have already been specified in the .{mode.name} method.")
    if mode.decode_method is not None:
        raise ConfigError("decode_method cannot be used with .preset(): a preset gets raw bytes")


def warn_unseeded(chain: Chain) -> None:
    if not chain.seed_given:
        warnings.warn(
            "offset is set on a shuffled loader without a seed: the order differs between "
            "initialisations, so the offset skips different samples each time. To resume at a "
            "predictable position, pass a seed (Loader(..., seed=N) or "
            "reader.dataloader(seed=N)) or restore a state_dict.",
            UserWarning,
            stacklevel=3,
        )


def check_verifiable(reader: Reader) -> None:
    """Refuse ``verify=True`` for a reader without per-sample checksums (naming what lacks them).

    Raises:
        ConfigError: the reader, or one of its shards, has no checksum file.
    """
    if getattr(reader, "has_checksums", False):
        return
    lacking = reader
    for shard in getattr(reader, "shards", None) or ():
        if not getattr(shard, "has_checksums", False):
            lacking = shard
            break
    where = getattr(lacking, "path", None) or repr(lacking)
    raise ConfigError(
        f"Loader: verify=True needs per-sample checksums, but {where} has none (no .xxh3 "
        f"file); add them with `shardstream verify --add-checksums {where}`"
    )


def check_shuffle(buffer_size: object, order: object, shards_per_block: object) -> dict[str, Any]:
    """The chain settings of ``Loader.shuffle``'s options, checked.

    Raises:
        ConfigError: ``buffer_size`` is not a positive number of MiB, ``order`` is neither
            ``"window"`` nor ``"blocks"``, or ``shards_per_block`` is not a positive integer.
    """
    if order not in ("window", "blocks"):
        raise ConfigError(f'shuffle: order must be "window" or "blocks", got {order!r}')
    blocks = positive_int(shards_per_block, "shuffle: shards_per_block")
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, float, np.number)):
        raise ConfigError(f"shuffle: buffer_size must be a number of MB, got {buffer_size!r}")
    if not buffer_size > 0:
        raise ConfigError(f"shuffle: buffer_size must be > 0 MB, got {buffer_size}")
    return {"buffer_size": float(buffer_size), "order": order, "shards_per_block": blocks}


def start_chain(
    source: Reader | str | os.PathLike,
    *,
    on_error: OnError | None,
    ignore_errors: bool | None,
    verbose: bool,
    seed: int | None,
    verify: bool,
    storage_options: dict | None,
    cache_dir: str | os.PathLike | None,
    cache_limit: int | None,
    prefetch_shards: int,
) -> Chain:
    """The chain a new :class:`~shardstream.loader.loader.Loader` starts from (its arguments).

    Raises:
        ConfigError: see :class:`~shardstream.loader.loader.Loader`.
        DatasetNotFoundError, MissingIndexError, ...: ``source`` is a path that does not open.
    """
    reader = open_dataset(
        source,
        caller="Loader",
        storage_options=storage_options,
        cache_dir=cache_dir,
        cache_limit=cache_limit,
        prefetch_shards=prefetch_shards,
    )
    if verify:
        check_verifiable(reader)
    policy = resolve_on_error(
        on_error, owner="Loader", alias="ignore_errors", alias_value=ignore_errors, flag=True
    )
    seed_given = seed is not None
    if seed is None:
        seed = secrets.randbits(32)
    seed = check_seed(seed, owner="Loader")
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"Loader: seed must be in [0, 2**32), got {seed}")
    return Chain(
        reader=reader,
        seed=seed,
        seed_given=seed_given,
        ignore_errors=policy == "skip",
        verbose=bool(verbose),
        verify=bool(verify),
        shared={},
    )
