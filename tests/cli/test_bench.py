"""``shardstream bench`` through the real console script: packed files, shards, folders, ZIPs."""

from __future__ import annotations

import re
import zipfile

import pytest

from tests.cli.demo_data import (
    NUM_IMAGES,
    shardstream,
    write_demo_tree,
    write_packed,
    write_sharded,
)

RESULT = re.compile(r"(\d+) samples read in [\d.]+ seconds, ([\d.]+) samples/s, ([\d.]+) MB/s")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The demo images as a folder tree, a ZIP of it, a packed file and a manifest of shards."""
    folder = tmp_path_factory.mktemp("bench")
    tree = write_demo_tree(folder / "images")
    files = sorted(p for p in tree.rglob("*.jpg"))
    samples = [
        {"key": p.relative_to(tree).as_posix(), "image": p.read_bytes(), "label": i % 4}
        for i, p in enumerate(files)
    ]
    archive = folder / "images.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in files:
            z.write(p, p.relative_to(tree).as_posix())
    return {
        "tree": tree,
        "zip": archive,
        "packed": write_packed(folder / "demo.msgpack", samples),
        "manifest": write_sharded(folder, "set", samples, [20, 28]),
    }


def bench(*args) -> list[str]:
    result = shardstream("bench", *args, "-q")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 4, result.stdout
    return lines


def check_figures(line: str) -> None:
    match = RESULT.fullmatch(line)
    assert match, line
    assert int(match.group(1)) == NUM_IMAGES
    assert float(match.group(2)) > 0 and float(match.group(3)) > 0


def test_packed_file_decoded_sequential(data):
    path = data["packed"]
    lines = bench(path)
    assert lines[0] == f"reader:     MsgpackReader {path} (48 samples)"
    assert lines[1] == "mode:       decoded samples, sequential, 1 worker(s)"
    assert re.fullmatch(r"setup time: \d+\.\d{4} seconds", lines[2])
    check_figures(lines[3])
    assert len(lines) == 4


def test_raw_shuffled_with_seed(data):
    lines = bench(data["packed"], "--raw", "--shuffle", "--seed", "9")
    assert lines[1] == "mode:       raw msgpack bytes, shuffled (seed 9), 1 worker(s)"
    check_figures(lines[3])
    lines = bench(data["packed"], "-r", "-s")
    assert lines[1] == "mode:       raw msgpack bytes, shuffled (seed 48), 1 worker(s)"


def test_decode_images_with_threads(data):
    lines = bench(data["packed"], "--decode", "--workers", "2")
    assert lines[1] == (
        "mode:       decoded samples + image decode (simplejpeg for JPEG, Pillow otherwise), "
        "sequential, 2 worker(s)"
    )
    check_figures(lines[3])
    assert re.fullmatch(r"images:     [\d.]+ megapixels decoded, [\d.]+ Mpx/s", lines[4])
    megapixels = float(lines[4].split()[1])
    assert 2.0 < megapixels < 20.0  # 48 images of roughly 0.1-0.3 megapixels


def test_manifest_and_glob(data):
    manifest = data["manifest"]
    lines = bench(manifest)
    assert lines[0] == f"reader:     ShardedReader {manifest} (48 samples)"
    check_figures(lines[3])
    pattern = str(manifest.parent / "set-*.msgpack")
    lines = bench(pattern, "--raw")
    assert lines[0] == f"reader:     ShardedReader {pattern} (48 samples)"


def test_directory_tree_pattern_and_zip(data):
    tree = data["tree"]
    lines = bench(tree, "--decode")
    assert lines[0] == f"reader:     DirectoryReader {tree} (48 samples)"
    check_figures(lines[3])
    pattern = f"{tree}/{{LABEL}}/**"
    lines = bench(pattern, "--exclude", "*_000001.jpg")
    assert lines[0] == f"reader:     DirectoryReader {pattern} (47 samples)"
    assert RESULT.fullmatch(lines[3]).group(1) == "47"
    lines = bench(data["zip"], "--shuffle")
    assert lines[0] == f"reader:     ZipFileReader {data['zip']} (48 samples)"
    check_figures(lines[3])


def test_errors(data, tmp_path):
    result = shardstream("bench", data["packed"], "--raw", "--decode")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
    assert shardstream("bench", data["packed"], "--workers", "0").returncode == 2
    assert shardstream("bench").returncode == 2
    result = shardstream("bench", tmp_path / "nothing")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream bench: error: {tmp_path / 'nothing'}: no files found to benchmark\n"
    )
    help_text = shardstream("bench", "--help")
    assert help_text.returncode == 0
    for option in ("--raw", "--shuffle", "--decode", "--workers", "--root-dir", "--include"):
        assert option in help_text.stdout
