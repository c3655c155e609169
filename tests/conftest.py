"""Fixtures shared by every test package: small real datasets built in tmp_path."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import settings

from shardstream import FileWriter

# CI (CI=true) replays the same examples every run, so a submission's result does not depend on
# what a property test happens to draw; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The CLI runs, scripts and spawned ranks the tests start import shardstream afresh. Where the
# environment sets PYTHONDONTWRITEBYTECODE, each of them recompiles the package (~0.2 s of CPU,
# hundreds of times a run), so they cache bytecode instead, outside the checkout.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault(
        "PYTHONPYCACHEPREFIX",
        os.path.join(tempfile.gettempdir(), f"shardstream-tests-pycache-{os.getuid()}"),
    )


def varied_samples(n: int = 40) -> list[dict]:
    """Samples exercising every value kind the codec supports (arrays of several dtypes, nested
    containers, unicode keys, binary bytes, numpy scalars, complex numbers)."""
    rng = np.random.default_rng(1234)
    samples = []
    for i in range(n):
        samples.append(
            {
                "key": f"sämple-{i:04d}/ключ",
                "image": rng.integers(
                    0, 256, size=int(rng.integers(0, 300)), dtype=np.uint8
                ).tobytes(),
                "label": i % 7,
                "u8": rng.integers(0, 255, size=(3, 4), dtype=np.uint8),
                "f32": rng.standard_normal(5).astype(np.float32),
                "f64be": np.arange(i % 5, dtype=">f8"),
                "i64": np.array([[i, -i]], dtype=np.int64),
                "bool": np.array([True, False]),
                "scalar": np.float16(i / 3),
                "z": complex(i, -i),
                "nested": {"list": [1, 2.5, None, "x", [b"y"]], "d": {"deep": i}},
                "text": "naïve ☃" * (i % 3),
            }
        )
    return samples


def write_samples(path, samples, **kwargs) -> None:
    """Write ``samples`` with shardstream's FileWriter (quiet, overwriting)."""
    kwargs.setdefault("overwrite", True)
    kwargs.setdefault("disable", True)
    with FileWriter(path, **kwargs) as writer:
        for sample in samples:
            writer.write(sample)


@pytest.fixture
def samples() -> list[dict]:
    """40 varied samples."""
    return varied_samples()


@pytest.fixture
def dataset(tmp_path, samples):
    """Path of a dataset holding :func:`varied_samples` written by shardstream."""
    path = tmp_path / "varied.msgpack"
    write_samples(path, samples)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small per-image tensors run fastest on one thread (and the test machine is shared)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
