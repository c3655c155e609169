"""Atomic replacement of a group of files, and the lock that keeps one writer per output.

Files are staged under hidden temp names in the target folder (``.<name>.<8 chars>.tmp``, so a
rename stays on one file system) and fsynced. :meth:`StagedFiles.commit` of one file is one
rename. A group (a dataset's six files, a sharded set) is committed with a *commit record*
``.<anchor>.commit``: a small JSON file naming each staged file, its final name and size, written
under a temp name, fsynced and renamed into place. That rename is the commit point. The staged
files are then renamed in the recorded order, the folder fsynced and the record deleted.

A kill before the commit point leaves the old files untouched (the staged ones are stale
temporaries, removed by the next writer of that output); a kill after it leaves a record that the
next writer or reader *rolls forward* (:func:`settle`): renaming is idempotent, so the new version
is completed. Readers therefore see either the old set or the new one.

:class:`~shardstream.format.lock.DatasetLock` (re-exported here) is an ``flock`` on
``.<anchor>.lock``, held for a writer's lifetime and released by the kernel when its process
dies. Only the holder of the lock rolls a record forward or deletes temporaries, so nothing of a
live writer is touched.

New files get mode ``0666 & ~umask`` (as ``open()`` creates them), not ``mkstemp``'s ``0600``.

:data:`fault_hook`, when set, is called before every write, fsync, rename and unlink of a commit
(tests set it to kill the process at each step in turn).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import CorruptIndexError, UnfinishedCommitError
from .lock import LOCK_SUFFIX, DatasetLock, lock_path
from .paths import data_path_of

__all__ = [
    "COMMIT_SUFFIX",
    "DatasetLock",
    "LOCK_SUFFIX",
    "StagedFiles",
    "TEMP_SUFFIX",
    "commit_record_name",
    "commit_record_path",
    "create_file",
    "fault_hook",
    "fault_point",
    "fsync_dir",
    "load_json_document",
    "open_temp",
    "lock_path",
    "make_temp_dir",
    "remove_stale_temporaries",
    "roll_forward",
    "settle",
    "settle_locked",
    "write_file_atomically",
]

TEMP_SUFFIX = ".tmp"
COMMIT_SUFFIX = ".commit"
_RECORD_FORMAT = "shardstream.commit"
_RECORD_VERSION = 1
#: a record lists a few files per shard; anything larger is not ours
_MAX_RECORD_BYTES = 64 << 20
#: seconds a group commit by a caller without the lock waits for another holder
_COMMIT_WAIT = 60.0
_TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.[0-9a-z_]{8}" + re.escape(TEMP_SUFFIX) + "$")

#: Called as ``fault_hook(action, path)`` before each step of a commit (``"write"``,
#: ``"fsync"``, ``"rename"``, ``"unlink"``); ``None`` in normal use. For fault-injection tests.
fault_hook: Callable[[str, Path], None] | None = None


def fault_point(action: str, path: Path) -> None:
    """Call :data:`fault_hook` (if set) before the commit step ``action`` on ``path``."""
    hook = fault_hook
    if hook is not None:
        hook(action, path)


def commit_record_path(anchor: str | os.PathLike) -> Path:
    """The commit record of the file group named after ``anchor``: ``.<anchor name>.commit``."""
    return Path(commit_record_name(os.fspath(anchor)))


def commit_record_name(anchor: str) -> str:
    """:func:`commit_record_path` as a str, from a str (cheap: no ``pathlib``)."""
    head, tail = os.path.split(anchor)  # string work: readers call this on every open
    return os.path.join(head, f".{tail}{COMMIT_SUFFIX}")


def _temp_path(final: Path, suffix: str = TEMP_SUFFIX) -> Path:
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{suffix}")


def create_file(path: str | os.PathLike) -> int:
    """Create ``path`` exclusively for writing with mode ``0666 & ~umask``; returns the fd.

    Raises:
        FileExistsError: it exists.
    """
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)


def make_temp_dir(final: Path) -> Path:
    """Create a hidden staging folder ``.<final name>.<8 chars>.tmp`` next to ``final``."""
    while True:
        path = _temp_path(final)
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


def open_temp(final: str | os.PathLike, suffix: str = TEMP_SUFFIX) -> tuple[int, Path]:
    """Create a hidden temp file ``.<final name>.<8 chars><suffix>`` next to ``final``.

    Unlike :func:`tempfile.mkstemp` (mode ``0600``) the file gets ``0666 & ~umask``, as
    ``open()`` gives, so a file renamed into place from it is readable as the user expects.

    Returns:
        The file descriptor (opened for writing) and the temp path.
    """
    final = Path(final)
    while True:
        tmp = _temp_path(final, suffix)
        try:
            return create_file(tmp), tmp
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


class StagedFiles:
    """A group of files written under temp names and committed to their final names as one.

    Use :meth:`open` for streamed content (fsync it before :meth:`commit`) or :meth:`write_bytes`
    for small files, :meth:`adopt` for complete files staged elsewhere in a hidden staging
    folder, :meth:`remove_on_commit` for final paths the new version no longer has; then
    :meth:`commit` or :meth:`abort`.

    Args:
        anchor: the path whose commit record (``.<anchor>.commit``) a group commit writes; by
            default the dataset data file of the first staged path. Every final path must be in
            the anchor's folder when more than one file is committed.
        locked: the caller holds the anchor's :class:`DatasetLock`; otherwise a group commit
            takes it for the commit (waiting up to a minute for another holder).
    """

    def __init__(self, *, anchor: Path | None = None, locked: bool = False) -> None:
        self._anchor = None if anchor is None else Path(anchor)
        self._locked = locked
        self._committed = False
        self._staged: list[tuple[Path, Path]] = []
        self._remove: list[Path] = []
        self._owned: list[Path] = []  # temp files this object created (deleted by abort)
        self._done = False

    def open(self, final: Path) -> BinaryIO:
        """Create a temp file for ``final`` and return it opened for unbuffered binary writing."""
        final = Path(final)
        fd, tmp = open_temp(final)
        self._staged.append((tmp, final))
        self._owned.append(tmp)
        return os.fdopen(fd, "wb", buffering=0)

    def write_bytes(self, final: Path, data: bytes | bytearray | memoryview) -> None:
        """Stage ``data`` as the complete content of ``final`` (written and fsynced now)."""
        with self.open(final) as f:
            tmp = self._staged[-1][0]
            fault_point("write", tmp)
            _write_all(f.fileno(), data)
            fault_point("fsync", tmp)
            os.fsync(f.fileno())

    def adopt(self, staged: Path, final: Path) -> None:
        """Commit the complete, fsynced file ``staged`` (in a staging folder) as ``final``."""
        self._staged.append((Path(staged), Path(final)))

    def remove_on_commit(self, final: Path) -> None:
        """Delete ``final`` (if it exists) as part of the commit, after the renames."""
        self._remove.append(Path(final))

    def commit(self, last: Path | None = None) -> None:
        """Make every staged file visible under its final name, all or nothing.

        Args:
            last: the final path to rename after all others (e.g. the checksum file).

        Raises:
            ValueError: a group's final paths are not all in the anchor's folder.
        """
        ordered = sorted(self._staged, key=lambda item: item[1] == last)
        if len(ordered) == 1 and not self._remove:
            tmp, final = ordered[0]
            fault_point("rename", final)
            os.replace(tmp, final)
            self._committed = True
            fault_point("fsync", final.parent)
            fsync_dir(final.parent)
        elif ordered or self._remove:
            anchor = self._anchor or data_path_of(ordered[0][1] if ordered else self._remove[0])
            record = commit_record_path(anchor)
            lock = None if self._locked else DatasetLock.acquire(anchor, wait=_COMMIT_WAIT)
            try:
                _write_record(record, ordered, self._remove)
                self._committed = True
                self._owned.clear()  # abort() must not delete what the record lists
                fault_point("fsync", record.parent)
                fsync_dir(record.parent)
                roll_forward(record)
            finally:
                if lock is not None:
                    lock.release()
        self._staged.clear()
        self._remove.clear()
        self._owned.clear()
        self._done = True

    def abort(self) -> None:
        """Delete every temp file this object created; final names are left as they were."""
        for tmp in self._owned:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._staged.clear()
        self._remove.clear()
        self._owned.clear()
        self._done = True

    @property
    def committed(self) -> bool:
        """True once the commit point has passed (the new files will be in place)."""
        return self._committed

    @property
    def temp_paths(self) -> list[Path]:
        """The temp files staged so far (for diagnostics and cleanup)."""
        return [tmp for tmp, _ in self._staged]


def _relative(directory: Path, path: Path) -> str:
    """``path`` relative to ``directory``: a name there, or ``<staging folder>/<name>``."""
    try:
        rel = path.relative_to(directory)
    except ValueError:
        raise ValueError(f"{path} is not inside {directory}") from None
    if len(rel.parts) > 2 or (len(rel.parts) == 2 and not _TEMP_NAME.match(rel.parts[0])):
        raise ValueError(f"{path}: a staged file must be in {directory} or a staging folder there")
    return rel.as_posix()


def _write_record(record: Path, ordered: list[tuple[Path, Path]], remove: list[Path]) -> None:
    directory = record.parent
    files = []
    for tmp, final in ordered:
        if final.parent != directory:
            raise ValueError(f"{final}: every file of a group must be in {directory}")
        files.append(
            {"staged": _relative(directory, tmp), "final": final.name, "bytes": tmp.stat().st_size}
        )
    for path in remove:
        if path.parent != directory:
            raise ValueError(f"{path}: every file of a group must be in {directory}")
    document = {
        "format": _RECORD_FORMAT,
        "version": _RECORD_VERSION,
        "files": files,
        "remove": [path.name for path in remove],
    }
    fd, tmp = open_temp(record)
    try:
        try:
            fault_point("write", tmp)
            _write_all(fd, json.dumps(document).encode("utf-8"))
            fault_point("fsync", tmp)
            os.fsync(fd)
        finally:
            os.close(fd)
        fault_point("rename", record)
        os.replace(tmp, record)  # the commit point
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_json_document(path: Path, data: bytes | str, what: str) -> Any:
    """Parse JSON from a file, refusing what Python's ``json`` would turn into odd values.

    ``NaN``/``Infinity``, floats that overflow to infinity, integers of more than 30 digits and
    nesting deep enough to exhaust the stack are faults of the file.

    Raises:
        CorruptIndexError: naming ``path`` and the fault (``what`` names the kind of file).
    """

    def bad_constant(name: str) -> Any:
        raise CorruptIndexError(path, f"{what} holds {name}, which is not a JSON number")

    def parse_float(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise CorruptIndexError(path, f"{what} holds the number {text[:40]}, out of range")
        return value

    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > 30:
            raise CorruptIndexError(path, f"{what} holds an integer of {len(text)} digits")
        return int(text)

    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return json.loads(
            data, parse_constant=bad_constant, parse_float=parse_float, parse_int=parse_int
        )
    except CorruptIndexError:
        raise
    except RecursionError:
        raise CorruptIndexError(path, f"{what} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptIndexError(path, f"{what} is not JSON: {e}") from e


def _load_record(record: Path) -> tuple[list[tuple[Path, Path, int]], list[Path]]:
    """Read and validate a commit record: ``([(staged, final, bytes)], [paths to remove])``."""
    directory = record.parent
    with open(record, "rb") as f:
        data = f.read(_MAX_RECORD_BYTES + 1)
    if len(data) > _MAX_RECORD_BYTES:
        raise CorruptIndexError(record, f"commit record is over {_MAX_RECORD_BYTES} bytes")
    doc = load_json_document(record, data, "commit record")
    if (
        not isinstance(doc, dict)
        or doc.get("format") != _RECORD_FORMAT
        or doc.get("version") != _RECORD_VERSION
        or not isinstance(doc.get("files"), list)
        or not isinstance(doc.get("remove"), list)
    ):
        raise CorruptIndexError(record, f"not a {_RECORD_FORMAT} version {_RECORD_VERSION} record")

    def name(value: Any) -> str:
        if not isinstance(value, str) or value in ("", ".", "..") or "/" in value or "\0" in value:
            raise CorruptIndexError(record, f"commit record names a bad file {value!r:.80}")
        return value

    files = []
    for entry in doc["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("staged"), str):
            raise CorruptIndexError(record, f"commit record entry is malformed: {entry!r:.80}")
        parts = entry["staged"].split("/")
        if len(parts) > 2 or (len(parts) == 2 and not _TEMP_NAME.match(name(parts[0]))):
            raise CorruptIndexError(record, f"staged file {entry['staged']!r:.80} is not ours")
        staged = directory.joinpath(*map(name, parts))
        size = entry.get("bytes")
        if type(size) is not int or size < 0:
            raise CorruptIndexError(record, f"commit record entry has bad size {size!r:.40}")
        files.append((staged, directory / name(entry.get("final")), size))
    return files, [directory / name(value) for value in doc["remove"]]


def roll_forward(record: Path) -> None:
    """Finish the commit ``record`` describes (idempotent); call it holding the output's lock.

    Renames each staged file still there (in order), deletes the removed paths, fsyncs the
    folder and deletes the record.

    Raises:
        CorruptIndexError: the record is malformed, or a file it lists is neither staged nor in
            place with the recorded size.
    """
    files, remove = _load_record(record)
    directory = record.parent
    for staged, final, size in files:
        fault_point("rename", final)
        try:
            os.replace(staged, final)
        except FileNotFoundError:
            try:
                in_place = final.stat().st_size
            except FileNotFoundError:
                in_place = None
            if in_place != size:  # renamed by an earlier roll-forward otherwise
                raise CorruptIndexError(
                    record, f"{staged.name} is gone and {final.name} is not its {size} bytes"
                ) from None
    for path in remove:
        fault_point("unlink", path)
        path.unlink(missing_ok=True)
    fault_point("fsync", directory)
    fsync_dir(directory)
    fault_point("unlink", record)
    record.unlink(missing_ok=True)
    fault_point("fsync", directory)
    fsync_dir(directory)


def settle_locked(anchor: str | os.PathLike) -> None:
    """:func:`settle` for the holder of ``anchor``'s lock (a writer that just took it): roll an
    interrupted commit forward now. (:func:`settle` would wait for the lock, held by the caller
    itself, and fail after its timeout.)

    Raises:
        UnfinishedCommitError: the record cannot be rolled forward (e.g. no write permission).
        CorruptIndexError: the record is malformed.
    """
    if not os.path.lexists(commit_record_name(os.fspath(anchor))):
        return
    record = commit_record_path(anchor)
    try:
        roll_forward(record)
    except OSError as e:
        raise UnfinishedCommitError(
            record, f"an interrupted write cannot be finished here: {e}"
        ) from e


def settle(anchor: str | os.PathLike, *, timeout: float = 30.0) -> None:
    """Make sure no commit of ``anchor`` is pending: roll an interrupted one forward.

    One ``lstat`` when there is no commit record (the normal case). With a record, it takes the
    lock and rolls forward; if a live writer holds the lock, it waits for that writer's commit.

    Raises:
        UnfinishedCommitError: the record cannot be rolled forward by this process (no write
            permission), or a live writer's commit did not finish within ``timeout`` seconds.
        CorruptIndexError: the record is malformed.
    """
    if not os.path.lexists(commit_record_name(os.fspath(anchor))):
        return
    record = commit_record_path(anchor)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock = DatasetLock.try_acquire(anchor)
        except OSError as e:
            _settle_read_only(record, lock_path(anchor), deadline, e)
            return
        if lock is not None:
            try:
                if os.path.lexists(record):
                    roll_forward(record)
            except OSError as e:
                raise UnfinishedCommitError(
                    record, f"an interrupted write cannot be finished here: {e}"
                ) from e
            finally:
                lock.release()
            return
        if not os.path.lexists(record):
            return
        if time.monotonic() > deadline:
            raise UnfinishedCommitError(
                record, f"a writer's commit did not finish within {timeout:g} s"
            )
        time.sleep(0.002)


def _settle_read_only(record: Path, lock: Path, deadline: float, cause: OSError) -> None:
    """Wait for a live writer's commit when this process cannot take the lock itself."""
    while os.path.lexists(record):
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None  # no lock file: nobody is committing
        busy = False
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = True
            finally:
                os.close(fd)
        if not busy or time.monotonic() > deadline:
            raise UnfinishedCommitError(
                record,
                f"a write was interrupted after its commit point; open the dataset once with "
                f"write permission on its folder to finish it ({cause.strerror or cause})",
            )
        time.sleep(0.002)


def remove_stale_temporaries(anchor: str | os.PathLike, finals: Iterable[str]) -> list[Path]:
    """Delete temporaries of killed writers for the given final names in ``anchor``'s folder.

    Only names of this module's scheme (``.<final>.<8 chars>.tmp``, files or staging folders)
    whose ``<final>`` is in ``finals`` or is the anchor's commit record. Call it holding the
    anchor's lock, after :func:`settle`: then no live writer owns any of them.

    Returns:
        The paths removed.
    """
    anchor = Path(anchor)
    wanted = set(finals) | {commit_record_path(anchor).name}
    removed: list[Path] = []
    try:
        entries = list(os.scandir(anchor.parent))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["final"] not in wanted:
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def write_file_atomically(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Replace one file atomically under its lock, first removing what killed writers left.

    Takes ``path``'s :class:`DatasetLock` (waiting up to a minute for another writer), deletes
    stale temporaries of ``path``, stages ``data``, fsyncs and renames it into place.

    Returns:
        ``path``.

    Raises:
        DatasetLockedError: another writer held the lock for a minute.
    """
    path = Path(path)
    lock = DatasetLock.acquire(path, wait=_COMMIT_WAIT)
    try:
        remove_stale_temporaries(path, [path.name])
        staged = StagedFiles(anchor=path, locked=True)
        try:
            staged.write_bytes(path, data)
            staged.commit()
        except BaseException:
            staged.abort()
            raise
    finally:
        lock.release()
    return path


def fsync_dir(directory: Path) -> None:
    """fsync a directory so renames inside it survive a power cut (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
