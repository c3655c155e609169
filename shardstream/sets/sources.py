"""The files a data set is made from: where to find them, how to check them, how to download them.

A converter lists its :class:`SourceFile` s (name, official md5, download URL). :func:`locate_source`
looks for a file in the input directory, checks its md5 against the official one (a wrong md5 is an
error, never a warning) and, when allowed, downloads a missing file first.

A download streams into a hidden temp file in the target directory (``.<name>.<random>.part``),
hashing as it goes; it is fsynced, checked (length against ``Content-Length``, md5 against the
expected one), and only then renamed to its final name. A failed, interrupted or wrong download
therefore never leaves a file under the final name. ``http``, ``https``, ``ftp`` and ``file`` URLs
use :mod:`urllib` (a dropped or timed-out download is tried again, resuming over HTTP with a range
request; see :mod:`shardstream.sets._download`); other schemes (``s3://``, ``gs://``, ...) go
through fsspec when it is installed.

The base URL can be replaced by a mirror (``--mirror URL`` or the ``SHARDSTREAM_MIRROR`` environment
variable): the file is then fetched from ``<mirror>/<name>``.
"""

from __future__ import annotations

import argparse
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigError,
    DownloadError,
    SourceChecksumError,
    SourceNotFoundError,
)
from ..format.atomic import fsync_dir, open_temp
from ..format.integrity import md5_file
from ._download import fetch as _fetch

__all__ = [
    "SourceFile",
    "MIRROR_ENV",
    "source_url",
    "verify_source",
    "download_source",
    "locate_source",
    "add_source_arguments",
    "sources_from_args",
]

MIRROR_ENV = "SHARDSTREAM_MIRROR"
"""Environment variable with a base URL that replaces every source file's official location."""

DOWNLOAD_SUFFIX = ".part"
"""Suffix of the hidden temp file a download is streamed into."""

PROGRESS_MIN_BYTES = 64 << 20
"""Files at least this large get a progress bar while their md5 is computed."""

DEFAULT_TIMEOUT = 60.0
"""Seconds a download may wait for the server (to connect, or for the next block of data)."""

DEFAULT_RETRIES = 3
"""More tries after a transient download failure (each resuming where the data stopped)."""

_MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, kw_only=True)
class SourceFile:
    """One file a data set is converted from, as its publisher distributes it.

    Attributes:
        name: the file name (no directories), e.g. ``"cifar-10-binary.tar.gz"``.
        md5: its official md5 (32 lower-case hex digits).
        url: where it can be downloaded (``None`` when it cannot be fetched automatically).
        size: its size in bytes, when known (checked before the md5, which is cheaper to fail).
        note: advice for users who lack the file (e.g. that the site needs a login).
    """

    name: str
    md5: str
    url: str | None
    size: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"SourceFile name must be a plain file name, got {self.name!r}")
        if not _MD5_PATTERN.fullmatch(self.md5):
            raise ConfigError(
                f"SourceFile {self.name}: md5 must be 32 lower-case hex digits, got {self.md5!r}"
            )
        if self.size is not None and self.size < 0:
            raise ConfigError(f"SourceFile {self.name}: size must be >= 0, got {self.size}")


def source_url(source: SourceFile, mirror: str | None = None) -> str | None:
    """The URL to download ``source`` from.

    Args:
        source: the file.
        mirror: a base URL replacing the official location (``<mirror>/<name>``); when ``None``,
            the ``SHARDSTREAM_MIRROR`` environment variable is used if set.

    Returns:
        The URL, or ``None`` when there is neither a mirror nor an official URL.
    """
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if mirror:
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(source.name)}"
    return source.url


def verify_source(
    path: str | os.PathLike, source: SourceFile, *, md5: str | None = None, progress: bool = True
) -> None:
    """Check that the file at ``path`` is ``source``: its size (when known) and its md5.

    A file that passed once is remembered (by path, size and modification time) and not hashed
    again in the same process.

    Args:
        path: the file to check.
        source: what it should be.
        md5: the md5 to expect instead of ``source.md5`` (e.g. a repacked archive); by default
            the official one.
        progress: show a progress bar while hashing a large file.

    Raises:
        SourceChecksumError: the size or md5 differs; the message names the file, both values
            and what to do.
        SourceNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    expected = _expected_md5(source, md5)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SourceNotFoundError(path, "does not exist", source.url) from None
    stamp = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if stamp in _VERIFIED:
        return
    if source.size is not None and md5 is None and stat.st_size != source.size:
        raise SourceChecksumError(
            path,
            expected,
            "(not computed)",
            f"is {stat.st_size:,} bytes but {source.name} has {source.size:,}: the file is "
            f"incomplete or a different version. {_REMEDY}",
        )
    actual = md5_file(path, progress=progress and stat.st_size >= PROGRESS_MIN_BYTES)
    if actual != expected:
        raise SourceChecksumError(
            path,
            expected,
            actual,
            f"md5 is {actual} but {source.name} must have md5 {expected}: the file is "
            f"corrupt, incomplete or a different version. {_REMEDY}",
        )
    _VERIFIED.add(stamp)


def download_source(
    source: SourceFile,
    directory: str | os.PathLike,
    *,
    mirror: str | None = None,
    md5: str | None = None,
    verify: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    retry_wait: float = 1.0,
) -> Path:
    """Download ``source`` into ``directory`` (created if needed), replacing any file there.

    The data is streamed into a hidden temp file, fsynced, checked and then renamed, so the final
    name only ever holds a complete, verified file. A transient failure (the connection drops or
    times out, a 5xx answer) is tried again, up to ``retries`` more times, ``retry_wait`` seconds
    after the first failure and twice as long after each next one; over ``http(s)`` a new try
    resumes where the data stopped (``Range: bytes=N-``), and starts over only when the server
    sends the whole file again. Resuming happens within this call: an interrupted process leaves
    nothing to resume from.

    Args:
        source: the file to fetch.
        directory: where to put it (as ``directory / source.name``).
        mirror: a base URL to use instead of the official location (see :func:`source_url`).
        md5: the md5 to expect instead of ``source.md5``.
        verify: check the md5 (and size) of what was downloaded.
        timeout: seconds to wait for the server to connect or send the next block.
        progress: show a progress bar on stderr.
        retries: how many more tries after a transient failure (``0``: one try only).
        retry_wait: seconds before the first retry (doubling for each next one).

    Returns:
        The path of the downloaded file.

    Raises:
        SourceNotFoundError: there is no URL to download from.
        DownloadError: an HTTP error, a timeout, a refused connection, or a body shorter than
            announced, after the retries; the message names the URL (and the number of tries).
        SourceChecksumError: the download does not have the expected md5.
        MissingDependencyError: the URL needs fsspec, which is not installed.
    """
    directory = Path(directory)
    final = directory / source.name
    url = source_url(source, mirror)
    if url is None:
        raise SourceNotFoundError(final, f"cannot be downloaded automatically. {source.note}")
    expected = _expected_md5(source, md5)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = open_temp(final, DOWNLOAD_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            actual, received = _fetch(
                url,
                f,
                timeout=timeout,
                progress=progress,
                desc=source.name,
                retries=retries,
                retry_wait=retry_wait,
            )
            f.flush()
            os.fsync(f.fileno())
        if verify and source.size is not None and md5 is None and received != source.size:
            raise DownloadError(
                url, f"sent {received:,} bytes but {source.name} has {source.size:,}"
            )
        if verify and actual != expected:
            raise SourceChecksumError(
                final,
                expected,
                actual,
                f"the download from {url} has md5 {actual} but {source.name} must have md5 "
                f"{expected}: the server sent something else (an error page, a login page, "
                "another version). Nothing was saved; try again later, use another --mirror, "
                f"or place a good copy at {final}",
            )
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    if verify:
        stat = final.stat()
        _VERIFIED.add((os.fspath(final.resolve()), stat.st_size, stat.st_mtime_ns, expected))
    return final


def locate_source(
    source: SourceFile,
    indir: str | os.PathLike,
    *,
    download: bool = False,
    mirror: str | None = None,
    verify: bool = True,
    md5: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Find ``source`` in ``indir`` (downloading it when missing and allowed) and verify it.

    Args:
        source: the file.
        indir: the directory to look in (and to download into).
        download: download the file when it is missing (a present file is never re-downloaded;
            a present file with a wrong md5 is an error: delete it to download it again).
        mirror: a base URL to download from instead of the official one (see :func:`source_url`).
        verify: check size and md5 (on by default; turning it off trusts the file as it is).
        md5: the md5 to expect instead of the official ``source.md5``.
        timeout: seconds a download may wait for the server.
        progress: show progress bars for hashing and downloading.

    Returns:
        The path of the (verified) file.

    Raises:
        SourceNotFoundError: the file is missing and ``download`` is false (or it has no URL).
        SourceChecksumError: the file (or the download) has the wrong size or md5.
        DownloadError: the download failed.
    """
    indir = Path(indir)
    path = indir / source.name
    if not path.exists():
        if not download:
            url = source_url(source, mirror)
            how = (
                f"pass --download to fetch it from {url}, or put a copy there"
                if url
                else "put a copy there"
            )
            note = f" ({source.note})" if source.note else ""
            raise SourceNotFoundError(
                path, f"{source.name} is not in {indir}: {how}{note}", source.url
            )
        return download_source(
            source,
            indir,
            mirror=mirror,
            md5=md5,
            verify=verify,
            timeout=timeout,
            progress=progress,
        )
    if not path.is_file():
        raise SourceNotFoundError(path, f"is not a file ({source.name} must be a regular file)")
    if verify:
        verify_source(path, source, md5=md5, progress=progress)
    return path


def add_source_arguments(parser: argparse.ArgumentParser, sources: Sequence[SourceFile]) -> None:
    """Add the options that say where a converter's source files are and how to check them.

    Options: ``--indir DIR`` (default: the current directory), ``--download``,
    ``--mirror URL``, ``--skip-verification`` and ``--md5 NAME=MD5`` (repeatable). An option the
    parser already has (e.g. added by the ``write`` command for every converter) is left as is.

    Args:
        parser: the converter's parser.
        sources: the converter's source files (listed in the group's help).
    """
    names = ", ".join(source.name for source in sources)
    group = parser.add_argument_group(
        "source files",
        f"The converter reads {names}, looked for in --indir and checked against the official "
        "md5 before anything is written.",
    )
    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (
            ("--indir",),
            {
                "metavar": "DIR",
                "default": ".",
                "help": "directory holding the source files (default: the current directory)",
            },
        ),
        (
            ("--download",),
            {
                "action": "store_true",
                "help": "download missing source files into --indir (verified before use)",
            },
        ),
        (
            ("--mirror",),
            {
                "metavar": "URL",
                "default": None,
                "help": f"download from URL/<file name> instead of the official site "
                f"(default: ${MIRROR_ENV} if set)",
            },
        ),
        (
            ("--skip-verification",),
            {
                "action": "store_true",
                "help": "do not check the md5 of the source files",
            },
        ),
        (
            ("--md5",),
            {
                "metavar": "NAME=MD5",
                "action": "append",
                "default": [],
                "help": "expect MD5 for source file NAME instead of the official md5 "
                "(for a repacked archive); repeatable",
            },
        ),
    ]
    for flags, kwargs in options:
        try:
            group.add_argument(*flags, **kwargs)
        except argparse.ArgumentError:  # the parser already has this option
            pass


def sources_from_args(
    args: argparse.Namespace,
    sources: Iterable[SourceFile],
    *,
    known: Iterable[SourceFile] | None = None,
) -> dict[str, Path]:
    """Locate (and verify, and download if asked) ``sources`` as the options in ``args`` say.

    Args:
        args: parsed options from a parser set up by :func:`add_source_arguments`; a ``quiet``
            attribute (when present and true) turns progress bars off.
        sources: the files needed.
        known: every file of the converter, which ``--md5`` may name (default: ``sources``).

    Returns:
        The path of each file, by file name.

    Raises:
        ConfigError: a ``--md5`` value is malformed or names a file not in ``known``.
        SourceNotFoundError, SourceChecksumError, DownloadError: see :func:`locate_source`.
    """
    sources = list(sources)
    overrides = _parse_md5_overrides(
        getattr(args, "md5", None) or [], sources if known is None else list(known)
    )
    progress = not getattr(args, "quiet", False) and getattr(args, "progress", True) is not False
    return {
        source.name: locate_source(
            source,
            getattr(args, "indir", None) or ".",
            download=bool(getattr(args, "download", False)),
            mirror=getattr(args, "mirror", None),
            verify=not getattr(args, "skip_verification", False),
            md5=overrides.get(source.name),
            progress=progress,
        )
        for source in sources
    }


# --- helpers -------------------------------------------------------------------------------------

_REMEDY = (
    "Delete it and download it again (--download), or pass --md5 NAME=MD5 if you "
    "knowingly use a repacked copy."
)

# (resolved path, size, mtime_ns, md5) of files that passed verify_source in this process.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def _expected_md5(source: SourceFile, md5: str | None) -> str:
    if md5 is None:
        return source.md5
    md5 = md5.lower()
    if not _MD5_PATTERN.fullmatch(md5):
        raise ConfigError(f"md5 for {source.name} must be 32 hex digits, got {md5!r}")
    return md5


def _parse_md5_overrides(values: Sequence[str], sources: Sequence[SourceFile]) -> dict[str, str]:
    known = {source.name for source in sources}
    overrides: dict[str, str] = {}
    for value in values:
        name, sep, digest = value.partition("=")
        if not sep or not _MD5_PATTERN.fullmatch(digest.lower()):
            raise ConfigError(f"--md5 takes NAME=MD5 (32 hex digits), got {value!r}")
        if name not in known:
            raise ConfigError(
                f"--md5 {value}: {name!r} is not a source file here (these are: "
                f"{', '.join(sorted(known))})"
            )
        overrides[name] = digest.lower()
    return overrides
