"""The root of every shardstream error and the helper that names a file in messages."""

from __future__ import annotations

import os

__all__ = ["ShardstreamError"]


def _where(path: str | os.PathLike | None) -> str:
    return f"{os.fspath(path)}: " if path is not None else ""


class ShardstreamError(Exception):
    """Base class of every error shardstream raises on purpose."""
