"""compat.datadings.tools and .index behave as datadings 3.4.7's on real inputs (bytes equal)."""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("datadings")

import datadings.index as dd_index  # noqa: E402
import datadings.tools as dd_tools  # noqa: E402
from datadings.tools import argparse as dd_argparse  # noqa: E402
from datadings.tools import compression as dd_compression  # noqa: E402
from datadings.tools import matlab as dd_matlab  # noqa: E402
from datadings.tools import msgpack as dd_msgpack  # noqa: E402

from shardstream.compat.datadings import index, tools  # noqa: E402
from shardstream.compat.datadings.tools import argparse as ss_argparse  # noqa: E402
from shardstream.compat.datadings.tools import (  # noqa: E402
    cached_property,
    compression,
    matlab,
)
from shardstream.compat.datadings.tools import msgpack as ss_msgpack  # noqa: E402
from shardstream.errors import DownloadError, SourceChecksumError, UnsafeDataError  # noqa: E402

KEYS = [f"key-{i}/ü" for i in range(50)]
OFFSETS = [0, *np.cumsum(np.arange(1, 51) * 7).tolist()]


# --- index ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("write_keys", (KEYS,)),
        ("write_key_hashes", (KEYS,)),
        ("write_filter", (KEYS,)),
        ("write_offsets", (OFFSETS,)),
        ("write_filter", ([],)),
    ],
)
def test_index_writers_write_datadings_bytes(tmp_path, name, args):
    theirs = getattr(dd_index, name)(*args, tmp_path / "dd.msgpack")
    ours = getattr(index, name)(*args, tmp_path / "ss.msgpack")
    assert ours.name == theirs.name.replace("dd", "ss")
    assert ours.read_bytes() == theirs.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@given(
    st.lists(st.text(min_size=0, max_size=12), max_size=40, unique=True),
    st.lists(st.integers(0, 2**40), max_size=40),
)
@settings(max_examples=40, deadline=None)
def test_index_writers_fuzz_equal_datadings(tmp_path_factory, keys, sizes):
    folder = tmp_path_factory.mktemp("fuzz")
    offsets = np.cumsum([0, *sizes]).tolist()
    for name, arg in (
        ("write_keys", keys),
        ("write_key_hashes", keys),
        ("write_filter", keys),
        ("write_offsets", offsets),
    ):
        theirs = getattr(dd_index, name)(arg, folder / "dd.msgpack")
        ours = getattr(index, name)(arg, folder / "ss.msgpack")
        assert ours.read_bytes() == theirs.read_bytes(), name
    assert index.load_keys(folder / "dd.msgpack") == keys
    assert index.load_offsets(folder / "dd.msgpack").tolist() == offsets


def test_index_loaders_read_datadings_files(tmp_path):
    base = tmp_path / "d.msgpack"
    base.write_bytes(b"x" * OFFSETS[-1])
    for name, arg in (
        ("write_keys", KEYS),
        ("write_key_hashes", KEYS),
        ("write_filter", KEYS),
        ("write_offsets", OFFSETS),
    ):
        getattr(dd_index, name)(arg, base)
    assert index.keys_len(base) == dd_index.keys_len(base) == 50
    assert index.load_keys(base) == dd_index.load_keys(base) == KEYS
    salt, hashes = index.load_key_hashes(base)
    dd_salt, dd_hashes = dd_index.load_key_hashes(base)
    assert salt == dd_salt and hashes.tolist() == dd_hashes.tolist()
    assert index.hash_keys(KEYS)[0] == dd_index.hash_keys(KEYS)[0]
    assert index.load_offsets(base).tolist() == dd_index.load_offsets(base).tolist() == OFFSETS
    bloom = index.load_filter(base)
    assert all(k in bloom for k in KEYS)
    assert bytes(bloom.dumps()) == bytes(dd_index.load_filter(base).dumps())
    # legacy index: a msgpack map key -> offset
    import msgpack

    Path(str(base) + ".index").write_bytes(msgpack.packb(dict(zip(KEYS, OFFSETS[:-1]))))
    assert index.legacy_index_len(base) == dd_index.legacy_index_len(base) == 50
    keys, positions = index.legacy_load_index(base)
    assert (keys, positions) == tuple(dd_index.legacy_load_index(base))


# --- small tools ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "suffix"),
    [("some.file", ".file"), ("some.file", ".txt"), ("some.file", "txt"), ("some.txt", "txt")],
)
def test_path_helpers_equal_datadings(path, suffix):
    assert tools.path_append(Path(path), suffix) == dd_tools.path_append(Path(path), suffix)
    assert tools.path_append_suffix(Path(path), suffix) == dd_tools.path_append_suffix(
        Path(path), suffix
    )


@given(st.text(max_size=40), st.binary(max_size=8))
@settings(max_examples=50, deadline=None)
def test_hash_strings_equal_datadings(text, salt):
    assert tools.hash_string(text, salt) == dd_tools.hash_string(text, salt)
    assert tools.hash_string_bytes(text, salt) == dd_tools.hash_string_bytes(text, salt)


def test_md5_helpers_equal_datadings(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    assert tools.hash_md5hex(path) == dd_tools.hash_md5hex(path)
    assert tools.hash_md5hex(path) == hashlib.md5(path.read_bytes()).hexdigest()
    md5 = tmp_path / "f.md5"
    md5.write_text(f"{tools.hash_md5hex(path)}  f.bin\n")
    assert (
        tools.load_md5file(md5) == dd_tools.load_md5file(md5) == {"f.bin": tools.hash_md5hex(path)}
    )


@given(
    st.integers(1, 3),
    st.integers(1, 23),
    st.integers(1, 23),
    st.integers(1, 9),
    st.integers(1, 9),
)
@settings(max_examples=40, deadline=None)
def test_split_array_equals_datadings(channels, height, width, v, h):
    img = np.arange(channels * height * width).reshape(channels, height, width)
    ours = list(tools.split_array(img, v, h))
    theirs = list(dd_tools.split_array(img, v, h))
    assert len(ours) == len(theirs) == -(-height // v) * -(-width // h)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_document_keys_equals_datadings():
    from datadings.sets.types import ImageClassificationData, SaliencyData

    for fun in (ImageClassificationData, SaliencyData):
        assert tools.document_keys(fun) == dd_tools.document_keys(fun)
    assert tools.document_keys(ImageClassificationData, block="Note:", postfix="end") == (
        'Note:\n    Samples have the following keys:\n\n    - ``"key"``\n    - ``"image"``\n'
        '    - ``"label"``\nend'
    )


FILES = {
    "train": {"path": "sub/train.bin", "url": None, "md5": None},
    "test": {"path": "test.bin", "md5": None},
}


def _files(tmp_path: Path) -> dict:
    (tmp_path / "sub").mkdir(exist_ok=True)
    files = {}
    for name, meta in FILES.items():
        data = name.encode() * 100
        (tmp_path / meta["path"]).write_bytes(data)
        files[name] = dict(meta, md5=hashlib.md5(data).hexdigest())
    return files


def test_locate_and_prepare_indir_equal_datadings(tmp_path, capsys):
    files = _files(tmp_path)
    assert tools.locate_files(files, str(tmp_path)) == dd_tools.locate_files(files, str(tmp_path))
    args = argparse.Namespace(indir=str(tmp_path), skip_verification=False)
    theirs = dd_tools.prepare_indir(files, args)
    dd_out = capsys.readouterr().out
    assert tools.prepare_indir(files, args) == theirs
    assert capsys.readouterr().out == dd_out == "Verifying train.bin\nVerifying test.bin\n"
    assert theirs["train"]["path"] == str(tmp_path / "sub/train.bin")
    bad = {"test": dict(files["test"], md5="0" * 32)}
    with pytest.raises(SystemExit):
        dd_tools.prepare_indir(bad, args)
    with pytest.raises(SourceChecksumError, match="test.bin"):
        tools.prepare_indir(bad, args)
    skip = argparse.Namespace(indir=str(tmp_path), skip_verification=True)
    assert tools.prepare_indir(bad, skip) == dd_tools.prepare_indir(bad, skip)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "payload.bin").write_bytes(bytes(range(256)) * 64)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_download_if_not_found_equals_datadings(tmp_path, server, capsys):
    url, root = server
    expected = (root / "payload.bin").read_bytes()
    theirs = tmp_path / "dd" / "deep" / "payload.bin"
    ours = tmp_path / "ss" / "deep" / "payload.bin"
    dd_tools.download_if_not_found(url + "/payload.bin", str(theirs))
    tools.download_if_not_found(url + "/payload.bin", str(ours))
    assert ours.read_bytes() == theirs.read_bytes() == expected
    out = capsys.readouterr().out
    assert f"downloading payload.bin --> {ours}" in out
    ours.write_bytes(b"kept")  # present: not downloaded again
    tools.download_if_not_found(url + "/payload.bin", str(ours))
    assert ours.read_bytes() == b"kept"
    files = {"x": {"path": "got.bin", "url": url + "/payload.bin"}, "y": {"path": "none.bin"}}
    tools.download_files_if_not_found(files, str(tmp_path / "ss"))
    assert (tmp_path / "ss" / "got.bin").read_bytes() == expected
    assert not (tmp_path / "ss" / "none.bin").exists()
    missing = tmp_path / "ss" / "missing.bin"
    with pytest.raises(DownloadError, match="missing.bin"):
        tools.download_if_not_found(url + "/missing.bin", str(missing))
    assert not missing.exists()
    assert not [p.name for p in (tmp_path / "ss").iterdir() if p.name.startswith(".")]


def _gen(n: int, fail: bool = False):
    for i in range(n):
        yield {"i": i}
    if fail:
        raise ValueError("boom")


def test_yield_threaded_and_process_equal_datadings():
    assert list(tools.yield_threaded(_gen(20))) == list(dd_tools.yield_threaded(_gen(20)))
    assert list(tools.yield_process(_gen(7))) == list(dd_tools.yield_process(_gen(7)))
    assert list(tools.yield_threaded(iter([]))) == []
    with pytest.raises(RuntimeError) as error:
        list(tools.yield_threaded(_gen(5, fail=True)))
    assert isinstance(error.value.__cause__, ValueError)
    with pytest.raises(RuntimeError, match="boom"):
        list(tools.yield_process(_gen(5, fail=True)))


def test_yielder_puts_items_end_and_error():
    from queue import Queue

    queue: Queue = Queue()
    end, error = object(), object()
    yielder = tools.Yielder(iter([1, 2]), queue, end, error)
    yielder.start()
    yielder.join(timeout=10)
    assert [queue.get() for _ in range(4)] == [1, 2, end, error]
    assert yielder.daemon and yielder.exception is None


def test_tiff_to_nd_array(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from PIL import Image

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.tif")
    out = tools.tiff_to_nd_array(str(tmp_path / "rgb.tif"))
    assert out.shape == (3, 4, 5) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.moveaxis(rgb, -1, 0))
    bands = np.arange(6 * 4 * 5, dtype=np.uint16).reshape(6, 4, 5) * 100
    tifffile.imwrite(tmp_path / "bands.tif", bands, planarconfig="separate")
    out = tools.tiff_to_nd_array(tmp_path / "bands.tif", type=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, bands.astype(np.float32))
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    Image.fromarray(grey).save(tmp_path / "grey.tif")
    np.testing.assert_array_equal(tools.tiff_to_nd_array(tmp_path / "grey.tif"), grey[None])


def test_print_over_and_printer_equal_datadings(capsys):
    dd_tools.print_over("a", 1, flush=True)
    theirs = capsys.readouterr().out
    tools.print_over("a", 1, flush=True)
    assert capsys.readouterr().out == theirs == "\r a 1\033[K\n"
    printer = tools.make_printer(total=3, file=io.StringIO())
    assert isinstance(printer, tools.ProgressPrinter)
    printer()
    printer(2)
    assert printer.n == 3 and printer.bar_format == dd_tools.BAR_FORMAT
    printer.close()


def test_query_user_equals_datadings(monkeypatch, capsys):
    for answer in ("", "n", "ab", "yes"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{answer}\n"))
        theirs = dd_tools.query_user("go?")
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{answer}\n"))
        assert tools.query_user("go?") == theirs
    assert capsys.readouterr().out.count("go? [Y/n/a/?]") == 8


# --- msgpack, compression, matlab, argparse, cached_property ---------------------------------


def test_msgpack_equals_datadings_but_never_unpickles():
    sample = {"key": "k", "a": np.arange(12, dtype=">i4").reshape(3, 4), "z": 1 + 2j, "b": b"x"}
    packed = ss_msgpack.packb(sample)
    assert packed == dd_msgpack.packb(sample)
    back = ss_msgpack.unpackb(packed)
    np.testing.assert_array_equal(back["a"], sample["a"])
    assert back["z"] == 1 + 2j and back["b"] == b"x"
    stream = io.BytesIO()
    ss_msgpack.pack(sample, stream)
    assert stream.getvalue() == packed
    assert ss_msgpack.unpack(io.BytesIO(packed))["key"] == "k"
    assert ss_msgpack.make_packer().pack(sample) == dd_msgpack.make_packer().pack(sample)
    unpacker = ss_msgpack.make_unpacker()
    unpacker.feed(packed * 2)
    assert [s["key"] for s in unpacker] == ["k", "k"]
    evil = dd_msgpack.packb({"key": "k", "o": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(UnsafeDataError):
        ss_msgpack.unpackb(evil)


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".txt"])
def test_open_comp_reads_and_writes_as_datadings(tmp_path, suffix, monkeypatch):
    pytest.importorskip("shardstream.sets.tools")  # on main; this branch may lack it
    monkeypatch.chdir(tmp_path)
    with dd_compression.open_comp("dd" + suffix, "wt", level=6, encoding="utf-8") as f:
        f.write("hällo\n")
    with compression.open_comp("ss" + suffix, "wt", level=6, encoding="utf-8") as f:
        f.write("hällo\n")
    for name in ("dd", "ss"):
        with compression.open_comp(name + suffix, "rt", encoding="utf-8") as f:
            assert f.read() == "hällo\n"
        with dd_compression.open_comp(tmp_path / (name + suffix), "rb") as f:
            assert f.read() == "hällo\n".encode()
    if suffix == ".gz":
        assert gzip.decompress(Path("ss.gz").read_bytes()) == "hällo\n".encode()


def test_matlab_equals_datadings(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    struct = np.zeros((1, 2), dtype=[("x", "O"), ("y", "O"), ("z", "O")])
    scipy_io.savemat(tmp_path / "m.mat", {"a": np.arange(6).reshape(2, 3), "s": struct})
    data = (tmp_path / "m.mat").read_bytes()
    for source in (str(tmp_path / "m.mat"), data):
        ours, theirs = matlab.loadmat(source), dd_matlab.loadmat(source)
        np.testing.assert_array_equal(ours["a"], theirs["a"])
    arr = matlab.loadmat(data)["s"]
    assert (
        [k for k, _ in matlab.iter_fields(arr, ignore=("y",))]
        == [k for k, _ in dd_matlab.iter_fields(arr, ignore=("y",))]
        == ["x", "z"]
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["in"],
        ["in", "-o", "out", "-y", "-s", "--shuffle", "no", "-t", "0"],
        ["in", "--shuffle", "yes", "-t", "99999"],
    ],
)
def test_argparse_parsers_parse_as_datadings(argv):
    parsers = []
    for module in (dd_argparse, ss_argparse):
        parser = module.make_parser("doc")
        module.argument_threads(parser, default=2, max_threads=4)
        module.argument_calculate_weights(parser)
        parsers.append(parser)
    assert vars(parsers[1].parse_args(argv)) == vars(parsers[0].parse_args(argv))
    simple = [m.make_parser_simple(None) for m in (dd_argparse, ss_argparse)]
    for module, parser in zip((dd_argparse, ss_argparse), simple, strict=True):
        module.argument_infile(parser, nargs="+")
        module.argument_outfile_positional(parser)
        module.argument_outfiles(parser)
        module.argument_shuffle(parser, choices=["yes", "no", "maybe"])
    args = ["a", "b", "c", "-o", "x", "y", "--shuffle", "maybe"]
    assert vars(simple[1].parse_args(args)) == vars(simple[0].parse_args(args))


def test_cached_property_is_pythons():
    assert cached_property.cached_property is functools.cached_property


# --- reader helpers ---------------------------------------------------------------------------


def test_reader_helpers_equal_datadings(tmp_path, monkeypatch):
    from datadings.reader import directory as dd_directory
    from datadings.reader import list as dd_list
    from datadings.reader import zipfile as dd_zipfile

    from shardstream.compat.datadings.reader import directory
    from shardstream.compat.datadings.reader import list as ss_list
    from shardstream.compat.datadings.reader import zipfile as ss_zipfile

    monkeypatch.chdir(tmp_path)
    for label in ("a", "b"):
        Path("tree", label).mkdir(parents=True)
        for i in range(3):
            Path("tree", label, f"f{i}.bin").write_bytes(b"1")
    Path("list.txt").write_text("tree/a/f0.bin\tA\textra\ntree/b/f1.bin\tB\n")
    for args in (("x/a.jpg", ["*.jpg"], []), ("x/a.jpg", [], ["x/*"]), ("a", [], [])):
        assert directory.check_included(*args) == dd_directory.check_included(*args)
    assert list(directory.yield_file("list.txt", "tree/", "\t")) == list(
        dd_directory.yield_file("list.txt", "tree/", "\t")
    )
    assert sorted(directory.glob_pattern("tree/{LABEL}/**", "")) == sorted(
        dd_directory.glob_pattern("tree/{LABEL}/**", "")
    )
    patterns = ["tree/{LABEL}/**", "list.txt"]
    assert sorted(directory.yield_directory(patterns, "\t")) == sorted(
        dd_directory.yield_directory(patterns, "\t")
    )
    assert ss_list.load_lines("list.txt") == dd_list.load_lines("list.txt")
    assert ss_list.sorted_labels([{"label": "b10"}, {"label": "b2"}]) == dd_list.sorted_labels(
        [{"label": "b10"}, {"label": "b2"}]
    )
    with zipfile.ZipFile("z.zip", "w") as z:
        for name in ("a/1.jpg", "a/2.jpg", "b/3.jpg", "top.txt"):
            z.writestr(name, b"x")
        z.writestr("c/", b"")
    with zipfile.ZipFile("z.zip") as z:
        infos = z.infolist()
        for pattern in ("{LABEL}/*.jpg", "*.txt", "**"):
            assert list(ss_zipfile.glob_pattern(infos, pattern)) == list(
                dd_zipfile.glob_pattern(infos, pattern)
            )
        assert list(ss_zipfile.yield_zipfile(z, ["{LABEL}/*.jpg"], "\t")) == list(
            dd_zipfile.yield_zipfile(z, ["{LABEL}/*.jpg"], "\t")
        )


def test_torch_names_are_lazy_and_name_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import shardstream.compat.datadings.torch as t\n"
        "print(t.Compose.__name__, t.dict2tuple.__name__)\n"
        "try:\n    t.Dataset\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Compose dict2tuple",
        "MissingDependencyError shardstream.compat.datadings.torch.Dataset needs torch: "
        "pip install 'shardstream[torch]'",
    ]
    pytest.importorskip("torch")
    from shardstream.compat.datadings.torch import Dataset, DatasetBase, IterableDataset

    assert issubclass(Dataset, DatasetBase) and issubclass(IterableDataset, DatasetBase)
