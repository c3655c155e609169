"""The root of every shardstream error and the helper that names a file in messages."""

from __future__ import annotations

import os

__all__ = ["ShardstreamError"]


def _where(path: str | os.PathLike | None) -> str:
    return f"{os.fspath(path)}: " if path is not None else ""


class ShardstreamError(Exception):
    """Base class of every error shardstream raises on purpose."""


class _UrlFault(ShardstreamError):
    """Base of the errors about one URL: ``url`` and ``problem`` attributes, the message
    ``"<url>: <problem>"``, and pickling across processes despite the two arguments."""

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")

    def __reduce__(self):
        return type(self), (self.url, self.problem)
