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
