"""Honest fast paths: refuse a device that is not here, say when a slower path runs, list them.

- :func:`check_device` is called when a loader or preset is built for a device, so that
  ``device="cuda"`` on a machine without CUDA fails there, with a typed error, and not at the first
  batch (in the middle of a worker pipeline).
- :func:`warn_slow_path` issues a :class:`SlowPathWarning` the first time a
  missing C extension makes a slower path run (once per process and extension).
- :func:`fast_paths` lists what is active here, for ``shardstream info --system``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

from .errors import ConfigError, DeviceUnavailableError

__all__ = ["EXTENSIONS", "SlowPathWarning", "check_device", "fast_paths", "warn_slow_path"]


class SlowPathWarning(RuntimeWarning):
    """A warning, not an error: a C extension of shardstream (``_resample``, ``_masking``,
    ``_jpegregion``) is not built, so a slower path with the same results runs. Issued once per
    process and extension; silence it with ``warnings.simplefilter("ignore", SlowPathWarning)``."""


EXTENSIONS: dict[str, str] = {
    "_resample": "crops are resized with torch or Pillow instead of the exact SIMD resize",
    "_masking": "iBOT masks are drawn in Python instead of C",
    "_jpegregion": "whole JPEGs are decoded instead of only the region the crops read",
}
"""The optional C extensions of :mod:`shardstream.vision`, with what runs instead without them."""

_WARNED: set[str] = set()


def warn_slow_path(extension: str) -> None:
    """Warn, once per process, that ``extension`` is missing and a slower path runs.

    Args:
        extension: one of :data:`EXTENSIONS` (e.g. ``"_resample"``).
    """
    if extension in _WARNED:
        return
    _WARNED.add(extension)
    warnings.warn(
        f"shardstream.vision.{extension} is not built, so {EXTENSIONS[extension]} (same results, "
        "slower). Build the extensions with 'pip install -e .' or 'python setup.py build_ext "
        "--inplace' where a C compiler is installed; 'shardstream info --system' lists them.",
        SlowPathWarning,
        stacklevel=3,
    )


def check_device(device: Any, what: str) -> None:
    """Refuse a torch device this machine cannot use, before any batch is made.

    ``None`` and CPU devices always pass. For ``"cuda"`` / ``"cuda:N"`` torch must see a CUDA GPU
    (and at least ``N + 1`` of them); for ``"mps"`` the MPS backend must be available.

    Args:
        device: a torch device, a device string, or ``None``.
        what: who asked for it, for the message (e.g. ``"Loader.preset"``).

    Raises:
        ConfigError: ``device`` is not a device torch knows.
        DeviceUnavailableError: the device is not available on this machine.
    """
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {device!r} is not a torch device ({e})") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda
            raise DeviceUnavailableError(
                f"{what}: device {str(parsed)!r} was asked for, but torch {torch.__version__} "
                + (
                    f"(built with CUDA {built}) sees no CUDA GPU here"
                    if built
                    else "was built without CUDA"
                )
                + "; use device='cpu' (or None) on this machine"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise DeviceUnavailableError(
                f"{what}: device {str(parsed)!r} was asked for, but this machine has "
                f"{count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})"
            )
    elif parsed.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise DeviceUnavailableError(
                f"{what}: device 'mps' was asked for, but the MPS backend is not available here"
            )


def fast_paths() -> list[tuple[str, str]]:
    """What runs fast here and what does not, as ``(name, state)`` lines.

    Lists the C extensions (and the resize kernel chosen for this CPU), simplejpeg
    (libjpeg-turbo), OpenCV, torch and CUDA, and the CPUs this process may use. Never raises:
    a package that is missing or fails to import is reported as such.
    """
    lines: list[tuple[str, str]] = []
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(f"shardstream.vision.{name}")
        except ImportError as e:
            lines.append((name, f"not built: {EXTENSIONS[name]} ({e})"))
            continue
        state = "built"
        if name == "_resample":
            kernels = list(module.kernels())
            state += f", kernel {kernels[-1]} (this CPU runs: {', '.join(kernels)})"
        lines.append((name, state))
    lines.append(("simplejpeg", _version("simplejpeg", "libjpeg-turbo decode with DCT scaling")))
    lines.append(("opencv", _version("cv2", "SIMD uint8 colour ops in the workers")))
    lines.append(("torch", _version("torch", "")))
    lines.append(("cuda", _cuda()))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    lines.append(("cpus", f"{os.cpu_count()} ({usable} usable by this process)"))
    return lines


def _version(module_name: str, role: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an installed package can fail to import (a broken wheel)
        return f"not available ({type(e).__name__}: {e})"
    version = getattr(module, "__version__", "?")
    return f"{version}" + (f": {role}" if role else "")


def _cuda() -> str:
    try:
        import torch
    except Exception:
        return "not available (no torch)"
    if not torch.cuda.is_available():
        built = torch.version.cuda
        return f"not available (torch built with CUDA {built})" if built else "not available"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"CUDA {torch.version.cuda}: " + ", ".join(names)
