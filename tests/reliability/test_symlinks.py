"""Symbolic links in image folders: loops end, each file is listed once, and links out of the
root are refused unread unless asked for (issue 14.8).

The old code followed every link with ``glob``: two ``.`` loops hung DirectoryReader, one loop
listed a file 41 times, ``write imagefolder`` died with an untyped ELOOP traceback, and a link to
a file outside the root was packed (its first bytes quoted in ``skipped.tsv``).
"""

from __future__ import annotations

import os

import pytest

from shardstream import MsgpackReader
from shardstream.errors import UnsafeSourcePathError
from shardstream.read import DirectoryReader
from shardstream.sets.imagefolder import scan_folder
from shardstream.write.conversion import convert
from tests.reliability.hostile_sources import assert_clean_failure, cli, forked, jpeg

SECRET = b"root:x:0:0:the secret first bytes of a file outside the root\n"


@pytest.fixture
def tree(tmp_path):
    """root/cat/1.jpg, root/dog/2.jpg, and a secret file next to (outside) the root."""
    root = tmp_path / "root"
    for path in ("cat/1.jpg", "dog/2.jpg"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(jpeg((8, 8)))
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return root


def keys(root, **options) -> list[str]:
    with DirectoryReader(str(root / "{LABEL}" / "**"), **options) as reader:
        return [sample["key"] for sample in reader]


def test_two_dot_loops_end_and_list_each_file_once(tree):
    os.symlink(".", tree / "cat" / "a")
    os.symlink(".", tree / "cat" / "b")
    assert forked(lambda: keys(tree), timeout=20) == ("ok", ["cat/1.jpg", "dog/2.jpg"])
    outcome = forked(lambda: [i.key for i in scan_folder(tree).items], timeout=20)
    assert outcome == ("ok", ["cat/1.jpg", "dog/2.jpg"])


def test_a_loop_to_the_root_lists_each_file_once_under_its_own_class(tree):
    os.symlink("..", tree / "cat" / "up")
    os.symlink(tree / "dog", tree / "dog" / "self")
    assert forked(lambda: keys(tree), timeout=20) == ("ok", ["cat/1.jpg", "dog/2.jpg"])
    scan = forked(lambda: scan_folder(tree), timeout=20)
    assert scan[0] == "ok"
    assert [(i.key, i.label) for i in scan[1].items] == [("cat/1.jpg", 0), ("dog/2.jpg", 1)]


def test_links_inside_the_root_are_followed(tree):
    (tree / "pool").mkdir()
    (tree / "pool" / "3.jpg").write_bytes(jpeg((8, 8)))
    os.symlink(tree / "pool", tree / "cat" / "more")  # a link farm inside the root
    os.symlink("../dog/2.jpg", tree / "cat" / "4.jpg")
    assert keys(tree) == ["cat/1.jpg", "cat/4.jpg", "cat/more/3.jpg", "dog/2.jpg", "pool/3.jpg"]


def test_write_imagefolder_on_loops_exits_cleanly(tree, tmp_path):
    os.symlink(".", tree / "cat" / "loop")
    os.symlink("self.jpg", tree / "cat" / "self.jpg")  # a link to itself: ELOOP on open
    out = tmp_path / "o.msgpack"
    failed = cli("write", "imagefolder", str(tree), "-o", str(out), "--quiet", "--workers", "1")
    line = assert_clean_failure(failed, str(tree / "cat" / "self.jpg"))
    assert "Too many levels of symbolic links" in line
    skipped = cli(
        "write", "imagefolder", str(tree), "-o", str(out), "--quiet", "--on-error", "skip", "-y"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "Traceback" not in skipped.stderr
    with MsgpackReader(out) as reader:
        assert [s["key"] for s in reader] == ["cat/1.jpg", "dog/2.jpg"]


def test_links_out_of_the_root_are_refused_unread(tree, tmp_path):
    os.symlink(tmp_path / "secret.txt", tree / "cat" / "pw.jpg")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "5.jpg").write_bytes(jpeg((8, 8)))
    os.symlink(outside, tree / "dog" / "ext")
    assert keys(tree) == ["cat/1.jpg", "dog/2.jpg"]
    with DirectoryReader(str(tree / "{LABEL}" / "**")) as reader:
        assert reader.external_links == (str(tree / "cat" / "pw.jpg"), str(tree / "dog" / "ext"))
    assert keys(tree, follow_external_links=True) == [
        "cat/1.jpg", "cat/pw.jpg", "dog/2.jpg", "dog/ext/5.jpg",
    ]  # fmt: skip

    items = scan_folder(tree).items
    assert [i.key for i in items] == ["cat/1.jpg", "cat/pw.jpg", "dog/2.jpg", "dog/ext"]
    with pytest.raises(UnsafeSourcePathError, match=r"cat/pw\.jpg: a symbolic link out of"):
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 2
    assert [s.source for s in report.skipped] == [
        str(tree / "cat" / "pw.jpg"),
        str(tree / "dog" / "ext"),
    ]
    text = report.report.read_bytes()
    assert b"secret" not in text and b"root:x" not in text
    assert SECRET not in (tmp_path / "o.msgpack").read_bytes()

    followed = scan_folder(tree, follow_external_links=True).items
    assert [i.key for i in followed] == ["cat/1.jpg", "cat/pw.jpg", "dog/2.jpg", "dog/ext/5.jpg"]


def test_cli_refuses_external_links_and_never_quotes_their_content(tree, tmp_path):
    os.symlink(tmp_path / "secret.txt", tree / "cat" / "pw.jpg")
    out = tmp_path / "o.msgpack"
    failed = cli("write", "imagefolder", str(tree), "-o", str(out), "--quiet")
    line = assert_clean_failure(failed, str(tree / "cat" / "pw.jpg"), "--follow-external-links")
    assert "secret" not in failed.stderr
    assert not out.exists()
    followed = cli(
        "write", "imagefolder", str(tree), "-o", str(out), "--quiet", "--on-error", "skip",
        "--follow-external-links",
    )  # fmt: skip
    assert followed.returncode == 0, followed.stderr
    report = (tmp_path / "o.msgpack.skipped.tsv").read_text()
    # followed, the secret is read and refused as not an image, but never quoted
    assert report.splitlines() == [
        "source\treason",
        f"{tree / 'cat' / 'pw.jpg'}\tnot an image (no image format recognised in its "
        f"{len(SECRET)} bytes)",
    ]
    assert line.startswith("shardstream write: error: ")
