"""Writing a sharded set to object storage: shards uploaded as they complete, manifest last.

:class:`RemoteShardedWriter` is a :class:`~shardstream.write.ShardedWriter` whose output is a
URL (``s3://bucket/prefix/name.manifest``, ``gs://...``, any fsspec URL). It packs each shard in
a local staging folder; when a shard is complete its files (data and sidecars) are uploaded in
the background (``uploads`` threads) while the next shard is packed. :meth:`close` waits for
every upload, checks each object's size, and then uploads the manifest in one PUT: the manifest
is the commit point, so a conversion killed at any moment leaves no manifest (readers see no
set), and the shards it did upload stay.

Resuming: before uploading a shard, the writer looks at the object already at its URL; when its
size equals the local file's and its MD5 (the ETag of a single-part S3 upload, or the ``md5``
field fsspec reports) matches too, the upload is skipped (``skipped`` lists them). A rerun of a
killed conversion therefore uploads only the shards that were missing or differ.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RemoteStorageError
from ..format.manifest import MANIFEST_SUFFIX
from ..format.paths import SIDECAR_SUFFIXES, DatasetPaths
from ..read.remote.retry import RetryPolicy, call_with_retries
from ..read.remote.url import url_filesystem, url_join, url_parent
from .sharded import ShardedWriter

__all__ = ["RemoteShardedWriter"]


class RemoteShardedWriter(ShardedWriter):
    """A :class:`ShardedWriter` writing to a URL (see the module docstring).

    Args:
        url: the manifest's URL (``.../name.manifest``).
        shard_size: bytes per shard (as :class:`ShardedWriter`).
        storage_options: the filesystem's options (credentials, endpoint).
        uploads: shards uploaded at once in the background.
        retry: the retry policy of every request.
        **kwargs: passed to :class:`ShardedWriter` (``overwrite`` is implied: the local staging
            folder is fresh; an existing remote manifest is replaced at the commit).

    Attributes:
        uploaded: shard file names uploaded by this writer.
        skipped: shard file names already at the URL with the same size and md5.

    Raises:
        ConfigError: ``url`` does not end in ``.manifest``.
        MissingDependencyError: the protocol's package is not installed.
        RemoteStorageError: an upload failed past the retry budget, or an uploaded object's
            size differs (raised by :meth:`close`; no manifest is written).
    """

    def __init__(
        self,
        url: str,
        *,
        shard_size: int,
        storage_options: dict[str, Any] | None = None,
        uploads: int = 4,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        if not url.endswith(MANIFEST_SUFFIX):
            raise ConfigError(f"{url}: a remote output must be a {MANIFEST_SUFFIX} URL")
        self.url = url
        self._fs, _ = url_filesystem(url, storage_options)
        self._retry = retry or RetryPolicy()
        self._base = url_parent(url)
        self._local_root = Path(tempfile.mkdtemp(prefix="shardstream-upload-"))
        self._pool = ThreadPoolExecutor(max(1, uploads), thread_name_prefix="shard-upload")
        self._uploads: list[Future] = []
        self.uploaded: list[str] = []
        self.skipped: list[str] = []
        kwargs["overwrite"] = True
        super().__init__(self._local_root / url.rsplit("/", 1)[-1], shard_size=shard_size, **kwargs)

    def _finish_shard(self) -> None:
        super()._finish_shard()
        entry = self._entries[-1]
        # hard links: the local commit may rename the staged files while they upload
        hold = self._local_root / ".upload"
        hold.mkdir(exist_ok=True)
        source = DatasetPaths(self._staging / entry.path)
        for suffix in ("", *SIDECAR_SUFFIXES):
            path = source.sidecar(suffix) if suffix else source.data
            if path.exists():
                os.link(path, hold / path.name)
        local = DatasetPaths(hold / entry.path)
        self._uploads.append(self._pool.submit(self._upload_shard, local, entry.md5))

    def close(self) -> None:
        """Finish the last shard, wait for every upload, then upload the manifest (the commit).

        Raises:
            RemoteStorageError: an upload failed; no manifest was written.
        """
        if self._closed:
            return
        try:
            super().close()  # packs and uploads the last shard, writes the manifest locally
            for upload in self._uploads:
                upload.result()
            manifest = self.path.read_bytes()
            target = self._fs._strip_protocol(self.url)
            call_with_retries(
                lambda: self._fs.pipe_file(target, manifest),
                url=self.url,
                what="upload the manifest",
                policy=self._retry,
            )
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(self._local_root, ignore_errors=True)

    def abort(self) -> None:
        """Stop: pending uploads are cancelled, no manifest is written; shards uploaded stay."""
        try:
            super().abort()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(self._local_root, ignore_errors=True)

    def _upload_shard(self, local: DatasetPaths, md5: str) -> None:
        name = local.data.name
        remote = url_join(self._base, name)
        if self._already_there(remote, local.data, md5):
            self.skipped.append(name)
            return
        for suffix in SIDECAR_SUFFIXES:  # sidecars first: a data file is never without them
            sidecar = local.sidecar(suffix)
            if sidecar.exists():
                self._put(sidecar, remote + suffix)
        self._put(local.data, remote)
        size = call_with_retries(
            lambda: self._fs.size(self._fs._strip_protocol(remote)),
            url=remote,
            what="check the upload",
            policy=self._retry,
        )
        if size != local.data.stat().st_size:
            raise RemoteStorageError(
                remote, f"uploaded {local.data.stat().st_size} bytes but the object has {size}"
            )
        self.uploaded.append(name)

    def _put(self, path: Path, url: str) -> None:
        target = self._fs._strip_protocol(url)
        call_with_retries(
            lambda: self._fs.put_file(os.fspath(path), target),
            url=url,
            what="upload",
            policy=self._retry,
        )

    def _already_there(self, url: str, path: Path, md5: str) -> bool:
        """Whether ``url`` holds a file of ``path``'s size and md5 (a resumed conversion)."""
        try:
            info = self._fs.info(self._fs._strip_protocol(url))
        except FileNotFoundError:
            return False
        except Exception:
            return False  # cannot tell: upload again
        if info.get("size") != path.stat().st_size:
            return False
        remote_md5 = str(info.get("md5") or info.get("ETag") or info.get("etag") or "").strip('"')
        if remote_md5 and "-" not in remote_md5:
            return remote_md5 == md5
        digest = hashlib.md5(self._fs.cat_file(self._fs._strip_protocol(url))).hexdigest()
        return digest == md5
