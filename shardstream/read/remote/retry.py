"""Retries of remote requests: exponential backoff with full jitter within a time budget.

A request that fails with a transient fault (a timeout, a reset or refused connection, an HTTP
408/429/5xx) is tried again after ``uniform(0, min(cap, base * 2**attempt))`` seconds until the
budget is spent; then :class:`~shardstream.errors.RemoteStorageError` names the URL, the last
fault and the time tried. A refusal retrying cannot cure raises at once: a missing object as
:class:`~shardstream.errors.DatasetNotFoundError`, 401/403 and other 4xx as
``RemoteStorageError``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ...errors import DatasetNotFoundError, RemoteStorageError, ShardstreamError

__all__ = ["RetryPolicy", "call_with_retries", "is_transient"]

T = TypeVar("T")

#: HTTP statuses worth another try
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How long and how often a remote request is retried.

    Args:
        budget_s: seconds from the first try after which a transient fault is final
            (default: ``SHARDSTREAM_RETRY_SECONDS`` or 60).
        base_s: backoff before the second try (doubles each time, then full jitter).
        cap_s: longest backoff.
    """

    budget_s: float = float(os.environ.get("SHARDSTREAM_RETRY_SECONDS", "60"))
    base_s: float = 0.05
    cap_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The pause before try ``attempt + 1`` (``attempt`` counts failures so far, from 1)."""
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** min(attempt, 30)))


def status_of(error: BaseException) -> int | None:
    """The HTTP status an fsspec/aiohttp/botocore error carries, if any."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(code, int):
            return code
    return None


def is_transient(error: BaseException) -> bool:
    """Whether trying ``error``'s request again may succeed (see the module docstring)."""
    if isinstance(error, (FileNotFoundError, PermissionError, ShardstreamError)):
        return False
    status = status_of(error)
    if status is not None:
        return status in _TRANSIENT_STATUS
    # else: connection refused or reset, timeouts, botocore's endpoint errors, OSError
    permanent = (ValueError, TypeError, KeyError, AttributeError, NotImplementedError)
    return not isinstance(error, permanent)


def call_with_retries(
    request: Callable[[], T], *, url: str, what: str, policy: RetryPolicy | None = None
) -> T:
    """Run ``request()``, retrying transient faults with backoff and jitter.

    Args:
        request: the request (no arguments).
        url: the URL it reads or writes (for messages).
        what: what it does, e.g. ``"read bytes 0-100"``.
        policy: the retry budget (default :class:`RetryPolicy`).

    Returns:
        What ``request`` returns.

    Raises:
        DatasetNotFoundError: the object does not exist.
        RemoteStorageError: access refused (401/403, another 4xx) or transient faults past the
            budget.
        ShardstreamError: what ``request`` raised itself.
    """
    policy = policy or RetryPolicy()
    rng = random.Random()
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return request()
        except FileNotFoundError as e:
            if isinstance(e, ShardstreamError):
                raise
            raise DatasetNotFoundError(url) from e
        except ShardstreamError:
            raise
        except Exception as e:
            attempt += 1
            status = status_of(e)
            fault = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if not is_transient(e):
                kind = (
                    "access denied"
                    if isinstance(e, PermissionError) or status in (401, 403)
                    else "refused"
                )
                raise RemoteStorageError(url, f"{what}: {kind} ({fault})") from e
            spent = time.monotonic() - started
            pause = policy.delay(attempt, rng)
            if spent + pause > policy.budget_s:
                raise RemoteStorageError(
                    url, f"{what}: failed {attempt} times in {spent:.1f} s, last: {fault}"
                ) from e
            time.sleep(pause)
