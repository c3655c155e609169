"""Shared-memory segment helpers: sizing, creation, mapping and unlinking by name."""

from __future__ import annotations

import _posixshmem
import os
import secrets

import pytest

from shardstream.engine.slots import create_segment, grown_size, map_segment, unlink_segment


def _name() -> str:
    return f"sstest{secrets.token_hex(6)}"


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


@pytest.mark.parametrize(
    ("current", "needed", "expected"),
    [(0, 0, 4096), (0, 1, 4096), (0, 4097, 8192), (8192, 100, 12288), (8192, 20000, 20480)],
)
def test_grown_size_is_page_rounded_and_at_least_one_and_a_half_times(current, needed, expected):
    assert grown_size(current, needed) == expected


def test_unlink_removes_a_segment_and_reports_it():
    name = _name()
    segment = create_segment(name, 4096)
    segment.close()
    assert _exists(name)
    assert unlink_segment(name) is True
    assert not _exists(name)
    assert unlink_segment(name) is False


def test_unlink_removes_a_segment_created_but_not_yet_sized():
    # The state a worker leaves for an instant while it grows a slot: the name exists, the size
    # is still 0, and mapping it fails. Abandoning the pool at that instant must still unlink it.
    name = _name()
    fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        assert os.fstat(fd).st_size == 0
        assert unlink_segment(name) is True
        assert not _exists(name)
    finally:
        os.close(fd)


def test_create_replaces_a_stale_segment_and_mapping_sees_its_bytes():
    name = _name()
    stale = create_segment(name, 4096)
    stale.close()
    fresh = create_segment(name, 8192)
    try:
        fresh.buf[:5] = b"hello"
        mapping = map_segment(name, 8192)
        assert len(mapping) == 8192
        assert bytes(mapping[:5]) == b"hello"
    finally:
        fresh.close()
        assert unlink_segment(name) is True
