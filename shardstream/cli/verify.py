"""``shardstream verify``: check a dataset's checksums and that every sample decodes.

For each data file (one, or every shard of a manifest or glob): the md5 of the data file and of
every index file present (``.offsets``, ``.keys``, ``.key_hashes``, ``.filter``, legacy
``.index``) is compared with its ``.md5`` file, and for a manifest also with
the shard's md5 and size recorded there, and the manifest's entries must be unique and in order.
Where the set has a per-sample checksum file (``.xxh3``, which checks itself), every sample is
checked against it and
each damaged sample is named (file, index and key); sets without one (written by datadings or
older versions) are checked per file only, and ``--add-checksums`` adds one (atomically, only
when the data's md5 matches). Then, unless ``--quick``, every sample is decoded and its ``key``
field compared with the keys file. Each fault is printed with the file (and sample) at fault;
the exit code is 1 if there was any. ``datadings`` has no such command (only the reader methods
``verify_data`` and ``verify_index``).

A URL (``s3://...``, ``--storage-options JSON``) is verified shard by shard: each shard's files
are downloaded into a temporary folder, checked as above, and deleted; faults name the URLs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import CorruptSampleError, DatasetNotFoundError, SampleChecksumError, ShardstreamError
from ..format.atomic import settle
from ..format.codec import unpackb
from ..format.integrity import READ_SIZE, load_md5file
from ..format.manifest import (
    Manifest,
    ShardEntry,
    entry_order_faults,
    is_manifest,
    load_manifest,
)
from ..format.paths import INDEX_SUFFIXES, SIDECAR_SUFFIXES, SUFFIX_LEGACY_INDEX, DatasetPaths
from ..read import MsgpackReader
from ..read.open import data_files
from ..read.remote.reader import open_remote
from ..read.remote.retry import call_with_retries
from ..read.remote.url import url_filesystem, url_parent
from ..write.checksums import add_checksums
from ._common import INPUT_HELP, counted, make_progress
from ._remote import add_storage_options, is_remote, require_local_output, storage_options_of

__all__ = ["add_parser", "run", "verify_file"]

#: Bad samples reported one by one per file; the rest are counted.
MAX_SAMPLE_FAULTS = 10


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="check md5 of data and index files and that every sample decodes",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("infile", help=INPUT_HELP)
    parser.add_argument(
        "--quick", action="store_true", help="check checksums and the index only, decode nothing"
    )
    parser.add_argument(
        "--add-checksums",
        action="store_true",
        help="write the per-sample checksum file (.xxh3) where it is missing or stale, after "
        "the data's md5 matched",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_storage_options(parser)
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Verify every data file; returns 0 if all is well, 1 after printing the faults."""
    if is_remote(args.infile):
        return _run_remote(args)
    files = data_files(args.infile)
    entries: list[ShardEntry | None] = [None] * len(files)
    faults = checked = samples = 0
    if is_manifest(args.infile):
        manifest = load_manifest(args.infile)
        entries = list(manifest.shards)
        for problem in entry_order_faults(manifest):
            faults += 1
            _print("FAULT", f"{manifest.path}: {problem}")
    for path, entry in zip(files, entries):
        result = verify_file(
            path,
            entry=entry,
            decode=not args.quick,
            quiet=args.quiet,
            report=_print,
            add=args.add_checksums,
        )
        faults += result["faults"]
        checked += result["files"]
        samples += result["samples"]
    return _summary(args, faults, checked, samples)


def _summary(args: argparse.Namespace, faults: int, checked: int, samples: int) -> int:
    if faults:
        print(f"verify: {faults} fault{'s' if faults != 1 else ''} found")
        return 1
    what = f"{checked} files" + ("" if args.quick else f" and {samples:,} samples")
    print(f"verify: OK, {what} checked")
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    """``verify`` of a URL: each shard downloaded into a temporary folder, checked, deleted."""
    if args.add_checksums:
        require_local_output("verify --add-checksums", args.infile, "it writes checksum files")
    url: str = args.infile
    fs, _ = url_filesystem(url, storage_options_of(args))
    base = url_parent(url)
    faults = checked = samples = 0
    with tempfile.TemporaryDirectory(prefix="shardstream-verify-") as folder:
        local_base = Path(folder)

        def report(status: str, text: str) -> None:  # local paths named by their URLs
            _print(status, text.replace(os.fspath(local_base), base))

        shards: list[tuple[str, ShardEntry | None]] = [(url, None)]
        if is_manifest(url):  # the remote reader reads and checks the manifest (one request)
            with open_remote(url, storage_options=storage_options_of(args)) as reader:
                specs = [shard.spec for shard in reader.shards]  # type: ignore[attr-defined]
            entries = [
                ShardEntry(spec.url[len(base) + 1 :], spec.samples, spec.bytes or 0, spec.md5 or "")
                for spec in specs
            ]
            shards = [(spec.url, entry) for spec, entry in zip(specs, entries)]
            for problem in entry_order_faults(
                Manifest(Path(url.rsplit("/", 1)[-1]), tuple(entries))
            ):
                faults += 1
                _print("FAULT", f"{url}: {problem}")
        for shard_url, entry in shards:
            local = local_base / shard_url.rsplit("/", 1)[-1]
            try:
                _download(fs, shard_url, local)
            except DatasetNotFoundError:
                faults += 1
                _print("FAULT", f"{shard_url}: data file not found")
                continue
            for suffix in SIDECAR_SUFFIXES:
                try:
                    _download(fs, shard_url + suffix, Path(os.fspath(local) + suffix))
                except DatasetNotFoundError:
                    pass  # verify_file reports the missing ones that matter
            result = verify_file(
                local, entry=entry, decode=not args.quick, quiet=args.quiet, report=report
            )
            faults += result["faults"]
            checked += result["files"]
            samples += result["samples"]
            for path in local_base.glob(local.name + "*"):
                path.unlink()
    return _summary(args, faults, checked, samples)


def _download(fs: Any, url: str, path: Path) -> None:
    """Copy the object ``url`` to ``path``.

    Raises:
        DatasetNotFoundError: there is no such object.
        RemoteStorageError: the storage refused or could not be reached.
    """
    remote = fs._strip_protocol(url)
    call_with_retries(lambda: fs.get_file(remote, os.fspath(path)), url=url, what="download")


def verify_file(
    path: Path,
    *,
    entry: ShardEntry | None = None,
    decode: bool = True,
    quiet: bool = True,
    report: Callable[[str, str], None],
    add: bool = False,
) -> dict[str, int]:
    """Verify one data file and its index; call ``report(status, text)`` for each finding.

    Args:
        path: the data file.
        entry: the file's manifest entry, whose md5 and size are checked too.
        decode: decode every sample and compare its ``key`` with the keys file.
        quiet: no progress bars.
        report: called with ``("ok", what)``, ``("note", what)`` or
            ``("FAULT", "<file>: <problem>")``.
        add: write the per-sample checksum file where it is missing or unusable, if the data
            file's md5 matched (see :func:`~shardstream.write.add_checksums`).

    Returns:
        ``{"faults": n, "files": files hashed, "samples": samples decoded}``.
    """
    counts = {"faults": 0, "files": 0, "samples": 0}

    def fault(where: Any, problem: str) -> None:
        counts["faults"] += 1
        report("FAULT", f"{where}: {problem}")

    paths = DatasetPaths(Path(path))
    try:
        settle(paths.data)  # finish an interrupted commit first: verify what readers read
    except ShardstreamError as e:
        fault(getattr(e, "path", None) or paths.data, _problem(e))
        return counts
    if not paths.data.is_file():
        fault(paths.data, "data file not found")
        return counts
    candidates = [paths.data] + [
        paths.sidecar(s)
        for s in (*INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX)
        if paths.sidecar(s).exists()
    ]
    try:
        recorded: dict[str, str] | None = load_md5file(paths.md5)
    except ShardstreamError as e:
        fault(paths.md5, _problem(e))
        recorded = None
    total = sum(f.stat().st_size for f in candidates)
    bar = make_progress(quiet, total, f"md5 {paths.data.name}", unit="B", unit_scale=True)
    hashed = {}
    data_ok = recorded is not None
    try:
        for file in candidates:
            hashed[file] = _md5(file, bar)
    finally:
        bar.close()
    for file, actual in hashed.items():
        counts["files"] += 1
        problems = []
        if recorded is not None:
            expected = recorded.get(file.name)
            if expected is None:
                problems.append(f"no md5 recorded in {paths.md5.name}")
            elif actual != expected:
                problems.append(f"md5 {actual} != {expected} recorded in {paths.md5.name}")
        if entry is not None and file == paths.data:
            if actual != entry.md5:
                problems.append(f"md5 {actual} != {entry.md5} recorded in the manifest")
            size = file.stat().st_size
            if size != entry.bytes:
                problems.append(f"size {size} != {entry.bytes} bytes recorded in the manifest")
        for problem in problems:
            fault(file, problem)
        if problems and file == paths.data:
            data_ok = False
        if not problems and recorded is not None:
            report("ok", f"{file.name} (md5)")
    try:
        try:
            reader = MsgpackReader(paths.data)
        except ShardstreamError as e:
            if not add or getattr(e, "path", None) != str(paths.checksums):
                raise
            fault(paths.checksums, _problem(e))  # a stale checksum file: --add-checksums mends it
            reader = MsgpackReader(paths.data, checksums=False)
        _ = reader.offsets  # loads and checks the offsets (ascending, inside the data file)
    except ShardstreamError as e:
        fault(getattr(e, "path", None) or paths.data, f"index unusable: {_problem(e)}")
        return counts
    with reader:
        damaged: set[int] | None = None
        if reader.has_checksums:
            damaged = _check_samples(reader, quiet, fault)
            if damaged is not None and not damaged:
                report("ok", f"{paths.data.name}: {len(reader):,} samples match their checksums")
        if damaged is None and add:
            _add(paths, data_ok, len(reader), quiet, report, fault)
        elif not reader.has_checksums:
            report(
                "note",
                f"{paths.data.name}: no per-sample checksums ({paths.checksums.name}): damage "
                "is found per file only; add them with --add-checksums",
            )
        if decode:
            before = counts["faults"]
            counts["samples"] = _decode_all(reader, quiet, fault, damaged or set())
            if counts["faults"] == before:
                report("ok", f"{paths.data.name}: {counts['samples']:,} samples decode")
    return counts


def _check_samples(
    reader: MsgpackReader, quiet: bool, fault: Callable[[Any, str], None]
) -> set[int] | None:
    """Check every sample against the checksum file; returns the damaged indices (None: the
    checksum file is unusable)."""
    bar = make_progress(quiet, len(reader), f"xxh3 {reader.path.name}")
    try:
        damaged = reader.damaged_samples(bar)
    except ShardstreamError as e:
        fault(getattr(e, "path", None) or reader.path, f"checksums unusable: {_problem(e)}")
        return None
    finally:
        bar.close()
    for index in damaged[:MAX_SAMPLE_FAULTS]:
        try:
            reader.check_sample(index)
        except SampleChecksumError as e:
            fault(reader.path, e.problem)
    if len(damaged) > MAX_SAMPLE_FAULTS:
        fault(reader.path, f"... and {len(damaged) - MAX_SAMPLE_FAULTS} more damaged samples")
    return set(damaged)


def _add(
    paths: DatasetPaths,
    data_ok: bool,
    count: int,
    quiet: bool,
    report: Callable[[str, str], None],
    fault: Callable[[Any, str], None],
) -> None:
    """Write the checksum file, if the data file's md5 matched (else damage would be recorded)."""
    if not data_ok:
        fault(
            paths.checksums,
            f"not added: {paths.data.name} does not match a recorded md5, so its samples "
            "cannot be trusted",
        )
        return
    bar = make_progress(quiet, count, f"add {paths.checksums.name}")
    try:
        add_checksums(paths.data, bar)
    except ShardstreamError as e:
        fault(getattr(e, "path", None) or paths.data, f"checksums not added: {_problem(e)}")
        return
    finally:
        bar.close()
    report("ok", f"{paths.checksums.name} written: {count:,} per-sample checksums")


def _decode_all(
    reader: MsgpackReader, quiet: bool, fault: Callable[[Any, str], None], skip: set[int]
) -> int:
    """Decode every sample and check its key (but those in ``skip``, reported as damaged
    already); returns how many samples were looked at."""
    try:
        keys: list[str] | None = reader.keys
    except ShardstreamError as e:
        fault(reader.path, f"keys unusable, sample keys not checked: {e}")
        keys = None
    bad = 0
    bar = make_progress(quiet, len(reader), f"decode {reader.path.name}")
    try:
        for index, raw in enumerate(counted(reader.iter(0, raw=True, copy=False), bar)):
            if index in skip:
                continue
            problem = _sample_problem(raw, None if keys is None else keys[index])
            if problem is None:
                continue
            bad += 1
            if bad <= MAX_SAMPLE_FAULTS:
                key = "" if keys is None else f" (key {keys[index]!r})"
                fault(reader.path, f"sample {index}{key} {problem}")
    finally:
        bar.close()
    if bad > MAX_SAMPLE_FAULTS:
        fault(reader.path, f"... and {bad - MAX_SAMPLE_FAULTS} more bad samples")
    return len(reader)


def _md5(path: Path, bar: Any) -> str:
    """Hex md5 of a file, advancing ``bar`` by the bytes read."""
    digest = hashlib.md5()
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            bar.update(n)
    return digest.hexdigest()


def _sample_problem(raw: Any, key: str | None) -> str | None:
    try:
        sample = unpackb(raw)
    except CorruptSampleError as e:  # "sample: does not decode: ..."
        return e.problem.removeprefix("sample: ")
    except Exception as e:  # any decode failure is a finding, not a crash
        return f"does not decode: {type(e).__name__}: {e}"
    found = sample.get("key", key) if isinstance(sample, dict) else key
    if key is not None and not (type(found) is str and found == key):  # (an array never equals)
        return f"has key field {found!r:.80} but the keys file says {key!r}"
    return None


def _problem(error: Exception) -> str:
    """An error's message without the path it starts with (the report names the file)."""
    problem = getattr(error, "problem", None)
    if problem is not None:
        return problem
    path = getattr(error, "path", None)
    return str(error).removeprefix(f"{path}: ") if path else str(error)


def _print(status: str, text: str) -> None:
    print(f"{status:<6} {text}")
