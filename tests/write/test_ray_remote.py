"""The Ray engine writing to object storage (moto S3 on 127.0.0.1): each Ray task uploads its
shard, the driver the manifest last; the objects equal the local engine's files byte for byte,
and a resumed run uploads only the shards that are missing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from shardstream.cli import main
from shardstream.write.conversion import convert
from tests.write import ray_cluster
from tests.write.demo_tree import demo_tree
from tests.write.s3_gate import gate, moto, objects
from tests.write.test_ray_engine import demo_items, output_files

ray_local = ray_cluster.ray_local

__all__ = ["gate", "moto", "ray_local"]  # fixtures


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return demo_tree(tmp_path_factory.mktemp("ray-s3-demo"))


@pytest.mark.parametrize(
    "options",
    [
        {"shard_samples": 4},
        {"shard_samples": 5, "max_side": 24, "quality": 90},
        {"shard_size": 60_000},
    ],
    ids=["shards", "transcode", "streamed"],
)
def test_ray_to_s3_equals_the_local_engine_byte_for_byte(ray_local, moto, tree, tmp_path, options):
    items = demo_items(tree)
    prefix = f"out/ray-{len(options)}-{next(iter(options))}"
    report = convert(
        items, f"s3://{prefix}/set.manifest", on_error="skip", progress=False, engine="ray",
        storage_options=moto.options, **options,
    )  # fmt: skip
    convert(items, tmp_path / "set.manifest", on_error="skip", progress=False, **options)
    assert objects(moto, prefix) == output_files(tmp_path)
    assert report.path == f"s3://{prefix}/set.manifest" and report.written == 12
    assert report.report == f"s3://{prefix}/set.manifest.skipped.tsv"
    assert all(isinstance(f, str) and f.startswith(f"s3://{prefix}/set-") for f in report.files)


def test_ray_resume_uploads_only_the_missing_shards(ray_local, moto, gate, tree, tmp_path):
    items = demo_items(tree)
    url = "s3://out/ray-resume/set.manifest"
    options = {"shard_samples": 3, "on_error": "skip", "progress": False, "engine": "ray"}
    convert(items, url, storage_options=gate.options, **options)
    fs = moto.filesystem()
    fs.rm_file("out/ray-resume/set.manifest")  # as a killed driver leaves it: no manifest
    fs.rm_file("out/ray-resume/set-00002.msgpack")
    gate.puts.clear()
    convert(items, url, storage_options=gate.options, resume=True, **options)
    data = {n for n in gate.puts if re.fullmatch(r"set-\d{5}\.msgpack", n)}
    assert data == {"set-00002.msgpack"}
    convert(items, tmp_path / "set.manifest", shard_samples=3, on_error="skip", progress=False)
    assert objects(moto, "out/ray-resume") == output_files(tmp_path)


def test_cli_engine_ray_writes_to_s3(ray_local, moto, tree, tmp_path):
    args = ["write", "imagefolder", os.fspath(tree), "-q", "--shard-samples", "5"]
    code = main([*args, "--engine", "ray", "-o", "s3://out/ray-cli/", "--storage-options",
                 json.dumps(moto.options)])  # fmt: skip
    assert code == 0
    assert main([*args, "-o", os.fspath(tmp_path)]) == 0
    assert objects(moto, "out/ray-cli") == output_files(tmp_path)
