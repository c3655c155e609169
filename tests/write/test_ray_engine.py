"""The Ray engine writes the local engine's files byte for byte: on a local Ray, on a two-node
cluster, after a Ray worker is killed mid-task, and when resuming a killed driver's run."""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shardstream import ShardedReader
from shardstream.errors import BadSourceError, ConfigError, NothingToConvertError
from shardstream.write.conversion import Item, convert
from shardstream.write.loaders import given_bytes, read_file
from tests.write import ray_cluster
from tests.write.demo_tree import demo_tree, tree_files
from tests.write.ray_cluster import RAY_ENV

ray_local = ray_cluster.ray_local
two_node_cluster = ray_cluster.two_node_cluster

ROOT = Path(__file__).resolve().parents[2]


def output_files(folder: Path) -> dict[str, bytes]:
    """Every visible file of an output folder (data, index and sidecars, manifest, report)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def slow_read(path: str, marker: str, delay: float) -> bytes:
    """read_file that leaves this process' pid in ``marker`` (a folder) and takes ``delay`` s."""
    Path(marker, str(os.getpid())).touch()
    time.sleep(delay)
    return read_file(path)


def demo_items(root: Path, *, marker: Path | None = None, delay: float = 0.0) -> list[Item]:
    """An item per demo image (sorted), plus one bad source at position 5."""
    files = sorted(tree_files(root))
    items = []
    for index, name in enumerate(files):
        path = os.fspath(root / name)
        load = (
            functools.partial(slow_read, path, os.fspath(marker), delay)
            if marker is not None
            else functools.partial(read_file, path)
        )
        items.append(Item(name, index % 3, path, load))
    items.insert(5, Item("broken", 1, "broken.jpg", functools.partial(given_bytes, b"no image")))
    return items


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return demo_tree(tmp_path_factory.mktemp("ray-demo"))


def local_reference(items: list[Item], folder: Path, **options) -> dict[str, bytes]:
    """The streamed local engine's files (workers pack, this process writes): the reference
    that every whole-shard engine (local processes, Ray tasks) must equal."""
    convert(
        items, folder / "set.manifest", on_error="skip", progress=False, whole_shards=False,
        **options,
    )  # fmt: skip
    return output_files(folder)


@pytest.mark.parametrize(
    "options",
    [
        {"shard_samples": 4},
        {"shard_samples": 5, "max_side": 24, "quality": 90},
        {"shard_samples": 20},
    ],
    ids=["copy", "transcode", "one-shard"],
)
def test_ray_shards_equal_the_local_engine_byte_for_byte(ray_local, tree, tmp_path, options):
    items = demo_items(tree)
    expected = local_reference(items, tmp_path / "local", **options)
    report = convert(
        items, tmp_path / "ray" / "set.manifest", on_error="skip", progress=False, engine="ray",
        **options,
    )  # fmt: skip
    assert output_files(tmp_path / "ray") == expected
    assert report.written == 12 and [s.source for s in report.skipped] == ["broken.jpg"]
    shards = -(-13 // options["shard_samples"])
    assert len(report.files) == shards
    assert sum(name.endswith(".msgpack") for name in expected) == shards
    assert [s["key"] for s in ShardedReader(report.path)] == [
        i.key for i in items if i.key != "broken"
    ]
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("options", [{}, {"shard_size": 60_000}], ids=["one-file", "bytes"])
def test_streamed_mode_equals_the_local_engine(ray_local, tree, tmp_path, options):
    items = demo_items(tree)
    output = "set.msgpack" if not options else "set.manifest"
    convert(items, tmp_path / "local" / output, on_error="skip", progress=False, **options)
    convert(
        items, tmp_path / "ray" / output, on_error="skip", progress=False, engine="ray", **options
    )
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "local")


def convert_killing_one_worker(items, marker, output, *, shard_samples: int) -> list[int]:
    """Convert ``items`` on Ray into ``output`` while SIGKILLing the first Ray worker that
    writes its pid into ``marker`` (in the middle of a shard); return the killed pids."""
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pids = [int(p.name) for p in marker.iterdir() if int(p.name) != os.getpid()]
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    convert(
        items, output / "set.manifest", on_error="skip", progress=False, engine="ray",
        shard_samples=shard_samples,
    )  # fmt: skip
    killer.join()
    return killed


def test_a_killed_worker_is_retried_and_the_output_is_unchanged(ray_local, tree, tmp_path):
    marker = tmp_path / "pids"
    marker.mkdir()
    items = demo_items(tree, marker=marker, delay=0.15)
    expected = local_reference(demo_items(tree), tmp_path / "local", shard_samples=4)
    killed = convert_killing_one_worker(items, marker, tmp_path / "ray", shard_samples=4)
    assert len(killed) == 1
    assert output_files(tmp_path / "ray") == expected


DRIVER = """
import functools, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from shardstream.write.conversion import convert
from tests.write.test_ray_engine import demo_items
items = demo_items(Path({tree!r}), marker=Path({marker!r}), delay=0.4)
convert(items, {output!r}, on_error="skip", progress=False, engine="ray", shard_samples=2,
        ray_address={address!r})
"""


def test_resume_after_the_driver_is_killed_finishes_with_the_same_files(ray_local, tree, tmp_path):
    marker = tmp_path / "pids"
    marker.mkdir()
    output = tmp_path / "ray" / "set.manifest"
    script = DRIVER.format(
        root=os.fspath(ROOT), tree=os.fspath(tree), marker=os.fspath(marker),
        output=os.fspath(output), address=ray_local,
    )  # fmt: skip
    driver = subprocess.Popen([sys.executable, "-c", script], env=RAY_ENV, cwd=ROOT)
    deadline = time.monotonic() + 90
    done: list[Path] = []
    while time.monotonic() < deadline and len(done) < 2 and driver.poll() is None:
        done = list((tmp_path / "ray").glob(".set.manifest.*.tmp/*.done.json"))
        time.sleep(0.05)
    driver.kill()  # SIGKILL: no cleanup runs
    driver.wait()
    assert driver.returncode == -signal.SIGKILL and len(done) >= 2
    assert not output.exists()
    finished = {p.name.removesuffix(".done.json") for p in done}
    staging = done[0].parent
    before = {name: (staging / name).stat().st_mtime_ns for name in finished}

    report = convert(
        demo_items(tree), output, on_error="skip", progress=False, engine="ray",
        shard_samples=2, resume=True,
    )  # fmt: skip
    expected = local_reference(demo_items(tree), tmp_path / "local", shard_samples=2)
    assert output_files(tmp_path / "ray") == expected
    assert report.written == 12
    for name, mtime in before.items():  # kept, not written again
        assert (tmp_path / "ray" / name).stat().st_mtime_ns == mtime


def test_resume_rewrites_a_damaged_finished_shard(ray_local, tree, tmp_path):
    """A shard whose files no longer match their md5s is not trusted by --resume."""
    items = demo_items(tree)
    output = tmp_path / "ray" / "set.manifest"
    expected = local_reference(items, tmp_path / "local", shard_samples=4)
    from shardstream.write import ray_engine, shard_plan

    options = shard_plan._Options(image_field="image", transcode=False, max_side=None, quality=None)
    tasks = shard_plan.plan_shards(items, "set", 4)
    fingerprint = shard_plan.plan_fingerprint(items, 4, options, "skip")
    staging = output.parent / f".set.manifest.{fingerprint[:8]}.tmp"
    staging.mkdir(parents=True)
    first = shard_plan.write_shard(tasks[0], options, "skip", os.fspath(staging))
    assert isinstance(first, shard_plan.ShardResult) and first.samples == 4
    assert shard_plan.finished_shard(tasks[0], staging) is not None
    data = staging / tasks[0].name
    content = data.read_bytes()
    data.write_bytes(content[:-1] + bytes([content[-1] ^ 0xFF]))
    assert shard_plan.finished_shard(tasks[0], staging) is None
    assert ray_engine.TASK_RETRIES >= 1
    convert(
        items, output, on_error="skip", progress=False, engine="ray", shard_samples=4,
        resume=True,
    )  # fmt: skip
    assert output_files(tmp_path / "ray") == expected


def test_a_bad_source_stops_the_ray_engine_with_the_local_error(ray_local, tree, tmp_path):
    """The first bad source in item order is reported, whichever shard task fails first."""
    items = demo_items(tree)
    late = Item("late", 0, "late.jpg", functools.partial(given_bytes, b"also no image"))
    items.insert(11, late)  # shard 2 (quick: its other items come first); "broken" is in shard 1
    with pytest.raises(BadSourceError) as local:
        convert(
            items, tmp_path / "local" / "set.manifest", progress=False, shard_samples=4,
            whole_shards=False,
        )  # fmt: skip
    with pytest.raises(BadSourceError) as remote:
        convert(
            items, tmp_path / "ray" / "set.manifest", progress=False, engine="ray",
            shard_samples=4,
        )  # fmt: skip
    assert str(remote.value) == str(local.value)
    assert remote.value.source == "broken.jpg"
    assert list((tmp_path / "ray").iterdir()) == []  # nothing left, staging included


def test_every_source_skipped_is_nothing_to_convert(ray_local, tmp_path):
    items = [Item(f"k{i}", 0, f"s{i}", functools.partial(given_bytes, b"x")) for i in range(3)]
    with pytest.raises(NothingToConvertError, match="all 3 sources were skipped"):
        convert(
            items, tmp_path / "set.manifest", on_error="skip", progress=False, engine="ray",
            shard_samples=2,
        )  # fmt: skip
    assert (tmp_path / "set.manifest.skipped.tsv").read_text().count("\n") == 4


@pytest.mark.parametrize(
    "options, message",
    [
        ({"engine": "spark"}, "engine must be"),
        ({"resume": True}, "resume needs shard_samples"),
        ({"engine": "ray", "resume": True}, "resume needs"),
        ({"shard_samples": 2, "shard_size": 10}, "not both"),
        ({"shard_samples": 0}, "shard_samples must be a positive int"),
    ],
)
def test_bad_engine_options_are_config_errors(tmp_path, options, message):
    items = [Item("k", 0, "s", functools.partial(given_bytes, b"x"))]
    with pytest.raises(ConfigError, match=message):
        convert(items, tmp_path / "x.manifest", progress=False, **options)


def test_two_node_cluster_writes_the_local_engines_files(two_node_cluster, tree, tmp_path):
    expected = tmp_path / "local"
    command = [sys.executable, "-m", "shardstream", "write", "imagefolder", os.fspath(tree)]
    command += ["--shard-samples", "3", "-q", "-y"]
    env = {**RAY_ENV, "PYTHONPATH": os.fspath(ROOT)}
    subprocess.run(command + ["-o", os.fspath(expected / "x.manifest")], env=env, check=True)
    run = subprocess.run(
        command
        + ["-o", os.fspath(tmp_path / "ray" / "x.manifest")]
        + ["--engine", "ray", "--ray-address", two_node_cluster],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert output_files(tmp_path / "ray") == output_files(expected)
    assert len([n for n in output_files(expected) if n.endswith(".msgpack")]) == 4


def test_one_tar_is_split_across_ray_tasks_by_member(ray_local, tree, tmp_path):
    """A WebDataset tar's samples go to several shard tasks, each reading only its members."""
    import tarfile

    from shardstream.sets.webdataset import webdataset_items

    shard = tmp_path / "one.tar"
    files = sorted(tree_files(tree).items())
    with tarfile.open(shard, "w") as tar:
        for number, (_, data) in enumerate(files):
            for suffix, payload in (("jpg", data), ("cls", str(number % 3).encode())):
                info = tarfile.TarInfo(f"s{number:03d}.{suffix}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    items = list(webdataset_items([str(shard)]))
    images = [item.load.args[0] for item in items]  # type: ignore[attr-defined]
    loads = {(load.func.__name__, load.args[0]) for load in images}
    assert loads == {("read_file_range", str(shard))}  # a member's byte range, not the tar
    assert len({load.args[1] for load in images}) == 12
    expected = local_reference(items, tmp_path / "local", shard_samples=3)
    report = convert(
        items, tmp_path / "ray" / "set.manifest", on_error="skip", progress=False, engine="ray",
        shard_samples=3,
    )  # fmt: skip
    assert len(report.files) == 4 and report.written == 12
    assert output_files(tmp_path / "ray") == expected


def slow_call(marker: str, delay: float, load: functools.partial) -> object:
    """``load()`` after leaving this process' pid in ``marker`` and sleeping ``delay`` s."""
    Path(marker, str(os.getpid())).touch()
    time.sleep(delay)
    return load()


def compressed_tars(tree: Path, folder: Path) -> list[str]:
    """The demo images as two WebDataset .tar.gz shards (image, label, caption per sample)."""
    import tarfile

    files = sorted(tree_files(tree).items())
    shards = []
    for part in range(2):
        shard = folder / f"part-{part}.tar.gz"
        with tarfile.open(shard, "w:gz") as tar:
            for number, (_, data) in enumerate(files[part::2]):
                members = (("jpg", data), ("cls", b"%d" % (number % 3)), ("txt", b"x" * 2000))
                for suffix, payload in members:
                    info = tarfile.TarInfo(f"p{part}/s{number:03d}.{suffix}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
        shards.append(os.fspath(shard))
    return shards


@pytest.mark.parametrize(
    "options",
    [{"shard_samples": 4}, {"shard_samples": 5, "max_side": 24, "quality": 90}, {}],
    ids=["copy", "transcode", "streamed"],
)
def test_compressed_tars_are_read_by_the_ray_tasks(ray_local, tree, tmp_path, options):
    """.tar.gz members are read where their items are converted (Ray tasks), not by the
    driver, and the files equal the local engine's byte for byte."""
    from shardstream.sets.webdataset import webdataset_items

    shards = compressed_tars(tree, tmp_path)
    items = webdataset_items(shards)
    image_loads = {item.load.args[0].func.__name__ for item in items}  # type: ignore[attr-defined]
    assert image_loads == {"read_stream_range"}  # a member's range of the stream, read later
    output = "set.manifest" if options else "set.msgpack"
    convert(items, tmp_path / "local" / output, progress=False, whole_shards=False, **options)
    convert(items, tmp_path / "ray" / output, progress=False, engine="ray", **options)
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "local")
    with ShardedReader(tmp_path / "ray" / output) as reader:
        first = reader[0]
        assert (first["key"], first["label"], first["txt"]) == ("p0/s000", 0, "x" * 2000)
        assert len(reader) == 12


def test_a_killed_worker_reading_a_compressed_tar_is_retried(ray_local, tree, tmp_path):
    from shardstream.sets.webdataset import webdataset_items

    marker = tmp_path / "pids"
    marker.mkdir()
    items = webdataset_items(compressed_tars(tree, tmp_path))
    expected = local_reference(items, tmp_path / "local", shard_samples=3)
    slow = [
        Item(i.key, i.label, i.source, functools.partial(slow_call, os.fspath(marker), 0.1, i.load))
        for i in items
    ]
    killed = convert_killing_one_worker(slow, marker, tmp_path / "ray", shard_samples=3)
    assert len(killed) == 1
    assert output_files(tmp_path / "ray") == expected


def test_a_shard_whose_sources_were_all_skipped_is_an_empty_shard_in_both_engines(
    ray_local, tree, tmp_path
):
    items = demo_items(tree)[6:12]  # 6 good items (the bad source is at 5)
    bad = [Item(f"bad{i}", 0, f"bad{i}", functools.partial(given_bytes, b"no")) for i in range(3)]
    items = items[:3] + bad + items[3:]  # shard 1 of 3 items is all bad
    expected = local_reference(items, tmp_path / "local", shard_samples=3)
    report = convert(
        items, tmp_path / "ray" / "set.manifest", on_error="skip", progress=False, engine="ray",
        shard_samples=3,
    )  # fmt: skip
    assert output_files(tmp_path / "ray") == expected
    assert [path.name for path in report.files] == [f"set-0000{i}.msgpack" for i in range(3)]
    with ShardedReader(report.path) as reader:
        assert len(reader) == 6 and [len(shard) for shard in reader.shards] == [3, 0, 3]


def niceness_read(path: str, marker: str) -> bytes:
    """read_file that records this process' niceness in ``marker`` (a folder)."""
    Path(marker, f"{os.getpid()}-{os.nice(0)}-{Path(path).name}").touch()
    return read_file(path)


NICENESS_DRIVER = """
import functools, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from shardstream.write.conversion import Item, convert
from tests.write.test_ray_engine import niceness_read
root = Path({tree!r})
items = [Item(p.name, 0, str(p), functools.partial(niceness_read, str(p), {marker!r}))
         for p in sorted(root.rglob("*.jpg"))]
convert(items, {output!r}, progress=False, engine="ray", shard_samples=4)
"""


def test_a_local_cluster_started_for_the_run_works_at_the_drivers_priority(tree, tmp_path):
    """Ray nices its workers to 15 by default: on a busy machine they would get a fraction of
    the CPU the local engine's workers get. A cluster the engine starts runs them at the
    driver's niceness."""
    marker = tmp_path / "marks"
    marker.mkdir()
    script = NICENESS_DRIVER.format(root=os.fspath(ROOT), tree=os.fspath(tree),
                                    marker=os.fspath(marker),
                                    output=os.fspath(tmp_path / "out" / "set.manifest"))  # fmt: skip
    env = {key: value for key, value in RAY_ENV.items() if key != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=240)
    assert done.returncode == 0
    marks = [name.split("-", 2) for name in os.listdir(marker)]
    assert len(marks) == 12
    assert {int(nice) for _, nice, _ in marks} == {os.nice(0)}
    assert all(int(pid) != os.getpid() for pid, _, _ in marks)
