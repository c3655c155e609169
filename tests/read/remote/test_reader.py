"""Remote readers against real servers: the reader conformance suite over S3 (moto) and HTTP,
byte-range random access, a single remote data file, ``file://`` URLs and opening costs."""

from __future__ import annotations

import pytest

from shardstream import MsgpackReader, ShardedReader
from shardstream.errors import ConfigTypeError, DatasetNotFoundError, MissingDependencyError
from shardstream.read.open import data_files, is_glob, open_dataset, open_files
from shardstream.read.remote.url import is_url, url_filesystem, url_parent
from tests.conftest import varied_samples
from tests.contracts.reader_conformance import run_reader_conformance

EXPECTED = [(s["key"], s) for s in varied_samples()]


def test_conformance_over_s3_whole_shards(moto_s3, tmp_path):
    def make():
        reader = open_dataset(
            "s3://sets/varied/v.manifest", storage_options=moto_s3.options, cache_dir=tmp_path
        )
        reader.remote.mode = "shards"
        return reader

    run_reader_conformance(make, EXPECTED)


def test_byte_ranges_over_s3(moto_s3, tmp_path):
    reader = open_dataset(
        "s3://sets/varied/v.manifest", storage_options=moto_s3.options, cache_dir=tmp_path
    )
    picks = [39, 0, 17, 17, -1, 5]
    assert [k for k, _ in reader.getitems(picks, yield_key=True)] == [EXPECTED[i][0] for i in picks]
    assert [s["key"] for s in reader.slice(3, 12)] == [k for k, _ in EXPECTED[3:12]]
    assert reader.find_index(EXPECTED[22][0]) == 22 and EXPECTED[30][0] in reader
    assert not list(tmp_path.rglob(".stamp"))  # nothing fetched whole


def test_conformance_over_http_byte_ranges_never_fetch_whole_shards(http, tmp_path):
    url = f"{http.url}/varied/v.manifest"
    run_reader_conformance(lambda: open_dataset(url, cache_dir=tmp_path), EXPECTED)
    # byte ranges only: no shard was put in the cache and every data GET sent less than a shard
    assert not list(tmp_path.rglob("*.stamp"))
    shard_sizes = {
        f"/varied/{p.name}": p.stat().st_size
        for p in data_files(http.root / "varied" / "v.manifest")
    }
    for path, size in shard_sizes.items():
        assert http.sent[path] <= http.gets[path] * size


@pytest.mark.parametrize(
    ("manifest", "length", "count"), [("varied/v", 40, 11), ("images-old/i", 48, 7)]
)
def test_opening_costs_one_request_and_random_access_one_range(
    http, tmp_path, manifest, length, count
):
    """The offsets of the sample's shard come from the set offsets file where the manifest
    names one (``varied``: every shard's in that one request), else from the shard's own
    ``.offsets`` (``images-old``, as an older writer left it)."""
    folder = manifest.split("/")[0]
    reader = open_dataset(f"{http.url}/{manifest}.manifest", cache_dir=tmp_path)
    assert dict(http.gets) == {f"/{manifest}.manifest": 1}
    assert len(reader) == length and len(reader.shards) == count
    local = ShardedReader(http.root / f"{manifest}.manifest")
    index = 17
    shard, at = local.locate(index)
    name = local.shards[shard].path.name
    offsets = local.shards[shard].offsets
    assert reader.get(index, raw=True) == local.get(index, raw=True)
    assert http.gets[f"/{folder}/{name}"] == 1
    assert http.sent[f"/{folder}/{name}"] == int(offsets[at + 1] - offsets[at])
    whole = folder == "varied"
    assert http.gets[f"/{manifest}.set-offsets"] == int(whole)
    assert http.gets[f"/{folder}/{name}.offsets"] == int(not whole)
    reader.get(index)
    reader.get(index + 20 - length)  # (another shard)
    assert http.gets[f"/{manifest}.set-offsets"] == int(whole)  # offsets kept in memory
    assert sum(n for p, n in http.gets.items() if p.endswith(".offsets")) == 2 * (not whole)


def test_single_remote_data_file_over_http(http, tmp_path):
    name = "v-00003.msgpack"
    local = MsgpackReader(http.root / "varied" / name)
    reader = open_dataset(f"{http.url}/varied/{name}", cache_dir=tmp_path)
    assert len(reader) == len(local)
    for i in range(len(local)):
        assert reader.get(i, raw=True) == local.get(i, raw=True)
        assert reader.find_key(i) == local.find_key(i)
    reader.remote.mode = "shards"  # whole file into the cache: size checked against .offsets
    assert reader.get(0, raw=True) == local.get(0, raw=True)
    assert len(list(tmp_path.rglob(".stamp"))) == 1


def test_file_url_is_a_local_path(served_root):
    url = f"file://{served_root}/varied/v.manifest"
    reader = open_dataset(url)
    assert isinstance(reader, ShardedReader) and not hasattr(reader, "remote")
    assert [reader.get(i)["key"] for i in range(40)] == [k for k, _ in EXPECTED]
    assert data_files(url) == data_files(served_root / "varied" / "v.manifest")
    assert len(open_files(url)) == 40


def test_chained_url_reads_through_fsspec(http, tmp_path):
    url = f"blockcache::{http.url}/varied/v.manifest"
    assert is_url(url)
    reader = open_dataset(
        url,
        cache_dir=tmp_path,
        storage_options={"blockcache": {"cache_storage": str(tmp_path / "fsspec")}},
    )
    assert reader.get(39)["key"] == EXPECTED[39][0]


def test_url_helpers():
    assert is_url("s3://b/k") and is_url("https://h/x.msgpack") and not is_url("/a/b")
    assert not is_url("data/x*.msgpack") and not is_glob("s3://b/x*.msgpack")
    assert url_parent("http://h:1/a/b.manifest") == "http://h:1/a"
    assert url_parent("s3://bucket/m.manifest") == "s3://bucket"
    with pytest.raises(MissingDependencyError, match="no protocol"):
        url_filesystem("nosuchproto://x/y")
    with pytest.raises(ConfigTypeError, match="storage_options"):
        url_filesystem("s3://b/k", storage_options=[1])  # type: ignore[arg-type]


def test_missing_remote_object_is_dataset_not_found(http, moto_s3, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nothere.manifest"):
        open_dataset(f"{http.url}/varied/nothere.manifest", cache_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="s3://sets/varied/nothere.manifest"):
        open_dataset(
            "s3://sets/varied/nothere.manifest", storage_options=moto_s3.options, cache_dir=tmp_path
        )
