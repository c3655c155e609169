"""Conversions to object storage (a real moto S3 server on 127.0.0.1): the objects equal the
local engine's files byte for byte; ``shardstream write -o s3://...`` uploads each shard as it
completes and the manifest last, so a kill -9 mid-upload leaves no manifest and ``--resume``
finishes with the same objects, uploading only what was missing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shardstream.cli import main
from shardstream.errors import DatasetExistsError, MissingDependencyError
from shardstream.read.open import open_dataset
from shardstream.write.conversion import convert
from shardstream.write.remote import RemoteShardedWriter
from tests.conftest import varied_samples
from tests.write.demo_tree import CLASS_NAMES, NOT_AN_IMAGE, copy_tree, demo_tree
from tests.write.s3_gate import gate, moto, objects
from tests.write.test_ray_engine import demo_items

__all__ = ["gate", "moto"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = copy_tree(demo_tree(tmp_path_factory.mktemp("demo")), tmp_path_factory.mktemp("t") / "t")
    (root / CLASS_NAMES[0] / "zz-broken.jpg").write_bytes(NOT_AN_IMAGE)
    return root


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@pytest.mark.parametrize(
    "extra",
    [[], ["--shard-size", "150K"], ["--shard-samples", "4", "--max-side", "24", "--workers", "2"]],
    ids=["one-file", "shard-size", "shard-samples"],
)
def test_cli_write_to_s3_gives_the_local_files_byte_for_byte(moto, tree, tmp_path, extra):
    prefix = f"out/cli-{len(extra)}"
    common = ["write", "imagefolder", os.fspath(tree), "-q", "--on-error", "skip", *extra]
    options = json.dumps(moto.options)
    code, out, err = run(*common, "-o", f"s3://{prefix}/", "--storage-options", options)
    assert code == 0, err
    assert run(*common, "-o", os.fspath(tmp_path))[0] == 0
    remote = objects(moto, prefix)
    assert remote == local_files(tmp_path)
    main_file = "imagefolder-train." + ("msgpack" if not extra else "manifest")
    assert f"-> s3://{prefix}/{main_file}" in out
    assert {main_file + ".labels.txt", main_file + ".skipped.tsv", main_file} <= set(remote)
    assert "skipped 1 bad source(s)" in err and f"s3://{prefix}/{main_file}.skipped.tsv" in err
    reader = open_dataset(f"s3://{prefix}/{main_file}", storage_options=moto.options)
    local = open_dataset(tmp_path / main_file)
    assert [s["key"] for s in reader] == [s["key"] for s in local] and len(reader) == 12


def test_convert_api_takes_a_url_and_storage_options(moto, tree, tmp_path):
    items = demo_items(tree)
    report = convert(
        items, "s3://out/api/set.msgpack", shard_samples=5, on_error="skip", progress=False,
        storage_options=moto.options,
    )  # fmt: skip
    convert(items, tmp_path / "set.msgpack", shard_samples=5, on_error="skip", progress=False)
    assert report.path == "s3://out/api/set.manifest"
    assert report.files == tuple(f"s3://out/api/set-{i:05d}.msgpack" for i in range(3))
    assert report.report == "s3://out/api/set.manifest.skipped.tsv"
    assert report.written == 12 and objects(moto, "out/api") == local_files(tmp_path)


def test_an_existing_output_is_kept_without_overwrite_and_stale_shards_go_with_it(moto, tree):
    items = demo_items(tree)
    url = "s3://out/again/set.manifest"
    convert(
        items, url, shard_samples=2, progress=False, on_error="skip", storage_options=moto.options
    )
    assert sum(n.endswith(".msgpack") for n in objects(moto, "out/again")) == 7
    with pytest.raises(DatasetExistsError, match=r"s3://out/again/set.manifest: exists.*--resume"):
        convert(items, url, shard_samples=4, progress=False, storage_options=moto.options)
    convert(
        items, url, shard_samples=4, progress=False, on_error="skip", overwrite=True,
        storage_options=moto.options,
    )  # fmt: skip
    names = objects(moto, "out/again")
    assert sorted(n for n in names if n.endswith(".msgpack")) == [
        f"set-{i:05d}.msgpack" for i in range(4)
    ]  # shards 4..6 of the replaced set are deleted after the new manifest
    assert not any(n.startswith(("set-00004", "set-00005", "set-00006")) for n in names)


def test_a_protocol_without_its_package_names_the_extra(tree):
    with pytest.raises(MissingDependencyError, match=r"pip install 'shardstream\[azure\]'"):
        convert(demo_items(tree), "az://box/set.manifest", shard_samples=4, progress=False)


def test_cli_without_resume_or_y_refuses_an_existing_output_in_one_line(moto, tree):
    args = ["write", "imagefolder", os.fspath(tree), "-q", "--on-error", "skip"]
    args += ["-o", "s3://out/twice/x.manifest", "--shard-samples", "6"]
    args += ["--storage-options", json.dumps(moto.options)]
    assert run(*args)[0] == 0
    code, _, err = run(*args)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("shardstream write: error: s3://out/twice/x.manifest: exists")
    assert run(*args, "--resume")[0] == 0


def test_bad_storage_options_are_one_line_errors(tree):
    code, _, err = run(
        "write", "imagefolder", os.fspath(tree), "-q", "-o", "s3://out/x/", "--storage-options",
        "[1]",
    )  # fmt: skip
    assert code == 1 and "--storage-options must be a JSON object" in err and "Traceback" not in err


def test_remote_writer_uploads_shards_before_the_manifest(moto, gate):
    # every shard is uploaded in the background while samples are still written: all are
    # there before close() is called, and no manifest before it
    writer = RemoteShardedWriter(
        "s3://out/order/o.manifest", shard_size=3000, storage_options=gate.options, disable=True
    )
    for sample in varied_samples(30):
        writer.write(sample)
    writer.end_shard()
    shards = len(writer.shard_urls)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(n.endswith(".msgpack") for n in gate.puts) < shards:
        time.sleep(0.02)
    assert sum(n.endswith(".msgpack") for n in gate.puts) == shards >= 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and list(writer._local_root.rglob("*.msgpack*")):
        time.sleep(0.02)
    assert list(writer._local_root.rglob("*.msgpack*")) == []  # uploaded shards leave the disk
    writer.abort()
    assert "o.manifest" not in objects(moto, "out/order")


_CLI = [sys.executable, "-m", "shardstream", "write", "imagefolder"]


def test_kill_9_mid_upload_leaves_no_manifest_and_resume_finishes_the_same(
    moto, gate, tree, tmp_path
):
    prefix, url = "out/killed", "s3://out/killed/"
    args = [*_CLI, os.fspath(tree), "-q", "--on-error", "skip", "--shard-samples", "2"]
    env = {**os.environ, "PYTHONPATH": os.fspath(ROOT)}
    gate.hold = re.compile(r"imagefolder-train-00003\.msgpack$")  # shard 3's data file
    child = subprocess.Popen(
        [*args, "-o", url, "--storage-options", json.dumps(gate.options)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert gate.held.wait(60), child.stderr.read() if child.poll() is not None else "slow"
        time.sleep(0.5)  # the other uploads go on meanwhile
        assert child.poll() is None  # still waiting for shard 3: the manifest is not sent
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    before = objects(moto, prefix)
    assert "imagefolder-train.manifest" not in before
    assert "imagefolder-train-00003.msgpack" not in before
    uploaded = {n for n in before if re.fullmatch(r"imagefolder-train-\d{5}\.msgpack", n)}
    assert {"imagefolder-train-00000.msgpack", "imagefolder-train-00001.msgpack"} <= uploaded

    gate.hold = None
    gate.puts.clear()
    done = subprocess.run(
        [*args, "-o", url, "--storage-options", json.dumps(gate.options), "--resume"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert run(*args[3:], "-o", os.fspath(tmp_path))[0] == 0
    assert objects(moto, prefix) == local_files(tmp_path)
    data_puts = {n for n in gate.puts if re.fullmatch(r"imagefolder-train-\d{5}\.msgpack", n)}
    assert data_puts == {f"imagefolder-train-{i:05d}.msgpack" for i in range(7)} - uploaded
    assert all(count == 1 for count in gate.puts.values())
