"""The conversion engine: content, order, transcoding, error policy and atomic output."""

from __future__ import annotations

import functools
import io
import os

import pytest
from PIL import Image

from shardstream import MsgpackReader, ShardedReader
from shardstream.errors import (
    BadSourceError,
    ConfigError,
    DatasetExistsError,
    DuplicateKeyError,
    NothingToConvertError,
    ReservedKeyError,
)
from shardstream.format.codec import packb
from shardstream.write import conversion as convert_module
from shardstream.write.conversion import (
    ConvertReport,
    Item,
    SizedItems,
    SkippedSource,
    convert,
    skipped_report_path,
)
from shardstream.write.loaders import given_bytes, read_file
from shardstream.write.pool import OrderedPool
from shardstream.write.transcode import DEFAULT_QUALITY, ImageFault, check_image, transcode_image
from tests.write.demo_tree import (
    GARBAGE_JPEG,
    NOT_AN_IMAGE,
    demo_tree,
    jpeg,
    png,
    tree_files,
    truncated_jpeg,
)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, bytes]:
    return tree_files(demo_tree(tmp_path_factory.mktemp("demo")))


def file_items(root, files: dict[str, bytes]) -> list[Item]:
    """Write ``files`` under ``root`` and describe them as items (label = position % 3)."""
    items = []
    for number, (key, data) in enumerate(files.items()):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        items.append(Item(key, number % 3, str(path), functools.partial(read_file, str(path))))
    return items


def read_all(path) -> list[dict]:
    with MsgpackReader(path) as reader:
        return list(reader)


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def quiet(items, output, **kwargs) -> ConvertReport:
    kwargs.setdefault("progress", False)
    return convert(items, output, **kwargs)


# --- content and order ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_samples_hold_key_original_bytes_and_label_in_item_order(tmp_path, demo_files, workers):
    items = file_items(tmp_path / "src", demo_files)
    report = quiet(items, tmp_path / "out.msgpack", workers=workers)
    samples = read_all(tmp_path / "out.msgpack")
    assert [s["key"] for s in samples] == list(demo_files)
    assert [s["image"] for s in samples] == list(demo_files.values())
    assert [s["label"] for s in samples] == [i % 3 for i in range(len(demo_files))]
    assert all(set(s) == {"key", "image", "label"} for s in samples)
    assert report.written == len(demo_files) and report.skipped == () and report.report is None
    assert report.path == tmp_path / "out.msgpack" and report.files == (report.path,)
    assert report.bytes == (tmp_path / "out.msgpack").stat().st_size
    assert report.seconds > 0 and report.samples_per_s == report.written / report.seconds


def test_packed_bytes_equal_packing_the_sample_dict(tmp_path):
    data = jpeg((20, 10))
    items = [
        Item("a", None, "a", functools.partial(given_bytes, data)),
        Item("b", 4, "b", functools.partial(given_bytes, data), {"class_name": "cat", "n": [1]}),
    ]
    quiet(items, tmp_path / "o.msgpack", workers=2, image_field="jpg")
    with MsgpackReader(tmp_path / "o.msgpack") as reader:
        assert reader.get(0, raw=True) == packb({"key": "a", "jpg": data})
        assert reader.get(1, raw=True) == packb(
            {"key": "b", "jpg": data, "label": 4, "class_name": "cat", "n": [1]}
        )


def test_order_is_kept_with_two_workers_and_many_chunks(tmp_path):
    images = [jpeg((8 + i % 5, 8), seed=i) for i in range(300)]
    items = [
        Item(f"k{i:04d}", i, f"src{i}", functools.partial(given_bytes, image))
        for i, image in enumerate(images)
    ]
    quiet(items, tmp_path / "two.msgpack", workers=2)
    quiet(items, tmp_path / "one.msgpack", workers=1)
    samples = read_all(tmp_path / "two.msgpack")
    assert [s["key"] for s in samples] == [f"k{i:04d}" for i in range(300)]
    assert [s["image"] for s in samples] == images
    assert (tmp_path / "two.msgpack").read_bytes() == (tmp_path / "one.msgpack").read_bytes()


def test_a_generator_of_items_is_converted_without_a_total(tmp_path, demo_files):
    items = file_items(tmp_path / "src", demo_files)
    report = quiet((item for item in items), tmp_path / "g.msgpack", workers=2, progress=True)
    assert report.written == len(items)
    assert len(SizedItems(3, iter(items[:3]))) == 3


def test_samples_larger_than_a_shared_memory_slot_come_back_as_bytes():
    with OrderedPool(2, slots=2, slot_bytes=100) as pool:
        chunks = [[b"x" * 60, b"y" * 60], [b"z" * 150], [b"w" * 10]]
        results = []
        for refs in pool.map(_put_all, chunks, None):
            results.append([(type(ref).__name__, pool.take(ref)) for ref in refs])
    assert results == [
        [("tuple", b"x" * 60), ("bytes", b"y" * 60)],
        [("bytes", b"z" * 150)],
        [("tuple", b"w" * 10)],
    ]


def _put_all(chunk, options, output):
    return [output.put([data[:5], data[5:]]) for data in chunk]


# --- sharded output -----------------------------------------------------------------------------


def test_shard_size_writes_shards_and_a_manifest_read_as_one(tmp_path, demo_files):
    items = file_items(tmp_path / "src", demo_files)
    report = quiet(items, tmp_path / "out" / "set.msgpack", workers=2, shard_size=300_000)
    assert report.path == tmp_path / "out" / "set.manifest"
    assert len(report.files) > 1
    assert [p.name for p in report.files] == [
        f"set-{i:05d}.msgpack" for i in range(len(report.files))
    ]
    for shard in report.files:
        assert shard.stat().st_size <= 300_000
    with ShardedReader(report.path) as reader:
        assert [s["key"] for s in reader] == list(demo_files)
        assert [s["image"] for s in reader] == list(demo_files.values())
    assert report.bytes == sum(p.stat().st_size for p in report.files)


# --- transcoding --------------------------------------------------------------------------------


def quantization(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return {k: list(v) for k, v in image.quantization.items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_max_side_downscales_keeping_aspect_and_quality_sets_the_tables(tmp_path, workers):
    sources = {"wide": jpeg((300, 200)), "tall": jpeg((90, 400)), "small": jpeg((50, 40))}
    items = [Item(k, None, k, functools.partial(given_bytes, v)) for k, v in sources.items()]
    quiet(items, tmp_path / "t.msgpack", workers=workers, max_side=100, quality=70)
    sizes = {}
    for sample in read_all(tmp_path / "t.msgpack"):
        with Image.open(io.BytesIO(sample["image"])) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            sizes[sample["key"]] = image.size
        assert quantization(sample["image"]) == quantization(jpeg((8, 8), quality=70))
    assert sizes == {"wide": (100, 67), "tall": (22, 100), "small": (50, 40)}


def test_max_side_alone_keeps_images_that_fit_byte_for_byte(tmp_path):
    big, small = jpeg((120, 60)), jpeg((60, 30))
    items = [
        Item("big", 0, "big", functools.partial(given_bytes, big)),
        Item("small", 1, "small", functools.partial(given_bytes, small)),
    ]
    quiet(items, tmp_path / "m.msgpack", workers=1, max_side=60)
    samples = read_all(tmp_path / "m.msgpack")
    assert samples[1]["image"] == small
    with Image.open(io.BytesIO(samples[0]["image"])) as image:
        assert image.size == (60, 30)
    assert quantization(samples[0]["image"]) == quantization(jpeg((8, 8), quality=DEFAULT_QUALITY))


@pytest.mark.parametrize("use_simplejpeg", [True, False])
def test_transcode_paths_agree_on_geometry_and_modes(monkeypatch, use_simplejpeg):
    if not use_simplejpeg:
        monkeypatch.setattr("shardstream.write.transcode.simplejpeg", None)
    cases = [
        (jpeg((640, 480)), (320, 240), "RGB"),
        (jpeg((480, 640), mode="L"), (240, 320), "L"),
        (png((100, 50), mode="RGBA"), (100, 50), "RGB"),
        (jpeg((333, 111), mode="CMYK"), (320, 107), "RGB"),
    ]
    for data, size, mode in cases:
        out = transcode_image(data, max_side=320, quality=80)
        with Image.open(io.BytesIO(out)) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", size, mode)


def test_transcoding_detects_damaged_image_data_the_cheap_check_lets_pass():
    data = bytearray(jpeg((256, 256), quality=95))
    for position in range(len(data) // 2, len(data) // 2 + 400, 3):
        data[position] = 0x55
    check_image(bytes(data))  # headers intact, end marker present
    with pytest.raises(ImageFault, match="JPEG"):
        transcode_image(bytes(data), quality=90)


# --- bad sources --------------------------------------------------------------------------------

BAD_FILES = {
    "truncated.jpg": ("data", "truncated JPEG"),
    "garbage.jpg": ("data", "corrupt JPEG: expected a marker"),
    "empty.jpg": ("data", "empty file (0 bytes)"),
    "notes.jpg": ("data", "not an image"),
    "dangling.jpg": ("link", "cannot read: FileNotFoundError: No such file or directory"),
    "folder.jpg": ("dir", "not a regular file (a directory)"),
    "fifo.jpg": ("fifo", "not a regular file (a special file)"),
}


def make_bad_source(directory, name: str, good: bytes) -> str:
    path = directory / name
    kind = BAD_FILES[name][0]
    if kind == "link":
        os.symlink(directory / "missing-target.jpg", path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(
            {
                "truncated.jpg": truncated_jpeg(good),
                "garbage.jpg": GARBAGE_JPEG,
                "empty.jpg": b"",
                "notes.jpg": NOT_AN_IMAGE,
            }[name]
        )
    return str(path)


def items_with_bad(tmp_path, demo_files, bad_names) -> list[Item]:
    items = file_items(tmp_path / "src", demo_files)
    for position, name in zip((2, 5, 7, 8, 9, 10, 11), bad_names):
        source = make_bad_source(tmp_path / "src", name, next(iter(demo_files.values())))
        items.insert(position, Item(f"bad/{name}", 0, source, functools.partial(read_file, source)))
    return items


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("workers", [1, 2])
def test_raise_stops_at_a_bad_source_naming_it_and_writes_nothing(
    tmp_path, demo_files, name, workers
):
    items = items_with_bad(tmp_path, demo_files, [name])
    out = tmp_path / "out"
    with pytest.raises(BadSourceError) as caught:
        quiet(items, out / "set.msgpack", workers=workers)
    source = str(tmp_path / "src" / name)
    assert caught.value.source == source
    assert BAD_FILES[name][1] in caught.value.reason
    assert str(caught.value).startswith(f"{source}: ")
    assert "on_error='skip'" in str(caught.value)
    assert listing(out) == []


def test_raise_keeps_the_previous_output_intact(tmp_path, demo_files):
    good = file_items(tmp_path / "src", demo_files)
    quiet(good[:3], tmp_path / "set.msgpack")
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path) if "set" in name}
    with pytest.raises(BadSourceError):
        quiet(
            items_with_bad(tmp_path / "b", demo_files, ["empty.jpg"]),
            tmp_path / "set.msgpack",
            overwrite=True,
            shard_size=None,
        )
    after = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path) if "set" in name}
    assert after == before


@pytest.mark.parametrize("workers", [1, 2])
def test_skip_writes_the_rest_and_reports_every_bad_source(tmp_path, demo_files, workers):
    names = sorted(BAD_FILES)
    items = items_with_bad(tmp_path, demo_files, names)
    report = quiet(items, tmp_path / "out" / "set.msgpack", workers=workers, on_error="skip")
    samples = read_all(tmp_path / "out" / "set.msgpack")
    assert [s["key"] for s in samples] == list(demo_files)
    assert report.written == len(demo_files)
    bad_in_order = [item.source for item in items if item.key.startswith("bad/")]
    assert [s.source for s in report.skipped] == bad_in_order
    for skipped in report.skipped:
        assert BAD_FILES[os.path.basename(skipped.source)][1] in skipped.reason
    assert report.report == tmp_path / "out" / "set.msgpack.skipped.tsv"
    lines = report.report.read_text().splitlines()
    assert lines[0] == "source\treason"
    assert lines[1:] == [f"{s.source}\t{s.reason}" for s in report.skipped]


def test_skip_writes_a_header_only_report_when_nothing_was_skipped(tmp_path, demo_files):
    report = quiet(file_items(tmp_path, demo_files), tmp_path / "s.msgpack", on_error="skip")
    assert report.skipped == ()
    assert report.report.read_text() == "source\treason\n"
    assert skipped_report_path(tmp_path / "s.msgpack") == report.report


def test_all_skipped_writes_no_dataset_but_the_report(tmp_path, demo_files):
    source = make_bad_source(tmp_path, "empty.jpg", b"")
    items = [Item("e", 0, source, functools.partial(read_file, source))]
    with pytest.raises(NothingToConvertError, match="all 1 sources were skipped"):
        quiet(items, tmp_path / "out" / "x.msgpack", on_error="skip")
    assert listing(tmp_path / "out") == ["x.msgpack.skipped.tsv"]
    assert (tmp_path / "out" / "x.msgpack.skipped.tsv").read_text().splitlines()[1] == (
        f"{source}\tempty file (0 bytes)"
    )


def test_a_failing_load_function_is_a_bad_source(tmp_path):
    items = [Item("k", None, "somewhere:k", functools.partial(_fail, "boom"))]
    with pytest.raises(BadSourceError, match=r"somewhere:k: cannot read: RuntimeError: boom"):
        quiet(items, tmp_path / "f.msgpack", workers=2)
    assert listing(tmp_path) == []


def _fail(message):
    raise RuntimeError(message)


# --- argument and converter faults -----------------------------------------------------------


def test_no_items_is_nothing_to_convert(tmp_path):
    with pytest.raises(NothingToConvertError, match="no source items"):
        quiet([], tmp_path / "n.msgpack")
    with pytest.raises(NothingToConvertError, match="no source items"):
        quiet(iter([]), tmp_path / "n.msgpack", workers=2)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be a positive int"),
        ({"shard_size": 0}, "shard_size must be a positive int"),
        ({"max_side": -1}, "max_side must be a positive int"),
        ({"quality": 101}, "quality must be in 1..100"),
        ({"quality": 0}, "quality must be a positive int"),
        ({"on_error": "ignore"}, "on_error must be 'raise' or 'skip'"),
        ({"image_field": "label"}, "image_field must be"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs, message):
    items = [Item("k", 0, "k", functools.partial(given_bytes, jpeg((8, 8))))]
    with pytest.raises(ConfigError, match=message):
        quiet(items, tmp_path / "a.msgpack", **kwargs)
    assert listing(tmp_path) == []


def test_field_clashes_and_duplicate_keys_are_converter_faults(tmp_path):
    load = functools.partial(given_bytes, jpeg((8, 8)))
    with pytest.raises(ConfigError, match=r"fields \['label'\] clash"):
        quiet([Item("k", 0, "k", load, {"label": 1})], tmp_path / "a.msgpack", workers=2)
    with pytest.raises(ReservedKeyError, match="reserved field"):
        quiet([Item("k", 0, "k", load, {"nd": 1})], tmp_path / "a.msgpack")
    with pytest.raises(DuplicateKeyError):
        quiet([Item("k", 0, "k", load), Item("k", 1, "k2", load)], tmp_path / "a.msgpack")
    assert listing(tmp_path) == []


def test_existing_output_is_not_replaced_without_overwrite(tmp_path):
    items = [Item("k", 0, "k", functools.partial(given_bytes, jpeg((8, 8))))]
    quiet(items, tmp_path / "e.msgpack")
    before = (tmp_path / "e.msgpack").read_bytes()
    with pytest.raises(DatasetExistsError):
        quiet([Item("j", 0, "j", items[0].load)], tmp_path / "e.msgpack")
    assert (tmp_path / "e.msgpack").read_bytes() == before
    quiet([Item("j", 0, "j", items[0].load)], tmp_path / "e.msgpack", overwrite=True)
    assert [s["key"] for s in read_all(tmp_path / "e.msgpack")] == ["j"]


def test_skipped_source_is_a_named_tuple():
    assert SkippedSource("a", "b") == ("a", "b")
    assert convert_module.SKIPPED_REPORT_SUFFIX == ".skipped.tsv"


def test_default_workers_follow_the_cost_of_an_item(tmp_path, demo_files):
    copies = [
        Item(f"{n}/{key}", 0, key, functools.partial(given_bytes, data))
        for n in range(3)
        for key, data in demo_files.items()
    ]
    report = quiet(copies, tmp_path / "c.msgpack")  # ~100 KB JPEGs: md5 costs more
    assert report.workers == 1
    assert [s["key"] for s in read_all(tmp_path / "c.msgpack")] == [i.key for i in copies]
    report = quiet(copies, tmp_path / "t.msgpack", max_side=64, quality=80)
    assert report.workers == convert_module.default_workers()
    assert [s["key"] for s in read_all(tmp_path / "t.msgpack")] == [i.key for i in copies]
    report = quiet(copies[:15], tmp_path / "s.msgpack", max_side=64, quality=80)
    assert report.workers == 1  # fewer items than the probe takes: no processes started


def test_sharded_skip_report_sits_next_to_the_manifest(tmp_path, demo_files):
    items = items_with_bad(tmp_path, demo_files, ["empty.jpg"])
    report = quiet(items, tmp_path / "o" / "set", shard_size=250_000, on_error="skip")
    assert report.report == tmp_path / "o" / "set.manifest.skipped.tsv"
    assert report.report.read_text().splitlines()[1:] == [
        f"{tmp_path / 'src' / 'empty.jpg'}\tempty file (0 bytes)"
    ]
    with ShardedReader(report.path) as reader:
        assert [s["key"] for s in reader] == list(demo_files)
