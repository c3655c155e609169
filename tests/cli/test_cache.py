"""``shardstream cache`` (show, clear) and URL inputs of ``info`` and ``cat`` against a real
HTTP server with Range support on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from shardstream.cli import main
from shardstream.read.open import open_dataset
from tests.conftest import varied_samples
from tests.read.remote.conftest import write_set
from tests.read.remote.servers import RangeServer


@pytest.fixture
def served(tmp_path):
    write_set(tmp_path / "srv" / "sub" / "v.manifest", varied_samples(12), shard_size=2500)
    server = RangeServer(tmp_path / "srv")
    yield server
    server.close()


def test_cache_show_and_clear(served, tmp_path, capsys):
    cache = tmp_path / "cache"
    reader = open_dataset(f"{served.url}/sub/v.manifest", cache_dir=cache)
    reader.remote.mode = "shards"
    assert [reader.get(i)["key"] for i in range(12)] == [s["key"] for s in varied_samples(12)]
    shards = len(reader.shards)
    held = sum(int(json.loads(p.read_text())["entry_bytes"]) for p in cache.rglob(".stamp"))
    reader.close()
    assert main(["cache", "show", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"holds:    {shards} shards of 1 sets, {held:,} bytes" in out
    assert f"{reader.remote.digest}  {shards:>6,} shards" in out
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out == f"cleared {held:,} bytes from {cache}\n"
    assert not list(cache.rglob(".stamp"))
    assert main(["cache", "--cache-dir", str(cache)]) == 0
    assert "holds:    0 shards of 0 sets, 0 bytes" in capsys.readouterr().out


def test_clear_keeps_an_entry_a_process_reads(served, tmp_path, capsys):
    cache = tmp_path / "cache"
    reader = open_dataset(f"{served.url}/sub/v.manifest", cache_dir=cache)
    reader.remote.mode = "shards"
    reader.get(0)  # shard 0 stays open (and held) in this process
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 0
    assert len(list(cache.rglob(".stamp"))) == 1
    reader.close()
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 0
    assert not list(cache.rglob(".stamp"))


def test_info_and_cat_take_urls_without_eating_a_slash(served, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHARDSTREAM_CACHE", str(tmp_path / "cache"))
    url = f"{served.url}/sub/v.manifest"
    assert main(["info", url, "--storage-options", "{}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"path:     {url} (manifest, ")
    assert "samples:  12\n" in out and "key 'sämple-0000/ключ'" in out
    shard = f"{served.url}/sub/v-00001.msgpack"
    assert main(["info", shard]) == 0
    assert capsys.readouterr().out.startswith(f"path:     {shard} (packed file, 1 shards, remote)")
    assert main(["cat", url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 12
    assert main(["cat", url, "--storage-options", "[1]"]) == 1
    assert "--storage-options must be a JSON object" in capsys.readouterr().err
