"""Helpers for the converter tests: small archives with the real layouts, and a real HTTP server.

The archives follow the official files member for member (names, record formats, nesting); only the
number of records or images is small. :class:`FixtureServer` is ``http.server`` on 127.0.0.1 at a
random port, serving a directory under several URL prefixes that behave differently:

- ``/files/<name>``: the file, with ``Content-Length``;
- ``/truncated/<name>``: announces the full length, sends half, and closes the connection;
- ``/login/<name>``: ``200 OK`` with an HTML login page instead of the file (what image-net.org does);
- ``/slow/<name>``: waits ``slow_seconds`` before answering;
- ``/flaky/<name>``: honours ``Range: bytes=N-`` (``206``); a request without one sends half the
  file and drops the connection the first time (``drops`` times in all), then the whole file;
- ``/norange/<name>``: like ``/flaky/`` but ignores ``Range`` (always ``200`` and the whole file);
- anything else: ``404``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR100_FINE_NAMES = tuple(f"fine_{i:02d}" for i in range(100))
CIFAR100_COARSE_NAMES = tuple(f"coarse_{i:02d}" for i in range(20))


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_300_000_000
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


@dataclass
class CifarRecords:
    """The records of one member: labels (coarse, fine or just one) and pixel planes."""

    labels: np.ndarray  # (n, label_bytes) uint8
    planes: np.ndarray  # (n, 3, 32, 32) uint8

    def to_bytes(self) -> bytes:
        n = len(self.labels)
        return np.concatenate([self.labels, self.planes.reshape(n, -1)], axis=1).tobytes()


def cifar_records(
    n: int, *, label_bytes: int, seed: int, num_labels: Sequence[int]
) -> CifarRecords:
    """``n`` records with random labels (``< num_labels[j]`` for label byte ``j``) and pixels.

    The first record of each member gets a fixed pattern: red = x * 8, green = y * 8, blue =
    255 - record number, so plane order and row-major order are checked exactly.
    """
    rng = np.random.default_rng(seed)
    labels = np.stack(
        [rng.integers(0, num_labels[j], size=n, dtype=np.uint8) for j in range(label_bytes)], 1
    )
    planes = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    ramp = (np.arange(32, dtype=np.uint8) * 8)[None, :]
    planes[0, 0] = np.broadcast_to(ramp, (32, 32))
    planes[0, 1] = np.broadcast_to(ramp.T, (32, 32))
    planes[0, 2] = 255
    return CifarRecords(labels=labels, planes=planes)


def build_cifar10(path: Path, *, per_batch: int = 25) -> dict[str, CifarRecords]:
    """``cifar-10-binary.tar.gz`` layout: five train batches and a test batch of ``per_batch``."""
    members: dict[str, CifarRecords] = {}
    with tarfile.open(path, "w:gz") as tar:
        add_dir(tar, "cifar-10-batches-bin")
        # the real archive does not store the batches in name order; neither does this one
        order = ["data_batch_1", "batches.meta", "data_batch_3", "data_batch_2", "test_batch"]
        order += ["data_batch_5", "readme", "data_batch_4"]
        for seed, stem in enumerate(order):
            name = f"cifar-10-batches-bin/{stem}"
            if stem == "batches.meta":
                add_bytes(tar, name + ".txt", ("\n".join(CIFAR10_NAMES) + "\n\n").encode())
            elif stem == "readme":
                add_bytes(tar, name + ".html", b"<html>CIFAR-10</html>")
            else:
                records = cifar_records(per_batch, label_bytes=1, seed=seed, num_labels=[10])
                members[name + ".bin"] = records
                add_bytes(tar, name + ".bin", records.to_bytes())
    return members


def build_cifar100(path: Path, *, train: int = 30, test: int = 20) -> dict[str, CifarRecords]:
    """``cifar-100-binary.tar.gz`` layout: ``train.bin``, ``test.bin`` and the two name files."""
    members = {
        "cifar-100-binary/train.bin": cifar_records(
            train, label_bytes=2, seed=100, num_labels=[20, 100]
        ),
        "cifar-100-binary/test.bin": cifar_records(
            test, label_bytes=2, seed=101, num_labels=[20, 100]
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        add_dir(tar, "cifar-100-binary")
        add_bytes(
            tar,
            "cifar-100-binary/coarse_label_names.txt",
            ("\n".join(CIFAR100_COARSE_NAMES) + "\n").encode(),
        )
        add_bytes(
            tar,
            "cifar-100-binary/fine_label_names.txt",
            ("\n".join(CIFAR100_FINE_NAMES) + "\n").encode(),
        )
        for name, records in members.items():
            add_bytes(tar, name, records.to_bytes())
    return members


class FixtureServer:
    """A real HTTP server on 127.0.0.1 serving the files of ``root`` (see the module docstring)."""

    def __init__(self, root: Path, *, slow_seconds: float = 1.0):
        self.root = Path(root)
        self.slow_seconds = slow_seconds
        self.requests: list[str] = []
        self.ranges: list[str | None] = []  # the Range header of each request
        self.sent = 0  # body bytes written, all requests together
        self.drops = 1
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                server.ranges.append(self.headers.get("Range"))
                prefix, _, name = self.path.lstrip("/").partition("/")
                path = server.root / name
                if "/" in name or not name or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                if prefix == "slow":
                    time.sleep(server.slow_seconds)
                if prefix == "login":
                    body = b"<html><body>Please log in to download this file.</body></html>"
                    self._send(body, len(body))
                elif prefix == "truncated":
                    self._send(data[: len(data) // 2], len(data))
                    self.close_connection = True
                elif prefix in ("files", "slow"):
                    self._send(data, len(data))
                elif prefix in ("flaky", "norange"):
                    self._flaky(data, honour_range=prefix == "flaky")
                else:
                    self.send_error(404, "Not Found")

            def _flaky(self, data: bytes, *, honour_range: bool) -> None:
                wanted = self.headers.get("Range", "")
                if honour_range and wanted.startswith("bytes="):
                    start = int(wanted[len("bytes=") :].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:])
                    server.sent += len(data) - start
                elif server.drops > 0:
                    server.drops -= 1
                    self._send(data[: len(data) // 2], len(data))
                    self.close_connection = True
                else:
                    self._send(data, len(data))

            def _send(self, body: bytes, length: int) -> None:
                server.sent += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, prefix: str = "files") -> str:
        """The base URL of a prefix (a mirror URL for ``--mirror``)."""
        return f"http://127.0.0.1:{self.port}/{prefix}"

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def serving(root: Path, **kwargs: float) -> Iterator[FixtureServer]:
    server = FixtureServer(root, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def listing(directory: Path) -> list[str]:
    """Every entry of ``directory`` (hidden temp files included), sorted."""
    return sorted(os.listdir(directory))


# --- ImageNet ------------------------------------------------------------------------------------

#: Class tars in the order the fixture train archive stores them (not sorted, on purpose).
IMAGENET_TAR_ORDER = ("n01484850", "n01440764", "n01443537")
#: The sorted class list: label i is IMAGENET_CLASSES[i].
IMAGENET_CLASSES = tuple(sorted(IMAGENET_TAR_ORDER))
#: Validation image i + 1 belongs to this class.
IMAGENET_VAL_WNIDS = ("n01443537", "n01440764", "n01484850", "n01440764")
#: ILSVRC2012_IDs the fixture devkit gives the classes (its own order, not the sorted one).
IMAGENET_DEVKIT_IDS = {"n01484850": 1, "n01440764": 2, "n01443537": 3}


def jpeg(index: int) -> bytes:
    from shardstream.sets.demo import render_demo_image

    return render_demo_image(index, num_classes=3, quality=60)


def tar_bytes(members: Sequence[tuple[str, bytes]], *, dirs: Sequence[str] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in dirs:
            add_dir(tar, name)
        for name, data in members:
            add_bytes(tar, name, data)
    return buffer.getvalue()


def build_imagenet_train(path: Path) -> dict[str, bytes]:
    """``ILSVRC2012_img_train.tar``: per-class tars of two JPEGs each; returns JPEG by key.

    The last class's second image has a 130-character name, which tar stores in an extended
    (PAX) header: the data offsets must account for it.
    """
    images: dict[str, bytes] = {}
    class_tars = []
    index = 0
    for wnid in IMAGENET_TAR_ORDER:
        members = []
        for number in (10026, 9):
            name = f"{wnid}_{number}.JPEG"
            if wnid == IMAGENET_TAR_ORDER[-1] and number == 9:
                name = f"{wnid}_{'9' * 120}.JPEG"
            members.append((name, jpeg(index)))
            images[f"train/{wnid}/{name}"] = members[-1][1]
            index += 1
        class_tars.append((f"{wnid}.tar", tar_bytes(members)))
    path.write_bytes(tar_bytes(class_tars))
    return images


def build_imagenet_val(path: Path, count: int = 4) -> dict[str, bytes]:
    """``ILSVRC2012_img_val.tar``: flat JPEGs; returns JPEG by key."""
    members = [(f"ILSVRC2012_val_{i:08d}.JPEG", jpeg(10 + i)) for i in range(1, count + 1)]
    path.write_bytes(tar_bytes(members))
    return {f"val/{name}": data for name, data in members}


def build_imagenet_devkit(path: Path, wnids: Sequence[str] = IMAGENET_VAL_WNIDS) -> None:
    """``ILSVRC2012_devkit_t12.tar.gz`` with the ground truth and ``meta.mat`` (needs scipy)."""
    import scipy.io

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children"]
    fields += ["wordnet_height", "num_train_images"]
    rows = [(number, wnid, 0) for wnid, number in IMAGENET_DEVKIT_IDS.items()]
    rows.append((1001, "n09999999", 3))  # a non-leaf synset, as the real file has 860
    synsets = np.empty((len(rows), 1), dtype=[(name, "O") for name in fields])
    for row, (number, wnid, children) in enumerate(rows):
        synsets[row, 0] = (
            np.array([[number]], dtype=np.uint16),
            wnid,
            f"words of {wnid}",
            "a gloss",
            children,
            np.zeros((1, 0)),
            0,
            1300,
        )
    meta = io.BytesIO()
    scipy.io.savemat(meta, {"synsets": synsets})
    truth = "".join(f"{IMAGENET_DEVKIT_IDS[wnid]}\n" for wnid in wnids)
    with tarfile.open(path, "w:gz") as tar:
        add_dir(tar, "ILSVRC2012_devkit_t12")
        add_dir(tar, "ILSVRC2012_devkit_t12/data")
        add_bytes(tar, "ILSVRC2012_devkit_t12/COPYING", b"license")
        add_bytes(tar, "ILSVRC2012_devkit_t12/data/meta.mat", meta.getvalue())
        add_bytes(
            tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode()
        )
