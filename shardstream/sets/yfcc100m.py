"""datadings' ``sets.YFCC100m``: a reader over the YFCC100m image packs (ZIP files of JPEGs).

The Yahoo Flickr Creative Commons 100 Million data set, images only (no videos, no metadata),
in the pre-release layout datadings reads: a folder of 9456 ZIP files ``<pack>.zip`` (the names
and file counts of :data:`~shardstream.sets.yfcc100m_counts.FILE_COUNTS`), each holding members
``<pack>/<hex>``. Samples are ``{"key": <member name>, "image": <JPEG bytes>}``. See
https://multimediacommons.wordpress.com/yfcc100m-core-dataset/

The packs are read in place with shardstream's ZIP helpers: a damaged archive or member raises
:class:`~shardstream.errors.DatasetFormatError` naming the file and member, a member past the
size or compression-ratio limits :class:`~shardstream.errors.SourceTooLargeError`, a missing pack
:class:`~shardstream.errors.DatasetNotFoundError` (a ``FileNotFoundError``, as in datadings).
The reject list (``data/YFCC100m_rejected_images.msgpack.xz``, datadings' own file, shipped
unchanged under its MIT licence) is decoded with shardstream's msgpack codec, never unpickled.

Samples, keys, order, lengths and positions are datadings 3.4.7's. Deliberate differences (all
where datadings' result is wrong or it fails):

- ``find_index`` returns the sample's index (datadings returns the member's position in its
  pack, which differs once a pack before it or a rejected member before it is counted);
- ``get`` honours ``yield_key`` and ``raw`` (datadings ignores both);
- ``next``/``rawnext`` advance :attr:`position` and continue from it after ``iter``/``seek``
  (datadings' ``next`` keeps its own stream and leaves the position alone);
- ``slice`` leaves the position alone (datadings sets it to the last index yielded);
- iteration ends when the packs end (datadings raises ``RuntimeError`` from the generator);
- a seek inside a pack skips rejected members in index order (datadings walks the reject set
  in hash order, which lands on the wrong member when a pack rejects members past ~1000);
- lookups of absent or rejected keys raise :class:`~shardstream.errors.SampleNotFoundError`
  (a ``KeyError`` and an ``IndexError``; datadings raises ``IndexError``, or ``ValueError`` for
  keys without exactly one ``/``); ``slice`` on a validating reader raises its
  ``RuntimeError`` when called, not at the first sample;
- ``close()`` closes the error file; a later rejection reopens it for appending;
- an unreadable reject list raises :class:`~shardstream.errors.CorruptMetadataError`.
"""

from __future__ import annotations

import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, SampleNotFoundError
from ..format.codec import packb
from ..read.reader import Reader
from ..read.zipfile import DEFAULT_MAX_MEMBER_BYTES, DEFAULT_MAX_RATIO, open_zip, read_member
from ._yfcc100m_rejects import parse_rejected as _parse_rejected
from .console import make_printer, print_over
from .types import ImageData
from .yfcc100m_counts import FILE_COUNTS, FILES_TOTAL

__all__ = [
    "ROOT",
    "REJECTED_PATH",
    "DevNull",
    "YFCC100mReader",
    "decode_fast",
    "main",
    "noop",
    "validate_image",
]

#: the folder of this module
ROOT = os.path.abspath(os.path.dirname(__file__))
#: datadings' list of rejected (damaged or blank) images, ``{pack: [member index, ...]}``
REJECTED_PATH = os.path.join(ROOT, "data", "YFCC100m_rejected_images.msgpack.xz")

_MEMBER = re.compile(r"/[0-9a-f]+$")
_PACK_POSITION = {name: i for i, (name, _) in enumerate(FILE_COUNTS)}


def noop(data: Any) -> Any:
    """The identity: the default validator, which accepts every image."""
    return data


def decode_fast(data: bytes) -> np.ndarray:
    """Decode a JPEG as greyscale at reduced quality (fast DCT and upsampling).

    simplejpeg decodes; data it refuses (``ValueError``) goes to Pillow. Pillow's errors
    (``OSError`` for data that is no image) propagate.
    """
    from simplejpeg import decode_jpeg

    try:
        return decode_jpeg(data, "gray", fastdct=True, fastupsample=True, min_height=1, min_width=1)
    except ValueError:
        from PIL import Image

        return np.array(Image.open(io.BytesIO(data)).convert("L"))


def validate_image(data: bytes) -> bytes | None:
    """datadings' image filter: ``data`` for a useful image, ``None`` for a rejected one.

    Rejected: fewer than 2600 bytes, exactly 9218 bytes (Flickr's placeholder), data that does
    not decode, and images under 20000 bytes whose column variances are below 50 for 95 % of
    columns (blank content). Nothing is raised.
    """
    from PIL import Image

    if len(data) < 2600 or len(data) == 9218:
        return None
    try:
        im = decode_fast(data)
        if len(data) < 20000 and np.percentile(im.var(0), 95) < 50:
            return None
        return data
    except (ValueError, OSError, Image.DecompressionBombError):
        return None


class DevNull:
    """A file that reads nothing and discards what is written (the default error file)."""

    def read(self, *_: Any) -> None:
        """Read nothing: returns ``None``."""

    def write(self, *_: Any) -> None:
        """Discard the arguments."""

    def close(self) -> None:
        """Do nothing."""


def _member_names(archive: Any) -> list[str]:
    """The image members of a pack (names ending in ``/<hex>``), in the archive's order."""
    return [info.filename for info in archive.infolist() if _MEMBER.search(info.filename)]


class YFCC100mReader(Reader):
    """Special reader for the YFCC100m data set only: images from ~10000 ZIP files of ~10000
    images each, read in place.

    One pass over the whole data set was made to reject irrelevant images: damaged or
    incomplete ones, those under 2600 bytes, those of exactly 9218 bytes (Flickr's placeholder)
    and those under 20000 bytes whose lines show almost no variance. Which images are left out
    comes from ``reject_file_paths``; ``None`` or ``()`` iterates the whole data set.

    ``get``, ``slice``, ``find_index``, ``find_key``, ``seek_index`` and ``seek_key`` open a pack
    to find a position; iterate (``iter``, large slices) for speed. A validating reader can only
    start from index 0, cannot be copied, and adds the images its validator refuses to its
    reject sets (so ``len`` shrinks) and, as ``"<pack> <index>"`` lines, to ``error_file``.

    Args:
        image_packs_dir: the folder of image ZIP files.
        validator: ``validator(data: bytes) -> bytes | None``; ``None`` rejects the image.
        reject_file_paths: reject lists (msgpack ``{pack: [member index, ...]}`` or text lines
            ``pack index``; plain, ``.gz`` or ``.xz``); default: datadings' list.
        error_file: where rejections are logged (``None``: nowhere).
        error_file_mode: the mode ``error_file`` is opened with.
        max_member_bytes: the largest member read (uncompressed bytes).
        max_ratio: the largest compression ratio of a member (decompression bombs).

    Raises:
        ConfigError: ``validator`` is not callable (a ``ValueError``).
        MetadataNotFoundError: a reject list does not exist.
        CorruptMetadataError: a reject list cannot be decoded.
        OSError: ``error_file`` cannot be opened.
    """

    _do_not_copy = ("_gen", "_error_file")

    def __init__(
        self,
        image_packs_dir: str | os.PathLike,
        validator: Callable[[bytes], bytes | None] = noop,
        reject_file_paths: Iterable[str | os.PathLike] | None = (REJECTED_PATH,),
        error_file: str | os.PathLike | None = None,
        error_file_mode: str = "a",
        *,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        max_ratio: float = DEFAULT_MAX_RATIO,
    ) -> None:
        super().__init__()
        if not callable(validator):
            raise ConfigError(f"validator must be callable, not {validator!r}")
        self._path = os.fspath(image_packs_dir)
        self._validator = validator
        self._limits = {"max_bytes": max_member_bytes, "max_ratio": max_ratio}
        self._rejected: defaultdict[str, set[int]] = defaultdict(set)
        for path in reject_file_paths or ():
            self._rejected = _parse_rejected(os.fspath(path), self._rejected)
        self._error_file_args = (error_file, error_file_mode)
        self._error_file: Any = None
        self.open_error_file_()
        self._gen: Iterator | None = None
        self._gen_at = -1
        self.seek_index(0)

    # --- datadings' API ---------------------------------------------------------------------

    def __len__(self) -> int:
        return FILES_TOTAL - sum(len(r) for r in self._rejected.values())

    def __contains__(self, key: object) -> bool:
        try:
            self.find_index(key)
        except IndexError:
            return False
        return True

    def __copy__(self) -> YFCC100mReader:
        if self._validator is not noop:
            raise RuntimeError("cannot copy a validating reader")
        reader = super().__copy__()
        reader.open_error_file_()
        reader._gen_at = -1
        return reader

    def __getstate__(self) -> dict:
        # picklable for worker processes: no open stream; the error file reopens for appending
        state = dict(self.__dict__)
        state.update(_gen=None, _gen_at=-1, _error_file=None)
        return state

    def __del__(self) -> None:
        if getattr(self, "_error_file", None) is not None:
            self._error_file.close()

    def open_error_file_(self) -> None:
        """Open the error file with the reader's ``error_file_mode`` (a :class:`DevNull` when
        there is none). Raises ``OSError`` when it cannot be opened."""
        error_file, mode = self._error_file_args
        self._error_file = DevNull() if error_file is None else open(error_file, mode)  # noqa: SIM115

    def close(self) -> None:
        """Close the error file and forget the open stream; a later rejection reopens the error
        file for appending."""
        if self._error_file is not None:
            self._error_file.close()
            self._error_file = None
        self._gen = None
        self._gen_at = -1

    def find_index(self, key: Any) -> int:
        """The index of the sample with ``key`` (``"<pack>/<hex>"``).

        Raises:
            SampleNotFoundError: no such pack or member, or the member is rejected.
            RuntimeError: a validating reader and an index other than 0.
        """
        index, _, _ = self._locate_key(key)
        if index != 0 and self._validator is not noop:
            raise RuntimeError("found index may be incorrect while validating")
        return index

    def find_key(self, index: int) -> str:
        """The key of the sample at ``index`` (negative counts from the end).

        Raises:
            IndexError: out of range, or the packs hold fewer members than counted.
            RuntimeError: a validating reader and an index other than 0.
        """
        if index != 0 and self._validator is not noop:
            raise RuntimeError("found key may be incorrect while validating")
        pack, member = self._locate_index(index)
        for _, key, _, _ in self._stream(pack, member, read=False):
            return key
        raise IndexError(f"index {index}: the image packs end before it")

    def seek_index(self, index: int) -> None:
        """Move the position to ``index`` (negative counts from the end).

        Raises:
            IndexError: out of range.
            RuntimeError: a validating reader and an index other than 0.
        """
        if index != 0 and self._validator is not noop:
            raise RuntimeError("can only seek to start while validating")
        start = index + len(self) if index < 0 else index
        self._gen = self._stream(*self._locate_index(index))
        self._i = self._gen_at = start

    def seek_key(self, key: Any) -> None:
        """Move the position to the sample with ``key``.

        Raises:
            SampleNotFoundError: no such sample (or it is rejected).
            RuntimeError: a validating reader and a key other than the first.
        """
        index, pack, member = self._locate_key(key)
        if index != 0 and self._validator is not noop:
            raise RuntimeError("can only seek to start while validating")
        self._gen = self._stream(pack, member)
        self._i = self._gen_at = index

    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """The sample at ``index`` (``(key, sample)`` with ``yield_key``, msgpack bytes with
        ``raw``); with a validator, the first sample it accepts from there.

        Raises:
            IndexError: out of range, or the packs end before it.
            RuntimeError: a validating reader and an index other than 0.
            DatasetFormatError, SourceTooLargeError, DatasetNotFoundError: pack faults.
        """
        if index != 0 and self._validator is not noop:
            raise RuntimeError("can only seek to start while validating")
        try:
            sample = self._next_sample(self._stream(*self._locate_index(index)))
        except StopIteration:
            raise IndexError(f"index {index}: the image packs end before it") from None
        return self._output(sample, yield_key, raw)

    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Iterate over samples ``[start, stop)`` (clamped like a slice) in one pass.

        Raises:
            RuntimeError: a validating reader and a start other than 0 (raised by this call).
        """
        return self._iter_impl(start, stop, yield_key, raw, copy)

    def next(self) -> dict:
        """The sample at the position; advances it. ``StopIteration`` at the end."""
        if self._gen is None or self._gen_at != self._i:
            if self._i >= len(self):
                raise StopIteration
            self.seek_index(self._i)
        sample = self._next_sample(self._gen)
        self._i += 1
        self._gen_at = self._i
        return sample

    __next__ = next

    def rawnext(self) -> bytes:
        """Like :meth:`next`, packed with msgpack."""
        return packb(self.next())

    # --- engine -----------------------------------------------------------------------------

    def _iter_impl(
        self,
        start: int | None,
        stop: int | None,
        yield_key: bool,
        raw: bool,
        copy: bool,
        chunk_size: int = 16,
    ) -> Iterator[Any]:
        if start != 0 and self._validator is not noop:
            raise RuntimeError("can only seek to start while validating")
        start, stop, _ = slice(start, stop).indices(len(self))
        if start >= stop:
            return iter(())
        return self._run(start, stop, yield_key, raw)

    def _run(self, start: int, stop: int, yield_key: bool, raw: bool) -> Iterator[Any]:
        stream = self._stream(*self._locate_index(start))
        for _ in range(start, stop):
            try:
                sample = self._next_sample(stream)
            except StopIteration:
                return
            yield self._output(sample, yield_key, raw)

    def _iter_chunks(
        self, start: int, stop: int, yield_key: bool, raw: bool, copy: bool, chunk_size: int
    ) -> Iterator[Any]:
        # one pass over the packs instead of a pack lookup per chunk
        samples = self._iter_impl(start, stop, yield_key, raw, copy)
        self._i = start
        for sample in samples:
            self._i += 1
            yield sample

    @staticmethod
    def _output(sample: dict, yield_key: bool, raw: bool) -> Any:
        out = packb(sample) if raw else sample
        return (sample["key"], out) if yield_key else out

    def _next_sample(self, stream: Iterator) -> dict:
        while True:
            data, key, pack, i = next(stream)
            rejected = self._rejected[pack]
            if i in rejected:
                continue
            if data is None:
                rejected.add(i)
                self._log_reject(pack, i)
                continue
            return ImageData(key, data)

    def _log_reject(self, pack: str, i: int) -> None:
        if self._error_file is None:  # closed: reopen without truncating
            error_file = self._error_file_args[0]
            self._error_file = DevNull() if error_file is None else open(error_file, "a")  # noqa: SIM115
        self._error_file.write(f"{pack} {i}\n")

    def _stream(self, pack: int, member: int, read: bool = True) -> Iterator[tuple]:
        """``(validated data, key, pack name, member index)`` from pack number ``pack``'s
        member ``member`` on, skipping rejected members."""
        for name, _ in FILE_COUNTS[pack:]:
            path = os.path.join(self._path, name) + ".zip"
            with open_zip(path) as archive:
                rejected = self._rejected[name]
                members = _member_names(archive)
                for i in range(member, len(members)):
                    if i in rejected:
                        continue
                    key = members[i]
                    data = read_member(archive, key, path=path, **self._limits) if read else b""
                    yield (self._validator(data) if read else data), key, name, i
            member = 0

    def _locate_index(self, index: int) -> tuple[int, int]:
        """(pack number, first member to look at) of sample ``index``."""
        total = len(self)
        if index < 0:
            index += total
        if index < 0 or index >= total:
            raise IndexError(f"index {index} out of range for length {total} reader")
        partial = 0
        for pack, (name, count) in enumerate(FILE_COUNTS):
            rejected = self._rejected.get(name, ())
            count -= len(rejected)
            if partial + count > index:
                member = index - partial
                for r in sorted(rejected):  # the member after as many rejects as lie before it
                    if member > r:
                        member += 1
                    else:
                        break
                return pack, member
            partial += count
        raise IndexError(f"index {index} out of range: the pack counts end before it")

    def _locate_key(self, key: Any) -> tuple[int, int, int]:
        """(sample index, pack number, member index) of ``key``."""
        parts = key.split("/") if isinstance(key, str) else ()
        if len(parts) != 2:
            raise SampleNotFoundError(f"{key!r}: a YFCC100m key is '<pack>/<hex>'")
        pack = _PACK_POSITION.get(parts[0])
        if pack is None:
            raise SampleNotFoundError(f"ZIP file {parts[0]!r} not found")
        index = sum(count - len(self._rejected.get(name, ())) for name, count in FILE_COUNTS[:pack])
        path = os.path.join(self._path, parts[0]) + ".zip"
        with open_zip(path) as archive:
            members = _member_names(archive)
        rejected = self._rejected.get(parts[0], ())
        for i, name in enumerate(members):
            if name.split("/")[1] == parts[1]:
                if i in rejected:
                    raise SampleNotFoundError(f"{name!r} is on the rejected list")
                return index + sum(1 for j in range(i) if j not in rejected), pack, i
        raise SampleNotFoundError(f"{parts[1]!r} not found in {path}")


def main() -> None:
    """``python -m shardstream.sets.yfcc100m IMAGE_PACKS [-r REJECTFILE]``: decode every image
    of the packs with :func:`validate_image` and log the rejected ones to ``REJECTFILE``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Load and decode every image from given image packs. "
        "If an image either does not decode properly or does "
        "not contain useful content, its containing zip file "
        "and name are written to the reject file."
    )
    parser.add_argument("image_packs", type=str, help="path to directory of image zip files")
    parser.add_argument("-r", "--rejectfile", type=str, help="path to rejected images log file")
    args = parser.parse_args()

    printer = make_printer(total=100000000)
    reader = YFCC100mReader(
        args.image_packs,
        validator=validate_image,
        reject_file_paths=(),
        error_file=args.rejectfile,
    )
    for key, data in reader.iter(yield_key=True):
        if data["image"] is None:
            print("rejected", key)
        printer.update()
    reader.close()
    print_over(printer.total_updates, "images passed testing")


if __name__ == "__main__":
    main()
