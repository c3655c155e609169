"""The commands on URLs (moto S3 and an HTTP Range server on 127.0.0.1) with
``--storage-options``: inputs of a single data file and of a sharded set give what the local
files give; outputs to S3 are byte for byte the local outputs; commands that write local files
only refuse a URL output with a one-line typed error."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from shardstream.cli import main
from tests.read.remote.url_sets import SET_NAMES, http, name, write_url_sets
from tests.write.s3_gate import moto, objects

__all__ = ["http", "moto", "name"]  # fixtures

COUNT = 18
NAMES = ["circle", "square", "star"]


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    """``one.msgpack`` and ``many.manifest`` (4 shards) of the same samples, with class names."""
    root = tmp_path_factory.mktemp("remote-commands")
    write_url_sets(root, COUNT)
    for set_name in SET_NAMES:
        (root / (set_name + ".labels.txt")).write_text("".join(f"{n}\n" for n in NAMES))
    return root


@pytest.fixture(scope="module")
def s3(moto, local) -> str:
    moto.upload(local, "cmds", "in")
    return "s3://cmds/in"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def options(moto) -> list[str]:
    return ["--storage-options", json.dumps(moto.options)]


def test_sample_from_s3_to_s3_equals_the_local_command(moto, s3, local, name, tmp_path):
    prefix = f"cmds/sample-{name.split('.')[0]}"
    args = ["sample", "10", "--seed", "3", "--shard-size", "40K", "-q", "-y"]
    code, out, err = run(
        args[0], f"{s3}/{name}", f"s3://{prefix}/s.manifest", *args[1:], *options(moto)
    )
    assert code == 0, err
    assert out.startswith(f"wrote 10 of 18 samples (random) to s3://{prefix}/s.manifest (")
    assert (
        run(args[0], os.fspath(local / name), os.fspath(tmp_path / "s.manifest"), *args[1:])[0] == 0
    )
    remote = objects(moto, prefix)
    assert remote == files(tmp_path) and "s.manifest.labels.txt" in remote


def test_shuffle_and_split_and_merge_on_urls(moto, s3, local, tmp_path):
    # shuffle: URL input, local output = the local input's output
    for source, target in ((f"{s3}/many.manifest", "a"), (os.fspath(local / "many.manifest"), "b")):
        (tmp_path / target).mkdir()
        code, _, err = run(
            "shuffle", source, os.fspath(tmp_path / target / "x.msgpack"), "--seed", "5", "-q",
            *options(moto),
        )  # fmt: skip
        assert code == 0, err
    assert files(tmp_path / "a") == files(tmp_path / "b")
    # split: URL input, URL outputs (a single file and a sharded set)
    code, out, err = run(
        "split", f"{s3}/one.msgpack", "7", "-o", "s3://cmds/split/a.msgpack",
        "s3://cmds/split/b.manifest", "--shard-size", "30K", "-q", *options(moto),
    )  # fmt: skip
    assert code == 0, err
    assert "s3://cmds/split/a.msgpack: samples 0-6 (7)" in out
    (tmp_path / "split").mkdir()
    local_split = [os.fspath(tmp_path / "split" / n) for n in ("a.msgpack", "b.manifest")]
    code = run("split", os.fspath(local / "one.msgpack"), "7", "-o", *local_split,
               "--shard-size", "30K", "-q")[0]  # fmt: skip
    assert code == 0
    assert objects(moto, "cmds/split") == files(tmp_path / "split")
    # merge: the two URL parts back into one URL set, as the local parts merge
    code, _, err = run(
        "merge", "s3://cmds/split/a.msgpack", "s3://cmds/split/b.manifest",
        "s3://cmds/merged/m.msgpack", "-s", "concat", "-q", *options(moto),
    )  # fmt: skip
    assert code == 0, err
    (tmp_path / "merged").mkdir()
    code = run("merge", *local_split, os.fspath(tmp_path / "merged" / "m.msgpack"), "-s",
               "concat", "-q")[0]  # fmt: skip
    assert code == 0
    assert objects(moto, "cmds/merged") == files(tmp_path / "merged")


def test_verify_a_url_and_name_the_damaged_shard(moto, s3, local, name):
    code, out, _ = run("verify", f"{s3}/{name}", "-q", *options(moto))
    local_out = run("verify", os.fspath(local / name), "-q")[1]
    assert code == 0 and out.splitlines()[-1] == local_out.splitlines()[-1]
    assert out.splitlines()[-1].endswith(" files and 18 samples checked")
    fs = moto.filesystem()
    shard = "many-00001.msgpack"
    moto.upload(local, "cmds", "damaged")
    data = bytearray(fs.cat_file(f"cmds/damaged/{shard}"))
    data[100] ^= 0xFF
    fs.pipe_file(f"cmds/damaged/{shard}", bytes(data))
    code, out, err = run("verify", "s3://cmds/damaged/many.manifest", "-q", *options(moto))
    assert code == 1, err
    assert f"s3://cmds/damaged/{shard}" in out and "verify: " in out.splitlines()[-1]
    assert "Traceback" not in out


def test_cat_and_info_read_urls_like_local_files(moto, s3, http, local, name):
    local_out = run("cat", os.fspath(local / name))[1]
    assert run("cat", f"{s3}/{name}", *options(moto))[1] == local_out
    assert run("cat", f"{http.url}/{name}")[1] == local_out
    code, out, _ = run("info", f"{http.url}/{name}")
    assert code == 0 and "18" in out


def test_export_from_a_url_and_refusing_a_url_output(moto, s3, local, tmp_path):
    code, _, err = run(
        "export", "parquet", f"{s3}/many.manifest", os.fspath(tmp_path / "r.parquet"), "-q",
        *options(moto),
    )  # fmt: skip
    assert code == 0, err
    code, _, _ = run("export", "parquet", os.fspath(local / "many.manifest"),
                     os.fspath(tmp_path / "l.parquet"), "-q")  # fmt: skip
    assert (tmp_path / "r.parquet").read_bytes() == (tmp_path / "l.parquet").read_bytes()
    for args in (
        ["export", "parquet", f"{s3}/many.manifest", "s3://cmds/x.parquet", *options(moto)],
        ["export", "webdataset", f"{s3}/one.msgpack", "s3://cmds/wds/", *options(moto)],
        ["convert-index", f"{s3}/one.msgpack"],
        ["verify", f"{s3}/one.msgpack", "--add-checksums", *options(moto)],
    ):
        code, out, err = run(*args)
        assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
        assert "must be a local path" in err and out == ""


def test_bench_reads_a_url(moto, s3):
    code, out, err = run("bench", f"{s3}/many.manifest", "--raw", "--repeat", "1", "-q",
                         *options(moto))  # fmt: skip
    assert code == 0, err
    assert f"reader:     ShardedReader {s3}/many.manifest (18 samples)" in out


def test_a_url_without_its_protocol_package_names_the_extra(tmp_path):
    code, _, err = run("sample", "az://box/x.manifest", os.fspath(tmp_path / "o.msgpack"), "3")
    assert code == 1 and "pip install 'shardstream[azure]'" in err and "Traceback" not in err


def test_train_and_eval_from_a_url_equal_the_local_runs(moto, s3, local, tmp_path):
    def train(data: str, out: Path, *extra: str) -> str:
        code, text, err = run(
            "train", "dino", data, "--out", os.fspath(out), "--steps", "2", "--batch-size", "8",
            "--workers", "1", "--device", "cpu", "--quiet", *extra,
        )  # fmt: skip
        assert code == 0, err
        return text.splitlines()[0].split(", ")[1]  # "loss a -> b"

    remote = train(f"{s3}/many.manifest", tmp_path / "remote", *options(moto))
    assert remote == train(os.fspath(local / "many.manifest"), tmp_path / "local")
    assert "FSSPEC_S3" not in os.environ  # the options applied to the run only
    code, out, err = run(
        "eval", "knn", f"{s3}/many.manifest", "--checkpoint",
        os.fspath(tmp_path / "remote" / "checkpoint.pt"), "--workers", "1", "-k", "3",
        *options(moto),
    )  # fmt: skip
    assert code == 0, err
    local_eval = run(
        "eval", "knn", os.fspath(local / "many.manifest"), "--checkpoint",
        os.fspath(tmp_path / "remote" / "checkpoint.pt"), "--workers", "1", "-k", "3",
    )  # fmt: skip
    assert out.splitlines()[0] == local_eval[1].splitlines()[0]
