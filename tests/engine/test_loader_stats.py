"""``Loader.stats()``: still the dict it was, and one readable line with a per-stage breakdown."""

from __future__ import annotations

import pickle
import re

import pytest

from shardstream.engine.stats import LoaderStats, PoolStats
from shardstream.loader.loader import Loader
from shardstream.sets.demo import iter_demo_samples
from tests.conftest import write_samples

#: what ``str(loader.stats())`` looks like, every number a group
SUMMARY = re.compile(
    r"([\d,]+) samples in ([\d,]+) batches, ([\d,]+) samples/s, ([\d.,]+) MB/s, "
    r"stall (\d+\.\d) %, (\d+) skipped \| read (\d+) % decode (\d+) % transform (\d+) % "
    r"collate (\d+) % of (\d+\.\d\d) worker-s, wait (\d+\.\d\d) s"
)


def test_summary_of_known_counters_is_exact():
    stats = LoaderStats(
        samples=1024,
        batches=32,
        samples_per_s=612.4,
        bytes_per_s=3_140_000.0,
        stall_pct=4.25,
        skipped=2,
        read_s=0.5,
        decode_s=6.0,
        transform_s=3.0,
        collate_s=0.5,
        wait_s=0.214,
    )
    assert str(stats) == (
        "1,024 samples in 32 batches, 612 samples/s, 3.1 MB/s, stall 4.2 %, 2 skipped"
        " | read 5 % decode 60 % transform 30 % collate 5 % of 10.00 worker-s, wait 0.21 s"
    )
    assert stats.stages() == {
        "read": 0.5,
        "decode": 6.0,
        "transform": 3.0,
        "collate": 0.5,
        "wait": 0.214,
    }
    assert isinstance(stats, dict) and stats["samples"] == 1024  # still the plain dict
    copy = pickle.loads(pickle.dumps(stats))
    assert type(copy) is LoaderStats and copy == stats


def test_summary_before_any_batch_has_no_shares():
    stats = PoolStats().snapshot()
    assert isinstance(stats, LoaderStats)
    assert str(stats) == (
        "0 samples in 0 batches, 0 samples/s, 0.0 MB/s, stall 0.0 %, 0 skipped"
        " | read - decode - transform - collate - of 0.00 worker-s, wait 0.00 s"
    )


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_stats_print_as_one_line_with_every_stage(tmp_path, workers):
    path = tmp_path / "demo.msgpack"
    write_samples(path, iter_demo_samples(num_images=24, num_classes=3, workers=None))
    loader = Loader(str(path), seed=0).batch(8).pytorch(num_workers=workers, tensors=["label"])
    with loader:
        assert len(list(loader)) == 3
        stats = loader.stats()
    line = str(stats)
    assert "\n" not in line
    match = SUMMARY.fullmatch(line)
    assert match, line
    assert (match[1], match[2], match[6]) == ("24", "3", "0")
    shares = [int(match[i]) for i in range(7, 11)]
    assert 97 <= sum(shares) <= 103  # rounded percentages of the same total
    stages = stats.stages()
    assert list(stages) == ["read", "decode", "transform", "collate", "wait"]
    assert stages["read"] > 0 and all(seconds >= 0 for seconds in stages.values())
    assert float(match[11]) == pytest.approx(sum(stages.values()) - stages["wait"], abs=0.006)
    # the dict is unchanged: the engine's counters plus the loader's position
    assert stats["samples"] == 24 and stats["returned"] == 3 and stats["epoch"] == 1
    assert {"read_s", "decode_s", "transform_s", "collate_s", "wait_s", "stall_pct"} <= set(stats)
