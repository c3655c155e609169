"""Cache entries are renamed into place without an fsync; the kernel's boot id in each stamp
tells which entries a machine crash could have torn: one stamped in an earlier boot is checked
once (data against the manifest's md5, sidecars against the stamp) before it is used, and
fetched again where anything differs."""

from __future__ import annotations

import json
import os

from shardstream.read.open import open_dataset
from shardstream.read.remote.cache import boot_id


def _entry(cache_dir):
    [stamp] = [p for p in cache_dir.rglob(".stamp") if ".part-" not in str(p)]
    return stamp, json.loads(stamp.read_text())


def _from_earlier_boot(stamp) -> None:
    document = json.loads(stamp.read_text())
    document["boot"] = "00000000-0000-0000-0000-000000000000"
    stamp.write_text(json.dumps(document))


def _tear(path) -> None:
    """Flip 8 bytes in the middle of ``path`` in place, keeping its size and mtime."""
    st = os.stat(path)
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 8] = bytes(b ^ 0xFF for b in content[middle : middle + 8])
    path.write_bytes(bytes(content))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _read_first_shard(url, cache_dir) -> list:
    reader = open_dataset(url, cache_dir=cache_dir)
    reader.remote.mode = "shards"
    got = [reader.get(i, raw=True) for i in range(4)]
    reader.close()
    return got


def test_an_entry_from_an_earlier_boot_is_checked_once_then_trusted(http, served_root, tmp_path):
    url = f"{http.url}/varied/v.manifest"
    local = open_dataset(served_root / "varied" / "v.manifest")
    want = [local.get(i, raw=True) for i in range(4)]
    shard = f"/varied/{local.shards[0].path.name}"
    assert _read_first_shard(url, tmp_path) == want
    stamp, first = _entry(tmp_path)
    assert first["boot"] == boot_id() != ""
    assert set(first["sidecars"]) == {p.name for p in stamp.parent.iterdir()} - {
        first["data"],
        ".stamp",
    }

    _from_earlier_boot(stamp)  # intact: checked, stamped in this boot, not downloaded again
    assert _read_first_shard(url, tmp_path) == want
    assert http.whole[shard] == 1
    assert _entry(tmp_path)[1]["boot"] == boot_id()

    data = stamp.parent / first["data"]
    _tear(data)  # a torn entry of this boot (same size and mtime) would be trusted...
    _from_earlier_boot(stamp)  # ...one of an earlier boot is caught and fetched again
    assert _read_first_shard(url, tmp_path) == want
    assert http.whole[shard] == 2

    stamp, again = _entry(tmp_path)
    offsets = stamp.parent / (first["data"] + ".offsets")
    _tear(offsets)  # a torn sidecar: caught by the digest the stamp recorded
    _from_earlier_boot(stamp)
    assert _read_first_shard(url, tmp_path) == want
    assert http.whole[shard] == 3
    assert _entry(tmp_path)[1]["boot"] == boot_id()


def test_an_entry_without_a_boot_id_is_checked_like_an_earlier_boots(http, served_root, tmp_path):
    url = f"{http.url}/varied/v.manifest"
    local = open_dataset(served_root / "varied" / "v.manifest")
    want = [local.get(i, raw=True) for i in range(4)]
    assert _read_first_shard(url, tmp_path) == want
    stamp, first = _entry(tmp_path)
    del first["boot"]
    stamp.write_text(json.dumps(first))
    _tear(stamp.parent / first["data"])
    assert _read_first_shard(url, tmp_path) == want
    assert http.whole[f"/varied/{local.shards[0].path.name}"] == 2
