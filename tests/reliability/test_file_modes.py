"""New files get mode 0666 & ~umask, as open() and datadings create them (not mkstemp's 0600)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, stat, sys
    from pathlib import Path
    os.umask(int(sys.argv[2], 8))
    out = Path(sys.argv[1])
    from datadings.writer import FileWriter as DatadingsWriter
    from shardstream import FileWriter, ShardedWriter
    from shardstream.methods.train.checkpoint import save_checkpoint

    (out / "ours").mkdir()
    (out / "theirs").mkdir()
    with FileWriter(out / "ours" / "d.msgpack", disable=True) as w:
        w.write({"key": "a", "x": 1})
    with FileWriter(out / "ours" / "d.msgpack", overwrite=True, disable=True) as w:
        w.write({"key": "b", "x": 2})  # a replacement too
    with ShardedWriter(out / "ours" / "s.manifest", shard_size=10, disable=True) as w:
        w.write({"key": "a"})
        w.write({"key": "b"})
    save_checkpoint(out / "ours" / "ckpt.pt", {"step": 1})
    from shardstream.cli.bench_report import write_json
    from shardstream.sets.demo import _write_atomically

    _write_atomically(out / "ours" / "demo.jpg", b"demo image")  # demo images
    write_json(out / "ours" / "bench.json", {"rows": []})  # bench --json
    with DatadingsWriter(out / "theirs" / "d.msgpack", overwrite=True, disable=True) as w:
        w.write({"key": "a", "x": 1})
    modes = {
        str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode)
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    print(json.dumps(modes))
    """
)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_honour_the_umask_like_datadings(tmp_path, umask, mode):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), f"{umask:o}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    modes = json.loads(proc.stdout.splitlines()[-1])
    ours = {name: m for name, m in modes.items() if name.startswith("ours/")}
    theirs = {name: m for name, m in modes.items() if name.startswith("theirs/")}
    # set (7 files), two shards, manifest, checkpoint, a demo image, bench --json
    assert len(ours) == 7 + 2 * 7 + 1 + 1 + 2
    assert set(theirs.values()) == {mode}  # the oracle: datadings under this umask
    assert ours == dict.fromkeys(ours, mode)
