"""Writing a sharded set to S3 (moto): shards uploaded as they complete, the manifest last; a
conversion killed with SIGKILL leaves no manifest, and a rerun skips the shards already there."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from shardstream.read.open import open_dataset
from shardstream.write.remote import RemoteShardedWriter
from tests.conftest import varied_samples

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_written_set_reads_back_and_manifest_comes_last(moto_s3, tmp_path):
    url = "s3://sets/written/w.manifest"
    fs = moto_s3.filesystem()
    samples = varied_samples(30)
    with RemoteShardedWriter(
        url, shard_size=3000, storage_options=moto_s3.options, disable=True
    ) as writer:
        for sample in samples[:20]:
            writer.write(sample)
        time.sleep(0.5)
        fs.invalidate_cache()
        assert not fs.exists("sets/written/w.manifest")  # not before the commit
        for sample in samples[20:]:
            writer.write(sample)
    assert len(writer.uploaded) >= 3 and writer.skipped == []
    # the set's offsets file, uploaded before the manifest that names it: every shard's
    # offsets in one object, which the reader loads instead of each shard's
    fs.invalidate_cache()
    names = [p.rsplit("/", 1)[1] for p in writer.shard_urls]
    whole = fs.cat_file("sets/written/w.set-offsets")
    assert whole == b"".join(fs.cat_file(f"sets/written/{n}.offsets") for n in names)
    manifest = json.loads(fs.cat_file("sets/written/w.manifest"))
    assert manifest["offsets"] == {
        "path": "w.set-offsets",
        "bytes": len(whole),
        "md5": hashlib.md5(whole).hexdigest(),
    }
    reader = open_dataset(url, storage_options=moto_s3.options, cache_dir=tmp_path)
    assert [reader.get(i)["key"] for i in range(30)] == [s["key"] for s in samples]
    assert reader.remote.set_offsets.loaded


_WRITE = """
import sys, os, time
from shardstream.write.remote import RemoteShardedWriter
from tests.conftest import varied_samples
import json
options = json.loads(sys.argv[2])
resume = sys.argv[3] == "live"
writer = RemoteShardedWriter(
    sys.argv[1], shard_size=3000, storage_options=options, disable=True, resume=resume
)
for i, sample in enumerate(varied_samples(30)):
    writer.write(sample)
    if i == 25 and sys.argv[3] == "die":
        for upload in writer._uploads:
            upload.result()
        print("UPLOADED", len(writer.uploaded), flush=True)
        time.sleep(60)
writer.close()
print("DONE", len(writer.uploaded), len(writer.skipped), flush=True)
"""


def test_killed_conversion_leaves_no_manifest_and_a_rerun_resumes(moto_s3, tmp_path):
    import json

    url = "s3://sets/killed/k.manifest"
    args = [sys.executable, "-c", _WRITE, url, json.dumps(moto_s3.options)]
    env = {**os.environ, "PYTHONPATH": HERE}
    child = subprocess.Popen([*args, "die"], env=env, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.startswith("UPLOADED ")
    before = int(line.split()[1])
    assert before >= 3
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    fs = moto_s3.filesystem()
    assert not fs.exists("sets/killed/k.manifest")
    assert len([p for p in fs.ls("sets/killed") if p.endswith(".msgpack")]) == before
    done = subprocess.run([*args, "live"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _, uploaded, skipped = done.stdout.split()
    assert int(skipped) == before and int(uploaded) >= 1
    reader = open_dataset(url, storage_options=moto_s3.options, cache_dir=tmp_path)
    assert [reader.get(i)["key"] for i in range(30)] == [s["key"] for s in varied_samples(30)]
