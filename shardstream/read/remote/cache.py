"""The node-local shard cache: remote shards downloaded once per node, verified, evicted LRU.

Layout under the cache folder (``ROOT``)::

    ROOT/<set digest>/<entry>/             a complete shard: its data file and sidecars, .stamp
    ROOT/<set digest>/<entry>.part-staging  a download being staged (never read)
    ROOT/<set digest>/<entry>.lock         download lock (exclusive)
    ROOT/<set digest>/<entry>.use          use lock (shared while read; its mtime: last use)
    ROOT/<set digest>/sidecars.json        the sidecar suffixes of the set's shards

The set digest is the content digest of the set (from its manifest's shard digests), so the
same data reached through two URLs shares entries and a changed set never reads stale ones.

Every process and rank on the node shares the folder safely with ``fcntl.flock``:

- a reader holds the entry's use lock shared for as long as it has the shard open;
- a download holds the entry's download lock exclusively: the first process downloads into
  a staging folder, checks size and md5 against the manifest, writes ``.stamp`` and renames the
  folder into place (atomic); the others wait for the lock and find the entry complete;
- eviction (least recently used first, when a download would exceed ``limit``) takes an
  entry's use lock exclusively without waiting, so a shard someone reads is never removed.
  The limit is therefore soft by the shards open at the moment.

Durability without an fsync per entry: the rename is not followed by an ``fsync`` of the folder
(about 17 ms a shard). Instead the stamp records the kernel's boot id
(``/proc/sys/kernel/random/boot_id``). A process killed at any point cannot tear a renamed
entry (its files were written in full before the rename, and the page cache outlives the
process), so an entry stamped in the current boot is trusted. Only a crash of the machine
(power loss, kernel panic) can leave it torn, and that changes the boot id: an entry stamped in
an earlier boot (or without a boot id) is checked once before its first use, its data file
against the manifest's md5 and each sidecar against the digest its stamp recorded, then
stamped anew; one that fails, or whose set gives no md5, is downloaded anew.

A complete entry whose data file no longer matches its stamp (size, mtime) is checked the same
way. A staging folder left by a killed download is removed by the next download of that entry.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import CacheFullError, ChecksumMismatchError

__all__ = ["ShardCache", "CacheEntry", "CachedShard", "default_cache_dir"]

STAMP = ".stamp"
#: the set folder's record of the sidecars its shards have (see :meth:`ShardCache.sidecar_layout`)
LAYOUT = "sidecars.json"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def default_cache_dir() -> Path:
    """``$SHARDSTREAM_CACHE``, else ``$XDG_CACHE_HOME/shardstream/shards`` (``~/.cache``)."""
    env = os.environ.get("SHARDSTREAM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shardstream" / "shards"


@dataclass(frozen=True)
class CacheEntry:
    """One complete entry as :meth:`ShardCache.entries` lists it."""

    path: Path
    bytes: int
    last_used: float


class CachedShard:
    """A shard held in the cache: its folder, kept from eviction until :meth:`release`.

    Attributes:
        dir: the entry's folder (its files keep their remote names).
    """

    def __init__(self, *, dir: Path, fd: int) -> None:
        self.dir = dir
        self._fd: int | None = fd

    def release(self) -> None:
        """Let the entry be evicted again (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _close_lock_fd(fd)  # closing the descriptor drops its flock


class ShardCache:
    """A node-local cache of whole shards shared by every process of the node.

    Args:
        root: the cache folder (created on first use).
        limit: most bytes the cache holds before it evicts (``None``: no limit).

    Raises:
        ConfigError: never; a bad ``limit`` is checked by the caller.
    """

    def __init__(self, *, root: str | os.PathLike, limit: int | None = None) -> None:
        self.root = Path(root)
        self.limit = limit
        self._made: set[str] = set()  # set folders this process made or found

    def acquire(
        self,
        *,
        set_digest: str,
        name: str,
        size: int | None,
        md5: str | None,
        download: Callable[[Path], str | None],
        url: str,
    ) -> CachedShard:
        """The entry ``name`` of the set, downloaded and verified first when it is not here.

        Args:
            set_digest: the set's folder name in the cache.
            name: the entry's name (unique within the set).
            size: the data file's size in bytes (``None``: unknown, not checked).
            md5: the data file's md5 (``None``: unknown, not checked).
            download: writes the shard's files into the folder it is given and returns the
                md5 of the data file it wrote (computed while writing), or ``None`` where it
                verified the data by other digests itself; it raises
                :class:`ChecksumMismatchError` where those disagree (fetched once more).
            url: the shard's URL (for messages).

        Returns:
            The held entry; call :meth:`CachedShard.release` when done reading it.

        Raises:
            ChecksumMismatchError: the download's size or md5 differs twice in a row.
            CacheFullError: the disk filled up (or a file size limit hit) while staging.
            RemoteStorageError, DatasetNotFoundError: the download failed.
        """
        # plain strings on this path: each reader of each process opens every shard through
        # it, and pathlib's joins cost more than the system calls
        folder = os.path.join(self.root, set_digest)
        entry = os.path.join(folder, name)
        use = entry + ".use"
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        try:
            fd = _lock_file(use, fcntl.LOCK_SH)
        except FileNotFoundError:  # the set's folder was removed meanwhile (cache cleared)
            os.makedirs(folder, exist_ok=True)
            fd = _lock_file(use, fcntl.LOCK_SH)
        try:
            if not self._usable(entry, md5, check=False):
                with _Locked(Path(entry + ".lock")):  # checked (or fetched) by one process
                    if not self._usable(entry, md5, check=True):
                        _discard(Path(entry))
                        self._fetch(Path(entry), size, md5, download, url)
            os.utime(use)
        except BaseException:
            _close_lock_fd(fd)
            raise
        return CachedShard(dir=Path(entry), fd=fd)

    def sidecar_layout(self, set_digest: str) -> tuple[str, ...] | None:
        """The sidecar suffixes every shard of the set has, as :meth:`keep_sidecar_layout`
        recorded them (``None``: not recorded, or unreadable)."""
        try:
            got = json.loads((self.root / set_digest / LAYOUT).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(got, list) or not all(isinstance(s, str) for s in got):
            return None
        return tuple(got)

    def keep_sidecar_layout(self, set_digest: str, suffixes: tuple[str, ...]) -> None:
        """Record the sidecar suffixes of the set's shards (a listing found them), so that
        opening the set again needs no listing; best effort (an unwritable cache skips it)."""
        folder = self.root / set_digest
        temporary = folder / f"{LAYOUT}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(list(suffixes)))
            os.replace(temporary, folder / LAYOUT)
        except OSError:
            temporary.unlink(missing_ok=True)

    def contains(self, set_digest: str, name: str) -> bool:
        """Whether the entry is complete in the cache (no check of its bytes)."""
        return os.path.isfile(os.path.join(self.root, set_digest, name, STAMP))

    def last_used(self, set_digest: str, name: str) -> int:
        """When the entry was last acquired (ns since the epoch; -1 if never)."""
        try:
            return os.stat(os.path.join(self.root, set_digest, name + ".use")).st_mtime_ns
        except FileNotFoundError:
            return -1

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, least recently used first."""
        found: list[CacheEntry] = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                stamp = entry / STAMP
                if ".part-" in entry.name or not stamp.is_file():
                    continue
                try:
                    size = int(json.loads(stamp.read_text())["entry_bytes"])
                    used = os.stat(folder / f"{entry.name}.use").st_mtime
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                found.append(CacheEntry(path=entry, bytes=size, last_used=used))
        found.sort(key=lambda e: e.last_used)
        return found

    def size(self) -> int:
        """Bytes held by complete entries."""
        return sum(entry.bytes for entry in self.entries())

    def evict(self, need: int = 0, *, keep: Path | None = None) -> int:
        """Remove least recently used entries nobody holds until ``need`` more bytes fit.

        Args:
            need: bytes about to be added.
            keep: an entry not to remove.

        Returns:
            The bytes removed.
        """
        if self.limit is None:
            return 0
        entries = self.entries()
        total = sum(entry.bytes for entry in entries)
        freed = 0
        for entry in entries:
            if total + need <= self.limit:
                break
            if entry.path == keep:
                continue
            if self._remove_unused(entry.path):
                total -= entry.bytes
                freed += entry.bytes
        return freed

    def clear(self) -> int:
        """Remove every entry nobody holds and every stale staging folder; returns bytes freed."""
        saved, self.limit = self.limit, 0
        try:
            freed = self.evict(1 << 62)
        finally:
            self.limit = saved
        if self.root.is_dir():
            for folder in self.root.iterdir():
                for part in folder.glob("*.part-*") if folder.is_dir() else ():
                    with _Locked(folder / (part.name.split(".part-")[0] + ".lock")):
                        shutil.rmtree(part, ignore_errors=True)
        return freed

    # --- internals --------------------------------------------------------------------------

    def _usable(self, entry: str, md5: str | None, *, check: bool) -> bool:
        """Whether the entry is complete and trusted: stamped in this boot and its data file
        unchanged since (size, mtime). Otherwise, with ``check`` (under the download lock),
        its data is checked against ``md5`` and its sidecars against the stamp's digests, and
        where they agree it is stamped anew (see the module docstring)."""
        try:
            with open(os.path.join(entry, STAMP), "rb") as f:
                stamp = json.loads(f.read())
            data = os.path.join(entry, stamp["data"])
            st = os.stat(data)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if st.st_size != stamp.get("size"):
            return False
        if st.st_mtime_ns == stamp.get("mtime_ns") and stamp.get("boot") == boot_id():
            return True
        if not check or md5 is None or not _sidecars_match(Path(entry), stamp):
            return False
        if _md5_file(Path(data)) != md5:
            return False  # torn by a crash, or changed behind our back: downloaded again
        _write_stamp(Path(entry), os.path.basename(data))
        return True

    def _fetch(
        self,
        entry: Path,
        size: int | None,
        md5: str | None,
        download: Callable[[Path], str | None],
        url: str,
    ) -> None:
        # one name, not one per process: the download lock makes this the only download of
        # the entry on the node, and a killed one's leftovers are found without listing the
        # set's folder (a glob per download costs O(shards))
        staging = entry.parent / f"{entry.name}.part-staging"
        shutil.rmtree(staging, ignore_errors=True)
        self.evict(size or 0, keep=entry)
        problem = ""
        for _attempt in range(2):  # a digest mismatch is downloaded once more
            staging.mkdir()
            try:
                try:
                    got_md5 = download(staging)
                except ChecksumMismatchError as e:  # found by the download's own digests
                    shutil.rmtree(staging, ignore_errors=True)
                    problem = str(getattr(e, "problem", e))
                    continue
                data_name = Path(url).name
                got_size = os.stat(staging / data_name).st_size
                if size is not None and got_size != size:
                    problem = f"downloaded {got_size} bytes, the manifest says {size}"
                elif md5 is not None and got_md5 is not None and got_md5 != md5:
                    problem = f"downloaded md5 {got_md5}, the manifest says {md5}"
                else:
                    _write_stamp(entry=staging, data_name=data_name)
                    os.rename(staging, entry)  # no fsync: see the module docstring
                    if not boot_id():  # boots cannot be told apart here: the old way
                        _fsync_dir(entry.parent)
                    return
            except OSError as e:
                shutil.rmtree(staging, ignore_errors=True)
                if e.errno in _FULL_ERRNOS:
                    raise CacheFullError(
                        self.root,
                        f"no space left to store {url} ({e.strerror}); free space or "
                        "lower cache_limit",
                    ) from None
                raise
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            shutil.rmtree(staging, ignore_errors=True)
        raise ChecksumMismatchError(url, f"{problem} (twice in a row)")

    def _remove_unused(self, entry: Path) -> bool:
        """Remove ``entry`` if no process holds it; whether it was removed."""
        try:
            fd = _lock_file(entry.parent / f"{entry.name}.use", fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            _discard(entry)
            return True
        finally:
            _close_lock_fd(fd)


class _Locked:
    """An exclusive ``flock`` on a lock file, as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Locked:
        self.fd = _lock_file(self.path, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        _close_lock_fd(self.fd)


# A flock belongs to the open file description, which a forked child shares: a lock held
# while a loader forks its workers would stay held by the children after the parent lets go
# (and a child asking for it would wait on itself). So every lock descriptor is recorded, and
# a forked child closes its copies at once; the parent's locks are then the parent's alone.
_fds_lock = threading.Lock()
_lock_fds: set[int] = set()


def _lock_file(path: str | Path, how: int) -> int:
    with _fds_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        _lock_fds.add(fd)
    try:
        fcntl.flock(fd, how)
    except BaseException:
        _close_lock_fd(fd)
        raise
    return fd


def _close_lock_fd(fd: int) -> None:
    with _fds_lock:
        _lock_fds.discard(fd)
        os.close(fd)


def _after_fork_in_child() -> None:
    global _fds_lock
    _fds_lock = threading.Lock()
    for fd in _lock_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _lock_fds.clear()


os.register_at_fork(
    before=lambda: _fds_lock.acquire(),
    after_in_parent=lambda: _fds_lock.release(),
    after_in_child=_after_fork_in_child,
)


def _discard(entry: Path) -> None:
    """Remove an entry folder: renamed away first, so no one sees it half deleted."""
    if not os.path.lexists(entry):
        return
    trash = entry.with_name(f"{entry.name}.part-trash-{secrets.token_hex(4)}")
    try:
        os.rename(entry, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _write_stamp(entry: Path, data_name: str) -> None:
    st = os.stat(entry / data_name)
    total = 0
    sidecars: dict[str, str] = {}
    for path in entry.iterdir():
        if path.name == STAMP or path.name.startswith(f"{STAMP}."):
            continue
        total += path.stat().st_size
        if path.name != data_name:  # small files: what a crash could tear besides the data
            sidecars[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    stamp = {
        "data": data_name,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "entry_bytes": total,
        "stored": time.time(),
        "boot": boot_id(),
        "sidecars": sidecars,
    }
    # a name of this process and thread: a stamp is written under the download lock, but a
    # process that checks an entry must never share a temporary file with another
    temporary = entry / f"{STAMP}.{os.getpid()}-{threading.get_ident()}.tmp"
    temporary.write_text(json.dumps(stamp))
    os.replace(temporary, entry / STAMP)


def _sidecars_match(entry: Path, stamp: dict) -> bool:
    """Whether the entry holds exactly the sidecars its stamp recorded, with their digests."""
    recorded = stamp.get("sidecars")
    if not isinstance(recorded, dict):
        return False
    present = {
        p.name
        for p in entry.iterdir()
        if p.name != stamp.get("data") and p.name != STAMP and not p.name.startswith(f"{STAMP}.")
    }
    if present != set(recorded):
        return False
    for name, digest in recorded.items():
        try:
            if hashlib.md5((entry / name).read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


_boot_id: str | None = None


def boot_id() -> str:
    """The kernel's id of the current boot (``""`` where the system gives none: boots cannot be
    told apart there, so each entry's folder is fsynced after its rename instead)."""
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = ""
    return _boot_id


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
