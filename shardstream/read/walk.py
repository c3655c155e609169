"""find_paths: glob-style file search that follows symbolic links safely.

``glob.glob(pattern, recursive=True)`` follows every link to a folder, so a link back to a folder
on its own path (``a/self -> .``, ``a/up -> ..``) makes ``**`` loop: two such links never end,
one lists each file dozens of times under different names until the path is too long, and a link
that points at itself raises an untyped ``ELOOP`` error. It also follows links out of the folder
being converted (``cat/x.jpg -> /etc/passwd``). :func:`find_paths` matches the same patterns
(``*``, ``?``, ``[...]`` within a component, ``**`` for any depth; names starting with ``.`` only
match a component that starts with ``.``) with these rules:

- a link to a folder is followed unless that folder is already on the path that led to the link
  (a loop, detected by the folders' ``(st_dev, st_ino)``): each file is listed once, under its
  path without the loop. A folder reachable along two different paths without a loop (a link
  farm) is listed under both, as glob does;
- a link (to a file or a folder) whose target lies outside the root is reported as
  ``"external"`` and not followed, unless ``follow_external_links`` is set; its target is
  never opened;
- a link that cannot be resolved (dangling, or pointing at itself) and anything else that is
  not a regular file or folder are reported as ``"other"``;
- a folder that cannot be listed raises :class:`~shardstream.errors.BadSourceError` naming it
  (glob skips it silently).
"""

from __future__ import annotations

import os
import stat
from fnmatch import fnmatchcase
from typing import Literal, NamedTuple

from ..errors import BadSourceError

__all__ = ["FoundPath", "find_paths"]

Kind = Literal["file", "other", "external"]
_MAGIC = frozenset("*?[")


class FoundPath(NamedTuple):
    """One non-folder entry that a pattern matched.

    Attributes:
        path: the path as glob would give it (relative to ``root_dir`` when given).
        kind: ``"file"``: a regular file, or a link to one inside the root (or outside, when
            following external links); ``"other"``: a dangling or self-referring link, a FIFO,
            a device, a socket; ``"external"``: a link whose target is outside the root (not
            followed, not opened).
    """

    path: str
    kind: Kind


def find_paths(
    pattern: str, *, root_dir: str = "", follow_external_links: bool = False
) -> list[FoundPath]:
    """Find the non-folder entries that ``pattern`` matches, following links safely.

    Args:
        pattern: a glob pattern (``/``-separated; ``**`` as a whole component matches any
            number of folders), relative to ``root_dir`` or absolute.
        root_dir: the folder relative patterns start from, and the root that links must stay
            in; without one, the root is the pattern's leading folder (the part before its first
            wildcard).
        follow_external_links: follow links whose target lies outside the root.

    Returns:
        The matches in no particular order (sort them with
        :func:`~shardstream.read.directory.natural_path_order`).

    Raises:
        BadSourceError: a folder on the way cannot be listed (no permission, an I/O error).
    """
    parts = [part for part in pattern.split(os.sep) if part not in ("", ".")]
    if pattern.startswith(os.sep):
        parts[:0] = [os.sep]
    if not parts:
        return []
    collapsed: list[str] = []
    for part in parts:
        if not (part == "**" and collapsed and collapsed[-1] == "**"):
            collapsed.append(part)
    literal = 0
    while literal < len(collapsed) - 1 and not _has_magic(collapsed[literal]):
        literal += 1
    base = os.path.join(*collapsed[:literal]) if literal else ""
    start = os.path.join(root_dir, base) if root_dir else base
    root = os.path.realpath(root_dir or start or os.curdir)
    try:
        info = os.stat(start or os.curdir)
    except OSError:
        return []
    if not stat.S_ISDIR(info.st_mode):
        return []
    real = os.path.realpath(start or os.curdir)
    walk = _Walk(root, follow_external_links, collapsed[literal:])
    walk.run(base, start or os.curdir, real, _folders_on_the_way(root, real, info))
    return walk.found


def _folders_on_the_way(root: str, real: str, info: os.stat_result) -> frozenset:
    """The ids of the start folder and of its parents up to the root: a link back to any of
    them is a loop."""
    idents = {_ident(info)}
    inside = root if root.endswith(os.sep) else root + os.sep
    while real.startswith(inside) and real != os.path.dirname(real):
        real = os.path.dirname(real)
        try:
            idents.add(_ident(os.stat(real)))
        except OSError:
            break
    return frozenset(idents)


def _has_magic(part: str) -> bool:
    return not _MAGIC.isdisjoint(part)


def _ident(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


class _Walk:
    """One search: an explicit stack (no recursion limit on deep trees)."""

    def __init__(self, root: str, follow_external: bool, parts: list[str]) -> None:
        self.root = root
        self.root_prefix = root if root.endswith(os.sep) else root + os.sep
        self.follow_external = follow_external
        self.parts = parts
        self.found: list[FoundPath] = []

    def run(self, rel: str, full: str, real: str, branch: frozenset) -> None:
        # a state: (relative path, path to open, real path, part index, folder ids on the way)
        stack = [(rel, full, real, 0, branch)]
        parts, last = self.parts, len(self.parts) - 1
        while stack:
            rel, full, real, index, branch = stack.pop()
            part = parts[index]
            entries: list[os.DirEntry | str]
            if part == "**":
                if index < last:
                    stack.append((rel, full, real, index + 1, branch))
                entries = [e for e in self._list(full) if not e.name.startswith(".")]
            elif _has_magic(part):
                hidden_ok = part.startswith(".")
                entries = [
                    e
                    for e in self._list(full)
                    if fnmatchcase(e.name, part) and (hidden_ok or not e.name.startswith("."))
                ]
            else:
                entries = [part] if os.path.lexists(os.path.join(full, part)) else []
            for entry in entries:
                name = entry if isinstance(entry, str) else entry.name
                child_rel = os.path.join(rel, name) if rel else name
                child_full = os.path.join(full, name)
                found = self._classify(
                    child_full, os.path.join(real, name), None if isinstance(entry, str) else entry
                )
                child_real = found[1]
                if found[0] == "dir":
                    ident = _ident(found[2])
                    if ident in branch:
                        continue  # a loop: this folder is already on the path to it
                    deeper = index if part == "**" else index + 1
                    if deeper <= last:
                        state = (child_rel, child_full, child_real, deeper, branch | {ident})
                        stack.append(state)
                elif index == last or (found[0] == "external" and os.path.isdir(child_full)):
                    # an external link is reported where its target would have been matched
                    # or searched (a folder); stat only, its target is never opened
                    self.found.append(FoundPath(child_rel, found[0]))

    def _list(self, folder: str) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as entries:
                return sorted(entries, key=lambda e: e.name)
        except OSError as e:
            raise BadSourceError(folder, f"cannot list the folder: {e.strerror or e}") from None

    def _classify(
        self, full: str, real: str, entry: os.DirEntry | None
    ) -> tuple[Literal["dir"], str, os.stat_result] | tuple[Kind, str, os.stat_result | None]:
        """(kind, real path, stat) of an entry; kind "dir", "file", "other" or "external".

        ``real`` is the entry's real path if it is not a link (its folder's real path joined
        with its name); links are resolved. Plain files cost no system call (the folder
        listing's file types say enough); folders and links cost one or two.
        """
        try:
            if entry is not None and not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False):
                    return "dir", real, entry.stat(follow_symlinks=False)
                return ("file" if entry.is_file(follow_symlinks=False) else "other"), real, None
            link = os.lstat(full)
        except OSError:
            return "other", real, None
        if stat.S_ISLNK(link.st_mode):
            real = os.path.realpath(full)
            if not self.follow_external and not self._inside(real):
                return "external", real, None
            try:
                info = os.stat(full)
            except OSError:  # dangling, or a link to itself (ELOOP)
                return "other", real, None
        else:
            info = link
        if stat.S_ISDIR(info.st_mode):
            return "dir", real, info
        return ("file" if stat.S_ISREG(info.st_mode) else "other"), real, info

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root_prefix)
