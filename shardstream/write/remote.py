"""Writing to object storage: shards uploaded as they complete, the manifest last.

:class:`RemoteShardedWriter` is a :class:`~shardstream.write.ShardedWriter` whose output is a
URL (``s3://bucket/prefix/name.manifest``, ``gs://...``, any fsspec URL). It packs each shard in
a local staging folder; when a shard is complete its files (data and sidecars) are uploaded in
the background (``uploads`` threads) while the next shard is packed. :meth:`close` waits for
every upload, checks each object's size, uploads the set's offsets file (every shard's offsets in
one object, :mod:`shardstream.format.set_offsets`) and then the manifest in one PUT: the manifest
is the commit point, so a conversion killed at any moment leaves no manifest (readers see no
set), and the shards it did upload stay. Shards only a replaced manifest listed are deleted after
the new manifest is in place.

:class:`RemoteFileWriter` writes one data file to a URL: its sidecars are uploaded first and the
data file last (the object a reader opens is the commit point).

Resuming: before uploading a shard, its object at the URL is looked at; when its size equals the
local file's and its MD5 (the ETag of a single-part S3 upload, or the ``md5`` field fsspec
reports; else the object is read and hashed) matches too, the upload is skipped (``skipped``
lists them). A rerun of a killed conversion (``resume=True``) therefore uploads only the shards
that were missing or differ, and ends with the same objects.

Without ``overwrite`` or ``resume``, an output whose manifest (or data file) or first shard
exists is not replaced: a terminal is asked, anything else raises
:class:`~shardstream.errors.DatasetExistsError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError, DatasetExistsError, DatasetNotFoundError, RemoteStorageError
from ..format.integrity import load_md5file
from ..format.manifest import MANIFEST_SUFFIX, manifest_bytes
from ..format.paths import SIDECAR_SUFFIXES, SUFFIX_OFFSETS, DatasetPaths
from ..format.set_offsets import SetOffsets, encode_set_offsets, set_offsets_path
from ..read.remote.retry import RetryPolicy, call_with_retries
from ..read.remote.url import is_url, local_path_of, url_filesystem, url_join, url_parent
from .prompt import query_user
from .sharded import ShardedWriter, shard_name, sharded_output_paths
from .writer import RawWriter

__all__ = [
    "RemoteFileWriter",
    "RemoteShardedWriter",
    "ShardUploader",
    "is_remote_output",
    "put_bytes",
    "remote_sharded_target",
]


def is_remote_output(output: object) -> bool:
    """Whether ``output`` is a URL other than a plain ``file://`` one (which names a path)."""
    return is_url(output) and local_path_of(str(output)) is None


def remote_sharded_target(url: str) -> tuple[str, str]:
    """The manifest URL and shard name stem for a sharded output URL.

    ``s3://b/p/train.msgpack``, ``.../train.manifest`` and ``.../train`` all give
    ``("s3://b/p/train.manifest", "train")`` (as :func:`~shardstream.write.sharded.
    sharded_output_paths` does for paths).

    Raises:
        ConfigError: the URL has no name before its suffix.
    """
    _, stem = sharded_output_paths(PurePosixPath(url.rsplit("/", 1)[-1] or "."))
    return url_join(url_parent(url), stem + MANIFEST_SUFFIX), stem


def put_bytes(
    url: str,
    data: bytes,
    *,
    storage_options: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
) -> None:
    """Upload ``data`` as the object ``url`` in one request (a report, a names file).

    Raises:
        RemoteStorageError: the upload failed past the retry budget, or was refused.
        MissingDependencyError: the protocol's package is not installed.
    """
    fs, path = url_filesystem(url, storage_options)
    call_with_retries(lambda: fs.pipe_file(path, data), url=url, what="upload", policy=retry)


class ShardUploader:
    """Uploads one shard's files (sidecars first, the data file last) unless already there.

    Args:
        fs: the fsspec filesystem of the output.
        retry: the retry policy of every request.
    """

    def __init__(self, *, fs: Any, retry: RetryPolicy | None = None) -> None:
        self._fs = fs
        self._retry = retry or RetryPolicy()

    def upload(self, local: DatasetPaths, url: str, md5: str) -> bool:
        """Upload the data file ``local`` and its sidecars to ``url`` (and ``url + suffix``).

        Args:
            local: the local shard's paths.
            url: the data file's URL.
            md5: the data file's md5 (from its ``.md5`` file).

        Returns:
            True when uploaded, False when an object of the same size and md5 was there.

        Raises:
            RemoteStorageError: an upload failed past the retry budget, or the uploaded object
                has another size.
        """
        if self.already_there(url, local.data, md5):
            return False
        for suffix in SIDECAR_SUFFIXES:  # sidecars first: a data file is never without them
            sidecar = local.sidecar(suffix)
            if sidecar.exists():
                self._put(sidecar, url + suffix)
        self._put(local.data, url)
        size = call_with_retries(
            lambda: self._fs.size(self._fs._strip_protocol(url)),
            url=url,
            what="check the upload",
            policy=self._retry,
        )
        expected = local.data.stat().st_size
        if size != expected:
            raise RemoteStorageError(url, f"uploaded {expected} bytes but the object has {size}")
        return True

    def exists(self, url: str) -> bool:
        """Whether an object is at ``url``.

        Raises:
            RemoteStorageError: the storage cannot tell (refused, or unreachable).
        """
        path = self._fs._strip_protocol(url)
        return bool(
            call_with_retries(
                lambda: self._fs.exists(path), url=url, what="look for", policy=self._retry
            )
        )

    def remove(self, url: str) -> None:
        """Delete the data file ``url`` and its sidecars (missing ones are fine)."""
        for target in (url, *(url + suffix for suffix in SIDECAR_SUFFIXES)):
            try:
                self._fs.rm_file(self._fs._strip_protocol(target))
            except FileNotFoundError:
                pass

    def already_there(self, url: str, path: Path, md5: str) -> bool:
        """Whether ``url`` holds an object of ``path``'s size whose md5 is ``md5``."""
        try:
            info = call_with_retries(
                lambda: self._fs.info(self._fs._strip_protocol(url)),
                url=url,
                what="look for",
                policy=self._retry,
            )
        except DatasetNotFoundError:
            return False
        if info.get("size") != path.stat().st_size:
            return False
        remote_md5 = str(info.get("md5") or info.get("ETag") or info.get("etag") or "").strip('"')
        if remote_md5 and "-" not in remote_md5:
            return remote_md5 == md5
        data = call_with_retries(
            lambda: self._fs.cat_file(self._fs._strip_protocol(url)),
            url=url,
            what="read",
            policy=self._retry,
        )
        return hashlib.md5(data).hexdigest() == md5

    def _put(self, path: Path, url: str) -> None:
        target = self._fs._strip_protocol(url)
        call_with_retries(
            lambda: self._fs.put_file(os.fspath(path), target),
            url=url,
            what="upload",
            policy=self._retry,
        )


def check_remote_output(
    uploader: ShardUploader, url: str, others: list[str], *, overwrite: bool, resume: bool
) -> None:
    """Apply the overwrite policy to the output ``url`` (``others``: URLs that also mean it
    exists, such as a sharded set's first shard).

    Raises:
        DatasetExistsError: it exists, neither ``overwrite`` nor ``resume`` was given, and no
            terminal confirmed (on a terminal, *abort* raises ``KeyboardInterrupt``).
    """
    if overwrite or resume or not any(uploader.exists(u) for u in (url, *others)):
        return
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise DatasetExistsError(
            url,
            "exists; pass overwrite=True (-y) to replace it, or resume=True (--resume) to keep "
            "the shards an interrupted run uploaded",
        )
    answer = query_user(f"{url} exists, overwrite?")
    if answer == "no":
        raise DatasetExistsError(url, "exists and the user declined to overwrite it")
    if answer == "abort":
        raise KeyboardInterrupt(url)


class RemoteShardedWriter(ShardedWriter):
    """A :class:`ShardedWriter` writing to a URL (see the module docstring).

    A shard's local files are deleted once it is uploaded, and packing waits while ``2 *
    uploads`` finished shards are still waiting for their upload: the local disk holds a few
    shards, not the set.

    Args:
        url: the output URL: ``.../name.manifest`` (or ``.../name.msgpack``, ``.../name``).
        shard_size: bytes per shard (as :class:`ShardedWriter`).
        storage_options: the filesystem's options (credentials, endpoint).
        overwrite: replace an existing set at ``url`` without asking.
        resume: keep the shards already at the URL that equal what this writer writes (an
            interrupted run's); also allows an existing output.
        uploads: shards uploaded at once in the background.
        retry: the retry policy of every request.
        **kwargs: passed to :class:`ShardedWriter` (``buffering``, progress options).

    Attributes:
        url: the manifest's URL.
        uploaded: shard file names uploaded by this writer.
        skipped: shard file names already at the URL with the same size and md5.

    Raises:
        ConfigError: the URL has no name.
        DatasetExistsError: the output exists and may not be replaced.
        MissingDependencyError: the protocol's package is not installed.
        RemoteStorageError: an upload failed past the retry budget, or an uploaded object's
            size differs (raised by the next write or :meth:`close`; no manifest is written).
    """

    def __init__(
        self,
        url: str,
        *,
        shard_size: int,
        storage_options: dict[str, Any] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        uploads: int = 4,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        self.url, stem = remote_sharded_target(url)
        self._fs, _ = url_filesystem(self.url, storage_options)
        self._retry = retry or RetryPolicy()
        self._uploader = ShardUploader(fs=self._fs, retry=self._retry)
        self._base = url_parent(self.url)
        first = url_join(self._base, shard_name(stem, 0))
        check_remote_output(self._uploader, self.url, [first], overwrite=overwrite, resume=resume)
        self._previous_remote = _remote_listed_shards(self._fs, self.url)
        self._waiting = 2 * max(1, uploads)
        self._local_root = Path(tempfile.mkdtemp(prefix="shardstream-upload-"))
        self._pool = ThreadPoolExecutor(max(1, uploads), thread_name_prefix="shard-upload")
        self._uploads: list[Future] = []
        self._names = threading.Lock()
        self._offsets: list[bytes] | None = []  # each shard's, for the set's offsets file
        self.uploaded: list[str] = []
        self.skipped: list[str] = []
        kwargs["overwrite"] = True  # the local staging folder is fresh
        try:
            super().__init__(
                self._local_root / (stem + MANIFEST_SUFFIX), shard_size=shard_size, **kwargs
            )
        except BaseException:
            self._discard_local()
            raise

    @property
    def shard_urls(self) -> list[str]:
        """The URLs of the shards finished so far (all of them after :meth:`close`)."""
        return [url_join(self._base, entry.path) for entry in self._entries]

    def _finish_shard(self) -> None:
        super()._finish_shard()
        entry = self._entries[-1]
        local = DatasetPaths(self._staging / entry.path)
        if self._offsets is not None:
            try:
                self._offsets.append(local.sidecar(SUFFIX_OFFSETS).read_bytes())
            except FileNotFoundError:
                self._offsets = None
        self._uploads.append(self._pool.submit(self._upload_shard, local, entry.md5))
        for upload in self._uploads:  # a failed upload stops the conversion now
            if upload.done() and upload.exception() is not None:
                upload.result()
        pending = [upload for upload in self._uploads if not upload.done()]
        if len(pending) > self._waiting:  # bound the shards held on the local disk
            pending[0].result()

    def close(self) -> None:
        """Finish the last shard, wait for every upload, then upload the manifest (the commit)
        and delete the shards only a replaced manifest listed.

        Raises:
            RemoteStorageError: an upload failed; no manifest was written.
        """
        if self._closed:
            return
        try:
            if self._shard is None and not self._entries:
                self._start_shard()  # a set without samples gets one empty shard
            if self._shard is not None:
                self._finish_shard()
            for upload in self._uploads:
                upload.result()
            manifest = manifest_bytes(self.path, self._entries, self._upload_set_offsets())
            target = self._fs._strip_protocol(self.url)
            call_with_retries(
                lambda: self._fs.pipe_file(target, manifest),
                url=self.url,
                what="upload the manifest",
                policy=self._retry,
            )
            current = {entry.path for entry in self._entries}
            for name in sorted(self._previous_remote - current):
                self._uploader.remove(url_join(self._base, name))
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._progress.close()
        self._finalizer()
        self._discard_local()
        if not self._quiet:
            print(f"{self.written} samples written in {len(self._entries)} shards to {self.url}")

    def _upload_set_offsets(self) -> SetOffsets | None:
        """Upload the set's offsets file (before the manifest that names it)."""
        if self._offsets is None:
            return None
        data = encode_set_offsets(self._offsets)
        name = set_offsets_path(self.path).name
        target = self._fs._strip_protocol(url_join(self._base, name))
        call_with_retries(
            lambda: self._fs.pipe_file(target, data),
            url=url_join(self._base, name),
            what="upload the set's offsets",
            policy=self._retry,
        )
        return SetOffsets.of(name, data)

    def abort(self) -> None:
        """Stop: pending uploads are cancelled, no manifest is written; shards uploaded stay."""
        try:
            super().abort()
        finally:
            self._discard_local()

    def _discard_local(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._local_root, ignore_errors=True)

    def _upload_shard(self, local: DatasetPaths, md5: str) -> None:
        name = local.data.name
        try:
            uploaded = self._uploader.upload(local, url_join(self._base, name), md5)
        finally:  # uploaded or not, the local copy is not needed again
            for path in (local.data, *(local.sidecar(suffix) for suffix in SIDECAR_SUFFIXES)):
                path.unlink(missing_ok=True)
        with self._names:
            (self.uploaded if uploaded else self.skipped).append(name)


class RemoteFileWriter(RawWriter):
    """A :class:`~shardstream.write.RawWriter` whose data file is uploaded to a URL on close.

    The file is written in a local temporary folder; :meth:`close` uploads its sidecars, then
    the data file (the commit point: a reader opens the data file's URL).

    Args:
        url: the data file's URL (``s3://bucket/prefix/name.msgpack``).
        storage_options: the filesystem's options.
        overwrite, resume: as :class:`RemoteShardedWriter`.
        retry: the retry policy of every request.
        **kwargs: passed to :class:`~shardstream.write.RawWriter` (``buffering``, progress).

    Attributes:
        url: the data file's URL.
        uploaded: whether :meth:`close` uploaded the file (False: the same file was there).

    Raises:
        DatasetExistsError, MissingDependencyError, RemoteStorageError: as
            :class:`RemoteShardedWriter`.
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: dict[str, Any] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        name = url.rsplit("/", 1)[-1]
        if not name:
            raise ConfigError(f"output {url!r}: needs a file name")
        self.url = url
        fs, _ = url_filesystem(url, storage_options)
        self._uploader = ShardUploader(fs=fs, retry=retry)
        check_remote_output(self._uploader, url, [], overwrite=overwrite, resume=resume)
        self._local_root = Path(tempfile.mkdtemp(prefix="shardstream-upload-"))
        self.uploaded = False
        kwargs["overwrite"] = True
        super().__init__(self._local_root / name, **kwargs)

    def close(self) -> None:
        """Finish the file locally, then upload its sidecars and the data file last.

        Raises:
            RemoteStorageError: an upload failed; the data file's object was not replaced.
        """
        if self._closed:
            return
        try:
            super().close()
            md5 = load_md5file(DatasetPaths(self.path).md5)[self.path.name]
            self.uploaded = self._uploader.upload(DatasetPaths(self.path), self.url, md5)
        finally:
            shutil.rmtree(self._local_root, ignore_errors=True)

    def abort(self) -> None:
        """Discard the file; nothing is uploaded."""
        try:
            super().abort()
        finally:
            shutil.rmtree(self._local_root, ignore_errors=True)


def _remote_listed_shards(fs: Any, url: str) -> set[str]:
    """Shard names listed by the manifest at ``url`` (empty if there is none or it is bad)."""
    try:
        document = json.loads(fs.cat_file(fs._strip_protocol(url)))
        return {str(shard["path"]) for shard in document["shards"] if "/" not in shard["path"]}
    except Exception:  # no manifest, or a broken one: nothing to clean up safely
        return set()
