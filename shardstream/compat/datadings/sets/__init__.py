"""datadings' ``sets``: the sample types, ``sets.tools`` and one module pair per data set.

For each datadings-compatible set of :mod:`shardstream.sets` (a module with ``DATADINGS = True``,
found when first asked for, so sets added later appear by themselves) two modules exist here:

- ``sets.<NAME>`` (e.g. ``sets.VOC2012``): the set's engine module (its metadata: classes,
  colour maps, ...), attribute for attribute;
- ``sets.<NAME>_write``: the same, plus ``main(argv=None)``, which runs
  ``shardstream write <NAME> *argv`` (argv defaults to ``sys.argv[1:]``, as datadings' ``main()``
  reads it) and returns its exit code.

The sample types of :mod:`shardstream.sets.types` are attributes of this package, as
datadings' ``from .types import *`` makes them. The reader modules that are no writers are
mirrored by name: ``sets.YFCC100m`` (:mod:`shardstream.sets.yfcc100m`) and
``sets.YFCC100m_counts`` (:mod:`shardstream.sets.yfcc100m_counts`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from ....cli import main as cli_main
from ....sets._datadings import is_datadings_set
from ....sets.discover import converter_modules

__all__ = ["find_sets"]

_WRITE = "_write"
#: datadings' set modules that are readers, not writers: mirrored by name, without ``main``
READERS = {
    "YFCC100m": "shardstream.sets.yfcc100m",
    "YFCC100m_counts": "shardstream.sets.yfcc100m_counts",
}


def find_sets() -> dict[str, types.ModuleType]:
    """The datadings-compatible set modules of :mod:`shardstream.sets`, by datadings' ``NAME``."""
    return {name: m for name, m in converter_modules().items() if is_datadings_set(m)}


def _write_main(name: str) -> Any:
    def main(argv: Sequence[str] | None = None) -> int:
        """Run ``shardstream write NAME *argv`` (``argv`` defaults to ``sys.argv[1:]``)."""

        return cli_main(["write", name, *(sys.argv[1:] if argv is None else argv)])

    main.__qualname__ = "main"
    return main


class _SetModule(types.ModuleType):
    """A mirror module whose attributes fall back to the set's engine module."""

    _engine: types.ModuleType

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._engine)))


class _SetLoader(importlib.abc.Loader):
    def __init__(self, engine: types.ModuleType, write: bool, runs_main: bool = False) -> None:
        self.engine = engine
        self.write = write
        self.runs_main = runs_main  # a reader module whose ``python -m`` runs its ``main()``

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _SetModule(spec.name, self.engine.__doc__)
        module._engine = self.engine
        if self.write:
            module.main = _write_main(self.engine.NAME)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass

    def is_package(self, fullname: str) -> bool:
        return False

    def get_code(self, fullname: str) -> Any:
        """Code for ``python -m <package>.<NAME>_write``: run its ``main`` and exit with its code."""
        if self.runs_main:
            return compile(f"from {self.engine.__name__} import main\nmain()\n", fullname, "exec")
        if not self.write:
            return compile("", fullname, "exec")
        source = f"import sys\nfrom {fullname} import main\nsys.exit(main())\n"
        return compile(source, fullname, "exec")


class _SetFinder(importlib.abc.MetaPathFinder):
    """Finds ``<this package>.<NAME>`` and ``<this package>.<NAME>_write``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, name = fullname.rpartition(".")
        if package != __name__:
            return None
        if name in READERS:
            engine = importlib.import_module(READERS[name])
            loader = _SetLoader(engine, False, runs_main=hasattr(engine, "main"))
            # the origin becomes sys.argv[0] under ``python -m`` (argparse's program name)
            return importlib.machinery.ModuleSpec(fullname, loader, origin=engine.__file__)
        base = name.removesuffix(_WRITE)
        engine = find_sets().get(base)
        if engine is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _SetLoader(engine, name != base))


if not any(isinstance(finder, _SetFinder) for finder in sys.meta_path):
    sys.meta_path.append(_SetFinder())


def __getattr__(name: str) -> Any:
    """Sample types (``ImageClassificationData``, ...) and set modules by name.

    Raises:
        AttributeError: no such type or set.
    """
    if name in ("types", "tools"):
        return importlib.import_module(f"{__name__}.{name}")
    try:
        set_types = importlib.import_module(f"{__name__}.types")
    except ImportError:  # shardstream.sets.types missing: no sample types to offer
        set_types = None
    if set_types is not None and name in set_types.__all__:
        return getattr(set_types, name)
    if name in READERS or name.removesuffix(_WRITE) in find_sets():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
