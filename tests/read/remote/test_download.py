"""The lean whole-file client (:mod:`shardstream.read.remote.download`) against the real moto S3
and HTTP servers: exact bytes and ETags, one GET per file, typed faults, a body cut short (an
error, never a short file), retries through the shard cache, and the configurations that keep
to the filesystem."""

from __future__ import annotations

import hashlib

import pytest

from shardstream.errors import RemoteStorageError
from shardstream.read.open import open_dataset
from shardstream.read.remote.download import (
    BodyCutShortError,
    Downloader,
    HTTPStatusError,
    downloader_for,
)
from shardstream.read.remote.retry import RetryPolicy
from shardstream.read.remote.url import url_filesystem

SHARD = "i-00000.msgpack"


def s3_downloader(moto_s3) -> Downloader:
    fs = url_filesystem("s3://sets/images/i.manifest", moto_s3.options)[0]
    got = downloader_for(fs, moto_s3.options)
    assert got is not None and got.etags
    return got


def http_downloader(http) -> Downloader:
    options: dict = {}
    fs, _ = url_filesystem(f"{http.url}/images/i.manifest", options)
    got = downloader_for(fs, options)
    assert got is not None and not got.etags
    return got


def test_s3_whole_object_with_its_etag_and_sidecars_in_one_go(moto_s3, served_root):
    local = served_root / "images"
    data = (local / SHARD).read_bytes()
    base = f"s3://sets/images/{SHARD}"
    moto_s3.reset_counts()
    got = s3_downloader(moto_s3).fetch(base, (base + ".xxh3", base + ".missing"))
    assert bytes(got[0].data) == data
    assert got[0].etag == hashlib.md5(data).hexdigest()  # the store's md5: it may vouch
    assert got[1].data == (local / (SHARD + ".xxh3")).read_bytes() and got[1].error is None
    assert got[2].data is None and isinstance(got[2].error, FileNotFoundError)
    paths = ("/sets/images/" + SHARD + suffix for suffix in ("", ".xxh3", ".missing"))
    assert dict(moto_s3.requests) == {("GET", path, ""): 1 for path in paths}  # no HEAD


def test_s3_byte_range_and_a_missing_object(moto_s3, served_root):
    data = (served_root / "images" / SHARD).read_bytes()
    downloader = s3_downloader(moto_s3)
    got = downloader.fetch(f"s3://sets/images/{SHARD}", start=100, end=5000)
    assert bytes(got[0].data) == data[100:5000]
    with pytest.raises(FileNotFoundError, match="404.*NoSuchKey"):
        downloader.fetch("s3://sets/images/nothing.msgpack")
    assert bytes(downloader.fetch(f"s3://sets/images/{SHARD}")[0].data) == data  # (reused)


def test_http_exact_bytes_one_get_per_file_and_typed_statuses(http, served_root):
    local = served_root / "images"
    downloader = http_downloader(http)
    base = f"{http.url}/images/{SHARD}"
    for _ in range(2):  # the second time on the connections the first left open
        got = downloader.fetch(base, (base + ".offsets",))
        assert bytes(got[0].data) == (local / SHARD).read_bytes()
        assert got[1].data == (local / (SHARD + ".offsets")).read_bytes()
    assert downloader.read(base + ".xxh3") == (local / (SHARD + ".xxh3")).read_bytes()
    want = {f"/images/{SHARD}": 2, f"/images/{SHARD}.offsets": 2, f"/images/{SHARD}.xxh3": 1}
    assert {p: n for p, n in http.gets.items() if n} == want
    assert http.requests == 5  # no HEAD
    http.forbidden = {f"/images/{SHARD}"}
    with pytest.raises(PermissionError, match="HTTP 403"):
        downloader.fetch(base)
    http.forbidden = set()
    http.fail_every, http.fail_with = 1, 503
    with pytest.raises(HTTPStatusError, match="HTTP 503") as info:
        downloader.fetch(base)
    assert info.value.status == 503


def test_a_body_cut_short_is_an_error_not_a_short_file(http, served_root, tmp_path):
    downloader = http_downloader(http)
    http.fail_every, http.fail_with = 1, "cut"
    size = (served_root / "images" / SHARD).stat().st_size
    with pytest.raises(BodyCutShortError, match=f"after {size // 2} of {size} bytes"):
        downloader.fetch(f"{http.url}/images/{SHARD}")
    http.fail_every = 0
    reader = open_dataset(f"{http.url}/images/i.manifest", cache_dir=tmp_path)
    reader.remote.mode, reader.remote.retry = "shards", RetryPolicy(budget_s=0.3)
    http.fail_every = 1
    with pytest.raises(RemoteStorageError, match=f"{SHARD}: read: failed .*BodyCutShortError"):
        reader.get(0, raw=True)
    assert not list(tmp_path.rglob(SHARD)) and not list(tmp_path.rglob("*.part-*"))


@pytest.mark.parametrize("fault", ["cut", "reset", 503])
def test_the_cache_retries_faults_mid_body_into_exact_files(http, served_root, tmp_path, fault):
    http.fail_every, http.fail_with = 2, fault
    reader = open_dataset(f"{http.url}/images/i.manifest", cache_dir=tmp_path)
    reader.remote.mode = "shards"
    plain = open_dataset(served_root / "images" / "i.manifest")
    assert [reader.get(i, raw=True) for i in range(len(plain))] == [
        plain.get(i, raw=True) for i in range(len(plain))
    ]
    assert http.failed >= 3
    for path in sorted(tmp_path.rglob("i-*.msgpack*")):
        assert path.read_bytes() == (served_root / "images" / path.name).read_bytes()


def test_configurations_the_lean_path_does_not_cover_keep_to_the_filesystem(
    moto_s3, http, monkeypatch
):
    url = "s3://sets/images/i.manifest"
    payer = dict(moto_s3.options, requester_pays=True)
    assert downloader_for(url_filesystem(url, payer)[0], payer) is None
    headers = {"headers": {"Authorization": "Bearer x"}}
    assert (
        downloader_for(url_filesystem(f"{http.url}/images/i.manifest", headers)[0], headers) is None
    )
    assert downloader_for(url_filesystem("memory://x/y")[0], {}) is None
    fs = url_filesystem(url, moto_s3.options)[0]
    monkeypatch.setenv("SHARDSTREAM_LEAN_DOWNLOADS", "0")
    assert downloader_for(fs, moto_s3.options) is None
    monkeypatch.delenv("SHARDSTREAM_LEAN_DOWNLOADS")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert downloader_for(fs, moto_s3.options) is None


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_a_shard_larger_than_a_chunk_comes_in_ranges_into_exact_files(
    kind, http, moto_s3, served_root, tmp_path, monkeypatch
):
    from shardstream.read.remote import remote_set, whole

    monkeypatch.setattr(remote_set, "DOWNLOAD_CHUNK", 300_000)
    monkeypatch.setattr(whole, "DOWNLOAD_CHUNK", 300_000)
    if kind == "http":
        reader = open_dataset(f"{http.url}/images/i.manifest", cache_dir=tmp_path)
    else:
        reader = open_dataset(
            "s3://sets/images/i.manifest", storage_options=moto_s3.options, cache_dir=tmp_path
        )
    assert reader.remote.downloader is not None
    spec = reader.shards[0].spec
    assert spec.bytes is not None and spec.bytes > 2 * 300_000
    folder = tmp_path / "staged"
    folder.mkdir()
    http.reset_counts()
    md5 = reader.remote.download(spec, folder)
    data = (served_root / "images" / SHARD).read_bytes()
    assert md5 == hashlib.md5(data).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == [SHARD, SHARD + ".offsets", SHARD + ".xxh3"]
    for path in folder.iterdir():
        assert path.read_bytes() == (served_root / "images" / path.name).read_bytes()
    if kind == "http":
        chunks = -(-len(data) // 300_000)
        assert http.gets[f"/images/{SHARD}"] == chunks and not http.whole[f"/images/{SHARD}"]
