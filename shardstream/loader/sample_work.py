"""The per-sample work of a :class:`~shardstream.loader.loader.Loader`, run by the engine's workers.

For each sample: fetch its packed bytes from the reader (``copy=False``, a view into the memory
map), unpack them (stage ``read``), keep the selected fields and decode each by its decode method
(stage ``decode``), add ``"index"``, run the transform or the preset's worker step with the
sample's own random generator ``sample_rng(seed, epoch, position)`` (stage ``transform``; made
by :func:`~shardstream.loader.sample_streams.sample_generator`: the same state, quicker). For
each batch: collate (stage ``collate``) with the user's ``collate_fn`` or :func:`default_collate`
and, for pytorch/tensorflow, convert numpy leaves to tensors. Nothing here depends on which worker
or thread runs it, so batches are the same for any ``num_workers`` / ``num_threads``.

Decode methods (Deep Lake's, per field):

- ``None`` (no method given): encoded images (JPEG/PNG bytes) are decoded to ``H x W x 3``
  uint8 arrays, other values stay as unpacked (arrays, numbers, str, bytes).
- ``"numpy"``: images decoded as above; bytes become a uint8 array; other values
  ``numpy.asarray(value)``.
- ``"tobytes"``: the raw (still encoded) bytes; arrays and numbers give their ``tobytes()``.
- ``"pil"``: a loaded ``PIL.Image`` (images only).
"""

from __future__ import annotations

import inspect
import io
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..engine.collate import default_collate, to_tensorflow, to_torch
from ..engine.tasks import SKIPPED
from ..errors import CollateError, CorruptSampleError, MissingFieldError
from ..format.codec import unpackb
from ..format.fields import bin_payload, packed_fields
from ..read.checksummed import checksummed
from ..read.reader import Reader
from ..vision.decode import decode_image
from .preset import Collating, InPlace, Preset
from .sample_streams import sample_generator

__all__ = ["SampleWork", "field_kind", "wants_rng", "IMAGE", "BYTES", "ARRAY", "OBJECT"]

#: field kinds, from the first sample's values (see :func:`field_kind`)
IMAGE, BYTES, ARRAY, OBJECT = "image", "bytes", "array", "object"

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"


def field_kind(value: Any) -> str:
    """The kind of a sample value, which decides the decode methods it allows.

    Returns:
        ``"image"`` for JPEG/PNG bytes, ``"bytes"`` for other bytes, ``"object"`` for str,
        lists, tuples and dicts, ``"array"`` for everything else (arrays, numbers, None).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        head = bytes(value[:8])
        return IMAGE if head.startswith(_JPEG) or head.startswith(_PNG) else BYTES
    if isinstance(value, (str, list, tuple, dict)):
        return OBJECT
    return ARRAY


def wants_rng(fn: Callable) -> bool:
    """Whether ``fn`` has a parameter named ``rng`` (then it is called ``fn(x, rng=generator)``)."""
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False


class SampleWork:
    """The engine's :class:`~shardstream.engine.BatchWork` for one loader.

    Picklable: it holds the reader (readers pickle without their memory maps and reopen on first
    use in the worker), plain settings and the user's callables (which must be picklable when
    workers are spawned).

    Args:
        reader: the dataset.
        seed: the run's seed (per-sample streams are ``sample_rng(seed, epoch, position)``).
        fields: the fields to keep, in order (``None``: all fields of each sample).
        decode: decode method per field (missing fields: ``None``, the default method).
        kinds: the kind of each field (:func:`field_kind`), from the first sample.
        return_index: add ``"index"`` (int64 dataset index) to every sample before the transform.
        transform: a callable ``fn(sample)`` / ``fn(sample, rng=...)``, or a dict
            ``{field: fn or None}`` whose keys are the fields the output keeps.
        preset: a preset whose ``worker(sample, rng)`` replaces the transform (its fields are
            given as raw bytes). A preset with ``in_place_fields()`` (``{name: (shape,
            dtype)}`` of fixed-shape per-sample arrays) is called ``worker(sample, rng,
            out={name: array})`` in batched loaders without a ``collate_fn``: ``out`` holds the
            sample's rows of the batch arrays (in the worker's shared-memory slot when there
            is one), so those fields are never copied again by collation. The worker must fill
            every declared field: write it into its row, or return it (then it is copied there).
        collate_fn: merges a batch's samples (in the worker); ``None`` for the preset's
            ``collate(samples)`` when it has one, else :func:`default_collate`.
        convert: ``"numpy"``, ``"pytorch"`` or ``"tensorflow"``: the tensors of the default
            collation's output.
        batched: whether tasks are batches (else each sample is delivered on its own).
        ignore_errors: return ``SKIPPED`` for a sample whose read, decode or transform raises.
        verify: check each sample's packed bytes with the reader's ``check_sample`` before
            unpacking them (stage ``read``).
    """

    def __init__(
        self,
        *,
        reader: Reader,
        seed: int,
        fields: tuple[str, ...] | None = None,
        decode: Mapping[str, str | None] | None = None,
        kinds: Mapping[str, str] | None = None,
        return_index: bool = False,
        transform: Callable | Mapping[str, Callable | None] | None = None,
        preset: Preset | None = None,
        collate_fn: Callable | None = None,
        convert: str = "numpy",
        batched: bool = True,
        ignore_errors: bool = False,
        zero_copy: bool = False,
        verify: bool = False,
    ) -> None:
        self.reader = reader
        self.seed = seed
        self.fields = fields
        self.decode = dict(decode or {})
        self.kinds = dict(kinds or {})
        self.return_index = return_index
        self.transform = transform
        self.preset = preset
        self.collate_fn = collate_fn
        self.convert = convert
        self.batched = batched
        self.ignore_errors = ignore_errors
        self.verify = verify
        if isinstance(transform, Mapping):
            self._rng_fields = {
                k for k, fn in transform.items() if fn is not None and wants_rng(fn)
            }
            self._needs_rng = bool(self._rng_fields)
        else:
            self._rng_fields = set()
            self._needs_rng = preset is not None or (transform is not None and wants_rng(transform))
        self._skipped: Any = None
        self.zero_copy = zero_copy
        self._in_place: dict[str, tuple[tuple[int, ...], np.dtype]] = (
            {
                name: (tuple(shape), np.dtype(dtype))
                for name, (shape, dtype) in preset.in_place_fields().items()
            }
            if isinstance(preset, InPlace) and batched and collate_fn is None
            else {}
        )
        # fields delivered as their encoded bytes: sliced out of the packed sample, not unpacked
        self._raw_fields = (
            frozenset(name for name, method in self.decode.items() if method == "tobytes")
            if preset is None and fields is not None
            else frozenset()
        )

    # --- BatchWork --------------------------------------------------------------------------

    def open(self) -> None:
        """Load the engine's SKIPPED marker; the reader maps its file on first access."""

        self._skipped = SKIPPED

    def sample(self, task: Any, item: int, timer: Any) -> Any:
        """Load, decode and transform the sample at ``task.indices[item]``.

        Returns:
            ``(item, sample)``, or ``SKIPPED`` when it fails and ``ignore_errors`` is set.

        Raises:
            Exception: whatever reading, decoding or the transform raised (without
                ``ignore_errors``); the engine reports it with :meth:`describe`.
        """
        index = int(task.indices[item])
        try:
            with timer.stage("read"):
                raw = task.samples.get(index) if task.samples else None
                if raw is None:  # (else sent along with the task, see BatchTask.samples)
                    raw = self.reader.get(index, raw=True, copy=False)
                if self.verify:
                    try:
                        checksummed(self.reader).check_sample(index, raw)
                    except BaseException:
                        if isinstance(raw, memoryview):
                            raw.release()
                        raise
                if self._raw_fields and isinstance(raw, memoryview):
                    sample = self._unpack_lazily(raw, index)
                else:
                    try:
                        sample = unpackb(raw) if not isinstance(raw, dict) else raw
                    finally:
                        if isinstance(raw, memoryview):
                            raw.release()
            rng = None
            if self._needs_rng:
                rng = sample_generator(self.seed, int(task.epoch), int(task.positions[item]))
            if self.preset is not None:
                if rng is None:  # a preset always draws from the sample's stream
                    rng = sample_generator(self.seed, int(task.epoch), int(task.positions[item]))
                selected = self._select(sample, index)
                if "key" in sample and "key" not in selected:
                    selected["key"] = sample["key"]  # so a preset's errors can name the sample
                with timer.stage("transform"):
                    if self._in_place and isinstance(self.preset, InPlace):
                        rows = {name: a[item] for name, a in self._placement(task).items()}
                        out = self.preset.worker(selected, rng, out=rows)
                        if not self._is_skipped(out):
                            _take_placed(out, rows, index)
                    else:
                        out = self.preset.worker(selected, rng)
                if self._is_skipped(out):
                    return out  # the preset skipped it by its own policy
                if self.return_index and isinstance(out, dict) and "index" not in out:
                    out["index"] = selected["index"]  # presets need not pass it through
                return item, out
            with timer.stage("decode"):
                selected = self._select(sample, index)
                for name, value in selected.items():
                    if name != "index":
                        selected[name] = self._decode_value(name, value)
            with timer.stage("transform"):
                return item, self._transform(selected, rng)
        except Exception:
            if self.ignore_errors:
                return self._skipped if self._skipped is not None else _skipped()
            raise

    def collate(self, task: Any, samples: list[Any], timer: Any) -> Any:
        """Collate a batch's samples; see the class docstring.

        Returns:
            ``(positions, batch)``: the int64 epoch positions of the samples delivered, and the
            collated batch (``None`` when every sample was skipped); for an unbatched loader,
            ``batch`` is the list of the samples, each converted on its own.
        """
        items = [item for item, _ in samples]
        values = [value for _, value in samples]
        positions = np.asarray(task.positions, dtype=np.int64)[items]
        with timer.stage("collate"):
            if not values:
                return positions, None
            if not self.batched:
                if self.collate_fn is not None:
                    return positions, [self.collate_fn(v) for v in values]
                return positions, [self._convert(v) for v in values]
            if self.collate_fn is not None:
                return positions, self.collate_fn(values)
            if isinstance(self.preset, Collating):  # it lays its batch out for its device step
                batch = self.preset.collate(values, task.buffers)
            else:
                batch = default_collate(values, keep_views=self.zero_copy, buffers=task.buffers)
            if self._in_place:
                batch = _with_placed(batch, task.state, items)
            return positions, self._convert(batch)

    def describe(self, index: int) -> str:
        """``"sample 17 (key 'img_00017') of /path/x.msgpack"``."""
        try:
            key = self.reader.find_key(index)
        except Exception:  # the description must not fail on a broken index
            key = "?"
        where = getattr(self.reader, "path", None) or repr(self.reader)
        return f"sample {index} (key {key!r}) of {where}"

    # --- helpers ----------------------------------------------------------------------------

    def _is_skipped(self, out: Any) -> bool:
        """Whether a preset's output is the engine's SKIPPED marker."""
        return out is (self._skipped if self._skipped is not None else _skipped())

    def _placement(self, task: Any) -> dict[str, np.ndarray]:
        """The batch arrays of the preset's in-place fields for ``task``, made by its first
        sample (in the worker's slot when an arena is open; see
        :meth:`~shardstream.engine.scratch.BatchBuffers.array`)."""
        placed = task.state.get("placed")
        if placed is None:
            with _PLACEMENT_LOCK:  # the batch's samples may run on several threads
                placed = task.state.get("placed")
                if placed is None:
                    placed = {
                        name: task.buffers.array(f"placed/{name}", (len(task), *shape), dtype)
                        for name, (shape, dtype) in self._in_place.items()
                    }
                    task.state["placed"] = placed
        return placed

    def _unpack_lazily(self, raw: memoryview, index: int) -> dict:
        """The selected fields of a packed sample: ``tobytes`` fields as slices of ``raw`` (their
        bin payload, not copied), the others unpacked from their own slices."""
        try:
            packed = packed_fields(raw)
        except (ValueError, IndexError, UnicodeDecodeError) as error:
            raise CorruptSampleError(
                getattr(self.reader, "path", None),
                f"sample {index}: cannot read its fields: {error}",
            ) from error
        sample = {}
        for name in self.fields or packed:
            value = packed.get(name)
            if value is None:
                continue  # _select names the missing field
            payload = bin_payload(value) if name in self._raw_fields else None
            sample[name] = payload if payload is not None else unpackb(value)
        return sample

    def _select(self, sample: dict, index: int) -> dict:
        if self.fields is None:
            selected = dict(sample)
        else:
            try:
                selected = {name: sample[name] for name in self.fields}
            except KeyError as e:
                raise MissingFieldError(
                    f"sample {index} has no field {e.args[0]!r} (fields: {list(sample)})"
                ) from None
        if self.return_index:
            selected["index"] = np.int64(index)
        return selected

    def _decode_value(self, name: str, value: Any) -> Any:
        method = self.decode.get(name)
        kind = self.kinds.get(name) or field_kind(value)
        if method == "tobytes":
            if isinstance(value, memoryview) and self.zero_copy:
                return value  # a slice of the mapped file; the engine copies it once
            if isinstance(value, (bytes, bytearray, memoryview)):
                return bytes(value)
            return np.asarray(value).tobytes()
        if method == "pil":
            from PIL import Image

            image = Image.open(io.BytesIO(value))
            image.load()
            return image
        if kind == IMAGE and isinstance(value, (bytes, bytearray, memoryview)):
            return np.ascontiguousarray(decode_image(value))
        if method == "numpy":
            if isinstance(value, (bytes, bytearray, memoryview)):
                return np.frombuffer(value, dtype=np.uint8)
            return np.asarray(value)
        return value

    def _transform(self, sample: dict, rng: np.random.Generator | None) -> Any:
        transform = self.transform
        if transform is None:
            return sample
        if isinstance(transform, Mapping):
            out = {}
            for name, fn in transform.items():
                if name not in sample:
                    raise MissingFieldError(
                        f"transform names field {name!r} but the sample has {list(sample)}"
                    )
                value = sample[name]
                if fn is None:
                    out[name] = value
                elif name in self._rng_fields:
                    out[name] = fn(value, rng=rng)
                else:
                    out[name] = fn(value)
            return out
        if self._needs_rng:
            return transform(sample, rng=rng)
        return transform(sample)

    def _convert(self, tree: Any) -> Any:
        if self.convert == "pytorch":
            return to_torch(tree)
        if self.convert == "tensorflow":
            return to_tensorflow(tree)
        return tree


_PLACEMENT_LOCK = threading.Lock()


def _take_placed(out: Any, rows: Mapping[str, np.ndarray], index: int) -> None:
    """Remove the in-place fields from a preset's output ``out``; a value that is not the row
    it was given is copied into that row.

    Raises:
        CollateError: ``out`` is not a dict, or a value does not fit its row.
    """
    if not isinstance(out, dict):
        raise CollateError(
            f"sample {index}: a preset with in_place_fields() must return a dict, "
            f"got {type(out).__name__}"
        )
    for name, row in rows.items():
        value = out.pop(name, None)
        if value is None or value is row:
            continue
        value = np.asarray(value)
        if value.shape != row.shape:
            raise CollateError(
                f"sample {index}: field {name!r} has shape {value.shape}, but the preset's "
                f"in_place_fields() declares {row.shape}"
            )
        np.copyto(row, value, casting="same_kind")


def _with_placed(batch: Any, state: Mapping[str, Any], items: list[int]) -> dict:
    """``batch`` with the in-place fields added: their rows of the delivered ``items``, moved
    up over the rows of skipped samples.

    Raises:
        CollateError: the collated batch is not a dict.
    """
    if not isinstance(batch, dict):
        raise CollateError(
            f"a preset with in_place_fields() must collate to a dict, got {type(batch).__name__}"
        )
    placed = state["placed"]
    for name, array in placed.items():
        for row, item in enumerate(items):  # items ascend, so no row is read after it is written
            if item != row:
                array[row] = array[item]
        batch[name] = array[: len(items)]
    return batch


def _skipped() -> Any:
    return SKIPPED
