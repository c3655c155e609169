"""YFCC100m's reader against datadings 3.4.7's own ``YFCC100mReader`` over the same image packs.

The miniature folder has the real layout: ZIP files named like the first real packs
(``00024a73d1.zip``, ...), members ``<pack>/<hex>`` plus entries the reader must leave out (the
folder entry, upper-case and non-hex names). The first pack holds more than 73 images, so the
real reject list (members 54, 63 and 73 of that pack, ...) takes effect.
"""

from __future__ import annotations

import copy
import inspect
import io
import lzma
import os
import zipfile
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream.errors import (
    CorruptMetadataError,
    DatasetFormatError,
    DatasetNotFoundError,
    MetadataNotFoundError,
    SampleNotFoundError,
    SourceTooLargeError,
)
from shardstream.sets import yfcc100m as ours
from shardstream.sets import yfcc100m_counts

datadings_yfcc = pytest.importorskip("datadings.sets.YFCC100m")

P1, P2, P3 = (name for name, _ in yfcc100m_counts.FILE_COUNTS[:3])
N1, N2, N3 = 90, 12, 8


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    a = np.kron(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
    a = (a + rng.integers(0, 60, a.shape)).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG", quality=95)
    return out.getvalue()


IMAGES = [_jpeg(s) for s in range(6)]
TINY = _jpeg(0)[:2000]  # under 2600 bytes: rejected by size
GARBAGE = b"\xff\xd8" + bytes(range(256)) * 12  # not decodable, over 2600 bytes


def _write_pack(folder: Path, pack: str, n: int, special: dict[int, bytes] | None = None) -> None:
    special = special or {}
    with zipfile.ZipFile(folder / f"{pack}.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{pack}/", b"")  # a folder entry: not an image
        for i in range(n):
            if i == 3:
                z.writestr(f"{pack}/README", b"not an image member")
                z.writestr(f"{pack}/ABCDEF", IMAGES[0])  # upper case: not a member either
            z.writestr(f"{pack}/{i * 7919 + 0xABC:010x}", special.get(i, IMAGES[i % len(IMAGES)]))


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("yfcc")
    _write_pack(folder, P1, N1, {5: TINY, 20: GARBAGE, 60: TINY})
    _write_pack(folder, P2, N2, {1: GARBAGE})
    _write_pack(folder, P3, N3)
    return folder


def _pair(folder, **kwargs):
    return ours.YFCC100mReader(folder, **kwargs), datadings_yfcc.YFCC100mReader(folder, **kwargs)


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b) == ["key", "image"]
    assert a["key"] == b["key"] and a["image"] == b["image"] and type(a["image"]) is bytes


def _items(n1: int, rejected1: set[int]) -> int:
    return n1 - len([i for i in rejected1 if i < n1])


def _real_rejects(pack: str) -> set[int]:
    with lzma.open(ours.REJECTED_PATH) as f:
        return set(msgpack.unpack(f)[pack])


@pytest.mark.parametrize("rejects", ["none", "default"])
def test_iteration_equals_datadings_over_all_packs(packs, rejects):
    kwargs = {"reject_file_paths": ()} if rejects == "none" else {}
    mine, theirs = _pair(packs, **kwargs)
    assert len(mine) == len(theirs)
    rejected = set() if rejects == "none" else _real_rejects(P1)
    assert {54, 63, 73} <= rejected or rejects == "none"
    total = _items(N1, rejected) + N2 + N3
    a = list(mine.iter(0, total, yield_key=True))
    b = list(theirs.iter(0, total, yield_key=True))
    assert len(a) == len(b) == total
    for (ka, sa), (kb, sb) in zip(a, b, strict=True):
        assert ka == kb
        _same(sa, sb)
    assert a[0][0] == f"{P1}/{0xABC:010x}" and a[-1][0].startswith(f"{P3}/")
    keys = [k for k, _ in a]
    assert all(k.startswith(f"{P1}/") for k in keys[: total - N2 - N3])
    assert mine.position == theirs._i == total
    # the fourth pack is missing: both fail there, ours with a typed FileNotFoundError
    with pytest.raises(DatasetNotFoundError, match="ZIP file not found"):
        list(mine.iter(0, total + 1))
    with pytest.raises(FileNotFoundError):
        list(theirs.iter(0, total + 1))


def test_default_reject_list_and_counts_are_datadings(packs):
    from datadings.sets import YFCC100m_counts as theirs_counts

    assert yfcc100m_counts.FILE_COUNTS == theirs_counts.FILE_COUNTS
    assert yfcc100m_counts.FILES_TOTAL == theirs_counts.FILES_TOTAL == 94502424
    mine = ours.YFCC100mReader(packs)
    theirs = datadings_yfcc.YFCC100mReader(packs)
    assert mine._rejected == theirs._rejected
    assert len(mine) == len(theirs) == 94502424 - 2412945


@pytest.mark.parametrize("fmt", ["msgpack", "text.xz"])
def test_own_reject_lists(packs, tmp_path, fmt):
    rejects = {P1: [0, 2, 3, 30], P2: [0, 5], "ffffffffff": [1]}
    if fmt == "msgpack":
        path = tmp_path / "rejects.msgpack"
        path.write_bytes(msgpack.packb(rejects))
    else:
        path = tmp_path / "rejects.txt.xz"
        lines = "".join(f"{z} {i}\n" for z, ids in rejects.items() for i in ids)
        path.write_bytes(lzma.compress(lines.encode()))
    mine, theirs = _pair(packs, reject_file_paths=[str(path)])
    assert len(mine) == len(theirs) == yfcc100m_counts.FILES_TOTAL - 7
    n = N1 - 4 + N2 - 2 + N3
    a, b = list(mine.iter(0, n)), list(theirs.iter(0, n))
    for sa, sb in zip(a, b, strict=True):
        _same(sa, sb)
    assert a[0]["key"] == f"{P1}/{1 * 7919 + 0xABC:010x}"
    for i in (0, 1, 2, 50, 85):
        _same(mine.get(i), theirs.get(i))
        assert mine.find_key(i) == theirs.find_key(i) == a[i]["key"]
    # pack 2 starts at its counted position: 10000 members minus pack 1's rejects
    start2 = 10000 - 4
    for j in (0, 3, N2 - 3):
        _same(mine.get(start2 + j), theirs.get(start2 + j))
        key = mine.find_key(start2 + j)
        assert mine.find_index(key) == start2 + j
        mine.seek_key(key)
        theirs.seek_key(key)
        assert mine.position == theirs._i == start2 + j
        _same(mine.next(), theirs.next())
    # a rejected or absent key: IndexError in both, ours also a KeyError
    for key in (f"{P1}/{0 * 7919 + 0xABC:010x}", f"{P1}/0123", "nosuchpack/00", "no-slash"):
        assert key not in mine
        with pytest.raises(SampleNotFoundError):
            mine.find_index(key)
    for key in (f"{P1}/{0 * 7919 + 0xABC:010x}", f"{P1}/0123", "nosuchpack/00"):
        assert key not in theirs
    with pytest.raises(KeyError):
        mine.seek_key("nosuchpack/00")


def test_seek_get_slice_and_positions(packs):
    mine, theirs = _pair(packs)
    rejected = _real_rejects(P1)
    n = _items(N1, rejected)
    full = list(mine.iter(0, n))
    keys = _member_keys(P1, N1)
    for i in (0, 1, 53, 54, 60, n - 1):
        _same(mine.get(i), full[i])
        assert mine.find_key(i) == full[i]["key"]
        # datadings' find_index returns the member's position in its pack; ours the index
        assert mine.find_index(full[i]["key"]) == i
        mine.seek_index(i)
        theirs.seek_index(i)
        assert mine.position == theirs._i == i
        _same(mine.next(), full[i])
        assert mine.position == i + 1
        if i < 54:  # before the first reject both agree
            _same(theirs.get(i), full[i])
            _same(theirs.next(), full[i])
        else:
            # the real list's set iterates from 512 on: datadings' seek skips no reject and
            # lands on the first kept member from member i, not on the i-th sample its own
            # iteration yields
            member = next(keys[j] for j in range(i, N1) if j not in rejected)
            assert theirs.get(i)["key"] == theirs.find_key(i) == member
    assert theirs.get(60)["key"] != full[60]["key"]
    assert datadings_yfcc.YFCC100mReader(packs).find_index(full[60]["key"]) != 60
    for a, b in ((0, 5), (50, 70), (n - 3, n)):
        x = [k for k, _ in mine.slice(a, b, yield_key=True)]
        assert x == [s["key"] for s in full[a:b]]
        if a == 0:  # datadings' slices from later starts seek as its get does
            assert x == [k for k, _ in theirs.slice(a, b, yield_key=True)]
    assert [s["key"] for s in mine[2:6]] == [s["key"] for s in theirs[2:6]]
    # raw: msgpack bytes of the same sample
    assert msgpack.unpackb(next(iter(mine.slice(3, 4, raw=True)))) == full[3]
    assert mine.get(3, yield_key=True) == (full[3]["key"], full[3])  # datadings ignores it
    with pytest.raises(IndexError):
        mine.seek_index(len(mine))
    with pytest.raises(IndexError):
        theirs.seek_index(len(theirs))
    # negative indices count from the end in both (the last pack is missing here)
    mine.seek_index(-1)
    assert mine.position == len(mine) - 1


def test_next_and_iter_continue_from_the_position(packs):
    mine, theirs = _pair(packs)
    a = [mine.next() for _ in range(4)]
    b = [theirs.next() for _ in range(4)]
    for x, y in zip(a, b, strict=True):
        _same(x, y)
    assert mine.position == 4  # datadings' next leaves its position at 0
    rest = list(mine.iter(stop=8))
    assert [s["key"] for s in rest] == [s["key"] for s in theirs.slice(4, 8)]
    assert mine.position == 8
    assert mine.next()["key"] == mine.find_key(8)
    assert msgpack.unpackb(mine.rawnext()) == mine.get(9)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sets(st.integers(0, N1 - 1), max_size=12), st.integers(0, 200))
def test_any_reject_set_indexes_like_iteration(packs, tmp_path_factory, rejects, pick):
    path = tmp_path_factory.mktemp("rj") / "r.msgpack"
    path.write_bytes(msgpack.packb({P1: sorted(rejects)}))
    mine = ours.YFCC100mReader(packs, reject_file_paths=[path])
    n = N1 - len(rejects)
    keys = [k for k, _ in mine.iter(0, n, yield_key=True)]
    expected = [k for i, k in enumerate(_member_keys(P1, N1)) if i not in rejects]
    assert keys == expected
    i = pick % n
    assert mine.find_key(i) == keys[i] and mine.find_index(keys[i]) == i
    assert mine.get(i)["key"] == keys[i]
    theirs = datadings_yfcc.YFCC100mReader(packs, reject_file_paths=[str(path)])
    if list(theirs._rejected[P1]) == sorted(rejects):
        # datadings walks the reject set in hash order: it agrees where that is sorted
        assert theirs.get(i)["key"] == keys[i]


def _member_keys(pack: str, n: int) -> list[str]:
    return [f"{pack}/{i * 7919 + 0xABC:010x}" for i in range(n)]


def test_reject_sets_in_hash_order_mislead_datadings(packs, tmp_path):
    # {2, 8} iterates as 8, 2 in CPython: datadings' seek stops at 8 and lands on member 3
    path = tmp_path / "r.msgpack"
    path.write_bytes(msgpack.packb({P1: [2, 8]}))
    mine = ours.YFCC100mReader(packs, reject_file_paths=[path])
    theirs = datadings_yfcc.YFCC100mReader(packs, reject_file_paths=[str(path)])
    keys = _member_keys(P1, N1)
    assert [s["key"] for s in mine.iter(0, 5)] == [s["key"] for s in theirs.iter(0, 5)]
    assert mine.get(3)["key"] == keys[4]
    assert theirs.get(3)["key"] == keys[3]


def test_validator_and_error_file_equal_datadings(packs, tmp_path):
    out_a, out_b = tmp_path / "a.txt", tmp_path / "b.txt"
    mine = ours.YFCC100mReader(
        packs, validator=ours.validate_image, reject_file_paths=(), error_file=out_a
    )
    theirs = datadings_yfcc.YFCC100mReader(
        packs, validator=datadings_yfcc.validate_image, reject_file_paths=(), error_file=out_b
    )
    n = N1 - 3 + N2 - 1 + N3
    a, b = list(mine.iter(0, n)), list(theirs.iter(0, n))
    for x, y in zip(a, b, strict=True):
        _same(x, y)
    mine.close()
    theirs.__exit__(None, None, None)
    assert out_a.read_text() == out_b.read_text() == f"{P1} 5\n{P1} 20\n{P1} 60\n{P2} 1\n"
    assert len(mine) == len(theirs) == yfcc100m_counts.FILES_TOTAL - 4
    # validating readers only start at 0 and cannot be copied
    for reader in (mine, theirs):
        for call in (lambda r: r.seek_index(1), lambda r: r.get(1), lambda r: r.find_key(1)):
            with pytest.raises(RuntimeError):
                call(reader)
        with pytest.raises(RuntimeError):
            copy.copy(reader)
    with pytest.raises(RuntimeError):
        mine.slice(2, 4)
    for data in (*IMAGES, TINY, GARBAGE, b"", b"\x00" * 9218):
        assert ours.validate_image(data) == datadings_yfcc.validate_image(data)
    assert np.array_equal(ours.decode_fast(IMAGES[1]), datadings_yfcc.decode_fast(IMAGES[1]))


def test_copy_of_a_plain_reader(packs, tmp_path):
    mine = ours.YFCC100mReader(packs, error_file=tmp_path / "e.txt")
    mine.seek_index(7)
    other = copy.copy(mine)
    assert other.position == 7 and other.next()["key"] == mine.next()["key"]
    assert other._error_file is not mine._error_file
    with pytest.raises(ValueError, match="callable"):
        ours.YFCC100mReader(packs, validator=3)


def test_corrupt_member_and_bomb_raise_typed(tmp_path):
    folder = tmp_path / "packs"
    folder.mkdir()
    _write_pack(folder, P1, 6)
    raw = bytearray((folder / f"{P1}.zip").read_bytes())
    with zipfile.ZipFile(folder / f"{P1}.zip") as z:
        info = z.getinfo(f"{P1}/{2 * 7919 + 0xABC:010x}")
    raw[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF  # inside member 2's data
    (folder / f"{P1}.zip").write_bytes(bytes(raw))
    mine, theirs = _pair(folder, reject_file_paths=())
    got = list(mine.iter(0, 2))
    assert [s["key"] for s in got] == [s["key"] for s in theirs.iter(0, 2)]
    with pytest.raises(DatasetFormatError, match=f"{2 * 7919 + 0xABC:010x}") as info_:
        mine.get(2)
    assert f"{P1}.zip" in str(info_.value)
    with pytest.raises(Exception) as theirs_error:  # datadings: zlib.error or BadZipFile
        theirs.get(2)
    assert not isinstance(theirs_error.value, DatasetFormatError)
    # a member expanding past the ratio limit is refused before it is read in full
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    with zipfile.ZipFile(bomb / f"{P1}.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{P1}/00", b"\0" * (4 << 20))
    with pytest.raises(SourceTooLargeError):
        ours.YFCC100mReader(bomb, reject_file_paths=()).get(0)
    assert (
        ours.YFCC100mReader(bomb, reject_file_paths=(), max_ratio=1e6).get(0)["key"] == f"{P1}/00"
    )
    # a pack that is no ZIP file
    (bomb / f"{P1}.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetFormatError, match="not a valid ZIP file"):
        ours.YFCC100mReader(bomb, reject_file_paths=()).get(0)


def test_bad_reject_lists_raise_typed(packs, tmp_path):
    with pytest.raises(MetadataNotFoundError):
        ours.YFCC100mReader(packs, reject_file_paths=[tmp_path / "missing.msgpack"])
    cases = {
        "list.msgpack": msgpack.packb([1, 2]),
        "values.msgpack": msgpack.packb({P1: "x"}),
        "lines.txt": b"one two three\n",
        "broken.xz": b"\xfd7zXZ\x00garbage",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CorruptMetadataError):
            ours.YFCC100mReader(packs, reject_file_paths=[tmp_path / name])


def test_compat_module_paths_have_datadings_signatures():
    import shardstream.compat.datadings.sets.YFCC100m as by_import
    from datadings.sets import YFCC100m_counts as theirs_counts

    from shardstream.compat.datadings.sets import YFCC100m, YFCC100m_counts

    assert by_import is YFCC100m
    assert YFCC100m.YFCC100mReader is ours.YFCC100mReader
    assert YFCC100m_counts.FILES_TOTAL == theirs_counts.FILES_TOTAL
    assert os.path.exists(YFCC100m.REJECTED_PATH)
    names = ["DevNull", "YFCC100mReader", "decode_fast", "main", "noop", "validate_image"]
    for name in names:
        mine, theirs = getattr(YFCC100m, name), getattr(datadings_yfcc, name)
        assert _shape(mine) == _shape(theirs), name
    for cls, methods in (
        ("DevNull", ["read", "write", "close"]),
        (
            "YFCC100mReader",
            [
                "find_index",
                "find_key",
                "get",
                "next",
                "open_error_file_",
                "rawnext",
                "seek_index",
                "seek_key",
                "slice",
                "iter",
            ],
        ),
    ):
        for method in methods:
            mine = getattr(getattr(YFCC100m, cls), method)
            theirs = getattr(getattr(datadings_yfcc, cls), method)
            assert _shape(mine) == _shape(theirs), f"{cls}.{method}"


def _shape(obj) -> list[tuple]:
    """Positional-or-keyword parameters as (name, default), defaults that are callables or
    the reject-list path normalised; keyword-only additions with defaults are allowed."""
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty:
            continue
        default = p.default
        if callable(default):
            default = getattr(default, "__name__", "<callable>")
        if isinstance(default, tuple) and default and str(default[0]).endswith(".msgpack.xz"):
            default = ("<REJECTED_PATH>",)
        out.append((p.name, p.kind, default))
    return out


@pytest.mark.parametrize(
    "module", ["shardstream.compat.datadings.sets.YFCC100m", "shardstream.sets.yfcc100m"]
)
def test_main_logs_rejects_as_datadings_does(packs, tmp_path, module):
    """``python -m ... IMAGE_PACKS -r FILE`` in real processes: both validate every image of
    the three packs, log the same rejects and fail at the first missing pack."""
    import subprocess
    import sys

    def run(mod: str, out: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", mod, str(packs), "-r", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    mine = run(module, tmp_path / "mine.txt")
    theirs = run("datadings.sets.YFCC100m", tmp_path / "theirs.txt")
    assert mine.returncode == theirs.returncode == 1
    assert "DatasetNotFoundError" in mine.stderr and "FileNotFoundError" in theirs.stderr
    expected = f"{P1} 5\n{P1} 20\n{P1} 60\n{P2} 1\n"
    assert (tmp_path / "mine.txt").read_text() == (tmp_path / "theirs.txt").read_text() == expected


def test_pickled_reader_continues_in_another_process_state(packs, tmp_path):
    import pickle

    errors = tmp_path / "errors.txt"
    mine = ours.YFCC100mReader(
        packs, validator=ours.validate_image, reject_file_paths=(), error_file=errors
    )
    first = [s["key"] for s in mine.iter(0, 6)]  # member 5 is rejected on the way
    clone = pickle.loads(pickle.dumps(mine))
    assert clone.position == mine.position == 6 and len(clone) == len(mine)
    assert clone._rejected == mine._rejected == {P1: {5}}
    mine.close()
    assert [s["key"] for s in clone.iter(0, 22)][:6] == first
    clone.close()
    assert errors.read_text() == f"{P1} 5\n{P1} 20\n"
