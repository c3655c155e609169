"""query_indices / sample_by_indices / metadata_table on real packed datasets."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from shardstream import FileWriter, MsgpackReader, ShardedReader
from shardstream.errors import QueryError, WeightsError
from shardstream.format.integrity import md5_file
from shardstream.format.manifest import ShardEntry, write_manifest
from shardstream.loader.metadata import META_SUFFIX, metadata_table
from shardstream.loader.query import query_indices, rewrite_query, sample_by_indices

N = 200


def make_samples(n: int = N, offset: int = 0) -> list[dict]:
    samples = []
    for j in range(n):
        i = j + offset
        samples.append(
            {
                "key": f"s{i:04d}",
                "image": bytes([i % 256]) * (50 + i % 17),
                "label": i % 7,
                "score": np.float32((i * 37 % 101) / 10),
                "name": ["cat", "dog", "eel"][i % 3],
                "arr": np.arange(3),
            }
        )
    return samples


def write(path, samples) -> None:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "d.msgpack"
    samples = make_samples()
    write(path, samples)
    return path, samples


def test_table_columns_and_values(dataset):
    path, samples = dataset
    table = metadata_table(MsgpackReader(path))
    assert table.column_names == ["index", "key", "label", "score", "name", "size"]
    assert len(table) == N
    assert table.column("key").tolist() == [s["key"] for s in samples]
    assert table.column("label").tolist() == [s["label"] for s in samples]
    assert table.column("score").tolist() == [float(s["score"]) for s in samples]
    offsets = MsgpackReader(path).offsets.astype(np.int64)
    assert table.column("size").tolist() == np.diff(offsets).tolist()


QUERIES = [
    ("select * where label != 5", lambda s: [i for i, x in enumerate(s) if x["label"] != 5]),
    (
        "SELECT index WHERE name = 'dog' AND score > 3",
        lambda s: [i for i, x in enumerate(s) if x["name"] == "dog" and x["score"] > 3],
    ),
    (
        "select * where label == 2 limit 5",
        lambda s: [i for i, x in enumerate(s) if x["label"] == 2][:5],
    ),
    (
        "select * where label = 1 order by score desc, index limit 7",
        lambda s: sorted(
            [i for i, x in enumerate(s) if x["label"] == 1], key=lambda i: (-s[i]["score"], i)
        )[:7],
    ),
    (
        "select index from dataset where key like 's01%' order by key desc",
        lambda s: [i for i in reversed(range(N)) if s[i]["key"].startswith("s01")],
    ),
    (
        "select * where index in (select index where label = 3) and size > 60",
        lambda s: [i for i, x in enumerate(s) if x["label"] == 3 and len(x["image"]) > 50 + 2],
    ),
]


@pytest.mark.parametrize("sql,expected", QUERIES, ids=[q for q, _ in QUERIES])
def test_query_matches_python(dataset, sql, expected):
    path, samples = dataset
    got = query_indices(MsgpackReader(path), sql)
    assert got.dtype == np.int64
    if "size > 60" in sql:  # size is the packed size: recompute the filter from it
        sizes = metadata_table(path).column("size")
        want = [i for i, x in enumerate(samples) if x["label"] == 3 and sizes[i] > 60]
        assert got.tolist() == want
    else:
        assert got.tolist() == expected(samples)


def test_query_union_and_union_all(dataset):
    path, samples = dataset
    reader = MsgpackReader(path)
    ones = [i for i, x in enumerate(samples) if x["label"] == 1]
    dogs = [i for i, x in enumerate(samples) if x["name"] == "dog"]
    got = query_indices(reader, "select * where label = 1 union select * where name = 'dog'")
    assert sorted(got.tolist()) == sorted(set(ones) | set(dogs))
    got = query_indices(
        reader,
        "(select * where label = 1 order by index limit 3) union all "
        "(select * where name = 'dog' order by index limit 3) order by index",
    )
    assert got.tolist() == sorted(ones[:3] + dogs[:3])


def test_rewrite_leaves_from_and_strings_alone():
    assert rewrite_query("select * from dataset where x = 'a where'") == (
        "select * from dataset where x = 'a where'"
    )
    assert rewrite_query("select * where y = 1") == "select *  FROM dataset where y = 1"


def test_query_errors(dataset):
    path, _ = dataset
    reader = MsgpackReader(path)
    with pytest.raises(QueryError, match="no 'index' column") as info:
        query_indices(reader, "select key where label = 3")
    assert info.value.sql == "select key where label = 3"
    with pytest.raises(QueryError, match="(?s)wher label.*Parser Error"):
        query_indices(reader, "select * wher label = 3")
    with pytest.raises(QueryError, match="nosuch"):
        query_indices(reader, "select * where nosuch = 3")
    with pytest.raises(QueryError, match="only a query"):
        query_indices(reader, "drop table dataset")
    with pytest.raises(QueryError, match="one statement"):
        query_indices(reader, "select *; drop table dataset")
    with pytest.raises(QueryError, match="out of range"):
        query_indices(reader, "select index + 1000 as index")
    with pytest.raises(QueryError):  # file access is switched off
        query_indices(reader, f"select * from read_parquet('{path}{META_SUFFIX}')")
    assert isinstance(QueryError("x", "y"), ValueError)


def test_cache_built_once_and_reused(dataset):
    path, _ = dataset
    cache = path.with_name(path.name + META_SUFFIX)
    assert not cache.exists()
    table = metadata_table(MsgpackReader(path))
    assert table.cache_paths == [cache]
    first = cache.stat()
    again = metadata_table(path)
    assert again.column("label").tolist() == table.column("label").tolist()
    second = cache.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert [p for p in os.listdir(path.parent) if p.endswith(".tmp")] == []


def test_cache_rebuilt_when_dataset_changes(dataset):
    path, _ = dataset
    cache = path.with_name(path.name + META_SUFFIX)
    metadata_table(path)
    first_ino = cache.stat().st_ino
    write(path, make_samples(50, offset=1000))
    table = metadata_table(MsgpackReader(path))
    assert cache.stat().st_ino != first_ino
    assert len(table) == 50
    assert table.column("key").tolist()[0] == "s1000"
    assert query_indices(path, "select * where label = 0").tolist() == [
        i for i in range(50) if (i + 1000) % 7 == 0
    ]


def test_read_only_folder_keeps_table_in_memory(dataset):
    path, samples = dataset
    os.chmod(path.parent, 0o555)
    try:
        if os.access(path.parent, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        table = metadata_table(path)
    finally:
        os.chmod(path.parent, 0o755)
    assert table.cache_paths == []
    assert len(table) == N
    assert not path.with_name(path.name + META_SUFFIX).exists()


def test_manifest_of_two_shards(tmp_path):
    first, second = make_samples(120), make_samples(80, offset=120)
    entries = []
    for name, part in (("a.msgpack", first), ("b.msgpack", second)):
        write(tmp_path / name, part)
        entries.append(
            ShardEntry(
                path=name,
                samples=len(part),
                bytes=(tmp_path / name).stat().st_size,
                md5=md5_file(tmp_path / name),
            )
        )
    manifest = write_manifest(tmp_path / "all.manifest", entries)
    samples = first + second
    want = [i for i, x in enumerate(samples) if x["label"] == 4 and x["name"] != "cat"]
    assert query_indices(manifest, "select * where label = 4 and name != 'cat'").tolist() == want
    table = metadata_table(ShardedReader(manifest))
    assert table.column("key").tolist() == [s["key"] for s in samples]
    assert table.cache_paths == [
        tmp_path / ("a.msgpack" + META_SUFFIX),
        tmp_path / ("b.msgpack" + META_SUFFIX),
    ]


def test_missing_fields_and_numpy_scalars(tmp_path):
    path = tmp_path / "m.msgpack"
    write(
        path,
        [
            {"key": "a", "x": np.int16(3), "maybe": 1.5, "mixed": "s", "index": 9},
            {"key": "b", "x": np.int16(-4), "mixed": 2, "nested": {"y": 1}},
            {"key": "c", "x": np.int16(5), "maybe": None, "flag": True},
        ],
    )
    table = metadata_table(path)
    assert table.column_names == ["index", "key", "x", "maybe", "field_index", "flag", "size"]
    assert table.column("x").tolist() == [3, -4, 5]
    assert table.column("maybe").tolist() == [1.5, None, None]
    assert table.column("field_index").tolist() == [9, None, None]
    assert query_indices(path, "select * where maybe is null").tolist() == [1, 2]


# --- sample_by ------------------------------------------------------------------------------


def test_sample_by_with_replacement_frequencies(dataset):
    path, samples = dataset
    reader = MsgpackReader(path)
    weights = np.array([1.0 + (x["label"] == 1) * 9 for x in samples])
    draws = sample_by_indices(reader, weights, size=20_000, seed=7)
    assert draws.dtype == np.int64 and len(draws) == 20_000
    counts = np.bincount(draws, minlength=N)
    expected = weights / weights.sum() * len(draws)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2.ppf(0.999, N - 1)
    sql_draws = sample_by_indices(
        reader, "CASE WHEN label = 1 THEN 10 ELSE 1 END", size=20_000, seed=7
    )
    assert sql_draws.tolist() == draws.tolist()
    deeplake = sample_by_indices(
        reader, "max_weight(label == 1: 10, label != 1: 1)", size=20_000, seed=7
    )
    assert deeplake.tolist() == draws.tolist()


def test_sample_by_without_replacement(dataset):
    path, samples = dataset
    reader = MsgpackReader(path)
    weights = np.array(
        [0.0 if x["label"] == 0 else (5.0 if x["label"] == 1 else 1.0) for x in samples]
    )
    positive = int(np.count_nonzero(weights))
    everything = sample_by_indices(reader, weights, replace=False, size=positive, seed=3)
    assert sorted(everything.tolist()) == np.flatnonzero(weights).tolist()
    # first pick of many seeds: label-1 samples are 5x as likely as each other sample
    firsts = np.array(
        [sample_by_indices(reader, weights, False, 1, seed=s)[0] for s in range(2000)]
    )
    ones = sum(1 for x in samples if x["label"] == 1)
    p_one = 5 * ones / weights.sum()
    hits = int(np.isin(firsts, [i for i, x in enumerate(samples) if x["label"] == 1]).sum())
    low, high = stats.binom.ppf([0.0005, 0.9995], 2000, p_one)
    assert low <= hits <= high
    assert not np.isin(firsts, np.flatnonzero(weights == 0)).any()


def test_sample_by_reproducible_and_defaults(dataset):
    path, _ = dataset
    reader = MsgpackReader(path)
    a = sample_by_indices(reader, "score", seed=11)
    b = sample_by_indices(path, "score", seed=11)
    assert len(a) == N
    assert a.tolist() == b.tolist()
    assert a.tolist() != sample_by_indices(reader, "score", seed=12).tolist()
    assert a.tolist() != sample_by_indices(reader, "score", seed=11, epoch=1).tolist()


@pytest.mark.parametrize(
    "weights,kwargs,message",
    [
        ([1.0] * (N - 1), {}, "199 weights for 200"),
        ([-1.0] + [1.0] * (N - 1), {}, "sample 0 is negative"),
        ([1.0] * (N - 1) + [float("nan")], {}, "sample 199 is nan"),
        ([0.0] * N, {}, "all 200 weights are 0"),
        ([1.0] * 10 + [0.0] * (N - 10), {"replace": False, "size": 11}, "only 10 have weight"),
        ([1.0] * N, {"size": -1}, "size must be"),
        (np.ones((2, N)), {}, "1-dimensional"),
        (["a"] * N, {}, "must be numbers"),
        ("label < 0", {}, "all 200 weights are 0"),
        ("0 - label", {}, "is negative"),
    ],
)
def test_sample_by_errors(dataset, weights, kwargs, message):
    path, _ = dataset
    with pytest.raises(WeightsError, match=message):
        sample_by_indices(MsgpackReader(path), weights, **kwargs)


def test_sample_by_bad_expression(dataset):
    path, _ = dataset
    with pytest.raises(QueryError, match="nosuch"):
        sample_by_indices(MsgpackReader(path), "nosuch * 2")
    with pytest.raises(QueryError, match="condition: weight"):
        sample_by_indices(MsgpackReader(path), "max_weight(label = 1)")
