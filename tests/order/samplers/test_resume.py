"""Resumption: a state taken after k items, restored elsewhere, continues with item k + 1.

Every sampler goes through the shared harness (``tests/order/stateful.py``) at fixed points and
at hypothesis-drawn k, and once through a fresh Python process.
"""

from __future__ import annotations

import functools
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream import (
    EpochSampler,
    InfiniteSampler,
    ShardedInfiniteSampler,
)

from ...contracts.stateful import Run, check_resume_at, run_save_restore, take
from .cases import CASES, build, case_id, epoch_length, iterate

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _quiet_dropped_sample_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        yield


def _total(case) -> tuple[int, int | None]:
    length = epoch_length(build(*case))
    return (2 * length + 5 if length else 40), length


@functools.cache
def _reference(index: int) -> list[int]:
    case = CASES[index]
    return take(build(*case), _total(case)[0], iterate)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_save_restore_harness(index):
    case = CASES[index]
    total, length = _total(case)
    run_save_restore(lambda: build(*case), total=total, epoch_length=length, iterate=iterate)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case_id(c) for c in CASES])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_resume_after_any_k(index, data):
    reference = _reference(index)
    k = data.draw(st.integers(0, len(reference)), label="k")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        check_resume_at(lambda: build(*CASES[index]), k, reference, iterate=iterate)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 25),
    step=st.integers(1, 4),
    start_frac=st.floats(0, 0.999),
    seed=st.integers(-(2**40), 2**40),
    advance=st.integers(0, 60),
    variant=st.sampled_from(["infinite", "sharded", "sharded-new", "plain"]),
    k=st.integers(0, 60),
)
def test_infinite_samplers_resume_for_drawn_arguments(
    n, step, start_frac, seed, advance, variant, k
):
    start = int(start_frac * step)
    if start >= n or (variant != "plain" and variant != "infinite" and n < step):
        return

    def make():
        if variant == "infinite":
            return InfiniteSampler(
                sample_count=n, shuffle=True, seed=seed, start=start, step=step, advance=advance
            )
        return ShardedInfiniteSampler(
            sample_count=n,
            shuffle=variant != "plain",
            seed=seed,
            start=start,
            step=step,
            advance=advance,
            use_new_shuffle_tensor_slice=variant == "sharded-new",
        )

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        reference = take(make(), 70)
        check_resume_at(make, k, reference)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 30),
    n=st.integers(1, 12),
    step=st.integers(1, 4),
    start_frac=st.floats(0, 0.999),
    seed=st.integers(0, 50),
    shuffle=st.booleans(),
    k_frac=st.floats(0, 1),
)
def test_epoch_sampler_resumes_for_drawn_arguments(
    size, n, step, start_frac, seed, shuffle, k_frac
):
    start = int(start_frac * step)

    def make():
        return EpochSampler(
            size=size, sample_count=n, shuffle=shuffle, seed=seed, start=start, step=step
        )

    length = len(make())
    reference = take(make(), 3 * length, iterate)
    check_resume_at(make, int(k_frac * len(reference)), reference, iterate=iterate)


def test_resume_in_a_fresh_process(tmp_path):
    jobs, expected = [], []
    for index, case in enumerate(CASES):
        reference = _reference(index)
        k = len(reference) // 2 + index % 3
        live = Run(build(*case), iterate)
        assert live.take(k) == reference[:k]
        jobs.append(
            {
                "name": case[0],
                "kwargs": case[1],
                "state": live.stage.state_dict(),
                "count": len(reference) - k,
            }
        )
        expected.append(reference[k:])
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.order.samplers.child", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_a_pickled_sampler_keeps_its_state(index):
    reference = _reference(index)
    run = Run(build(*CASES[index]), iterate)
    run.take(5)
    clone = pickle.loads(pickle.dumps(run.stage))  # as mp.spawn and DataLoader workers do
    assert clone.state_dict() == run.stage.state_dict()
    clone.load_state_dict(clone.state_dict())
    assert Run(clone, iterate).take(len(reference) - 5) == reference[5:]
