"""dinov2's sampler factory (``_make_sampler``): a :class:`SamplerType` and options to a sampler."""

from __future__ import annotations

import logging
from collections.abc import Sized

from torch.utils.data import Sampler

from ...errors import ConfigError, UnsupportedOptionError
from ...order.samplers._common import check_int
from ...order.samplers.distributed import DistributedSampler
from .sampler_types import SamplerType
from .samplers import EpochSampler, InfiniteSampler, ShardedInfiniteSampler

__all__ = ["make_sampler"]

logger = logging.getLogger(__name__)


def make_sampler(
    *,
    dataset: Sized,
    type: SamplerType | None = None,
    shuffle: bool = False,
    seed: int = 0,
    size: int = -1,
    advance: int = 0,
) -> Sampler[int] | None:
    """Build the sampler dinov2's ``make_data_loader`` uses for ``type``.

    * ``INFINITE``: :class:`InfiniteSampler` (``size > 0`` is refused).
    * ``SHARDED_INFINITE`` / ``SHARDED_INFINITE_NEW``: :class:`ShardedInfiniteSampler` with the
      old / new slice shuffle (``size > 0`` is refused).
    * ``EPOCH``: :class:`EpochSampler` with ``size`` samples per epoch (``len(dataset)`` when
      ``size <= 0``); ``advance > 0`` is not supported, as in dinov2.
    * ``DISTRIBUTED``: :class:`DistributedSampler` with ``drop_last=False`` (``size > 0`` and
      ``advance > 0`` are refused); it needs an initialised process group, as in dinov2 (whose
      torch ``DistributedSampler`` raises without one).
    * ``None``: no sampler (the loader then iterates in order; ``shuffle`` is ignored).

    Rank and world size come from the initialised ``torch.distributed`` group (0 and 1
    without one, except for ``DISTRIBUTED``, which then raises). Unlike dinov2, a ``type`` that is neither a :class:`SamplerType` nor
    ``None`` is refused instead of silently giving no sampler.

    Args:
        dataset: the data set (its length is used).
        type: which sampler.
        shuffle: shuffle.
        seed: the sampler's seed.
        size: samples per epoch (``EPOCH`` only); ``-1`` for the whole data set.
        advance: samples to skip (infinite samplers only).

    Returns:
        The sampler, or ``None`` for ``type=None``.

    Raises:
        ConfigError: ``size > 0`` for an infinite or distributed sampler, ``advance > 0`` for
            the distributed one, an unknown ``type``, or an invalid sampler argument.
        UnsupportedOptionError: ``advance > 0`` with ``EPOCH``.
        NoProcessGroupError: ``DISTRIBUTED`` without an initialised process group (a
            ``ValueError``, as torch's ``DistributedSampler`` raises in dinov2).
    """
    if type is not None and not isinstance(type, SamplerType):
        raise ConfigError(f"make_sampler: type must be a SamplerType or None, got {type!r}")
    size = check_int(size, "size", "make_sampler")
    advance = check_int(advance, "advance", "make_sampler")
    if type is None:
        logger.info("sampler: none")
        return None
    sample_count = len(dataset)
    if type is SamplerType.INFINITE:
        logger.info("sampler: infinite")
        _refuse_size(size, type)
        return InfiniteSampler(
            sample_count=sample_count, shuffle=shuffle, seed=seed, advance=advance
        )
    if type in (SamplerType.SHARDED_INFINITE, SamplerType.SHARDED_INFINITE_NEW):
        logger.info("sampler: sharded infinite")
        _refuse_size(size, type)
        return ShardedInfiniteSampler(
            sample_count=sample_count,
            shuffle=shuffle,
            seed=seed,
            advance=advance,
            use_new_shuffle_tensor_slice=type is SamplerType.SHARDED_INFINITE_NEW,
        )
    if type is SamplerType.EPOCH:
        logger.info("sampler: epoch")
        if advance > 0:
            raise UnsupportedOptionError(
                f"make_sampler: advance={advance} is not supported by the EPOCH sampler "
                "(as in dinov2); resume it with state_dict()/load_state_dict() instead"
            )
        size = size if size > 0 else sample_count
        logger.info("# of samples / epoch: %d", size)
        return EpochSampler(size=size, sample_count=sample_count, shuffle=shuffle, seed=seed)
    logger.info("sampler: distributed")
    _refuse_size(size, type)
    if advance > 0:
        raise ConfigError(
            f"make_sampler: advance={advance} is invalid for the DISTRIBUTED sampler; resume "
            "it with state_dict()/load_state_dict() instead"
        )
    return DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=False)


def _refuse_size(size: int, type: SamplerType) -> None:
    if size > 0:
        raise ConfigError(
            f"make_sampler: size={size} is invalid for the {type.name} sampler (it has no "
            "epochs); pass size=-1"
        )
