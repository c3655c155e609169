"""SampleWork (the loader's per-sample work) and the default collation, run directly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from shardstream import FileWriter, MsgpackReader
from shardstream.engine.collate import default_collate, to_torch, upcast
from shardstream.engine.tasks import SKIPPED, BatchTask, StageTimer
from shardstream.errors import CollateError, MissingFieldError
from shardstream.loader.sample_work import SampleWork, field_kind, wants_rng
from shardstream.order.samplers.seeds import sample_rng
from shardstream.vision.decode import decode_image

from ..contracts.images import encode, smooth_rgb

N = 12


def make_samples(n: int = N) -> list[dict]:
    """Samples with a JPEG, a PNG, plain bytes, a label, a float32 scalar, a uint16 array, text."""
    samples = []
    for i in range(n):
        image = smooth_rgb(16 + 2 * (i % 3), 20)
        samples.append(
            {
                "key": f"s{i:03d}",
                "image": encode(image, "JPEG", quality=90),
                "mask": encode(image.convert("L"), "PNG"),
                "blob": bytes([i]) * 5,
                "label": i % 4,
                "score": np.float32(i / 4),
                "arr": np.arange(3, dtype=np.uint16) + i,
                "text": f"t{i}",
            }
        )
    return samples


def write_dataset(path, samples) -> MsgpackReader:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    return MsgpackReader(path)


@pytest.fixture
def data(tmp_path):
    samples = make_samples()
    return write_dataset(tmp_path / "d.msgpack", samples), samples


def task(indices, positions=None, epoch=0) -> BatchTask:
    indices = np.asarray(indices, dtype=np.int64)
    positions = indices if positions is None else np.asarray(positions, dtype=np.int64)
    return BatchTask(sequence=0, epoch=epoch, indices=indices, positions=positions)


def run(work: SampleWork, t: BatchTask):
    work.open()
    timer = StageTimer()
    results = [work.sample(t, i, timer) for i in range(len(t))]
    kept = [r for r in results if r is not SKIPPED]
    positions, batch = work.collate(t, kept, timer) if kept else (None, None)
    return results, positions, batch, timer.totals()


def test_field_kinds_and_rng_detection(data):
    reader, samples = data
    kinds = {k: field_kind(v) for k, v in samples[0].items()}
    assert kinds == {
        "key": "object",
        "image": "image",
        "mask": "image",
        "blob": "bytes",
        "label": "array",
        "score": "array",
        "arr": "array",
        "text": "object",
    }
    assert wants_rng(lambda s, rng: s) and not wants_rng(lambda s: s)
    assert not wants_rng(len)


def test_default_decoding_and_index(data):
    reader, samples = data
    work = SampleWork(reader=reader, seed=3, return_index=True, fields=("image", "label", "text"))
    results, positions, batch, stages = run(work, task([4, 1]))
    assert positions.tolist() == [4, 1]
    item, first = results[0]
    assert item == 0
    assert list(first) == ["image", "label", "text", "index"]
    assert first["index"] == 4 and first["index"].dtype == np.int64
    expected = decode_image(samples[4]["image"])
    assert np.array_equal(first["image"], expected) and first["image"].shape == (18, 20, 3)
    assert first["label"] == 0 and first["text"] == "t4"
    assert batch["label"].tolist() == [0, 1] and batch["label"].dtype == np.int64
    assert batch["index"].tolist() == [4, 1]
    assert batch["text"] == ["t4", "t1"]
    assert set(stages) == {"read", "decode", "transform", "collate"}
    assert stages["read"] > 0 and stages["decode"] > 0


def test_decode_methods(data):
    reader, samples = data
    decode = {"image": "tobytes", "mask": "pil", "blob": "numpy", "arr": "tobytes", "text": "numpy"}
    work = SampleWork(reader=reader, seed=0, decode=decode)
    (_, sample), *_ = run(work, task([2]))[0]
    assert sample["image"] == samples[2]["image"] and isinstance(sample["image"], bytes)
    assert isinstance(sample["mask"], Image.Image) and sample["mask"].size == (20, 20)
    assert sample["mask"].mode == "L"
    assert sample["blob"].dtype == np.uint8 and sample["blob"].tolist() == [2] * 5
    assert sample["arr"] == (np.arange(3, dtype=np.uint16) + 2).tobytes()
    assert sample["text"].shape == () and str(sample["text"]) == "t2"
    # the default method keeps non-image values as unpacked, decodes images
    work = SampleWork(reader=reader, seed=0, decode={"image": "numpy"})
    (_, sample), *_ = run(work, task([2]))[0]
    assert sample["blob"] == samples[2]["blob"] and sample["mask"].shape == (20, 20, 3)
    assert sample["arr"].dtype == np.uint16 and sample["score"] == np.float32(0.5)


def test_transform_gets_the_position_rng_and_dict_transform_keeps_listed_fields(data):
    reader, _ = data

    def noisy(sample, rng):
        return {"label": sample["label"], "noise": rng.random()}

    work = SampleWork(reader=reader, seed=11, transform=noisy)
    t = task([3, 5], positions=[7, 2], epoch=4)
    results, positions, batch, _ = run(work, t)
    assert positions.tolist() == [7, 2]
    expected = [sample_rng(11, 4, 7).random(), sample_rng(11, 4, 2).random()]
    assert batch["noise"].tolist() == expected
    work = SampleWork(
        reader=reader,
        seed=0,
        fields=("label", "arr"),
        return_index=True,
        transform={"label": lambda x: x * 10, "index": None},
    )
    (_, sample), *_ = run(work, task([3]))[0]
    assert sample == {"label": 30, "index": 3}


def test_pytorch_conversion_upcasts(data):
    reader, _ = data
    work = SampleWork(
        reader=reader, seed=0, fields=("arr", "label", "score", "text"), convert="pytorch"
    )
    _, _, batch, _ = run(work, task([0, 1]))
    assert batch["arr"].dtype == torch.int32 and batch["arr"].tolist() == [[0, 1, 2], [1, 2, 3]]
    assert batch["label"].dtype == torch.int64 and batch["score"].dtype == torch.float32
    assert batch["text"] == ["t0", "t1"]
    assert upcast(np.zeros(2, np.uint32)).dtype == np.int64
    assert upcast(np.zeros(2, np.uint64)).dtype == np.int64
    assert upcast(np.zeros(2, ">i4")).dtype == np.dtype("<i4")
    ro = np.arange(3)
    ro.flags.writeable = False
    assert to_torch({"a": (ro, np.float32(2))})["a"][1].item() == 2.0


def test_unbatched_work_converts_each_sample(data):
    reader, _ = data
    work = SampleWork(reader=reader, seed=0, fields=("label",), batched=False, convert="pytorch")
    _, positions, batch, _ = run(work, task([1, 2]))
    assert isinstance(batch, list) and [b["label"] for b in batch] == [1, 2]
    assert positions.tolist() == [1, 2]


def test_errors_raise_or_skip(data):
    reader, _ = data

    def fail_on_two(sample):
        if sample["index"] == 2:
            raise RuntimeError("boom")
        return sample["index"]

    work = SampleWork(reader=reader, seed=0, return_index=True, transform=fail_on_two)
    work.open()
    with pytest.raises(RuntimeError, match="boom"):
        work.sample(task([2]), 0, StageTimer())
    assert work.describe(2) == f"sample 2 (key 's002') of {reader.path}"
    work = SampleWork(
        reader=reader, seed=0, return_index=True, transform=fail_on_two, ignore_errors=True
    )
    results, positions, batch, _ = run(work, task([1, 2, 3]))
    assert results[1] is SKIPPED
    assert positions.tolist() == [1, 3] and batch.tolist() == [1, 3]
    work = SampleWork(reader=reader, seed=0, fields=("nope",))
    work.open()
    with pytest.raises(MissingFieldError, match="nope"):
        work.sample(task([0]), 0, StageTimer())


def test_work_pickles_without_the_map_and_works_after(data):
    reader, _ = data
    work = SampleWork(reader=reader, seed=1, fields=("label",))
    run(work, task([0]))
    clone = pickle.loads(pickle.dumps(work))
    assert clone.reader._map is None
    _, _, batch, _ = run(clone, task([5, 6]))
    assert batch["label"].tolist() == [1, 2]


def test_default_collate_rules():
    batch = default_collate(
        [
            {"a": np.zeros((2, 3), np.uint8), "n": 1, "f": 2.5, "b": True, "s": "x", "raw": b"1"},
            {"a": np.ones((2, 3), np.uint8), "n": 2, "f": 1, "b": False, "s": "y", "raw": b"2"},
        ]
    )
    assert batch["a"].shape == (2, 2, 3) and batch["a"].dtype == np.uint8
    assert batch["n"].dtype == np.int64 and batch["n"].tolist() == [1, 2]
    assert batch["f"].dtype == np.float64 and batch["f"].tolist() == [2.5, 1.0]
    assert batch["b"].dtype == bool and batch["s"] == ["x", "y"] and batch["raw"] == [b"1", b"2"]
    pairs = default_collate([(np.float32(1), [1, None]), (np.float32(2), [3, None])])
    assert isinstance(pairs, tuple) and pairs[0].dtype == np.float32
    assert pairs[1][0].tolist() == [1, 3] and pairs[1][1] == [None, None]
    stacked = default_collate([torch.ones(2), torch.zeros(2)])
    assert stacked.tolist() == [[1, 1], [0, 0]]


def test_default_collate_names_the_field_and_shapes():
    with pytest.raises(CollateError) as info:
        default_collate([{"image": np.zeros((2, 3))}, {"image": np.zeros((4, 3))}])
    assert (
        "'image'" in str(info.value) and "(2, 3)" in str(info.value) and "(4, 3)" in str(info.value)
    )
    with pytest.raises(CollateError, match="differ in fields"):
        default_collate([{"a": 1}, {"b": 1}])
    with pytest.raises(CollateError, match=r"'pair\[1\]'"):
        default_collate([{"pair": (1, np.zeros(1))}, {"pair": (1, np.zeros(2))}])
    with pytest.raises(CollateError, match="different lengths"):
        default_collate([[1, 2], [1]])


class _RowPreset:
    """A preset that writes a per-sample array into ``out`` (or returns it, per ``mode``)."""

    fields = ("label",)

    def __init__(self, mode: str = "write", place: bool = True) -> None:
        self.mode = mode
        self.place = place

    def in_place_fields(self):
        return {"rows": ((2, 3), np.int32)} if self.place else {}

    def worker(self, sample, rng, out=None):
        label = int(sample["label"])
        if label == 2 and self.mode != "non-dict":
            return SKIPPED  # skipped by its own policy: its row stays unwritten
        value = np.full((2, 3), label * 10 + int(sample["index"]), np.int32)
        if self.mode == "non-dict":
            return value
        if self.mode == "write" and out is not None:
            out["rows"][...] = value
            return {"rows": out["rows"], "label": label}
        if self.mode == "bad-shape":
            return {"rows": value[:1], "label": label}
        return {"rows": value, "label": label}  # "return": a new array, copied into the row


@pytest.mark.parametrize("mode", ["write", "return"])
def test_in_place_fields_are_written_into_the_batch_and_closed_up_over_skips(data, mode):
    reader, samples = data
    t = task([0, 1, 2, 3, 4, 5, 6])  # labels 0 1 2 3 0 1 2: items 2 and 6 are skipped
    placed = SampleWork(reader=reader, seed=0, return_index=True, preset=_RowPreset(mode))
    results, positions, batch, _ = run(placed, t)
    assert [r is SKIPPED for r in results] == [False, False, True, False, False, False, True]
    assert all("rows" not in r[1] for r in results if r is not SKIPPED)  # taken out of samples
    kept = [0, 1, 3, 4, 5]
    assert positions.tolist() == kept
    expected = np.stack([np.full((2, 3), (i % 4) * 10 + i, np.int32) for i in kept])
    assert batch["rows"].dtype == np.int32 and np.array_equal(batch["rows"], expected)
    assert batch["rows"].base is t.state["placed"]["rows"]  # a view of the batch array
    assert batch["label"].tolist() == [i % 4 for i in kept]
    # the same preset without in_place_fields collates the very same batch
    plain = SampleWork(reader=reader, seed=0, return_index=True, preset=_RowPreset(mode, False))
    _, _, reference, _ = run(plain, task(t.indices))
    assert np.array_equal(reference["rows"], batch["rows"])
    assert reference["label"].tolist() == batch["label"].tolist()


def test_in_place_fields_only_in_batched_loaders_without_a_collate_fn(data):
    reader, _ = data
    assert SampleWork(reader=reader, seed=0, preset=_RowPreset())._in_place
    assert not SampleWork(reader=reader, seed=0, preset=_RowPreset(), batched=False)._in_place
    unbatched = SampleWork(reader=reader, seed=0, preset=_RowPreset(), collate_fn=list)
    assert not unbatched._in_place


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("bad-shape", r"sample 1: field 'rows' has shape \(1, 3\).*declares \(2, 3\)"),
        ("non-dict", "sample 1: a preset with in_place_fields.. must return a dict, got ndarray"),
    ],
)
def test_in_place_fields_that_do_not_fit_raise_collate_errors(data, mode, message):
    reader, _ = data
    work = SampleWork(reader=reader, seed=0, return_index=True, preset=_RowPreset(mode))
    work.open()
    with pytest.raises(CollateError, match=message):
        work.sample(task([1]), 0, StageTimer())


def test_in_place_fields_need_a_dict_from_the_presets_collate(data):
    reader, _ = data

    class ListCollate(_RowPreset):
        def collate(self, samples, buffers=None):
            return [sample["label"] for sample in samples]

    work = SampleWork(reader=reader, seed=0, return_index=True, preset=ListCollate())
    with pytest.raises(CollateError, match="must collate to a dict, got list"):
        run(work, task([0, 1]))


def test_samples_sent_with_the_task_are_read_instead_of_the_reader(data):
    """``BatchTask.samples`` (e.g. a remote set's first batch, fetched as byte ranges): those
    samples come from the task (here another sample's bytes, to tell), the others from the
    reader; the task keeps them through pickling (sent to a worker process)."""
    reader, samples = data
    other = bytes(reader.get(7, raw=True))
    sent = BatchTask(
        sequence=0,
        epoch=0,
        indices=np.array([4, 1], dtype=np.int64),
        positions=np.array([0, 1], dtype=np.int64),
        samples={4: other},
    )
    sent = pickle.loads(pickle.dumps(sent))
    assert sent.samples == {4: other}
    work = SampleWork(reader=reader, seed=0, fields=("text", "label"))
    _, _, batch, _ = run(work, sent)
    assert batch["text"] == ["t7", "t1"] and batch["label"].tolist() == [3, 1]
