"""Whole-object GETs that also return the store's ETag, for S3 filesystems (s3fs).

For an object uploaded in one part (without SSE-KMS or SSE-C), S3's ETag is the md5 of the
object's bytes, computed by the store. When it equals the md5 the manifest gives, the store
vouches that the object is the one the manifest names, and a download need not hash its 4 MB
with md5 again (about 8-18 ms of CPU per shard): the bytes that arrived are then checked with
the set's per-sample xxh3 digests instead (see :meth:`RemoteSet.download
<shardstream.read.remote.remote_set.RemoteSet.download>`). Any other ETag (a multipart
``"...-N"``, an encrypted object's) proves nothing, and the caller hashes the data itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cat_whole", "cat_with_etags", "has_etags"]


def has_etags(fs: Any) -> bool:
    """Whether ``fs`` is an S3 filesystem whose GETs can return ETags (s3fs)."""
    return callable(getattr(fs, "_call_s3", None)) and callable(getattr(fs, "split_path", None))


def cat_with_etags(fs: Any, paths: list[str]) -> list[tuple[bytes, str] | BaseException]:
    """Each object's bytes and ETag (quotes stripped), fetched concurrently on ``fs``'s loop.

    Args:
        fs: an s3fs filesystem (see :func:`has_etags`).
        paths: the objects' filesystem paths.

    Returns:
        For each path, ``(bytes, etag)``, or the exception its request ended with (s3fs's own
        translation: ``FileNotFoundError``, ``PermissionError``, ``OSError``...), in order.
    """
    import fsspec.asyn  # delayed: fsspec is imported with the filesystem that needs it
    from s3fs import core  # delayed: s3fs is an optional extra; has_etags(fs) implies it

    wrap = getattr(core, "_error_wrapper", None)

    async def one(path: str) -> tuple[bytes, str]:
        bucket, key, version = fs.split_path(path)
        extra = {"VersionId": version} if version else {}

        async def call() -> tuple[bytes, str]:
            response = await fs._call_s3(
                "get_object", Bucket=bucket, Key=key, **extra, **getattr(fs, "req_kw", {})
            )
            try:
                body = await response["Body"].read()
            finally:
                response["Body"].close()
            return body, str(response.get("ETag", "")).strip('"')

        if wrap is None:
            return await call()
        return await wrap(call, retries=getattr(fs, "retries", 5))

    async def every() -> list[Any]:
        return await asyncio.gather(*(one(p) for p in paths), return_exceptions=True)

    return fsspec.asyn.sync(fs.loop, every)


def cat_whole(fs: Any, paths: list[str]) -> list[bytes | BaseException]:
    """Each whole object's bytes in one GET apiece (see :func:`cat_with_etags`), where s3fs's
    own ``cat_file`` first asks for the object's size (a HEAD: one more round trip per file).

    Args:
        fs: an s3fs filesystem (see :func:`has_etags`).
        paths: the objects' filesystem paths.

    Returns:
        For each path, its bytes or the exception its request ended with, in order.
    """
    return [got[0] if isinstance(got, tuple) else got for got in cat_with_etags(fs, paths)]
