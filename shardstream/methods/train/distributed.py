"""Where a training process stands: single process, or one of several under ``torchrun``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ...errors import ConfigError

__all__ = ["DistributedContext"]


@dataclass
class DistributedContext:
    """Rank, world size and device of this process; owns the process group it created.

    Attributes:
        rank: global rank (0 when alone).
        world_size: number of processes (1 when alone).
        device: the device this process trains on.
        owns_group: whether :meth:`from_environment` initialised the process group (and
            :meth:`close` destroys it).
    """

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @classmethod
    def from_environment(cls, device: str = "auto") -> DistributedContext:
        """Read torchrun's variables (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and join the group.

        With ``WORLD_SIZE`` > 1 the default process group is initialised from the environment
        (``env://``): NCCL on CUDA, gloo on the CPU. Each process uses ``cuda:LOCAL_RANK``.

        Args:
            device: "auto" (CUDA when available), "cpu" or "cuda".

        Raises:
            ConfigError: "cuda" was asked for and no GPU is available.
        """
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for, but torch sees no GPU")
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        chosen = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(chosen)
        if world_size <= 1:
            return cls(rank=0, world_size=1, device=chosen)
        owns = False
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
            owns = True
        return cls(
            rank=dist.get_rank(), world_size=dist.get_world_size(), device=chosen, owns_group=owns
        )

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (``[value]`` when alone)."""
        if self.world_size == 1:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False
