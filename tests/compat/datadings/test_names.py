"""Every name datadings 3.4.7 documents (seed 001) exists under the mirrored module path with
datadings' signature (parameter names, kinds and defaults).

The names are kept in ``documented_names.txt`` (extracted from the seed document, which is checked
against it when present), so the test runs where the seed is not available."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

SEED = Path("/work/shared/seeds/001_388f9aa7d57ec947.txt")
MIRROR = "shardstream.compat.datadings"
#: what sets.<NAME> and sets.<NAME>_write hold is each set's own business (tests/sets)
SET_MODULE = re.compile(r"sets\.(?!types\.|tools\.)")
#: names that need modules this branch may lack (shardstream.sets.types / .tools, on main)
NEEDS_SETS = ("sets.types.", "sets.tools.")


def documented_names() -> list[str]:
    """Dotted names (without ``datadings.``) of the functions, classes and values in the seed."""
    if not SEED.exists():
        return []
    text = SEED.read_text(encoding="utf-8")
    found = re.findall(r"^(?:class )?datadings\.([A-Za-z0-9_.]+?)(?:\(| = )", text, re.M)
    return sorted({name for name in found if not SET_MODULE.match(name)})


def resolve(package: str, dotted: str):
    """Import the longest module prefix of ``package.dotted`` and get the rest as attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join([package, *parts[:i]]))
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith(package):
                raise
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(dotted)


def shape(obj) -> list[tuple]:
    """Parameters as (name, kind, default): VAR names and callable defaults normalised, private
    ``__`` parameters (datadings' hash_string ``__struct``) left out."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    out = []
    for p in signature.parameters.values():
        if p.name.startswith("__"):
            continue
        name = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else p.name
        default = p.default
        if callable(default) and default is not p.empty:
            default = "<callable>"
        out.append((name, p.kind, default))
    return out


NAMES = Path(__file__).with_name("documented_names.txt").read_text(encoding="utf-8").split()


def test_the_name_list_is_the_seeds():
    if not SEED.exists():
        pytest.skip("seed document not available")
    assert documented_names() == NAMES


def test_the_seed_documents_the_expected_names():
    assert len(NAMES) == 137
    for name in ("tools.yield_threaded", "index.write_filter", "commands.bench.reader_msgpack"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_documented_name_exists_with_datadings_signature(name):
    if name.startswith(NEEDS_SETS):
        pytest.importorskip("shardstream." + name.rsplit(".", 1)[0])
    ours = resolve(MIRROR, name)
    assert ours is not None
    datadings = pytest.importorskip("datadings")
    theirs = resolve(datadings.__name__, name)
    if name.endswith((".main", ".entry")):
        # datadings' main() reads sys.argv; ours take an optional argv and return the code
        assert all(p.default is not p.empty for p in inspect.signature(ours).parameters.values())
        return
    assert inspect.isclass(ours) == inspect.isclass(theirs), name
    # ours may add keyword-only options with defaults (a superset stays call-compatible)
    extra = [p for p in shape(ours) if p not in shape(theirs)]
    assert all(
        kind is inspect.Parameter.KEYWORD_ONLY and default is not inspect.Parameter.empty
        for _, kind, default in extra
    ), (name, extra)
    assert [p for p in shape(ours) if p not in extra] == shape(theirs), name
