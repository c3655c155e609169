"""How a downloaded shard is verified on S3 (moto): where the store's ETag is the manifest's
md5, the bytes are checked with the set's per-sample xxh3 digests instead of an md5 of the whole
shard; a wrong digest is fetched once more and then raises, and an ETag that vouches for
nothing (here: a manifest whose md5 the object does not have) falls back to md5."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shardstream.errors import ChecksumMismatchError
from shardstream.format.checksums import encode_checksums, load_checksums
from shardstream.read.open import open_dataset

SHARD = "i-00000.msgpack"


def stamps(root):
    return sorted(root.rglob(".stamp"))


def test_a_shard_whose_etag_is_its_md5_is_checked_by_xxh3_and_written_whole(
    moto_s3, served_root, tmp_path
):
    reader = open_dataset(
        "s3://sets/images/i.manifest", storage_options=moto_s3.options, cache_dir=tmp_path
    )
    spec = reader.shards[0].spec
    folder = tmp_path / "staged"
    folder.mkdir()
    assert reader.remote.download(spec, folder) is None  # verified without an md5 here
    local = served_root / "images"
    assert sorted(p.name for p in folder.iterdir()) == [SHARD, SHARD + ".offsets", SHARD + ".xxh3"]
    for path in folder.iterdir():
        assert path.read_bytes() == (local / path.name).read_bytes()
    reader.remote.mode = "shards"
    plain = open_dataset(local / "i.manifest")
    assert [reader.get(i, raw=True) for i in range(len(plain))] == [
        plain.get(i, raw=True) for i in range(len(plain))
    ]
    assert len(stamps(tmp_path)) == 7


def _copy_with(served_root, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(served_root / "images", folder)
    return folder


def test_a_sample_that_differs_from_its_xxh3_digest_is_fetched_once_more_then_raises(
    moto_s3, served_root, tmp_path
):
    folder = _copy_with(served_root, tmp_path, "bad-xxh3")
    sidecar = folder / (SHARD + ".xxh3")
    data_bytes = (folder / SHARD).stat().st_size
    count = len((folder / (SHARD + ".offsets")).read_bytes()) // 8 - 1
    digests = load_checksums(sidecar, count, data_bytes, sidecar.read_bytes()).copy()
    digests[1] ^= np.uint64(1)  # a well-formed sidecar that disagrees with sample 1
    sidecar.write_bytes(encode_checksums(digests, data_bytes))
    moto_s3.upload(folder, "sets", "bad-xxh3")
    cache = tmp_path / "cache"
    reader = open_dataset(
        "s3://sets/bad-xxh3/i.manifest", storage_options=moto_s3.options, cache_dir=cache
    )
    reader.remote.mode = "shards"
    with pytest.raises(ChecksumMismatchError, match=f"{SHARD}: sample 1 differs .*twice in a row"):
        reader.get(0)
    assert stamps(cache) == [] and not list(cache.rglob("*.part-*"))
    plain = open_dataset(served_root / "images" / "i.manifest")
    n = len(plain)
    assert reader.get(n - 1, raw=True) == plain.get(n - 1, raw=True)  # other shards still read


def test_an_etag_that_is_not_the_manifests_md5_falls_back_to_md5(moto_s3, served_root, tmp_path):
    folder = _copy_with(served_root, tmp_path, "bad-md5")
    document = json.loads((folder / "i.manifest").read_text())
    document["shards"][0]["md5"] = "0" * 32
    (folder / "i.manifest").write_text(json.dumps(document))
    moto_s3.upload(folder, "sets", "bad-md5")
    cache = tmp_path / "cache"
    reader = open_dataset(
        "s3://sets/bad-md5/i.manifest", storage_options=moto_s3.options, cache_dir=cache
    )
    spec = reader.shards[0].spec
    staged = tmp_path / "staged"
    staged.mkdir()
    real_md5 = json.loads((served_root / "images" / "i.manifest").read_text())["shards"][0]["md5"]
    assert reader.remote.download(spec, staged) == real_md5  # hashed here: the ETag vouched not
    reader.remote.mode = "shards"
    with pytest.raises(ChecksumMismatchError, match=f"{SHARD}: downloaded md5 .*twice in a row"):
        reader.get(0)
    assert stamps(cache) == []
