"""Fuzzing the readers, the CLI and the image decoders with mutated files (issue 14, "must show" 3).

Each trial copies a pristine single-file set, sharded set or JPEG, mutates one file (bit flips,
truncation, insertion, overwriting a byte range) and exercises it in a forked child with a time
limit (:func:`._forked.run_isolated`): ``verify``, ``info`` and ``cat`` through the CLI, then
every sample, key and key lookup through the reader and an unbatched Loader pass; JPEGs go
through the header parser, ``check_image``, and the full, region and crop decoders. Required of
every trial:

- no exception outside :mod:`shardstream.errors` (``ImageFault``, ``check_image``'s internal
  error, counts as typed there), no crash (signal), no hang (time limit);
- no wrong data that ``verify`` passes: when it reports OK, the reader returns exactly the
  original samples and keys.

The whole file runs in about a minute (``max_examples`` below); ``derandomize`` makes each run
the same trials, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream import FileWriter, MsgpackReader, ShardedReader, ShardedWriter
from shardstream.cli import main as cli_main
from shardstream.errors import ShardstreamError
from shardstream.format.codec import packb
from shardstream.vision.decode import decode_crops, decode_image, decode_region, image_size
from shardstream.vision.jpeg import is_jpeg, jpeg_info
from shardstream.write.transcode import ImageFault, check_image

from ..conftest import varied_samples
from ._forked import run_isolated

#: seconds a trial may take before it counts as a hang (the work itself takes ~0.1 s)
TRIAL_TIMEOUT = 20.0
SETS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SUFFIXES = ["", ".offsets", ".keys", ".key_hashes", ".filter", ".xxh3", ".md5"]
#: what the trials of sets import lazily (every command of the CLI): the zygote imports it once
WARM = ("shardstream.cli:command_modules",)


# --- mutations ----------------------------------------------------------------------------------

SPECIAL = st.sampled_from(
    [b"\xff" * 8, b"\x00" * 8, b"\xdf\xff\xff\xff\xff", b"\xdd\x7f\xff\xff\xff", b"\xc1"]
    + [b"\xc6\xff\xff\xff\xf0", b"\x91" * 40, b"1e400", b"Infinity", b"[[[[[[[[", b"-1"]
)
MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 2**20)),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("overwrite"), st.integers(0, 2**20), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("overwrite"), st.integers(0, 2**20), SPECIAL),
    st.tuples(st.just("insert"), st.integers(0, 2**20), SPECIAL),
)


def mutate(data: bytes, mutation: tuple) -> bytes:
    """``data`` with one mutation applied (positions wrap around the data's length)."""
    kind, position, *rest = mutation
    out = bytearray(data)
    if not out:
        return bytes(rest[-1]) if kind in ("insert", "overwrite") else b""
    position %= len(out) + (kind in ("insert", "truncate"))
    if kind == "flip":
        out[position % len(out)] ^= 1 << rest[0]
    elif kind == "truncate":
        del out[position:]
    elif kind == "insert":
        out[position:position] = rest[0]
    else:
        out[position : position + len(rest[0])] = rest[0]
    return bytes(out)


def mutated_copy(source: Path, directory: Path, target: str, mutation: tuple) -> None:
    """Copy every file of ``source`` into ``directory``, the one named ``target`` mutated."""
    for path in source.iterdir():
        data = path.read_bytes()
        (directory / path.name).write_bytes(mutate(data, mutation) if path.name == target else data)


# --- the trial ----------------------------------------------------------------------------------


def exercise_set(path: Path, sharded: bool, expected: list[bytes], keys: list[str]) -> dict:
    """Everything a user does with a set; returns what verify said and what reading found."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        verified = cli_main(["verify", "-q", str(path)]) == 0
        cli_main(["info", "-q", str(path)])
        cli_main(["cat", str(path)])
    try:
        reader = ShardedReader(path) if sharded else MsgpackReader(path)
        with reader:
            samples = [packb(sample) for sample in reader]
            found = [reader.find_key(i) for i in range(len(reader))]
            positions = [reader.find_index(key) for key in found if key in reader]
            loaded = [packb(s) for s in reader.dataloader(seed=0).numpy(num_workers=0)]
    except ShardstreamError as error:
        assert not verified, f"verify passed, then reading raised {error!r}"
        return {"verified": verified, "read": False}
    if verified:  # no wrong data that verify passes
        assert samples == expected and found == keys and loaded == expected
        assert positions == list(range(len(keys)))
    return {"verified": verified, "read": True}


def check(outcome) -> None:
    assert outcome.status == "returned", f"{outcome.status} {outcome.exc_type}\n{outcome.detail}"


# --- single-file sets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Path, list[bytes], list[str]]:
    directory = tmp_path_factory.mktemp("single")
    samples = varied_samples(6)
    with FileWriter(directory / "set.msgpack", overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    return directory, [packb(s) for s in samples], [s["key"] for s in samples]


@settings(SETS, max_examples=60)
@given(suffix=st.sampled_from(SUFFIXES), mutation=MUTATIONS)
def test_fuzz_single_file_set(single, suffix, mutation):
    source, expected, keys = single
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        directory = Path(scratch)
        mutated_copy(source, directory, f"set.msgpack{suffix}", mutation)
        path = directory / "set.msgpack"
        check(
            run_isolated(
                exercise_set, path, False, expected, keys, timeout=TRIAL_TIMEOUT, warm=WARM
            )
        )


# --- sharded sets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[Path, list[bytes], list[str], list[str]]:
    directory = tmp_path_factory.mktemp("sharded")
    samples = varied_samples(7)
    with ShardedWriter(directory / "set", shard_size=1500, overwrite=True, disable=True) as w:
        for sample in samples:
            w.write(sample)
    names = sorted(p.name for p in directory.iterdir())
    assert sum(name.endswith(".msgpack") for name in names) >= 2
    return directory, [packb(s) for s in samples], [s["key"] for s in samples], names


@settings(SETS, max_examples=50)
@given(which=st.integers(0, 10**6), mutation=MUTATIONS)
def test_fuzz_sharded_set(sharded, which, mutation):
    source, expected, keys, names = sharded
    target = "set.manifest" if which % 3 == 0 else names[which % len(names)]
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        directory = Path(scratch)
        mutated_copy(source, directory, target, mutation)
        path = directory / "set.manifest"
        check(
            run_isolated(exercise_set, path, True, expected, keys, timeout=TRIAL_TIMEOUT, warm=WARM)
        )


# --- JPEGs --------------------------------------------------------------------------------------


def _jpegs() -> list[bytes]:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    pixels[:, :28] = pixels[:, :28] // 4  # some structure, not only noise
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    variants = [
        {"quality": 90},
        {"quality": 75, "progressive": True},
        {"quality": 90, "subsampling": 0, "exif": exif.tobytes()},
        {"quality": 50, "subsampling": 1, "restart_marker_blocks": 2},
    ]
    out = []
    for options in variants:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        out.append(buffer.getvalue())
    buffer = io.BytesIO()
    image.convert("L").save(buffer, "JPEG", quality=80)
    out.append(buffer.getvalue())
    buffer = io.BytesIO()
    image.convert("CMYK").save(buffer, "JPEG", quality=80)
    out.append(buffer.getvalue())
    # taller and wider: the region decoder skips whole iMCU rows and crops columns
    for options in ({"quality": 85}, {"quality": 85, "progressive": True}):
        buffer = io.BytesIO()
        image.resize((200, 136)).save(buffer, "JPEG", **options)
        out.append(buffer.getvalue())
    return out


JPEGS = _jpegs()


def exercise_jpeg(data: bytes) -> int:
    """Every decode path of a JPEG; returns how many succeeded."""
    succeeded = 0
    steps = [
        lambda: is_jpeg(data),
        lambda: jpeg_info(data),
        lambda: check_image(data),
        lambda: decode_image(data),
        lambda: decode_image(data, scale=4, max_pixels=10**6),
    ]
    for step in steps:
        try:
            step()
            succeeded += 1
        except (ShardstreamError, ImageFault):
            pass
    try:
        height, width = image_size(data)
    except ShardstreamError:
        return succeeded
    boxes = [(0, 0, height, width), (height / 4, width / 3, height / 2, width / 2)]
    boxes.append((height - 1, width - 1, 1, 1))
    for box in boxes:
        for scale in (1, 2, 8):
            try:
                pixels, _ = decode_region(data, box, scale=scale)
                assert pixels.ndim == 3 and pixels.shape[2] == 3
                succeeded += 1
            except ShardstreamError:
                pass
    for interpolation in ("bicubic", "bilinear", "nearest"):
        try:
            crops = decode_crops(data, boxes, [8, (5, 9), 3], interpolation=interpolation)
            assert [c.shape for c in crops] == [(8, 8, 3), (5, 9, 3), (3, 3, 3)]
            succeeded += 1
        except ShardstreamError:
            pass
    return succeeded


def test_pristine_jpegs_decode_on_every_path():
    for data in JPEGS:
        assert run_isolated(exercise_jpeg, data).value == 5 + 9 + 3


@settings(SETS, max_examples=160)
@given(which=st.integers(0, len(JPEGS) - 1), mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
def test_fuzz_jpeg(which, mutations):
    data = JPEGS[which]
    for mutation in mutations:
        data = mutate(data, mutation)
    check(run_isolated(exercise_jpeg, data, timeout=TRIAL_TIMEOUT))


# --- hostile samples with valid checksums -------------------------------------------------------


def _deep(depth: int, opener: bytes = b"\x91") -> bytes:
    return opener * depth + b"\x01"


def _array(descr, shape, data: bytes, kind: bytes = b"") -> bytes:
    import msgpack

    fields = {b"nd": True, b"type": descr, b"kind": kind, b"shape": shape, b"data": data}
    return msgpack.packb(fields)


HOSTILE_VALUES = st.sampled_from(
    [
        _deep(10),
        _deep(500),
        _deep(990),
        _deep(1030),
        _deep(400, b"\x81\xa1a"),
        _deep(600, b"\x81\xa1a"),
        _array("|V0", [2**62], b""),
        _array("|V0", [2**40, 2**40], b""),
        _array("<f8", [2**40, 2**40], bytes(8)),
        _array("|V1", [3000], bytes(3000)),
        _array("<i4", [2], bytes(8)),
        _array([["a", "<i4"], ["b", "|V0"]], [5], bytes(20), b"V"),
        b"\xd6\xff\x00\x00\x00\x01",  # a timestamp ext
        b"\xd5\x05ab",  # an application ext type
        b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
        b"\xa3\xff\xfe\xfd",  # invalid UTF-8
        b"\x81\x91\x01\x02",  # unhashable map key
        b"\x82\xc4\x07complex\xc3\xc4\x04data\xa71e400+j",
        b"\xc0",
    ]
)


@st.composite
def hostile_samples(draw) -> bytes:
    """A packed sample with one hostile value, or a hostile message in place of the sample."""
    import msgpack

    value = draw(HOSTILE_VALUES)
    shape = draw(st.sampled_from(["field", "label", "key", "whole", "list", "no-key"]))
    if shape == "whole":
        return value
    if shape == "list":
        return b"\x92" + msgpack.packb("k") + value
    head = {"field": b"\x82" + msgpack.packb("key") + msgpack.packb("hostile"), "key": b"\x81"}
    head["no-key"] = b"\x81"
    if shape in ("key", "label"):
        return head["field"] + msgpack.packb(shape) + value
    return head[shape] + msgpack.packb("x") + value


def exercise_hostile(path: Path) -> dict:
    """verify, info, cat, the reader and a batched Loader; all errors must be typed."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        verified = cli_main(["verify", "-q", str(path)]) == 0
        cli_main(["info", "-q", str(path)])
        cli_main(["cat", str(path)])
    read = True
    try:
        with MsgpackReader(path) as reader:
            list(reader)
    except ShardstreamError:
        assert not verified, "verify passed, then reading raised"
        read = False
    for batch in (None, 2):
        try:
            with MsgpackReader(path) as reader:
                chain = reader.dataloader(seed=0)
                if batch:
                    chain = chain.batch(batch)
                for _ in chain.numpy(num_workers=0):
                    pass
        except ShardstreamError:
            pass
    return {"verified": verified, "read": read}


@settings(SETS, max_examples=40)
@given(sample=hostile_samples(), position=st.integers(0, 3))
def test_fuzz_hostile_sample_with_valid_checksums(tmp_path_factory, sample, position):
    from shardstream import RawWriter

    directory = tmp_path_factory.mktemp("hostile")
    path = directory / "set.msgpack"
    packed = [packb({"key": f"k{i}", "label": i}) for i in range(3)]
    packed.insert(position, sample)
    with RawWriter(path, overwrite=True, disable=True) as writer:
        for i, data in enumerate(packed):
            writer.write(f"k{i}", data)
    check(run_isolated(exercise_hostile, path, timeout=TRIAL_TIMEOUT, warm=WARM))
