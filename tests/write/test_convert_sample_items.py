"""convert() with items whose load returns a whole sample (a dict), as the datadings sets use."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import msgpack
import numpy as np
import pytest
from msgpack_numpy import decode
from PIL import Image

from shardstream.errors import BadSourceError, ConfigError
from shardstream.write.conversion import Item, convert


def _jpeg(size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 90, dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def _given(sample: dict) -> dict:
    return sample


def _read(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        return list(msgpack.Unpacker(f, strict_map_key=False, object_hook=decode))


def _items(samples: list[dict]) -> list[Item]:
    return [
        Item(key=f"s{i}", label=None, source=f"src{i}", load=partial(_given, s))
        for i, s in enumerate(samples)
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_dict_samples_are_written_in_their_order(tmp_path: Path, workers: int) -> None:
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    samples = [
        {"image": _jpeg(), "experiments": [{"locations": array, "map": None}], "label": 3},
        {"image": array, "label_image": b"\x89PNG not checked", "mask": np.uint8(7)},
    ]
    report = convert(_items(samples), tmp_path / "out.msgpack", workers=workers, progress=False)
    assert report.written == 2
    written = _read(tmp_path / "out.msgpack")
    assert [list(s) for s in written] == [
        ["key", "image", "experiments", "label"],
        ["key", "image", "label_image", "mask"],
    ]
    assert written[0]["experiments"][0]["locations"].tolist() == array.tolist()
    assert written[1]["image"].dtype == np.int64 and written[1]["mask"] == 7
    # the same bytes msgpack gives for the whole dict
    with open(tmp_path / "out.msgpack", "rb") as f:
        data = f.read()
    assert data.startswith(msgpack.packb({"key": "s0", **samples[0]}, default=_numpy))


def _numpy(obj: object) -> object:
    from msgpack_numpy import encode

    return encode(obj)


def test_bad_image_bytes_in_a_dict_sample_stop_or_are_skipped(tmp_path: Path) -> None:
    samples = [{"image": _jpeg()}, {"image": b"not an image"}, {"image": _jpeg()}]
    with pytest.raises(BadSourceError, match="src1"):
        convert(_items(samples), tmp_path / "a.msgpack", workers=1, progress=False)
    assert not (tmp_path / "a.msgpack").exists()
    report = convert(
        _items(samples), tmp_path / "b.msgpack", workers=1, progress=False, on_error="skip"
    )
    assert [s.source for s in report.skipped] == ["src1"]
    assert [s["key"] for s in _read(tmp_path / "b.msgpack")] == ["s0", "s2"]


def test_quality_transcodes_the_image_of_a_dict_sample(tmp_path: Path) -> None:
    source = _jpeg((64, 48))
    samples = [{"image": source, "extra": 1}]
    convert(_items(samples), tmp_path / "q.msgpack", workers=1, progress=False, quality=50)
    (written,) = _read(tmp_path / "q.msgpack")
    assert written["image"] != source and written["extra"] == 1
    assert Image.open(io.BytesIO(written["image"])).size == (64, 48)


def test_a_dict_sample_may_not_carry_its_own_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'key'"):
        convert(
            _items([{"key": "x", "image": _jpeg()}]),
            tmp_path / "k.msgpack",
            workers=1,
            progress=False,
        )
    assert not (tmp_path / "k.msgpack").exists()
