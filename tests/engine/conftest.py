"""Engine tests: every test fails after a time limit instead of hanging."""

from __future__ import annotations

import signal

import pytest

#: seconds any single engine test may run
LIMIT_S = 60


class HangError(Exception):
    """A test ran past its time limit."""


@pytest.fixture(autouse=True)
def time_limit():
    def expire(signum, frame):
        raise HangError(f"test ran longer than {LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
