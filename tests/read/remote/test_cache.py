"""The node-local shard cache against a real HTTP server: eviction under a byte limit with exact
batches, a download killed with SIGKILL leaves nothing usable, a corrupted cached shard and a
shard whose digest differs from the manifest are fetched again, and a full disk is a clear error
that leaves no entry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from shardstream import Loader
from shardstream.errors import ChecksumMismatchError
from shardstream.format.manifest import load_manifest
from shardstream.read.open import open_dataset
from shardstream.read.remote.cache import ShardCache

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def stamps(cache_dir) -> list:
    """Complete entries (never a staging folder's)."""
    return sorted(p for p in cache_dir.rglob(".stamp") if ".part-" not in str(p))


def labels_epoch(source, **remote) -> list:
    loader = Loader(source, seed=2, **remote).batch(5).pytorch(tensors=["label"], num_workers=1)
    return [{k: np.asarray(v).tolist() for k, v in b.items()} for b in loader]


def test_limit_smaller_than_the_set_evicts_and_gives_exact_batches(http, served_root, tmp_path):
    manifest = served_root / "images" / "i.manifest"
    sizes = sorted(shard.bytes for shard in load_manifest(manifest).shards)
    limit = sum(sizes[-3:]) + 200_000  # three shards and their sidecars; the set has 6
    cache = tmp_path / "cache"
    got = labels_epoch(
        f"{http.url}/images/i.manifest", cache_dir=cache, cache_limit=limit, prefetch_shards=1
    )
    assert got == labels_epoch(manifest)
    held = ShardCache(root=cache).size()
    assert 0 < held <= limit
    assert len(stamps(cache)) < len(sizes)  # some were evicted
    for shard in load_manifest(manifest).shards:  # read in order: each fetched exactly once
        assert http.whole[f"/images/{shard.path}"] == 1


def test_kill_9_during_a_download_leaves_nothing_usable(http, served_root, tmp_path):
    cache = tmp_path / "cache"
    url = f"{http.url}/images/i.manifest"
    http.trickle_s = 0.02  # ~0.8 MB at 8 KiB per 20 ms: about 2 s per shard
    script = (
        "import sys; from shardstream.read.open import open_dataset\n"
        "r = open_dataset(sys.argv[1], cache_dir=sys.argv[2]); r.remote.mode = 'shards'\n"
        "r.get(0)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, url, str(cache)], env={**os.environ, "PYTHONPATH": HERE}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cache.exists() and list(cache.rglob("*.part-*")):  # staging: the body trickles in
            break
        time.sleep(0.02)
    else:
        child.kill()
        pytest.fail("the download never started")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert stamps(cache) == []  # the staged bytes are never an entry
    http.trickle_s = 0.0
    reader = open_dataset(url, cache_dir=cache)
    reader.remote.mode = "shards"
    local = open_dataset(served_root / "images" / "i.manifest")
    assert reader.get(0, raw=True) == local.get(0, raw=True)
    assert len(stamps(cache)) == 1 and not list(cache.rglob("*.part-*"))


def test_corrupted_cached_shard_is_detected_and_fetched_again(http, served_root, tmp_path):
    url = f"{http.url}/varied/v.manifest"
    local = open_dataset(served_root / "varied" / "v.manifest")
    reader = open_dataset(url, cache_dir=tmp_path)
    reader.remote.mode = "shards"
    assert reader.get(1, raw=True) == local.get(1, raw=True)
    reader.close()
    [stamp] = stamps(tmp_path)
    data = stamp.parent / json.loads(stamp.read_text())["data"]
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    again = open_dataset(url, cache_dir=tmp_path)
    again.remote.mode = "shards"
    assert [again.get(i, raw=True) for i in range(4)] == [local.get(i, raw=True) for i in range(4)]
    assert http.whole[f"/varied/{local.shards[0].path.name}"] == 2


def test_digest_mismatch_is_fetched_once_more_then_raises(http, served_root, tmp_path):
    bad = served_root / "bad"
    shutil.copytree(served_root / "varied", bad, dirs_exist_ok=True)
    document = json.loads((bad / "v.manifest").read_text())
    document["shards"][0]["md5"] = "0" * 32
    (bad / "v.manifest").write_text(json.dumps(document))
    reader = open_dataset(f"{http.url}/bad/v.manifest", cache_dir=tmp_path)
    reader.remote.mode = "shards"
    name = document["shards"][0]["path"]
    with pytest.raises(ChecksumMismatchError, match=f"{name}.*twice in a row"):
        reader.get(0)
    assert http.whole[f"/bad/{name}"] == 2
    assert stamps(tmp_path) == [] and not list(tmp_path.rglob("*.part-*"))
    assert reader.get(5)["key"] == local_key(served_root, 5)  # other shards still read


def local_key(served_root, index: int) -> str:
    return open_dataset(served_root / "varied" / "v.manifest").find_key(index)


def test_full_cache_disk_is_a_clear_error_and_leaves_no_entry(http, tmp_path):
    script = (
        "import resource, signal, sys\n"
        "from shardstream.read.open import open_dataset\n"
        "from shardstream.errors import CacheFullError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "r = open_dataset(sys.argv[1], cache_dir=sys.argv[2]); r.remote.mode = 'shards'\n"
        "try:\n    r.get(0)\nexcept CacheFullError as e:\n    print('FULL', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, f"{http.url}/images/i.manifest", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": HERE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.startswith(f"FULL {tmp_path}: no space left to store {http.url}/images/")
    assert "cache_limit" in out.stdout
    assert stamps(tmp_path) == [] and not list(tmp_path.rglob("*.part-*"))


def test_shard_block_order_downloads_each_shard_once_under_a_small_limit(
    http, served_root, tmp_path
):
    manifest = served_root / "images" / "i.manifest"
    shards = load_manifest(manifest).shards
    limit = sum(sorted(s.bytes for s in shards)[-4:]) + 300_000  # 4 of the 6 shards

    def run(source, **remote):
        loader = (
            Loader(source, seed=6, **remote)
            .batch(4)
            .shuffle(order="blocks", shards_per_block=2)
            .pytorch(tensors=["label"], num_workers=2)
        )
        return [{k: np.asarray(v).tolist() for k, v in b.items()} for b in loader]

    got = run(
        f"{http.url}/images/i.manifest",
        cache_dir=tmp_path,
        cache_limit=limit,
        prefetch_shards=1,
    )
    assert got == run(manifest)
    assert sorted(i for b in got for i in b["index"]) == list(range(48))
    for shard in shards:
        assert http.whole[f"/images/{shard.path}"] == 1
    assert ShardCache(root=tmp_path).size() <= limit
