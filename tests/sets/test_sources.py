"""Source files: md5 checks that fail loudly, and downloads from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import socket

import pytest

from shardstream.errors import (
    ConfigError,
    DownloadError,
    SourceChecksumError,
    SourceNotFoundError,
)
from shardstream.sets.sources import (
    MIRROR_ENV,
    SourceFile,
    add_source_arguments,
    download_source,
    locate_source,
    source_url,
    sources_from_args,
    verify_source,
)

from .source_fixtures import listing, serving

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: more than one download chunk
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
OTHER_MD5 = "0123456789abcdef0123456789abcdef"


def source(**kwargs) -> SourceFile:
    kwargs.setdefault("name", "archive.bin")
    kwargs.setdefault("md5", PAYLOAD_MD5)
    kwargs.setdefault("url", "https://example.invalid/data/archive.bin")
    return SourceFile(**kwargs)


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "archive.bin").write_bytes(PAYLOAD)
    with serving(root, slow_seconds=1.0) as server:
        yield server


@pytest.fixture
def target(tmp_path):
    directory = tmp_path / "indir"
    directory.mkdir()
    return directory


# --- SourceFile and URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a/b.tar"}, "plain file name"),
        ({"name": ""}, "plain file name"),
        ({"md5": "ABC"}, "32 lower-case hex digits"),
        ({"md5": PAYLOAD_MD5.upper()}, "32 lower-case hex digits"),
        ({"size": -1}, "size must be >= 0"),
    ],
)
def test_source_file_rejects_bad_fields(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        source(**kwargs)


def test_source_file_is_keyword_only():
    with pytest.raises(TypeError):
        SourceFile("archive.bin", PAYLOAD_MD5, None)  # type: ignore[misc]


def test_source_url_official_mirror_and_environment(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert source_url(source()) == "https://example.invalid/data/archive.bin"
    assert source_url(source(), "http://m.local/x/") == "http://m.local/x/archive.bin"
    assert source_url(source(name="a b.tar"), "http://m") == "http://m/a%20b.tar"
    monkeypatch.setenv(MIRROR_ENV, "http://env.local/mirror")
    assert source_url(source()) == "http://env.local/mirror/archive.bin"
    assert source_url(source(), "http://arg.local") == "http://arg.local/archive.bin"
    monkeypatch.setenv(MIRROR_ENV, "")
    assert source_url(source(url=None)) is None


# --- verification ----------------------------------------------------------------------------------


def test_verify_accepts_the_right_file(target):
    path = target / "archive.bin"
    path.write_bytes(PAYLOAD)
    verify_source(path, source(), progress=False)
    verify_source(path, source(md5=OTHER_MD5), md5=PAYLOAD_MD5.upper(), progress=False)


def test_wrong_md5_fails_loudly_naming_file_both_md5s_and_the_remedy(target):
    path = target / "archive.bin"
    path.write_bytes(PAYLOAD[:-1] + b"X")
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(SourceChecksumError) as info:
        verify_source(path, source(), progress=False)
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.path, error.expected, error.actual) == (os.fspath(path), PAYLOAD_MD5, actual)
    message = str(error)
    assert message.startswith(
        f"{path}: md5 is {actual} but archive.bin must have md5 {PAYLOAD_MD5}"
    )
    assert "Delete it and download it again (--download)" in message
    assert "--md5 NAME=MD5" in message


def test_wrong_size_fails_before_hashing(target):
    path = target / "archive.bin"
    path.write_bytes(PAYLOAD)
    with pytest.raises(SourceChecksumError, match=r"is 1,048,580 bytes but archive.bin has 10"):
        verify_source(path, source(size=10), progress=False)


def test_verification_is_remembered_until_the_file_changes(target):
    path = target / "archive.bin"
    path.write_bytes(PAYLOAD)
    verify_source(path, source(), progress=False)
    verify_source(path, source(), progress=False)  # cached: same path, size, mtime
    path.write_bytes(PAYLOAD[:-1] + b"Y")
    os.utime(path, ns=(1, 1))
    with pytest.raises(SourceChecksumError):
        verify_source(path, source(), progress=False)


def test_locate_missing_without_download_says_how_to_get_it(target, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(SourceNotFoundError) as info:
        locate_source(source(note="needs a login"), target, progress=False)
    assert isinstance(info.value, FileNotFoundError)
    assert str(info.value) == (
        f"{target / 'archive.bin'}: archive.bin is not in {target}: pass --download to fetch it "
        "from https://example.invalid/data/archive.bin, or put a copy there (needs a login)"
    )
    with pytest.raises(SourceNotFoundError, match="put a copy there$"):
        locate_source(source(url=None), target, progress=False)


def test_locate_a_directory_under_the_name_is_an_error(target):
    (target / "archive.bin").mkdir()
    with pytest.raises(SourceNotFoundError, match="is not a file"):
        locate_source(source(), target, progress=False)


def test_locate_present_file_verifies_it_and_never_downloads(target, served):
    path = target / "archive.bin"
    path.write_bytes(b"not the archive")
    with pytest.raises(SourceChecksumError):
        locate_source(source(), target, download=True, mirror=served.url(), progress=False)
    assert served.requests == []
    assert locate_source(source(), target, verify=False, progress=False) == path


# --- downloads -------------------------------------------------------------------------------------


def test_download_from_local_server(target, served):
    path = locate_source(source(), target, download=True, mirror=served.url(), progress=False)
    assert path == target / "archive.bin"
    assert path.read_bytes() == PAYLOAD
    assert listing(target) == ["archive.bin"]
    assert served.requests == ["/files/archive.bin"]
    # found next time, without a request
    assert locate_source(source(), target, download=True, mirror=served.url()) == path
    assert served.requests == ["/files/archive.bin"]


def test_download_uses_the_mirror_environment_variable(target, served, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, served.url())
    path = download_source(source(), target, progress=True)
    assert path.read_bytes() == PAYLOAD


def test_download_creates_the_directory(tmp_path, served):
    path = download_source(source(), tmp_path / "new" / "dir", mirror=served.url(), progress=False)
    assert path.read_bytes() == PAYLOAD


def test_http_404_names_the_url_and_leaves_nothing(target, served):
    url = f"{served.url('files')}/archive.bin"
    with pytest.raises(DownloadError) as info:
        download_source(source(name="missing.bin"), target, mirror=served.url(), progress=False)
    missing_url = url.replace("archive.bin", "missing.bin")
    assert info.value.url == missing_url
    assert str(info.value) == f"{missing_url}: HTTP error 404 (Not Found)"
    assert isinstance(info.value, OSError)
    assert listing(target) == []


def test_truncated_body_is_an_error_and_leaves_nothing(target, served):
    with pytest.raises(DownloadError) as info:
        download_source(
            source(), target, mirror=served.url("truncated"), progress=False, retry_wait=0.01
        )
    assert str(info.value) == (
        f"{served.url('truncated')}/archive.bin: connection closed after 524,290 of 1,048,580 "
        "bytes (a truncated body); gave up after 4 tries"
    )
    assert listing(target) == []


def test_failed_download_keeps_an_existing_file_under_the_final_name(target, served):
    (target / "archive.bin").write_bytes(b"previous content")
    with pytest.raises(DownloadError):
        download_source(source(), target, mirror=served.url("truncated"), progress=False, retries=0)
    assert listing(target) == ["archive.bin"]
    assert (target / "archive.bin").read_bytes() == b"previous content"


def test_login_page_instead_of_the_file_fails_the_md5_and_leaves_nothing(target, served):
    with pytest.raises(SourceChecksumError) as info:
        download_source(source(), target, mirror=served.url("login"), progress=False)
    error = info.value
    assert error.expected == PAYLOAD_MD5
    assert (
        error.actual
        == hashlib.md5(
            b"<html><body>Please log in to download this file.</body></html>"
        ).hexdigest()
    )
    assert f"the download from {served.url('login')}/archive.bin has md5 {error.actual}" in str(
        error
    )
    assert "Nothing was saved" in str(error)
    assert listing(target) == []


def test_unverified_download_keeps_whatever_came(target, served):
    path = download_source(
        source(), target, mirror=served.url("login"), verify=False, progress=False
    )
    assert path.read_bytes().startswith(b"<html>")


def test_timeout_names_the_url_and_leaves_nothing(target, served):
    with pytest.raises(DownloadError, match=r"/slow/archive.bin: no answer within 0.2 s$"):
        download_source(
            source(), target, mirror=served.url("slow"), timeout=0.2, progress=False, retries=0
        )
    assert listing(target) == []


def test_refused_connection_names_the_url(target):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        DownloadError, match=rf"^http://127.0.0.1:{port}/archive.bin: cannot connect"
    ):
        download_source(source(), target, mirror=f"http://127.0.0.1:{port}", progress=False)
    assert listing(target) == []


def test_download_from_file_url(tmp_path, target):
    (tmp_path / "archive.bin").write_bytes(PAYLOAD)
    path = download_source(source(), target, mirror=tmp_path.as_uri(), progress=False)
    assert path.read_bytes() == PAYLOAD


def test_download_through_fsspec(target):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/shardstream-test/archive.bin", PAYLOAD)
    try:
        path = download_source(source(), target, mirror="memory://shardstream-test", progress=False)
        assert path.read_bytes() == PAYLOAD
        with pytest.raises(DownloadError, match="^memory://shardstream-test/nope.bin: cannot"):
            download_source(
                source(name="nope.bin"), target, mirror="memory://shardstream-test", progress=False
            )
    finally:
        fs.rm("/shardstream-test", recursive=True)
    assert listing(target) == ["archive.bin"]


def test_no_url_cannot_download(target, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(SourceNotFoundError, match="cannot be downloaded automatically. get it"):
        download_source(source(url=None, note="get it by hand"), target)


# --- command-line options --------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_arguments(parser, (source(),))
    return parser.parse_args(argv)


def test_option_defaults():
    args = parse()
    assert (args.indir, args.download, args.mirror, args.skip_verification, args.md5) == (
        ".",
        False,
        None,
        False,
        [],
    )


def test_options_already_on_the_parser_are_kept():
    parser = argparse.ArgumentParser()
    parser.add_argument("--indir", default="from-write")
    add_source_arguments(parser, (source(),))
    args = parser.parse_args(["--download"])
    assert (args.indir, args.download) == ("from-write", True)


def test_sources_from_args_downloads_and_verifies(target, served):
    args = parse("--indir", str(target), "--download", "--mirror", served.url())
    paths = sources_from_args(args, (source(),))
    assert paths == {"archive.bin": target / "archive.bin"}
    assert paths["archive.bin"].read_bytes() == PAYLOAD


def test_md5_override_replaces_the_official_md5(target):
    (target / "archive.bin").write_bytes(PAYLOAD)
    official = source(md5=OTHER_MD5)
    with pytest.raises(SourceChecksumError, match=f"must have md5 {OTHER_MD5}"):
        sources_from_args(parse("--indir", str(target)), (official,))
    args = parse("--indir", str(target), "--md5", f"archive.bin={PAYLOAD_MD5}")
    assert sources_from_args(args, (official,)) == {"archive.bin": target / "archive.bin"}
    args = parse("--indir", str(target), "--skip-verification")
    assert sources_from_args(args, (official,)) == {"archive.bin": target / "archive.bin"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("archive.bin", "--md5 takes NAME=MD5"),
        ("archive.bin=xyz", "--md5 takes NAME=MD5"),
        (
            f"other.tar={PAYLOAD_MD5}",
            "'other.tar' is not a source file here .these are: archive.bin",
        ),
    ],
)
def test_bad_md5_option(target, value, message):
    with pytest.raises(ConfigError, match=message):
        sources_from_args(parse("--indir", str(target), "--md5", value), (source(),))


def test_md5_option_may_name_a_known_file_that_is_not_needed_now(target):
    (target / "archive.bin").write_bytes(PAYLOAD)
    other = source(name="other.tar", md5=OTHER_MD5)
    args = parse("--indir", str(target), "--md5", f"other.tar={PAYLOAD_MD5}")
    assert sources_from_args(args, (source(),), known=(source(), other)) == {
        "archive.bin": target / "archive.bin"
    }
    with pytest.raises(ConfigError, match="'other.tar' is not a source file here"):
        sources_from_args(args, (source(),))


def test_source_errors_survive_pickling():
    errors = [
        SourceNotFoundError("/d/a.tar", "is missing", "http://x/a.tar"),
        SourceChecksumError("/d/a.tar", PAYLOAD_MD5, OTHER_MD5, "md5 differs"),
        DownloadError("http://x/a.tar", "HTTP error 404 (Not Found)"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), vars(copy)) == (type(error), str(error), vars(error))


def test_a_dropped_connection_is_resumed_with_a_range_request(target, served):
    served.drops = 1
    path = download_source(
        source(), target, mirror=served.url("flaky"), progress=False, retry_wait=0.01
    )
    assert hashlib.md5(path.read_bytes()).hexdigest() == PAYLOAD_MD5
    assert listing(target) == ["archive.bin"]
    half = 1_048_580 // 2
    assert served.ranges == [None, f"bytes={half}-"]  # the second try asked for the rest only
    assert served.sent == 1_048_580  # every byte sent once: resumed, not downloaded again


def test_a_server_without_ranges_gets_the_download_started_over(target, served):
    served.drops = 2
    path = download_source(
        source(), target, mirror=served.url("norange"), progress=False, retry_wait=0.01
    )
    assert hashlib.md5(path.read_bytes()).hexdigest() == PAYLOAD_MD5
    half = 1_048_580 // 2
    assert served.ranges == [None, f"bytes={half}-", f"bytes={half}-"]
    assert served.sent == 2 * half + 1_048_580
    assert listing(target) == ["archive.bin"]


def test_retries_give_up_naming_the_fault_and_the_tries(target, served):
    with pytest.raises(DownloadError) as info:
        download_source(
            source(),
            target,
            mirror=served.url("truncated"),
            progress=False,
            retries=2,
            retry_wait=0.01,
        )
    assert str(info.value) == (
        f"{served.url('truncated')}/archive.bin: connection closed after 524,290 of 1,048,580 "
        "bytes (a truncated body); gave up after 3 tries"
    )
    assert len(served.requests) == 3
    assert listing(target) == []
