"""find_paths: glob's matches on trees without links, and safe, finite results with links."""

from __future__ import annotations

import glob
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.read.walk import find_paths

NAMES = st.sampled_from(["a", "b", "c1", "c10", ".h", "x.jpg", "y.png", ".z.jpg"])
PATHS = st.lists(st.lists(NAMES, min_size=1, max_size=4), min_size=1, max_size=12)
PATTERNS = st.sampled_from(
    ["*/**", "**", "**/*.jpg", "*/*", "a/**", "*", ".*", "**/.*", "a/*/x.jpg", "*/**/*.png", "b"]
)


def build(root: str, paths: list[list[str]]) -> None:
    """Files at the given paths (a path that is already a folder, or runs through a file, is
    left out)."""
    for parts in paths:
        folder = os.path.join(root, *parts[:-1])
        try:
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, parts[-1])
            if not os.path.isdir(target):
                with open(target, "wb") as f:
                    f.write(b"x")
        except (FileExistsError, NotADirectoryError):
            continue


@settings(max_examples=60, deadline=None, database=None)
@given(paths=PATHS, pattern=PATTERNS)
def test_matches_what_glob_finds_without_links(paths, pattern):
    with tempfile.TemporaryDirectory() as root:
        build(root, paths)
        expected = sorted(
            p
            for p in glob.glob(pattern, root_dir=root, recursive=True)
            # glob's "a/" for "a/**" over a file "a" names no file (a glob quirk): left out
            if not os.path.isdir(os.path.join(root, p)) and not p.endswith(os.sep)
        )
        found = find_paths(pattern, root_dir=root)
        assert sorted(p.path for p in found) == expected
        assert all(p.kind == "file" for p in found)


@settings(max_examples=60, deadline=None, database=None)
@given(
    paths=PATHS,
    links=st.lists(
        st.tuples(
            st.lists(NAMES, min_size=0, max_size=2), NAMES, st.sampled_from([".", "..", "a"])
        ),
        max_size=4,
    ),
    pattern=PATTERNS,
)
def test_links_never_loop_and_never_leave_the_root(paths, links, pattern):
    with tempfile.TemporaryDirectory() as top:
        root = os.path.join(top, "root")
        os.mkdir(root)
        with open(os.path.join(top, "outside.jpg"), "wb") as f:
            f.write(b"secret")
        build(root, paths)
        for folder, name, target in [*links, ([], "out.jpg", "../outside.jpg")]:
            where = os.path.join(root, *folder)
            if os.path.isdir(where) and not os.path.lexists(os.path.join(where, name)):
                os.symlink(target, os.path.join(where, name))
        found = find_paths(pattern, root_dir=root)
        real_root = os.path.realpath(root)
        paths_found = [p.path for p in found]
        assert len(paths_found) == len(set(paths_found))
        for entry in found:
            full = os.path.join(root, entry.path)
            if entry.kind == "external":
                assert not os.path.realpath(full).startswith(real_root + os.sep)
                continue
            assert os.path.realpath(full).startswith(real_root + os.sep)
            # no folder occurs twice on the way to a match: loops are not followed
            parts = entry.path.split(os.sep)
            folders = [os.path.realpath(os.path.join(root, *parts[:n])) for n in range(len(parts))]
            assert len(folders) == len(set(folders)), entry.path
