"""Test harness: datadings 3.4.7's own set writer as the oracle for ``shardstream write NAME``.

:func:`compare_with_datadings` runs, each in a real subprocess on the same miniature source
directory, datadings' writer (``python -m datadings.sets.<NAME>_write INDIR -o OUT -y -s
--shuffle no``) and shardstream's (``python -m shardstream write NAME INDIR -o OUT -y -s
--shuffle no``), then compares every output file sample by sample: the same samples in the same
order, the same keys in the same order, every value equal and of the same type (numpy arrays by
dtype, shape and bytes), and finally the files byte for byte.

Some of datadings' writers fail on today's libraries. The smallest patch that restores the old
behaviour is applied inside datadings' process only, named per call (``patches``), from
:data:`PATCHES`:

- ``antialias``: Pillow 10 removed ``Image.ANTIALIAS``; it was an alias of ``Image.LANCZOS``.
- ``png_mode_i``: Pillow 10 stopped saving mode ``I`` (32-bit) images as PNG; Pillow 9 wrote
  them as 16-bit grey PNGs (its PNG mode table mapped ``I`` to ``I;16B``), restored here.
- ``findcontours3``: OpenCV 4 changed ``cv2.findContours`` to return ``(contours, hierarchy)``;
  datadings unpacks OpenCV 3's ``(image, contours, hierarchy)``, restored by a wrapper.
- ``gdal``: ``datadings.tools.tiff_to_nd_array`` needs GDAL (``osgeo``), not installed; it is
  replaced by the same band reading with tifffile ((bands, H, W), cast to the asked dtype).

``seed`` runs ``random.seed(seed)`` in datadings' process before its writer starts, and passes
``--shuffle yes --seed SEED`` to shardstream: their shuffled orders must then be equal too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from msgpack_numpy import decode

__all__ = [
    "PATCHES",
    "assert_same_sample",
    "compare_with_datadings",
    "printed_by_datadings",
    "printed_by_shardstream",
    "read_samples",
]

PATCHES = {
    "antialias": "import PIL.Image as I; I.ANTIALIAS = I.LANCZOS",
    "png_mode_i": (
        "from PIL import PngImagePlugin as P; P._OUTMODES['I'] = ('I;16B', b'\\x10', b'\\x00')"
    ),
    "findcontours3": (
        "import cv2; _find = cv2.findContours\n"
        "cv2.findContours = lambda *a, **k: (None, *_find(*a, **k))"
    ),
    "gdal": (
        "import numpy as np, tifffile, datadings.tools as T\n"
        "def _bands(path, type=np.uint8):\n"
        "    a = tifffile.imread(path)\n"
        "    return (a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)).astype(type)\n"
        "T.tiff_to_nd_array = _bands"
    ),
}

_RUN_DATADINGS = """
import random, runpy, sys
{patches}
{seed}
sys.argv = [{module!r}, *{argv!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""

_TIMEOUT = 120


def run_datadings(
    name: str,
    indir: Path,
    outdir: Path,
    args: Sequence[str] = (),
    *,
    seed: int | None = None,
    patches: Sequence[str] = (),
) -> None:
    """Run datadings' writer for set ``name`` (e.g. ``"VOC2012"``) in a subprocess."""
    module = f"datadings.sets.{name}_write"
    options = _options(name)
    argv = [str(indir), "-o", str(outdir)]
    argv += ["-y"] * ("y" in options) + ["-s"] * ("s" in options)
    if "shuffle" in options:
        argv += ["--shuffle", "yes" if seed is not None else "no"]
    elif name in _ALWAYS_SHUFFLED and seed is None:
        raise ValueError(f"datadings always shuffles {name}: compare with a seed")
    code = _RUN_DATADINGS.format(
        patches="\n".join(PATCHES[patch] for patch in patches),
        seed="" if seed is None else f"random.seed({seed})",
        module=module,
        argv=[*argv, *args],
    )
    _run([sys.executable, "-c", code], "datadings")


def run_shardstream(
    name: str, indir: Path, outdir: Path, args: Sequence[str] = (), *, seed: int | None = None
) -> None:
    """Run ``shardstream write NAME`` in a subprocess with datadings' arguments."""
    options = _options(name)
    argv = [str(indir), "-o", str(outdir), "-y", "--quiet"] + ["-s"] * ("s" in options)
    if "shuffle" in options or name in _ALWAYS_SHUFFLED:
        argv += ["--shuffle", "no"] if seed is None else ["--shuffle", "yes", "--seed", str(seed)]
    _run([sys.executable, "-m", "shardstream", "write", name, *argv, *args], "shardstream")


def compare_with_datadings(
    name: str,
    indir: Path,
    tmp_path: Path,
    files: Sequence[str],
    args: Sequence[str] = (),
    *,
    seed: int | None = None,
    patches: Sequence[str] = (),
    ours: Sequence[str] = (),
) -> dict[str, list[dict]]:
    """Write set ``name`` from ``indir`` with both writers; assert equal output files.

    Args:
        name: datadings' set name.
        indir: the miniature source directory.
        tmp_path: where the two output directories are made.
        files: the output file names both must write (``"train.msgpack"``, ...).
        args: further arguments for both writers (the set's own options).
        seed: shuffle with this seed in both (see the module docstring); ``None``: no shuffle.
        patches: names from :data:`PATCHES` applied in datadings' process.
        ours: arguments for shardstream only (``--workers 2``, ...).

    Returns:
        The samples of each file (as datadings wrote them), for further assertions.
    """
    expected_dir = tmp_path / f"datadings-{seed}"
    actual_dir = tmp_path / f"shardstream-{seed}"
    run_datadings(name, indir, expected_dir, args, seed=seed, patches=patches)
    run_shardstream(name, indir, actual_dir, [*args, *ours], seed=seed)
    written = {}
    for file in files:
        expected = read_samples(expected_dir / file)
        actual = read_samples(actual_dir / file)
        assert [s["key"] for s in actual] == [s["key"] for s in expected], file
        for want, got in zip(expected, actual, strict=True):
            assert_same_sample(want, got, f"{file}:{want['key']}")
        # same values packed by the same msgpack configuration: the same bytes
        assert (actual_dir / file).read_bytes() == (expected_dir / file).read_bytes(), file
        written[file] = expected
    made = {p.name for p in expected_dir.glob("*.msgpack")}
    assert made == set(files), f"datadings wrote {sorted(made)}"
    return written


def read_samples(path: Path) -> list[dict]:
    """Every sample of a datadings file, decoded as datadings decodes it."""
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, strict_map_key=False, object_hook=decode)
        return list(unpacker)


def assert_same_sample(want: Any, got: Any, where: str) -> None:
    """Assert two decoded values are equal in type and value, recursively, dict order included."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{where}: {type(got).__name__}, not an array"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
        assert got.tobytes() == want.tobytes(), f"{where}: array values differ"
        return
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_same_sample(want[k], got[k], f"{where}.{k}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            assert_same_sample(w, g, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def _options(name: str) -> set[str]:
    """Which of ``-y``, ``-s`` and ``--shuffle`` datadings' writer for ``name`` has."""
    return _OPTIONS.get(name, {"y", "s", "shuffle"})


_OPTIONS = {
    **dict.fromkeys(["RIT18", "Places365", "Coutrot1", "ImageNet21k", "ILSVRC2012"], {"y", "s"}),
    **dict.fromkeys(["InriaBuildings", "Vaihingen"], {"y"}),
    "ANP460": set(),  # only INDIR and -o
}
_ALWAYS_SHUFFLED = {"ANP460"}


def _run(command: list[str], who: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=_TIMEOUT, env=env, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, f"{who} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


def printed_by_datadings(
    name: str, indir: Path, outdir: Path, args: Sequence[str], *, patches: Sequence[str] = ()
) -> str:
    """What datadings' writer for ``name`` prints on stdout (its progress bars go to stderr)."""
    argv = [str(indir), "-o", str(outdir), *args]
    code = _RUN_DATADINGS.format(
        patches="\n".join(PATCHES[patch] for patch in patches),
        seed="",
        module=f"datadings.sets.{name}_write",
        argv=argv,
    )
    return _run([sys.executable, "-c", code], "datadings").stdout


def printed_by_shardstream(name: str, indir: Path, outdir: Path, args: Sequence[str]) -> str:
    """What ``shardstream write NAME`` prints on stdout with the same arguments."""
    argv = [str(indir), "-o", str(outdir), "--quiet", *args]
    return _run([sys.executable, "-m", "shardstream", "write", name, *argv], "shardstream").stdout
