"""``shardstream bench`` through the real console script: packed files, shards, folders, ZIPs,
Loader presets, packed against loose files with a cold or warm page cache, JSON and plots.

No figure is asserted beyond its sanity (timings vary from machine to machine)."""

from __future__ import annotations

import json
import mmap
import os
import re
import zipfile
from pathlib import Path

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
    assert lines[2] == "runs:       warm cache, 1 run(s) each"
    assert re.fullmatch(r"setup time: \d+\.\d{4} seconds", lines[3])
    check_figures(lines[4])
    assert lines[5].split() == [
        "source",
        "cache",
        "workers",
        "samples/s",
        "spread",
        "(min-max)",
        "MB/s",
        "runs",
    ]
    rate = float(RESULT.fullmatch(lines[4]).group(2))
    row = TABLE_ROW.fullmatch(lines[6])
    assert row and row.group(1, 2, 3, 8) == ("packed", "warm", "1", "1"), lines[6]
    assert float(row.group(4)) == float(row.group(5)) == float(row.group(6))
    assert float(row.group(4)) == pytest.approx(rate, abs=0.051)  # one run: median = min = max
    assert len(lines) == 7


def test_raw_shuffled_with_seed(data):
    lines = bench(data["packed"], "--raw", "--shuffle", "--seed", "9")
    assert lines[1] == "mode:       raw sample bytes, shuffled (seed 9), 1 worker(s)"
    check_figures(lines[4])
    lines = bench(data["packed"], "-r", "-s")
    assert lines[1] == "mode:       raw sample bytes, shuffled (seed 48), 1 worker(s)"


def test_decode_images_with_threads(data):
    lines = bench(data["packed"], "--decode", "--workers", "2")
    assert lines[1] == (
        "mode:       decoded samples + image decode (simplejpeg for JPEG, Pillow otherwise), "
        "sequential, 2 worker(s)"
    )
    check_figures(lines[4])
    assert re.fullmatch(r"images:     [\d.]+ megapixels decoded, [\d.]+ Mpx/s", lines[5])
    megapixels = float(lines[5].split()[1])
    assert 2.0 < megapixels < 20.0  # 48 images of roughly 0.1-0.3 megapixels


def test_manifest_and_glob(data):
    manifest = data["manifest"]
    lines = bench(manifest)
    assert lines[0] == f"reader:     ShardedReader {manifest} (48 samples)"
    check_figures(lines[4])
    pattern = str(manifest.parent / "set-*.msgpack")
    lines = bench(pattern, "--raw")
    assert lines[0] == f"reader:     ShardedReader {pattern} (48 samples)"


def test_directory_tree_pattern_and_zip(data):
    tree = data["tree"]
    lines = bench(tree, "--decode")
    assert lines[0] == f"reader:     DirectoryReader {tree} (48 samples)"
    check_figures(lines[4])
    pattern = f"{tree}/{{LABEL}}/**"
    lines = bench(pattern, "--exclude", "*_000001.jpg")
    assert lines[0] == f"reader:     DirectoryReader {pattern} (47 samples)"
    assert RESULT.fullmatch(lines[4]).group(1) == "47"
    lines = bench(data["zip"], "--shuffle")
    assert lines[0] == f"reader:     ZipFileReader {data['zip']} (48 samples)"
    check_figures(lines[4])


def test_errors(data, tmp_path):
    result = shardstream("bench", data["packed"], "--raw", "--decode")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
    for workers in ("-1", "x", "1,,2"):
        result = shardstream("bench", data["packed"], "--workers", workers)
        assert result.returncode == 2
        assert "expected comma-separated counts >= 0 such as 0,1,2" in result.stderr
    result = shardstream("bench", data["packed"], "--preset", "dino", "--raw")
    assert result.returncode == 2
    assert shardstream("bench", data["packed"], "--preset", "vit").returncode == 2
    result = shardstream("bench", data["packed"], "--loose", "x", "--loose-from-packed")
    assert result.returncode == 2
    result = shardstream("bench", data["tree"], "--loose-from-packed")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream bench: error: {data['tree']}: the loose-file comparison needs a packed PATH\n"
    )
    assert shardstream("bench").returncode == 2
    result = shardstream("bench", tmp_path / "nothing")
    assert result.returncode == 1
    assert result.stderr == (f"shardstream bench: error: {tmp_path / 'nothing'}: no files found\n")
    for option in ("--json", "--plot"):
        output = tmp_path / "missing" / "out"
        result = shardstream("bench", data["packed"], option, output)
        assert result.returncode == 1
        assert result.stderr == (
            f"shardstream bench: error: {output}: {option} output folder {output.parent} does "
            "not exist\n"
        )
    few = tmp_path / "few" / "cat"
    few.mkdir(parents=True)
    first = sorted(data["tree"].rglob("*.jpg"))[0]
    (few / first.name).write_bytes(first.read_bytes())
    result = shardstream("bench", data["packed"], "--loose", few.parent, "-q")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream bench: error: {few.parent}: holds 1 samples but {data['packed']} holds "
        "48; the comparison needs the same images\n"
    )
    help_text = shardstream("bench", "--help")
    assert help_text.returncode == 0
    for option in (
        "--raw",
        "--shuffle",
        "--decode",
        "--workers",
        "--root-dir",
        "--include",
        "--preset",
        "--loose",
        "--loose-from-packed",
        "--cache",
        "--repeat",
        "--json",
        "--plot",
    ):
        assert option in help_text.stdout


TABLE_ROW = re.compile(
    r"(packed|loose) +(cold|warm) +(\d+) +([\d.]+) +([\d.]+)-([\d.]+) +([\d.]+) +(\d+)"
    r"(?: +([\d.]+))?"
)


def table_rows(lines: list[str], loader: bool = False) -> list[tuple[str, str, int, int]]:
    """(source, cache, workers, runs) of each table row, checking each row's figures (and the
    read ms/sample column of Loader runs)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("source "))
    assert lines[start].endswith("runs  read ms/sample" if loader else "runs"), lines[start]
    rows = []
    for line in lines[start + 1 :]:
        match = TABLE_ROW.fullmatch(line)
        assert match, line
        median, low, high, mb = (float(match.group(i)) for i in (4, 5, 6, 7))
        assert 0 < low <= median <= high and mb > 0, line
        assert (match.group(9) is not None) == loader, line
        rows.append((match.group(1), match.group(2), int(match.group(3)), int(match.group(8))))
    return rows


def check_json_row(
    row: dict, source: str, path: str, cache: str, workers: int, nbytes: int, loader: bool
):
    assert (row["source"], row["path"], row["cache"], row["workers"]) == (
        source,
        path,
        cache,
        workers,
    )
    assert row["samples"] == NUM_IMAGES
    rates = [run["samples_per_s"] for run in row["runs"]]
    assert row["samples_per_s_min"] == min(rates) > 0
    assert row["samples_per_s_max"] == max(rates)
    assert row["samples_per_s_min"] <= row["samples_per_s"] <= row["samples_per_s_max"]
    for run in row["runs"]:
        assert run["samples"] == NUM_IMAGES and run["bytes"] == nbytes and run["seconds"] > 0
        assert run["samples_per_s"] == pytest.approx(NUM_IMAGES / run["seconds"])
        assert run["mb_per_s"] == pytest.approx(nbytes / run["seconds"] / 1e6)
        if loader:  # the Loader's read stage and input stall
            assert run["read_seconds"] > 0 and 0 <= run["stall_pct"] <= 100
        else:
            assert run["read_seconds"] is None and run["stall_pct"] is None
    if loader:
        reads = [run["read_seconds"] * 1e3 / NUM_IMAGES for run in row["runs"]]
        assert row["read_ms_per_sample"] == pytest.approx(sorted(reads)[len(reads) // 2])
    else:
        assert row["read_ms_per_sample"] is None


def test_preset_packed_against_a_loose_copy_json_and_plot(data, tmp_path):
    """The issue's command: the Loader with the DINO preset over the packed set and over a
    temporary loose copy of it, cold and warm, written as JSON and drawn as a PNG."""
    from PIL import Image

    packed = data["packed"]
    out_json, out_png = tmp_path / "out.json", tmp_path / "out.png"
    lines = bench(
        packed, "--preset", "dino", "--workers", "0,1", "--json", out_json, "--plot", out_png
    )
    assert lines[0] == f"reader:     MsgpackReader {packed} (48 samples)"
    match = re.fullmatch(r"loose:      DirectoryReader (\S+) \(48 samples\)", lines[1])
    assert match, lines[1]
    loose = match.group(1)
    assert not os.path.exists(loose)  # the temporary copy is removed at the end
    image_bytes = sum(p.stat().st_size for p in data["tree"].rglob("*.jpg"))
    assert re.fullmatch(
        rf"            a copy of the 'image' field, {image_bytes / 1e6:.1f} MB written in "
        r"[\d.]+ s",
        lines[2],
    )
    assert lines[3] == (
        "mode:       Loader with the dino preset, batches of 32, sequential, 0,1 worker(s)"
    )
    assert lines[4] == "runs:       cold and warm cache, 1 run(s) each"
    expected = [
        (source, cache, workers, 1)
        for source in ("packed", "loose")
        for cache in ("cold", "warm")
        for workers in (0, 1)
    ]
    assert table_rows(lines, loader=True) == expected

    document = json.loads(out_json.read_text())
    assert {k: document[k] for k in document if k not in ("rows", "setup_seconds")} == {
        "version": 1,
        "path": str(packed),
        "samples": NUM_IMAGES,
        "mode": "preset",
        "preset": "dino",
        "batch_size": 32,
        "image_decode": False,
        "shuffle": False,
        "seed": None,
        "workers": [0, 1],
        "caches": ["cold", "warm"],
        "repeat": 1,
    }
    assert document["setup_seconds"] > 0
    assert len(document["rows"]) == len(expected)
    sizes = {"packed": packed.stat().st_size, "loose": image_bytes}
    for row, (source, cache, workers, _) in zip(document["rows"], expected):
        path = str(packed) if source == "packed" else loose
        check_json_row(row, source, path, cache, workers, sizes[source], loader=True)

    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out_png) as image:
        assert image.size == (1100, 450)  # samples/s and read ms per sample
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 10  # lines, text and axes, not a blank page


def test_raw_reads_against_a_given_folder_cold_repeated(data, tmp_path):
    packed, tree = data["packed"], data["tree"]
    out_json = tmp_path / "raw.json"
    lines = bench(
        packed, "--raw", "--loose", tree, "--cache", "cold", "--repeat", "2",
        "--workers", "0,2", "--json", out_json,
    )  # fmt: skip
    assert lines[1] == f"loose:      DirectoryReader {tree} (48 samples)"
    assert lines[2] == "            given"
    assert lines[3] == "mode:       raw sample bytes, sequential, 0,2 worker(s)"
    assert lines[4] == "runs:       cold cache, 2 run(s) each"
    assert table_rows(lines) == [
        ("packed", "cold", 0, 2),
        ("packed", "cold", 2, 2),
        ("loose", "cold", 0, 2),
        ("loose", "cold", 2, 2),
    ]
    document = json.loads(out_json.read_text())
    assert (document["mode"], document["caches"], document["repeat"]) == ("raw", ["cold"], 2)
    image_bytes = sum(p.stat().st_size for p in tree.rglob("*.jpg"))
    sizes = {"packed": packed.stat().st_size, "loose": image_bytes}
    for row in document["rows"]:
        assert len(row["runs"]) == 2
        path = str(packed) if row["source"] == "packed" else str(tree)
        source = row["source"]
        check_json_row(row, source, path, "cold", row["workers"], sizes[source], loader=False)


def test_eval_preset_without_comparison_warm(data):
    lines = bench(data["packed"], "--preset", "eval", "--no-loose", "--workers", "0")
    assert (
        lines[1]
        == "mode:       Loader with the eval preset, batches of 32, sequential, 0 worker(s)"
    )
    assert lines[2] == "runs:       warm cache, 1 run(s) each"
    check_figures(lines[4])
    assert table_rows(lines, loader=True) == [("packed", "warm", 0, 1)]


def test_plot_without_matplotlib_names_the_extra(data, tmp_path):
    """A real package named matplotlib that fails to import stands for a missing one."""
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), os.getcwd()])}
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "bench", str(data["packed"]), "--plot",
         str(tmp_path / "p.png"), "--json", str(tmp_path / "p.json")],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "shardstream bench: error: bench --plot needs matplotlib, which is not installed (No "
        "module named matplotlib): pip install 'shardstream[plot]'\n"
    )
    assert result.stdout == ""  # it fails before measuring anything
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "p.json").exists()


def _filesystem_type(path: Path) -> str:
    best, kind = "", ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            if str(path).startswith(point) and len(point) > len(best):
                best, kind = point, fields[2]
    return kind


def _resident_pages(path: Path) -> tuple[int, int]:
    """(pages in the page cache, pages) of a file, from mincore(2) on a private mapping."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        vector = (ctypes.c_ubyte * pages)()
        assert libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) == 0
        resident = sum(v & 1 for v in vector)
        del address
    return resident, pages


def test_cold_cache_really_drops_the_pages(tmp_path):
    from shardstream.cli.bench_runs import drop_page_cache, warm_page_cache

    if _filesystem_type(tmp_path) in ("tmpfs", "ramfs", "overlay"):
        pytest.skip(f"{tmp_path} is on a file system whose pages are its storage")
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(64 * mmap.PAGESIZE))  # written, so its pages are dirty
    assert warm_page_cache([str(path), str(tmp_path / "gone")]) == 64 * mmap.PAGESIZE
    assert _resident_pages(path) == (64, 64)
    assert drop_page_cache([str(path), str(tmp_path / "gone")]) == 1
    assert _resident_pages(path) == (0, 64)
    assert warm_page_cache([str(path)]) == 64 * mmap.PAGESIZE
    assert _resident_pages(path) == (64, 64)
