"""MIT300: shardstream's writer equals datadings 3.4.7's on a miniature BenchmarkIMAGES.zip."""

from __future__ import annotations

from pathlib import Path

import pytest

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_zip


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mit300")
    members = {
        "BenchmarkIMAGES/i1.jpg": jpeg(1),
        "BenchmarkIMAGES/i10.jpg": jpeg(2),
        "BenchmarkIMAGES/i2.jpg": jpeg(3),
        "BenchmarkIMAGES/SM/i1_SM.jpg": jpeg(4),  # left out: 'SM' in the path
        "__MACOSX/BenchmarkIMAGES/._i1.jpg": b"\x00\x05\x16\x07",  # left out: starts with __
        "BenchmarkIMAGES/readme.txt": b"300 images\n",
    }
    write_zip(root / "BenchmarkIMAGES.zip", members)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("MIT300", indir, tmp_path, ["MIT300.msgpack"])
    samples = written["MIT300.msgpack"]
    assert [s["key"] for s in samples] == [
        "BenchmarkIMAGES/i1.jpg",
        "BenchmarkIMAGES/i10.jpg",
        "BenchmarkIMAGES/i2.jpg",
    ]
    assert list(samples[0]) == ["key", "image"]
    assert samples[1]["image"] == jpeg(2)


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("MIT300", indir, tmp_path, ["MIT300.msgpack"], seed=5)
    assert len(written["MIT300.msgpack"]) == 3
