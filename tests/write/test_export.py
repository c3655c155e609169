"""Export to WebDataset and Parquet, read with the real packages, import back exactly."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from shardstream import MsgpackReader
from shardstream.errors import DatasetExistsError, InterchangeError, NothingToConvertError
from shardstream.format.interchange import EXTRA_SUFFIX, decode_member, extra_fields
from shardstream.sets.parquet import parquet_items
from shardstream.sets.webdataset import webdataset_items
from shardstream.write.conversion import convert
from shardstream.write.export import export_parquet, export_webdataset
from tests.format.test_interchange import same
from tests.write.demo_tree import jpeg, png

wds = pytest.importorskip("webdataset")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def samples() -> list[dict]:
    """Samples with every kind of field, keys WebDataset can and cannot carry."""
    return [
        {"key": "n01/img_1.JPEG", "image": jpeg((12, 9)), "label": 3, "caption": "a cat",
         "meta": {"w": 12, "tags": ["x", "y"]}, "mask": png((12, 9)), "score": 0.25,
         "emb": np.arange(6, dtype=np.float32).reshape(2, 3), "none": None, "raw": b"\0\1"},
        {"key": "plain", "image": png((5, 5)), "label": 0, "caption": "dog", "Upper": "Case"},
        {"key": "c/d", "image": jpeg((6, 6), seed=2), "big": (1 << 64) - 1, "mixed": [1, b"x"],
         "flag": True, "nan": float("nan")},
    ]  # fmt: skip


def assert_same_samples(expected: list[dict], actual: list[dict]) -> None:
    assert [s["key"] for s in actual] == [s["key"] for s in expected]
    for a, b in zip(expected, actual, strict=True):
        assert set(a) == set(b), a["key"]
        assert all(same(a[k], b[k]) for k in a), a["key"]


def test_webdataset_reads_the_exported_shards_as_the_same_samples(tmp_path):
    shards = export_webdataset(samples(), tmp_path, name="set", samples_per_shard=2)
    assert [p.name for p in shards] == ["set-000000.tar", "set-000001.tar"]
    read = list(wds.WebDataset([str(p) for p in shards], shardshuffle=False, empty_check=False))
    assert len(read) == 3
    for original, sample in zip(samples(), read, strict=True):
        fields = {}
        for suffix, data in sample.items():
            if suffix == EXTRA_SUFFIX:
                fields.update(extra_fields(data))
            elif suffix.startswith("__"):
                continue
            elif suffix in ("jpg", "png"):
                fields["image"] = data
            elif suffix == "cls":
                fields["label"] = int(data)
            else:
                name, value = decode_member(suffix, data)
                fields[name] = value
        key = sample.get("__key__.txt", sample["__key__"].encode()).decode()
        assert_same_samples([original], [{"key": key, **fields}])


def test_round_trip_through_webdataset_keeps_every_sample(tmp_path):
    shards = export_webdataset(samples(), tmp_path / "wds", name="set", samples_per_shard=2)
    items = webdataset_items([str(p) for p in shards], all_members=True)
    convert(items, tmp_path / "back.msgpack", progress=False)
    with MsgpackReader(tmp_path / "back.msgpack") as reader:
        assert_same_samples(samples(), list(reader))


def test_round_trip_through_parquet_keeps_every_sample(tmp_path):
    output = export_parquet(lambda: iter(samples()), tmp_path / "set.parquet", rows_per_group=2)
    table = pq.read_table(output)
    assert table.num_rows == 3 and pq.ParquetFile(output).num_row_groups == 2
    assert table.schema.field("image").type == pa.binary()
    assert table.column("image").to_pylist() == [s["image"] for s in samples()]
    convert(parquet_items([str(output)]), tmp_path / "back.msgpack", progress=False)
    with MsgpackReader(tmp_path / "back.msgpack") as reader:
        assert_same_samples(samples(), list(reader))


def test_duckdb_opens_the_parquet_file(tmp_path):
    output = export_parquet(lambda: iter(samples()), tmp_path / "set.parquet")
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"select key, octet_length(image), label, caption from '{output}' order by key"
    ).fetchall()
    assert rows == [
        ("c/d", len(samples()[2]["image"]), None, None),
        ("n01/img_1.JPEG", len(samples()[0]["image"]), 3, "a cat"),
        ("plain", len(samples()[1]["image"]), 0, "dog"),
    ]


def test_datasets_opens_the_parquet_file(tmp_path):
    output = export_parquet(lambda: iter(samples()), tmp_path / "set.parquet")
    try:
        import datasets
    except ImportError as error:  # an installed datasets that does not import
        pytest.skip(f"datasets does not import here: {error}")
    table = datasets.Dataset.from_parquet(str(output))
    assert table["key"] == [s["key"] for s in samples()]
    assert table["image"] == [s["image"] for s in samples()]


def test_parquet_files_with_different_schemas_are_an_interchange_error(tmp_path):
    first = export_parquet(lambda: iter(samples()[:1]), tmp_path / "a.parquet")
    second = export_parquet(lambda: iter(samples()[1:2]), tmp_path / "b.parquet")
    with pytest.raises(InterchangeError) as error:
        parquet_items([str(first), str(second)])
    assert str(error.value).startswith(f"{second}: its schema (key: string, image: binary")
    assert f"differs from {first}'s" in str(error.value)


def test_a_file_that_is_not_parquet_is_an_interchange_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InterchangeError, match=f"^{bad}: not a readable Parquet file"):
        parquet_items([str(bad)])


def test_exports_are_atomic_and_refuse_to_replace(tmp_path):
    export_webdataset(samples(), tmp_path, name="set")
    with pytest.raises(DatasetExistsError):
        export_webdataset(samples(), tmp_path, name="set")
    with pytest.raises(NothingToConvertError):
        export_webdataset([], tmp_path, name="empty")
    with pytest.raises(TypeError):  # a key that is not a str: nothing is left behind
        export_webdataset([*samples(), {"key": 5}], tmp_path, name="x", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set-000000.tar"]
    with tarfile.open(tmp_path / "set-000000.tar") as tar:
        assert {m.mtime for m in tar} == {0}
