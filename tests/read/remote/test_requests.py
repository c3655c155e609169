"""How many requests a shuffled Loader makes over a remote set: opening it and sizing its
shuffle buffer come from the manifest, and each shard costs one round trip of its data file
and the sidecars the cache keeps (offsets, checksums), never its keys, key hashes or filter."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from shardstream import Loader


@pytest.mark.parametrize("folder", ["images", "images-old"])
def test_shuffled_epoch_requests_each_shard_and_its_cached_sidecars_once(
    http, served_root, tmp_path, folder
):
    manifest = served_root / folder / "i.manifest"
    loader = (
        Loader(f"{http.url}/{folder}/i.manifest", seed=3, cache_dir=tmp_path / "cache")
        .batch(8)
        .shuffle(buffer_size=0.5)
        .pytorch(num_workers=0, tensors=["label"])
    )
    first = f"/{folder}/i-00000.msgpack"
    # the manifest, and sample 0 (its offsets and its byte range) that tells the fields apart:
    # the offsets of every shard in one file where the manifest names one, else its shard's
    offsets = f"/{folder}/i.set-offsets" if folder == "images" else first + ".offsets"
    assert dict(http.gets) == {f"/{folder}/i.manifest": 1, offsets: 1, first: 1}
    seen = sorted(i for batch in loader for i in batch["index"].tolist())
    loader.close()
    assert seen == list(range(48))
    shards = sorted(p.name for p in manifest.parent.glob("i-*.msgpack"))
    assert len(shards) == 7
    asked = {path: n for path, n in http.gets.items() if n}
    want = {f"/{folder}/i.manifest": 1, offsets: 1}
    for name in shards:  # the buffer was sized without a request: one download per shard
        want[f"/{folder}/{name}"] = 1
        want[f"/{folder}/{name}.offsets"] = 1
        want[f"/{folder}/{name}.xxh3"] = 1
    want[first] = 2
    want[first + ".offsets"] = 1 if folder == "images" else 2
    assert asked == want
    assert all(http.whole[f"/{folder}/{name}"] == 1 for name in shards)


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


@pytest.mark.parametrize("folder", ["images", "images-old"])
def test_cold_s3_requests_are_one_get_per_file(moto_s3, tmp_path, folder):
    """A whole file is one GET (s3fs's own ``cat_file`` sends a HEAD first): the manifest, one
    listing for the sidecar layout, sample 0's offsets (the set's offsets file, else its
    shard's) and range, and per shard its data file and ``.xxh3`` (the offsets are computed
    from the data the ETag vouches for)."""
    moto_s3.reset_counts()
    cold = _epoch(
        f"s3://sets/{folder}/i.manifest", tmp_path / "cache", 0, storage_options=moto_s3.options
    )
    assert sorted(cold) == list(range(48))
    got = moto_s3.requests
    assert not [key for key in got if key[0] != "GET"]
    listings = [key for key in got if key[2]]
    assert len(listings) == 1 and f"prefix={folder}%2Fi-00000.msgpack" in listings[0][2]
    shards = {key[1] for key in got if key[1].endswith(".msgpack")}
    assert len(shards) == 7
    want = {("GET", f"/sets/{folder}/i.manifest", ""): 1, listings[0]: 1}
    for path in shards:
        want[("GET", path, "")] = 1
        want[("GET", path + ".xxh3", "")] = 1
    first = f"/sets/{folder}/i-00000.msgpack"
    want[("GET", first, "")] = 2  # sample 0's range, then the whole shard
    if folder == "images":
        want[("GET", f"/sets/{folder}/i.set-offsets", "")] = 1
    else:
        want[("GET", first + ".offsets", "")] = 1
    assert dict(got) == want


def test_a_damaged_set_offsets_file_is_set_aside_for_each_shards_own(http, served_root, tmp_path):
    """A set offsets file that is not the one the manifest names (one bit flipped) is read
    once, set aside with a warning, and each shard's ``.offsets`` read instead: the epoch is
    that of local files."""
    bad = served_root / "images-bad"
    if not bad.exists():
        shutil.copytree(served_root / "images", bad)
        data = bytearray((bad / "i.set-offsets").read_bytes())
        data[-1] ^= 1
        (bad / "i.set-offsets").write_bytes(bytes(data))

    def epoch(source, **options):
        loader = Loader(source, seed=4, **options).batch(8).shuffle().pytorch(tensors=["label"])
        got = [{k: v.tolist() for k, v in batch.items()} for batch in loader]
        loader.close()
        return got

    local = epoch(served_root / "images" / "i.manifest")
    first = "/images-bad/i-00000.msgpack"
    with pytest.warns(UserWarning, match="size and md5; reading each shard's offsets instead"):
        got = epoch(f"{http.url}/images-bad/i.manifest", cache_dir=tmp_path / "cache")
    assert got == local
    assert http.gets["/images-bad/i.set-offsets"] == 1
    assert http.gets[first + ".offsets"] == 2  # sample 0's, then with its whole shard


def test_a_cold_s3_open_fetches_the_set_offsets_during_its_listing(moto_s3, served_root, tmp_path):
    """A cold open lists the first shard's sidecars and meanwhile fetches the set offsets file;
    a warm one (the cache kept the layout) requests the manifest alone."""
    from shardstream.read.remote.reader import open_remote

    url = "s3://sets/images/i.manifest"
    moto_s3.reset_counts()
    cold = open_remote(url, storage_options=moto_s3.options, cache_dir=tmp_path)
    assert cold.remote.set_offsets is not None and cold.remote.set_offsets.loaded
    got = dict(moto_s3.requests)
    listings = [key for key in got if key[2]]
    assert len(listings) == 1
    assert got == {
        ("GET", "/sets/images/i.manifest", ""): 1,
        ("GET", "/sets/images/i.set-offsets", ""): 1,
        listings[0]: 1,
    }
    moto_s3.reset_counts()
    warm = open_remote(url, storage_options=moto_s3.options, cache_dir=tmp_path)
    assert warm.remote.set_offsets is not None and not warm.remote.set_offsets.loaded
    assert dict(moto_s3.requests) == {("GET", "/sets/images/i.manifest", ""): 1}
    # every shard's offsets without another request, each its own .offsets file's
    shards = sorted((served_root / "images").glob("i-*.msgpack"))
    assert [shard.offsets.tolist() for shard in cold.shards] == [
        np.fromfile(p.with_name(p.name + ".offsets"), dtype=">u8").tolist() for p in shards
    ]
    assert dict(moto_s3.requests) == {("GET", "/sets/images/i.manifest", ""): 1}
