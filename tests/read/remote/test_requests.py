"""How many requests a shuffled Loader makes over a remote set: opening it and sizing its
shuffle buffer come from the manifest, and each shard costs one round trip of its data file
and the sidecars the cache keeps (offsets, checksums), never its keys, key hashes or filter."""

from __future__ import annotations

from shardstream import Loader


def test_shuffled_epoch_requests_each_shard_and_its_cached_sidecars_once(
    http, served_root, tmp_path
):
    manifest = served_root / "images" / "i.manifest"
    loader = (
        Loader(f"{http.url}/images/i.manifest", seed=3, cache_dir=tmp_path / "cache")
        .batch(8)
        .shuffle(buffer_size=0.5)
        .pytorch(num_workers=0, tensors=["label"])
    )
    first = "/images/i-00000.msgpack"
    # the manifest, and sample 0 (its offsets and its byte range) that tells the fields apart
    assert dict(http.gets) == {"/images/i.manifest": 1, first + ".offsets": 1, first: 1}
    seen = sorted(i for batch in loader for i in batch["index"].tolist())
    loader.close()
    assert seen == list(range(48))
    shards = sorted(p.name for p in manifest.parent.glob("i-*.msgpack"))
    assert len(shards) == 7
    asked = {path: n for path, n in http.gets.items() if n}
    want = {"/images/i.manifest": 1}
    for name in shards:  # the buffer was sized without a request: one download per shard
        want[f"/images/{name}"] = 1
        want[f"/images/{name}.offsets"] = 1
        want[f"/images/{name}.xxh3"] = 1
    want[first] = want[first + ".offsets"] = 2
    assert asked == want
    assert all(http.whole[f"/images/{name}"] == 1 for name in shards)


def test_index_from_data_is_the_writers_offsets_and_checksums(served_root):
    import pytest

    from shardstream.errors import CorruptIndexError
    from shardstream.read.remote.remote_set import ShardSpec, index_from_data

    for path in sorted((served_root / "images").glob("i-*.msgpack")):
        data = path.read_bytes()
        offsets = path.with_name(path.name + ".offsets").read_bytes()
        spec = ShardSpec(
            number=0,
            url=str(path),
            samples=len(offsets) // 8 - 1,
            bytes=len(data),
            md5=None,
            sidecars=None,
        )
        got = index_from_data(data, spec, checksums=True)
        assert got == {
            ".offsets": offsets,
            ".xxh3": path.with_name(path.name + ".xxh3").read_bytes(),
        }
        with pytest.raises(CorruptIndexError, match="msgpack samples"):
            index_from_data(data[:-3], spec, checksums=False)
        with pytest.raises(CorruptIndexError, match="the manifest says"):
            index_from_data(data + data, spec, checksums=False)


def _epoch(url: str, cache, workers: int, **options) -> list[int]:
    from shardstream import Loader

    loader = (
        Loader(url, seed=5, cache_dir=cache, **options)
        .batch(8)
        .shuffle()
        .pytorch(num_workers=workers, tensors=["label"])
    )
    seen = [i for batch in loader for i in batch["index"].tolist()]
    loader.close()
    return seen


def test_warm_epoch_over_http_requests_only_the_manifest(http, tmp_path):
    url = f"{http.url}/images/i.manifest"
    cold = _epoch(url, tmp_path / "cache", 0)
    http.reset_counts()
    for workers in (0, 2):  # open + epoch; the workers read every shard and its sidecars
        assert _epoch(url, tmp_path / "cache", workers) == cold
        assert {p: n for p, n in http.gets.items() if n} == {"/images/i.manifest": 1}
        assert http.requests == 1  # HEADs included
        http.reset_counts()


def test_warm_epoch_on_s3_is_one_get_of_the_manifest(moto_s3, tmp_path):
    url = "s3://sets/images/i.manifest"
    options = {"storage_options": moto_s3.options}
    cold = _epoch(url, tmp_path / "cache", 0, **options)
    moto_s3.reset_counts()
    for workers in (0, 2):  # no HEAD before it, no listing (the cache kept the sidecar layout)
        assert _epoch(url, tmp_path / "cache", workers, **options) == cold
        assert dict(moto_s3.requests) == {("GET", "/sets/images/i.manifest", ""): 1}
        moto_s3.reset_counts()


def test_cold_s3_requests_are_one_get_per_file(moto_s3, tmp_path):
    """A whole file is one GET (s3fs's own ``cat_file`` sends a HEAD first): the manifest, one
    listing for the sidecar layout, sample 0's offsets and range, and per shard its data file
    and ``.xxh3`` (the offsets are computed from the data the ETag vouches for)."""
    moto_s3.reset_counts()
    cold = _epoch(
        "s3://sets/images/i.manifest", tmp_path / "cache", 0, storage_options=moto_s3.options
    )
    assert sorted(cold) == list(range(48))
    got = moto_s3.requests
    assert not [key for key in got if key[0] != "GET"]
    listings = [key for key in got if key[2]]
    assert len(listings) == 1 and "prefix=images%2Fi-00000.msgpack" in listings[0][2]
    shards = {key[1] for key in got if key[1].endswith(".msgpack")}
    assert len(shards) == 7
    want = {("GET", "/sets/images/i.manifest", ""): 1, listings[0]: 1}
    for path in shards:
        want[("GET", path, "")] = 1
        want[("GET", path + ".xxh3", "")] = 1
    first = "/sets/images/i-00000.msgpack"
    want[("GET", first, "")] = 2  # sample 0's range, then the whole shard
    want[("GET", first + ".offsets", "")] = 1
    assert dict(got) == want
