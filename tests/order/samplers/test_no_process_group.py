"""A distributed sampler without a process group raises, as torch's does (issue 13, item 6).

dinov2's ``SamplerType.DISTRIBUTED`` builds torch's ``DistributedSampler`` without
``num_replicas`` / ``rank``, which asks ``torch.distributed`` for them and raises when no process
group is initialised; helios' ``ResumableDistributedSampler`` derives from it. shardstream used
to run such a loader quietly as rank 0 of 1. The oracle is torch's own sampler, run here.
"""

from __future__ import annotations

import pytest
import torch.distributed as dist
from torch.utils.data import DistributedSampler as TorchDistributedSampler

from shardstream import (
    DistributedSampler,
    EpochSampler,
    ResumableDistributedSampler,
    SamplerType,
    make_sampler,
)
from shardstream.compat.dinov2.loaders import make_data_loader
from shardstream.compat.helios import create_dataloader
from shardstream.errors import NoProcessGroupError, ShardstreamError

from ...contracts.dist_harness import process_group_of_one

MESSAGE = (
    "Default process group has not been initialized, please make sure to call init_process_group"
)


def torch_error() -> BaseException:
    """What torch's DistributedSampler raises here, without a process group."""
    assert not dist.is_initialized()
    with pytest.raises(Exception) as info:
        TorchDistributedSampler(range(8))
    return info.value


def test_the_error_is_torchs_type_and_a_shardstream_error():
    expected = torch_error()
    assert isinstance(expected, ValueError) and MESSAGE in str(expected)
    for build in (
        lambda: make_sampler(dataset=range(8), type=SamplerType.DISTRIBUTED, shuffle=True),
        lambda: make_data_loader(
            dataset=range(8),
            batch_size=2,
            num_workers=0,
            sampler_type=SamplerType.DISTRIBUTED,
        ),
        lambda: create_dataloader(range(8), is_distributed=True),
        lambda: DistributedSampler(range(8)),
        lambda: DistributedSampler(range(8), num_replicas=1),  # torch asks for the rank too
        lambda: DistributedSampler(range(8), rank=0),
        lambda: ResumableDistributedSampler(range(8), batch_size=2),
    ):
        with pytest.raises(type(expected)) as info:
            build()
        assert isinstance(info.value, NoProcessGroupError)
        assert isinstance(info.value, ShardstreamError) and isinstance(info.value, RuntimeError)
        assert MESSAGE in str(info.value)


def test_explicit_rank_and_world_size_need_no_group():
    ours = DistributedSampler(range(9), num_replicas=2, rank=1, shuffle=True, seed=3)
    theirs = TorchDistributedSampler(range(9), num_replicas=2, rank=1, shuffle=True, seed=3)
    assert list(ours) == list(theirs)
    resumable = ResumableDistributedSampler(range(9), num_replicas=3, rank=2, shuffle=False)
    assert list(resumable) == [2, 5, 8]


def test_other_dinov2_samplers_still_run_as_rank_0_of_1():
    # dinov2's own samplers take rank 0 and world size 1 when not distributed
    epoch = make_sampler(dataset=range(5), type=SamplerType.EPOCH, shuffle=False)
    assert list(epoch) == list(EpochSampler(size=5, sample_count=5)) == [0, 1, 2, 3, 4]


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")  # dinov2's loader pins memory
def test_in_a_process_group_of_one_the_distributed_loader_runs():
    with process_group_of_one():
        loader = make_data_loader(
            dataset=list(range(7)),
            batch_size=3,
            num_workers=0,
            seed=4,
            sampler_type=SamplerType.DISTRIBUTED,
            drop_last=False,
        )
        assert (loader.sampler.num_replicas, loader.sampler.rank) == (1, 0)
        reference = TorchDistributedSampler(range(7), shuffle=True, seed=4, drop_last=False)
        assert [i for batch in loader for i in batch.tolist()] == list(reference)
    assert not dist.is_initialized()
