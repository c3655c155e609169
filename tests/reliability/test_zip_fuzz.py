"""Fuzz: mutated ZIP files read through ZipFileReader and the ``zip`` converter (listing and
loaders) raise only ``shardstream.errors`` exceptions, never hang, never crash, and never return
wrong bytes (issue 14.9; the old reader raised BadZipFile, zlib.error, NotImplementedError,
IndexError, ...).

Each trial runs in a forked child with a timeout (``run_isolated``); the whole test is bounded to ~20 s.
"""

from __future__ import annotations

import io
import os
import re
import zipfile

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shardstream.errors import ShardstreamError
from shardstream.read import ZipFileReader
from shardstream.sets.zip import scan_zip
from shardstream.write.loaders import read_zip_member
from tests.reliability._forked import run_isolated
from tests.reliability.hostile_sources import jpeg

MEMBERS = {
    "cat/a.jpg": jpeg((16, 16)),
    "cat/b.txt": b"hello " * 40,
    "dog/c.jpg": jpeg((12, 20), seed=3),
}


def _base() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/a.jpg", MEMBERS["cat/a.jpg"], zipfile.ZIP_STORED)
        archive.writestr("cat/b.txt", MEMBERS["cat/b.txt"], zipfile.ZIP_DEFLATED)
        archive.writestr("dog/c.jpg", MEMBERS["dog/c.jpg"], zipfile.ZIP_BZIP2)
    return buffer.getvalue()


BASE = _base()
# bytes of the local headers, central directory entries and end record: where parsers trip
HEADERS = sorted(
    {
        position
        for match in re.finditer(rb"PK\x03\x04|PK\x01\x02|PK\x05\x06", BASE)
        for position in range(match.start(), min(match.start() + 46, len(BASE)))
    }
)

mutation = st.tuples(
    st.one_of(st.sampled_from(HEADERS), st.integers(0, len(BASE) - 1)),
    st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])),
)


def read_everything(path: str) -> list[tuple[str, bytes | None]]:
    """Open and read every member both ways; typed errors are the expected outcome."""
    results: list[tuple[str, bytes | None]] = []
    try:
        with ZipFileReader(path, "**", labels=[None]) as reader:
            names: list[str] = []
            for index in range(len(reader)):
                try:
                    sample = reader.get(index)
                    results.append((sample["path"], sample["data"]))
                    names.append(sample["path"])
                except ShardstreamError:
                    results.append(("", None))
    except ShardstreamError:
        return results
    for name in names:
        try:
            results.append((name, read_zip_member(path, name)))
        except ShardstreamError:
            results.append((name, None))
    try:  # the zip converter's own listing and loaders
        items = scan_zip(path, pattern="**").items
    except ShardstreamError:
        return results
    for item in items:
        try:
            results.append((item.key, item.load()))
        except ShardstreamError:
            results.append((item.key, None))
    return results


@settings(
    max_examples=160,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mutations=st.lists(mutation, min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, len(BASE))),
)
@example(mutations=[(1541, 0), (1546, 1)], cut=None)  # a member with an empty name
def test_mutated_zips_raise_only_typed_errors(tmp_path, mutations, cut):
    data = bytearray(BASE)
    for position, value in mutations:
        data[position] = value
    if cut is not None:
        data = data[:cut]
    path = os.path.join(tmp_path, "fuzz.zip")
    with open(path, "wb") as f:
        f.write(data)
    outcome = run_isolated(read_everything, path, timeout=10)
    assert outcome.status == "returned", (outcome.status, outcome.exc_type, outcome.detail)
    for name, content in outcome.value:
        if content is not None and name in MEMBERS:
            assert content == MEMBERS[name], name  # no wrong data: CRC-checked or refused
