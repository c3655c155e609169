"""webdataset: import WebDataset tar shards (``shards-{000000..000099}.tar``, globs allowed).

Members are grouped into samples as WebDataset does: consecutive members sharing a key, the path
up to the first dot of the file name (``train/n014_10026.jpg`` and ``train/n014_10026.cls`` are
sample ``train/n014_10026``; extensions are compared in lower case). A sample's image is its first
member whose extension is in ``--image-ext`` (default ``jpg,jpeg,png,webp``), its label the
integer in its ``.cls`` member (no ``.cls``: unlabelled). Members whose file name has no dot (as
in WebDataset) and metadata members (``__name__.ext``) are not part of a sample.

Every other member of a sample is kept as a field (json, txt, npy, more images, masks; decoded as
:mod:`shardstream.format.interchange` says), so nothing of the tar is lost and what
``shardstream export webdataset`` wrote comes back exactly. ``--image-label-only`` keeps only the
image and the ``.cls`` label, as shardstream's import did before and as datadings-style
``{"key", "image", "label"}`` samples need (``all_members=False`` in the Python API);
``--all-members``, which turned this on before it was the default, is still accepted.

The tars are listed once, up front and several at once: an uncompressed tar by its headers, a
compressed one (``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) by decompressing it once, keeping
only where each member lies in the decompressed stream (and the bytes of ``.cls`` labels). Each
member is then read where its item is converted: a worker process, or a Ray task with ``--engine
ray``, so one tar's members are split across tasks and never all read by one process. A compressed
tar can only be read forward: each process keeps the streams it reads open and goes on from where it
is, so a process converting a run of a tar's members in order decompresses the tar up to them once
(with ``N`` workers, each of which takes every ``N``-th chunk of a tar, the tar is decompressed up
to ``N`` times in all, in parallel; a Ray shard task decompresses its tar from the start up to its
last member, unless its worker process has that stream open at an earlier member: a --shard-samples
of at least the samples of a tar keeps this to about one pass per tar). The output is the same, byte
for byte, as from the uncompressed tars. What this buys is that no process ships every member's
bytes to the others (on a cluster, the driver would send the whole data set through Ray's object
store); on one machine it costs decompression: copying three .tar.gz shards of 1,000 demo photos
with 2 workers ran at 0.67x the former read in one process (each tar decompressed three times
instead of once), re-encoding them at about the same rate. A sample without an image or with a
``.cls`` that is not an integer is a bad source (``shard.tar:key``), handled by ``--on-error``; so
is a member whose compressed data turns out damaged when it is read. An unreadable or truncated tar
stops the conversion when it is listed.

Hostile input: a member whose name is absolute or contains ``..`` (``../x.jpg``, ``/etc/x.jpg``)
is refused unread as an unsafe source, with the same check as the ``zip`` converter, and a
member whose name is not valid UTF-8 is a bad source (sample keys are UTF-8 strings; the name is
shown with ``\\xNN`` escapes). A member larger than ``--max-sample-bytes`` (default 256 MiB) is
a bad source, refused before it is read, and a compressed tar that expands past ``--max-ratio``
(default 100) times its size (once past 1 MiB) stops the conversion with
:class:`~shardstream.errors.SourceTooLargeError` (a decompression bomb).
"""

from __future__ import annotations

import argparse
import functools
import glob
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

# braceexpand 0.1.7's __init__.pyi leaves out UnbalancedBracesError (its __all__ names it)
from braceexpand import UnbalancedBracesError, braceexpand  # type: ignore[attr-defined]

from ..errors import (
    BadSourceError,
    DuplicateKeyError,
    NothingToConvertError,
    SourceNotFoundError,
    SourceTooLargeError,
)
from ..format.codec import RESERVED_FIELDS
from ..format.interchange import EXTRA_SUFFIX, KEY_SUFFIX, decode_member, extra_fields
from ..read.zipfile import RATIO_FLOOR
from ..write.conversion import Item
from ..write.loaders import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_SAMPLE_BYTES,
    given_bytes,
    name_problem,
    open_compressed,
    printable_name,
    read_file_range,
    read_stream_range,
    refuse,
    refuse_unsafe,
    unsafe_reason,
)
from .imagefolder import add_limit_arguments

__all__ = [
    "DEFAULT_IMAGE_EXTENSIONS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "expand_braces",
    "find_shards",
    "items",
    "load_members",
    "split_member_name",
    "webdataset_items",
]

NAME = "webdataset"
SOURCES: tuple = ()
DEFAULT_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")

_KEY_AND_SUFFIX = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
#: Largest ``.cls`` member read (it holds one integer).
_MAX_CLS_BYTES = 1024
#: Tars whose headers are indexed at once.
_INDEX_THREADS = 8
#: Field names a member cannot take (it keeps its whole suffix instead).
_TAKEN = frozenset({"key", "image", "label", *RESERVED_FIELDS})


class _Refused(NamedTuple):
    """A member refused unread (too large, or by its name), in place of its bytes."""

    reason: str


def expand_braces(pattern: str) -> list[str]:
    """Expand shell-style braces with the ``braceexpand`` package (as WebDataset does):
    ``{a,b}`` alternatives, ``{000..012}`` numeric ranges (zero padding kept), ``{a..e}`` letter
    ranges, ``{0..10..5}`` steps and nested groups; several groups expand in turn, left first.

    Backslashes are path characters here, not escapes; braces with neither form (``{}``,
    ``{name}``) and unbalanced braces are kept literally, so such a file name still matches.

    Args:
        pattern: e.g. ``"shards/train-{000000..000146}.tar"``.

    Returns:
        The expanded strings, in order.
    """
    try:
        return list(braceexpand(pattern, escape=False))
    except UnbalancedBracesError:
        return [pattern]


def find_shards(patterns: Sequence[str]) -> list[str]:
    """The tar files named by brace and glob patterns, in order (each glob's matches sorted).

    Raises:
        SourceNotFoundError: a plain path does not exist, or a glob matches nothing.
    """
    shards: list[str] = []
    for pattern in patterns:
        for expanded in expand_braces(pattern):
            if glob.has_magic(expanded):
                matches = sorted(glob.glob(expanded))
                if not matches:
                    raise SourceNotFoundError(expanded, "no tar file matches this pattern")
                shards.extend(matches)
            elif os.path.isfile(expanded):
                shards.append(expanded)
            else:
                raise SourceNotFoundError(expanded, "tar file not found")
    return shards


def split_member_name(name: str) -> tuple[str, str] | None:
    """WebDataset's split of a member name into (key, suffix): the key ends at the file name's
    first dot. ``None`` for names without a dot in the file name."""
    match = _KEY_AND_SUFFIX.match(name)
    return (match.group(1), match.group(2)) if match else None


def webdataset_items(
    shards: Sequence[str],
    *,
    image_extensions: Sequence[str] = DEFAULT_IMAGE_EXTENSIONS,
    prefix_shard: bool = False,
    max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    all_members: bool = True,
) -> list[Item]:
    """Items for the samples of WebDataset tar shards.

    Args:
        shards: the tar files, in order.
        image_extensions: extensions that mark the image member, in order of preference.
        prefix_shard: prefix each key with its shard's file name (``shard.tar/key``), for
            shards whose keys repeat from shard to shard.
        max_sample_bytes: members larger than this are bad sources, refused unread.
        max_ratio: a compressed tar that expands past this many times its size (once past
            1 MiB) stops the conversion.
        all_members: keep every member of a sample as a field (see :func:`load_members`);
            ``False`` keeps only the image and the ``.cls`` label.

    Returns:
        The items, in tar and member order.

    Raises:
        NothingToConvertError: no shards, or no samples in them.
        DuplicateKeyError: a key occurs twice.
        BadSourceError: a shard is not a readable tar file.
        SourceTooLargeError: a compressed shard expands past ``max_ratio``.
    """
    if not shards:
        raise NothingToConvertError("nothing to convert: no tar shards given")
    extensions = tuple(e.lower().lstrip(".") for e in image_extensions)
    # one listing pass, several tars at once: an uncompressed tar's headers are read in place,
    # a compressed one is decompressed once (zlib, bz2 and lzma release the GIL); the members'
    # data is read later, member by member, by whichever worker or Ray task converts the item,
    # so one tar is split across tasks
    plain = [_is_plain_tar(shard) for shard in shards]
    listing = functools.partial(_list_tar, max_bytes=max_sample_bytes, ratio=max_ratio)
    with ThreadPoolExecutor(min(_INDEX_THREADS, len(shards))) as pool:
        indexed = list(pool.map(listing, shards, plain))
    found = [
        item
        for shard, members, uncompressed in zip(shards, indexed, plain, strict=True)
        for item in _shard_items(
            shard,
            members,
            extensions,
            prefix_shard,
            max_sample_bytes,
            all_members,
            compressed=not uncompressed,
        )
    ]
    if not found:
        raise NothingToConvertError(
            f"nothing to convert: no samples in {len(shards)} tar shard(s), e.g. {shards[0]}"
        )
    first: dict[str, str] = {}
    for item in found:
        where = first.setdefault(item.key, item.source)
        if where != item.source:
            raise DuplicateKeyError(
                f"key {item.key!r} occurs twice ({where} and {item.source}); pass --prefix-shard "
                "to prefix keys with their shard's name"
            )
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the webdataset arguments (shard patterns and member selection)."""
    parser.add_argument(
        "shards", nargs="+", help="tar shards: paths, globs or brace patterns ({000..099})"
    )
    parser.add_argument(
        "--image-ext",
        default=",".join(DEFAULT_IMAGE_EXTENSIONS),
        help="image member extensions, in order of preference (default: %(default)s)",
    )
    parser.add_argument(
        "--prefix-shard",
        action="store_true",
        help="prefix keys with the shard's file name (when keys repeat across shards)",
    )
    parser.add_argument(
        "--split", default="train", help="split name used in the output name (default: train)"
    )
    members = parser.add_mutually_exclusive_group()
    members.add_argument(
        "--image-label-only",
        dest="all_members",
        action="store_false",
        help="keep only the image and the .cls label of each sample (datadings-style samples); "
        "by default every member is kept as a field (json, txt, npy, more images, masks), so "
        "what 'shardstream export webdataset' wrote comes back exactly",
    )
    members.add_argument(
        "--all-members",
        dest="all_members",
        action="store_true",
        help="keep every member of a sample as a field (the default)",
    )
    parser.set_defaults(all_members=True)
    add_limit_arguments(parser, ratio=True)


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The samples of ``args.shards``, as the single split ``args.split``."""
    return {
        args.split: webdataset_items(
            find_shards(args.shards),
            image_extensions=[e for e in args.image_ext.split(",") if e],
            prefix_shard=args.prefix_shard,
            max_sample_bytes=args.max_sample_bytes,
            max_ratio=args.max_ratio,
            all_members=args.all_members,
        )
    }


# ---------------------------------------------------------------------------------------------


def _is_plain_tar(path: str) -> bool:
    """Whether ``path`` is an uncompressed tar (members can be read at their offsets)."""
    try:
        with tarfile.open(path, "r:"):
            return True
    except tarfile.ReadError:
        return False
    except OSError as e:
        raise BadSourceError(path, f"cannot read the tar file: {e.strerror or e}") from None


def _list_tar(shard: str, plain: bool, *, max_bytes: int, ratio: float) -> list[tuple[str, Any]]:
    """``(name, member)`` for the regular members of a tar, in order: its ``TarInfo`` for an
    uncompressed tar (headers only); for a compressed one a :class:`_Member` (where its data
    lies in the decompressed stream; a label's bytes), or a :class:`_Refused` for a
    member past ``max_bytes`` or refused by its name, unread."""
    if plain:
        try:
            with tarfile.open(shard, "r:") as tar:
                return [(info.name, info) for info in tar if info.isreg()]
        except (tarfile.TarError, OSError) as e:
            raise BadSourceError(shard, f"not a readable tar file: {e}") from None
    try:
        # gzip, bz2 and lzma's own readers check the data's CRCs, which tarfile's stream skips
        with open_compressed(shard) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            members = list(_stream_members(shard, tar, max_bytes, ratio))
            while stream.read(1 << 20):  # on to the end, where gzip's CRC is
                pass
            return members
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise BadSourceError(shard, f"not a readable tar file: {e}") from None


class _Member(NamedTuple):
    """A member of a compressed tar: its data's offset and size in the decompressed stream,
    and its bytes for a ``.cls`` label or a kept key of at most 1 KiB (read while listing)."""

    offset: int
    size: int
    data: bytes | None


def _stream_members(
    shard: str, tar: tarfile.TarFile, max_bytes: int, ratio: float
) -> Iterator[tuple[str, _Member | _Refused]]:
    """The regular members of a compressed tar, read in order (see :func:`_list_tar`).

    A tar whose uncompressed stream would pass ``ratio`` times the file's size raises, before
    the member that would pass it is read or skipped.
    """
    budget = max(RATIO_FLOOR, ratio * os.path.getsize(shard))
    for info in tar:
        end = info.offset_data + max(info.size, 0)
        if end > budget:
            raise SourceTooLargeError(
                shard,
                f"expands past {end:,} bytes, more than {ratio:g} times its compressed size "
                f"({os.path.getsize(shard):,} bytes): a decompression bomb? (raise the limit "
                "with --max-ratio)",
            )
        if not info.isreg():
            continue
        parts = split_member_name(info.name)
        if parts is None or _is_metadata(parts[0]):
            continue  # never part of a sample: not read
        if name_problem(info.name):
            yield info.name, _Refused("refused by its name")  # _group refuses it, unread
            continue
        if info.size > max_bytes:
            yield (
                info.name,
                _Refused(
                    f"{info.size:,} bytes, larger than the largest sample allowed ({max_bytes:,} "
                    "bytes; raise it with --max-sample-bytes)"
                ),
            )
            continue
        small = None  # a label or kept key is read now: it decides the item
        if info.size <= _MAX_CLS_BYTES and parts[1].lower() in ("cls", KEY_SUFFIX):
            member = tar.extractfile(info)
            small = member.read() if member is not None else b""
        yield info.name, _Member(info.offset_data, info.size, small)


def _shard_items(
    shard: str,
    members: list[tuple[str, Any]],
    extensions: tuple[str, ...],
    prefix: bool,
    max_bytes: int,
    all_members: bool,
    *,
    compressed: bool,
) -> Iterator[Item]:
    """Items of a listed tar: members are read later, where the item is converted (at their
    data offset in an uncompressed tar; in a compressed one by a reader that decompresses the
    stream forward, see :func:`~shardstream.write.loaders.read_stream_range`)."""

    def read(member: Any) -> bytes | _Refused:
        if member.size > _MAX_CLS_BYTES:
            return _Refused(f"{member.size:,} bytes, too large for a label")
        if compressed:
            return member.data
        return read_file_range(shard, member.offset_data, member.size)

    def loader(member: Any) -> Any:
        if not compressed:
            return functools.partial(
                read_file_range, shard, member.offset_data, member.size, max_bytes=max_bytes
            )
        if member.data is not None:
            return functools.partial(given_bytes, member.data)
        return functools.partial(
            read_stream_range, shard, member.offset, member.size, max_bytes=max_bytes
        )

    for key, group, problem in _group(members):
        yield _make_item(
            shard,
            key,
            group,
            extensions,
            prefix,
            problem,
            read=read,
            loader=loader,
            all_members=all_members,
        )


def _group(
    members: Iterable[tuple[str, Any]],
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Group consecutive members by key, as WebDataset's ``group_by_keys``.

    Yields ``(key, {suffix: payload}, "")`` per sample, and ``(name, {}, reason)`` for a member
    refused by its name (absolute, with ``..``, or not UTF-8), which takes no part in a group.
    """
    key: str | None = None  # set whenever group holds a member
    group: _Members = _Members()
    for name, payload in members:
        parts = split_member_name(name)
        if parts is None or _is_metadata(parts[0]):
            continue
        problem = name_problem(name)
        if problem:
            if group and key is not None:
                yield key, group, ""
            key, group = None, _Members()
            yield name, {}, problem
            continue
        member_key, suffix = parts
        if member_key != key:
            if group and key is not None:
                yield key, group, ""
            key, group = member_key, _Members()
        group.setdefault(suffix.lower(), payload)
        group.names.setdefault(suffix.lower(), suffix)
    if group and key is not None:
        yield key, group, ""


class _Members(dict):
    """A sample's members by lower-case suffix; ``names`` keeps each suffix as written."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, str] = {}


def _is_metadata(key: str) -> bool:
    """WebDataset's metadata members: the file name before its first dot is ``__name__``."""
    stem = key.rsplit("/", 1)[-1]
    return len(stem) > 4 and stem.startswith("__") and stem.endswith("__")


def _make_item(
    shard: str,
    key: str,
    group: dict[str, Any],
    extensions: tuple[str, ...],
    prefix: bool,
    problem: str,
    *,
    read: Any,
    loader: Any,
    all_members: bool = False,
) -> Item:
    source = f"{shard}:{printable_name(key)}"
    out_key = f"{os.path.basename(shard)}/{key}" if prefix else key
    if problem:  # a member refused by its name: never read, never a key
        fail = refuse_unsafe if unsafe_reason(key) else refuse
        return Item(printable_name(out_key), None, source, functools.partial(fail, source, problem))
    by_extension: dict[str, Any] = {}
    if all_members:  # the image is a bare extension: 'mask.png' is a field of its own
        by_extension = {suffix: suffix for suffix in group if "." not in suffix}
    for suffix in group:
        by_extension.setdefault(suffix.rsplit(".", 1)[-1], suffix)
    image_suffix = next((by_extension[e] for e in extensions if e in by_extension), None)
    image = None if image_suffix is None else group[image_suffix]
    if image is None:
        reason = f"no image member (.{', .'.join(extensions)}) among .{', .'.join(group)}"
        return Item(out_key, None, source, functools.partial(refuse, source, reason))
    if type(image) is _Refused:
        error = functools.partial(_refuse_too_large, source, image.reason)
        return Item(out_key, None, source, error)
    label = None
    if "cls" in group:
        text = read(group["cls"]) if type(group["cls"]) is not _Refused else group["cls"]
        if isinstance(text, _Refused):
            reason = f"the .cls member is not an integer label ({text.reason})"
        else:
            try:
                label = int(text.decode("utf-8").strip())
            except (UnicodeDecodeError, ValueError):
                # the member's bytes are not quoted: reports never hold file content
                reason = f"the .cls member ({len(text)} bytes) is not an integer label"
        if label is None:
            return Item(out_key, None, source, functools.partial(refuse, source, reason))
    if all_members:
        return _all_members_item(group, image_suffix, label, out_key, source, read, loader)
    return Item(out_key, label, source, loader(image))


def _all_members_item(
    group: dict[str, Any],
    image: Any,
    label: int | None,
    key: str,
    source: str,
    read: Any,
    loader: Any,
) -> Item:
    """The item of a sample whose members all become fields (``--all-members``)."""
    if KEY_SUFFIX in group:  # a key WebDataset could not carry, kept by an export
        text = read(group[KEY_SUFFIX]) if type(group[KEY_SUFFIX]) is not _Refused else None
        try:
            kept = text.decode("utf-8") if type(text) is bytes else ""
        except UnicodeDecodeError:
            kept = ""
        if not kept:
            reason = f"the .{KEY_SUFFIX} member is not a UTF-8 key"
            return Item(key, None, source, functools.partial(refuse, source, reason))
        key = kept
    others = []
    names: dict[str, str] = getattr(group, "names", {})  # suffixes as written
    for suffix, payload in group.items():
        if suffix in (image, "cls", KEY_SUFFIX):
            continue
        if type(payload) is _Refused:
            error = functools.partial(_refuse_too_large, source, payload.reason)
            return Item(key, None, source, error)
        others.append((names.get(suffix, suffix), loader(payload)))
    # a whole sample after its key (Item.load may return a dict)
    load: Any = functools.partial(load_members, loader(group[image]), label, tuple(others))
    return Item(key, label, source, load)  # the label is written by load_members


def load_members(
    image: Any, label: int | None, others: tuple[tuple[str, Any], ...]
) -> dict[str, Any]:
    """A sample's fields from its members (runs in a worker): ``image`` (bytes), ``label``
    when the sample has a ``.cls``, then every other member decoded as
    :func:`~shardstream.format.interchange.decode_member` does. A field name that is taken
    (``key``, ``image``, ``label``, a reserved name, an earlier member's) becomes the member's
    whole suffix."""
    sample: dict[str, Any] = {"image": image()}
    if label is not None:
        sample["label"] = label
    for suffix, load in others:
        if suffix.lower() == EXTRA_SUFFIX:  # fields whose names are no member suffix
            for name, value in extra_fields(load()).items():
                sample.setdefault(name, value)
            continue
        name, value = decode_member(suffix, load())
        if name in sample or name in _TAKEN:
            name = suffix
        sample.setdefault(name, value)
    return sample


def _refuse_too_large(source: str, reason: str) -> bytes:
    raise SourceTooLargeError(source, reason)
