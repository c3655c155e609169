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
    from datadings.writer import FileWriter as DatadingsWriter
    from shardstream import FileWriter, ShardedWriter
    from shardstream.cli.bench_report import write_json
    from shardstream.methods.train.checkpoint import save_checkpoint
    from shardstream.sets.demo import _write_atomically


    def write_all(out):
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
        _write_atomically(out / "ours" / "demo.jpg", b"demo image")  # demo images
        write_json(out / "ours" / "bench.json", {"rows": []})  # bench --json
        with DatadingsWriter(out / "theirs" / "d.msgpack", overwrite=True, disable=True) as w:
            w.write({"key": "a", "x": 1})


    # one FOLDER:UMASK argument per umask, each written under its umask in this process
    for argument in sys.argv[1:]:
        folder, umask = argument.rsplit(":", 1)
        os.umask(int(umask, 8))
        out = Path(folder)
        write_all(out)
        modes = {
            str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode)
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }
        print(umask, json.dumps(modes))
    """
)
CASES = [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)]


@pytest.fixture(scope="module")
def modes_by_umask(tmp_path_factory) -> dict[int, dict[str, int]]:
    """The mode of every file written under each umask of CASES (one interpreter for all)."""
    folders = [tmp_path_factory.mktemp(f"umask{umask:o}") for umask, _ in CASES]
    arguments = [f"{folder}:{umask:o}" for folder, (umask, _) in zip(folders, CASES)]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *arguments], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line.split(" ", 1) for line in proc.stdout.splitlines()[-len(CASES) :]]
    return {int(umask, 8): json.loads(modes) for umask, modes in lines}


@pytest.mark.parametrize(("umask", "mode"), CASES)
def test_files_honour_the_umask_like_datadings(modes_by_umask, umask, mode):
    modes = modes_by_umask[umask]
    ours = {name: m for name, m in modes.items() if name.startswith("ours/")}
    theirs = {name: m for name, m in modes.items() if name.startswith("theirs/")}
    # set (7 files), two shards, manifest and set offsets, checkpoint, a demo image, bench --json
    assert len(ours) == 7 + 2 * 7 + 2 + 1 + 2
    assert set(theirs.values()) == {mode}  # the oracle: datadings under this umask
    assert ours == dict.fromkeys(ours, mode)
