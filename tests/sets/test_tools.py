"""shardstream.sets.tools against datadings 3.4.7's ``datadings.sets.tools`` on real files.

Files are written by the test (plain, gzip, xz, zip) and read through both modules by absolute
path; relative names resolve in each package's own folder (datadings' shipped metadata files are
decoded by ours too). Where datadings fails (gzip writing with ``level=None``, ``.zip`` files that
its docstring promises), ours is checked against the documented behaviour instead.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import pickle
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, CorruptMetadataError, MetadataNotFoundError
from shardstream.sets import tools

dd_tools = pytest.importorskip("datadings.sets.tools")

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _write(path, data: bytes):
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif str(path).endswith(".xz"):
        path.write_bytes(lzma.compress(data))
    elif str(path).endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inner.json", data)
    else:
        path.write_bytes(data)
    return path


def test_root_dir_is_the_sets_package_folder():
    assert os.path.dirname(os.path.abspath(tools.__file__)) == tools.ROOT_DIR
    assert os.path.isfile(os.path.join(tools.ROOT_DIR, "types.py"))
    assert tools.__all__ == ["ROOT_DIR", "load_json", "open_comp"]


def test_relative_names_resolve_in_the_package_folder():
    with tools.open_comp("types.py") as f:
        ours = f.read()
    with open(os.path.join(tools.ROOT_DIR, "types.py"), "rb") as f:
        assert ours == f.read()
    with dd_tools.open_comp("types.py") as f:  # datadings: its own package folder
        theirs = f.read()
    with open(os.path.join(dd_tools.ROOT_DIR, "types.py"), "rb") as f:
        assert f.read() == theirs


@pytest.mark.parametrize(
    "name", ["Places365_classes.json.gz", "ADE20k_counts.json.xz", "Places2017_colors.json.gz"]
)
def test_datadings_shipped_metadata_decodes_the_same(name):
    theirs = dd_tools.load_json(name)
    assert tools.load_json(os.path.join(dd_tools.ROOT_DIR, name)) == theirs
    assert theirs  # a real, non-empty file


@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".json.xz"])
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=JSON)
def test_load_json_equals_datadings(tmp_path, suffix, value):
    path = _write(tmp_path / f"meta{suffix}", json.dumps(value).encode())
    ours = tools.load_json(str(path))
    assert ours == dd_tools.load_json(str(path)) == value
    assert tools.load_json(path) == value  # a Path works as in datadings (os.path.join)


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz"])
def test_open_comp_reads_as_datadings_in_binary_and_text_mode(tmp_path, suffix):
    data = "zeile 1 ü\nline 2\r\n".encode()
    path = str(_write(tmp_path / f"f.txt{suffix}", data))
    for kwargs in ({}, {"mode": "rb"}, {"mode": "rt", "encoding": "utf-8"}):
        with tools.open_comp(path, **kwargs) as a, dd_tools.open_comp(path, **kwargs) as b:
            got = a.read()
            assert got == b.read()
            assert got == (data.decode().replace("\r\n", "\n") if "encoding" in kwargs else data)
    for fn in (tools.open_comp, dd_tools.open_comp):  # Python's own error, in both
        with pytest.raises(ValueError, match="binary mode"):
            fn(path, mode="rb", encoding="utf-8")


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz"])
def test_writing_with_a_level_equals_datadings(tmp_path, suffix):
    data = b"abc" * 1000
    for fn, who in ((tools.open_comp, "ours"), (dd_tools.open_comp, "theirs")):
        with fn(str(tmp_path / f"{who}.bin{suffix}"), mode="wb", level=1) as f:
            f.write(data)
        with tools.open_comp(str(tmp_path / f"{who}.bin{suffix}")) as f:
            assert f.read() == data
    if suffix == ".xz":  # no timestamp in xz: the very same bytes
        assert (tmp_path / "ours.bin.xz").read_bytes() == (tmp_path / "theirs.bin.xz").read_bytes()


def test_gzip_writing_with_default_level(tmp_path):
    # datadings passes level=None on to zlib and fails; ours uses gzip's default level
    with pytest.raises(TypeError):
        dd_tools.open_comp(str(tmp_path / "theirs.gz"), mode="wt", encoding="utf-8")
    with tools.open_comp(str(tmp_path / "ours.gz"), mode="wt", encoding="utf-8") as f:
        f.write('{"a": [1, 2]}')
    assert gzip.decompress((tmp_path / "ours.gz").read_bytes()) == b'{"a": [1, 2]}'
    assert tools.load_json(str(tmp_path / "ours.gz")) == {"a": [1, 2]}


def test_zip_is_read_as_documented(tmp_path):
    path = str(_write(tmp_path / "meta.json.zip", json.dumps({"k": ["ä", 1]}).encode()))
    assert tools.load_json(path) == {"k": ["ä", 1]}
    with tools.open_comp(path) as f:
        assert f.read() == json.dumps({"k": ["ä", 1]}).encode()
    with pytest.raises(ValueError):  # datadings reads the archive as text and fails
        dd_tools.load_json(path)
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.json", "1")
        archive.writestr("b.json", "2")
    with pytest.raises(ConfigError, match="exactly one file, holds 2"):
        tools.load_json(str(tmp_path / "two.zip"))
    with pytest.raises(ConfigError, match="can only be read"):
        tools.open_comp(str(tmp_path / "new.zip"), mode="wb")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(CorruptMetadataError, match="bad.zip.*not a zip archive"):
        tools.load_json(str(tmp_path / "bad.zip"))


@pytest.mark.parametrize("name", ["nothing.json", "nothing.json.gz", "nothing.json.xz"])
def test_a_missing_file_is_a_file_not_found_error_naming_it(tmp_path, name):
    path = str(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        dd_tools.load_json(path)
    for call in (lambda: tools.load_json(path), lambda: tools.open_comp(path)):
        with pytest.raises(MetadataNotFoundError) as info:
            call()
        assert isinstance(info.value, FileNotFoundError) and info.value.path == path
        assert str(info.value) == f"{path}: not found"
    error = pickle.loads(pickle.dumps(MetadataNotFoundError(path)))
    assert str(error) == f"{path}: not found"
    # relative names are looked up in the package folder, and named with it
    with pytest.raises(MetadataNotFoundError, match=os.path.join(tools.ROOT_DIR, "nothing")):
        tools.load_json("nothing.json")


@pytest.mark.parametrize(
    ("name", "content", "fault"),
    [
        ("bad.json", b"{not json", "Expecting property name"),
        ("bad.json", b"\xff\xfe\x00", "utf-8"),
        ("bad.json.gz", b"garbage", "Not a gzipped file"),
        ("bad.json.xz", b"garbage", "Input format not supported"),
        ("cut.json.gz", gzip.compress(b'{"a": 1}')[:-6], "end-of-stream marker"),
    ],
)
def test_corrupt_content_is_a_value_error_naming_the_file(tmp_path, name, content, fault):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(Exception):  # noqa: B017 (datadings raises the codec's or json's own)
        dd_tools.load_json(str(path))
    with pytest.raises(CorruptMetadataError, match=fault) as info:
        tools.load_json(str(path))
    assert isinstance(info.value, ValueError) and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: cannot decode JSON metadata: ")
