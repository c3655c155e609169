"""The chainable Loader against Deep Lake's DeepLakeDataLoader semantics, on real packed files."""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import signal
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats as scipy_stats

from shardstream import FileWriter, MsgpackReader
from shardstream.errors import (
    ChainError,
    CollateError,
    ConfigError,
    MissingDependencyError,
    SampleError,
    StateMismatchError,
    WeightsError,
    WorkerDiedError,
)
from shardstream.format.integrity import md5_file
from shardstream.loader.loader import Loader
from shardstream.loader.plan import MEGABYTE
from shardstream.order.samplers.global_order import epoch_order
from shardstream.order.samplers.seeds import sample_rng
from shardstream.vision.decode import decode_image

from ..contracts.dist_harness import run_world
from ..contracts.images import encode, smooth_rgb

N = 40

pytestmark = pytest.mark.filterwarnings("ignore:decode_method is not set")


def make_samples(n: int = N) -> list[dict]:
    base = smooth_rgb(16, 16)
    samples = []
    for i in range(n):
        image = base.rotate(9 * i)
        samples.append(
            {
                "key": f"k{i:03d}",
                "image": encode(image, "JPEG", quality=85),
                "label": i % 5,
                "score": float(i) / 2,
                "arr": np.arange(3, dtype=np.uint16) * i,
                "text": "abc"[i % 3],
            }
        )
    return samples


def write(path, samples) -> MsgpackReader:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    return MsgpackReader(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    samples = make_samples()
    path = tmp_path_factory.mktemp("chain") / "d.msgpack"
    return write(path, samples), samples


def indices(loader) -> list[int]:
    """The dataset indices of one epoch, flattened."""
    return [int(i) for batch in loader for i in np.asarray(batch["index"]).reshape(-1)]


def add_noise(sample, rng):
    """A random transform: the label plus a draw from the sample's own generator."""
    return {"index": sample["index"], "label": sample["label"], "noise": rng.random(3)}


def double(sample, factor=2):
    return {"label": sample["label"] * factor}


def fail_on_seven(sample):
    if int(sample["index"]) == 7:
        raise RuntimeError("cannot handle seven")
    return sample


def numbered(reader):
    return reader.dataloader(seed=5).pytorch(tensors=["label"])


# --- construction and chaining ----------------------------------------------------------------


def test_every_step_returns_a_new_loader(data):
    reader, _ = data
    base = reader.dataloader(seed=1)
    batched = base.batch(4)
    assert batched is not base and base.batch_size == 1 and batched.batch_size == 4
    assert isinstance(Loader(reader.path, seed=1), Loader)
    assert len(base) == N and len(batched) == 10
    shuffled = batched.shuffle()
    assert indices(batched.pytorch()) == list(range(N))  # the unshuffled one is unchanged
    assert sorted(indices(shuffled.pytorch())) == list(range(N))


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (lambda x: x.batch(2), lambda x: x.batch(3), "batch size is already set"),
        (lambda x: x.shuffle(False), lambda x: x.shuffle(), "shuffle is already set"),
        (lambda x: x.offset(1), lambda x: x.offset(2), "offset is already set"),
        (
            lambda x: x.transform(double),
            lambda x: x.transform({"label": None}),
            "transform is already set",
        ),
        (lambda x: x.pytorch(), lambda x: x.pytorch(), r"already called \.pytorch\(\)"),
        (lambda x: x.numpy(), lambda x: x.numpy(), r"already called \.numpy\(\)"),
        (lambda x: x.numpy(), lambda x: x.pytorch(), r"Can't call \.pytorch\(\) after \.numpy\(\)"),
        (lambda x: x.pytorch(), lambda x: x.numpy(), r"Can't call \.numpy\(\) after \.pytorch\(\)"),
    ],
)
def test_steps_set_twice_raise_deep_lakes_value_errors(data, first, second, message):
    reader, _ = data
    with pytest.raises(ChainError, match=f"^{message}$") as info:
        second(first(reader.dataloader(seed=0)))
    assert isinstance(info.value, ValueError)


def test_query_and_sample_by_chain_any_number_of_times(data):
    reader, _ = data
    loader = (
        reader.dataloader(seed=0)
        .query("select * where label != 0")
        .query("select * where label != 1")
    )
    assert indices(loader.pytorch()) == [i for i in range(N) if i % 5 not in (0, 1)]
    sampled = loader.sample_by([1.0] * len(indices(loader.pytorch()))).sample_by("score", size=5)
    assert len(indices(sampled.pytorch())) == 5


def test_tensorflow_without_tensorflow_names_the_install(data):
    reader, _ = data
    with pytest.raises(MissingDependencyError, match="pip install tensorflow") as info:
        reader.dataloader().tensorflow()
    assert isinstance(info.value, ImportError)


def test_seed_none_is_drawn_from_the_os_and_kept(data):
    reader, _ = data
    seeds = {reader.dataloader().state_dict()["seed"] for _ in range(4)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(ConfigError, match="seed"):
        Loader(reader, seed=2**32)


# --- transform, tensors, index, decode ---------------------------------------------------------


def test_dict_transform_keeps_listed_fields(data):
    reader, _ = data
    loader = (
        reader.dataloader(seed=0)
        .transform({"label": lambda x: x + 100, "score": None, "index": None}, ignored=1)
        .batch(4)
        .pytorch()
    )
    batch = next(iter(loader))
    assert list(batch) == ["label", "score", "index"]
    assert batch["label"].tolist() == [100, 101, 102, 103]
    assert batch["score"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert batch["index"].tolist() == [0, 1, 2, 3]
    loader.close()
    with pytest.raises(
        ChainError, match=r"^Tensors have already been specified in the \.pytorch method\.$"
    ):
        reader.dataloader().pytorch(tensors=["label"]).transform({"label": None})
    with pytest.raises(
        ChainError,
        match=r"^Tensors have already been specified by passing a dictionary to \.transform\(\) method$",
    ):
        reader.dataloader().transform({"label": None}).pytorch(tensors=["label"])


def test_callable_transform_binds_kwargs_and_gets_the_sample_rng(data):
    reader, _ = data
    loader = reader.dataloader(seed=0).transform(double, factor=3).batch(5).numpy(tensors=["label"])
    assert [b["label"].tolist() for b in loader][:2] == [[0, 3, 6, 9, 12], [0, 3, 6, 9, 12]]
    noisy = reader.dataloader(seed=9).transform(add_noise).batch(8).pytorch(tensors=["label"])
    batch = next(iter(noisy))
    expected = np.stack([sample_rng(9, 0, p).random(3) for p in range(8)])
    assert np.array_equal(batch["noise"].numpy(), expected)
    noisy.close()


def test_tensors_selection_and_index(data):
    reader, _ = data
    batch = next(iter(reader.dataloader(seed=0).batch(3).pytorch(tensors=["label", "arr"])))
    assert list(batch) == ["label", "arr", "index"]
    assert batch["index"].dtype == torch.int64 and batch["index"].tolist() == [0, 1, 2]
    batch = next(iter(reader.dataloader().batch(3).pytorch(tensors=["label"], return_index=False)))
    assert list(batch) == ["label"]
    batch = next(iter(reader.dataloader().batch(3).numpy(tensors=["label"])))
    assert list(batch) == ["label"] and isinstance(batch["label"], np.ndarray)
    with pytest.raises(
        ChainError, match=r"^index is not a tensor, to get index, pass return_index=True$"
    ):
        reader.dataloader().pytorch(tensors=["label", "index"])
    with pytest.raises(ConfigError, match="'nope'"):
        reader.dataloader().pytorch(tensors=["nope"])


def test_return_index_is_the_index_in_the_original_dataset(data):
    reader, _ = data
    loader = (
        reader.dataloader(seed=0)
        .query("select * where label = 3")
        .batch(2)
        .pytorch(tensors=["label"])
    )
    assert indices(loader) == [3, 8, 13, 18, 23, 28, 33, 38]


def test_decode_methods(data):
    reader, samples = data
    loader = reader.dataloader().batch(2)
    batch = next(iter(loader.pytorch(tensors=["image"], decode_method={"image": "numpy"})))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (2, 16, 16, 3)
    assert np.array_equal(batch["image"][1].numpy(), decode_image(samples[1]["image"]))
    batch = next(iter(loader.numpy(tensors=["image"], decode_method={"image": "tobytes"})))
    assert batch["image"] == [samples[0]["image"], samples[1]["image"]]
    batch = next(iter(loader.numpy(tensors=["image", "label"], decode_method={"image": "pil"})))
    assert all(isinstance(im, Image.Image) and im.size == (16, 16) for im in batch["image"])
    assert np.array_equal(np.asarray(batch["image"][0]), decode_image(samples[0]["image"]))


def test_decode_method_errors_and_warning(data):
    reader, _ = data
    with pytest.raises(
        ConfigError,
        match=r"^decode_method pil not supported for tensor label\. Supported methods for this "
        r"tensor are \{'numpy', 'tobytes'\}$",
    ):
        reader.dataloader().pytorch(decode_method={"label": "pil"})
    with pytest.raises(
        ConfigError, match=r"^tensor image specified in decode_method not found in tensors\.$"
    ):
        reader.dataloader().pytorch(tensors=["label"], decode_method={"image": "numpy"})
    with pytest.warns(UserWarning, match=r"decode_method is not set.*\['image'\].*'pil'"):
        loader = reader.dataloader().batch(2).pytorch()
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 16, 16, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader.dataloader().pytorch(tensors=["label"])


# --- batching, shuffling, offset ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "drop_last"), [(6, False), (6, True), (8, True), (40, False)]
)
def test_batch_and_drop_last(data, batch_size, drop_last):
    reader, _ = data
    loader = reader.dataloader(seed=0).batch(batch_size, drop_last).pytorch(tensors=["label"])
    sizes = [len(b["index"]) for b in loader]
    expected = (math.floor if drop_last else math.ceil)(N / batch_size)
    assert len(loader) == expected == len(sizes)
    assert sum(sizes) == (N - N % batch_size if drop_last else N)
    assert loader.drop_last is drop_last


def test_without_batch_the_loader_yields_single_samples(data):
    reader, _ = data
    loader = reader.dataloader(seed=0).pytorch(tensors=["label", "arr"])
    samples = list(loader)
    assert len(samples) == len(loader) == N and loader.batch_size == 1
    assert samples[7]["label"] == 2  # Python scalars stay as they are (torch's default_convert)
    assert samples[7]["index"].dtype == torch.int64 and samples[7]["index"].item() == 7
    assert samples[7]["arr"].dtype == torch.int32 and samples[7]["arr"].tolist() == [0, 7, 14]


def test_shuffle_full_buffer_is_the_epoch_permutation(data):
    reader, _ = data
    loader = reader.dataloader(seed=4).shuffle().batch(7).pytorch(tensors=["label"])
    first, second = indices(loader), indices(loader)
    assert first == epoch_order(sample_count=N, seed=4, epoch=0).tolist()
    assert second == epoch_order(sample_count=N, seed=4, epoch=1).tolist()
    again = reader.dataloader(seed=4).shuffle().batch(3).pytorch(tensors=["label"])
    assert indices(again) == first


def test_shuffle_stays_within_the_buffer(data):
    reader, _ = data
    mean = float(np.diff(reader.offsets.astype(np.int64)).mean())
    window = 6
    buffer_mb = (window + 0.5) * mean / MEGABYTE
    loader = (
        reader.dataloader(seed=2)
        .shuffle(buffer_size=buffer_mb)
        .transform({"index": None})
        .batch(5)
        .numpy()
    )
    order = indices(loader)
    assert sorted(order) == list(range(N)) and order != list(range(N))
    for k in range(N // window):
        block = sorted(order[k * window : (k + 1) * window])
        assert block == list(range(block[0], block[0] + window))
    tail = sorted(order[(N // window) * window :])
    assert tail == list(range(tail[0], tail[0] + N % window))
    assert len(loader) == 8


def test_offset_starts_the_first_epoch_there(data):
    reader, _ = data
    full = indices(reader.dataloader(seed=3).shuffle().batch(4).pytorch(tensors=["label"]))
    loader = reader.dataloader(seed=3).shuffle().offset(10).batch(4).pytorch(tensors=["label"])
    assert loader.state_dict()["cursor"] == 10
    assert indices(loader) == full[10:]
    assert indices(loader) == epoch_order(sample_count=N, seed=3, epoch=1).tolist()
    with pytest.warns(UserWarning, match="without a seed"):
        reader.dataloader().shuffle().offset(3)
    with pytest.warns(UserWarning, match="without a seed"):
        reader.dataloader().offset(3).shuffle()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader.dataloader(seed=1).shuffle().offset(3)
    with pytest.raises(ConfigError, match="past the end"):
        next(iter(reader.dataloader().offset(N + 1).pytorch(tensors=["label"])))


# --- query and sample_by -----------------------------------------------------------------------


def test_query_equals_the_python_filter(data):
    reader, samples = data
    loader = reader.dataloader(seed=0).query("select * where label != 2 and score < 15").batch(4)
    expected = [i for i, s in enumerate(samples) if s["label"] != 2 and s["score"] < 15]
    assert indices(loader.pytorch(tensors=["label"])) == expected
    union = reader.dataloader().query(
        "(select * where label = 1 limit 2) union all (select * where text = 'c' limit 2)"
    )
    assert sorted(indices(union.pytorch(tensors=["label"]))) == [1, 2, 5, 6]


def test_sample_by_frequencies_with_replacement(data):
    reader, _ = data
    weights = np.array([i % 5 for i in range(N)], dtype=np.float64)
    loader = reader.dataloader(seed=11).sample_by(weights, size=20_000)
    drawn = np.array(indices(loader.transform({"index": None}).batch(1000).numpy()))
    counts = np.bincount(drawn, minlength=N)
    assert counts[weights == 0].sum() == 0
    expected = weights / weights.sum() * len(drawn)
    keep = weights > 0
    assert scipy_stats.chisquare(counts[keep], expected[keep]).pvalue > 1e-3
    # an SQL expression: labels 1 weigh 3, labels 2 weigh 1, others 0
    sql = reader.dataloader(seed=1).sample_by("max_weight(label = 1: 3, label = 2: 1)", size=4000)
    labels = np.array(indices(sql.transform({"index": None}).batch(500).numpy())) % 5
    assert set(labels.tolist()) == {1, 2}
    assert scipy_stats.binomtest(int((labels == 1).sum()), len(labels), 0.75).pvalue > 1e-3


def test_sample_by_without_replacement(data):
    reader, _ = data
    weights = [float(i % 4) for i in range(N)]  # 30 positive weights
    loader = reader.dataloader(seed=3).sample_by(weights, replace=False, size=30)
    drawn = indices(loader.transform({"index": None}).batch(8).numpy())
    assert sorted(drawn) == [i for i in range(N) if i % 4]
    firsts = np.zeros(N, dtype=np.int64)
    for seed in range(1500):
        view = reader.dataloader(seed=seed).sample_by(weights, replace=False, size=2)
        firsts[int(view._chain.view[0])] += 1
    w = np.array(weights)
    expected = w / w.sum() * 1500
    assert firsts[w == 0].sum() == 0
    assert scipy_stats.chisquare(firsts[w > 0], expected[w > 0]).pvalue > 1e-3
    with pytest.raises(WeightsError, match=r"^weights should be 1 dimensional array\.$"):
        reader.dataloader().sample_by(np.ones((2, 20)))


# --- iteration, workers, resumption -----------------------------------------------------------


def test_epochs_advance_and_modes_convert(data):
    reader, _ = data
    loader = reader.dataloader(seed=0).batch(10).pytorch(tensors=["arr", "score", "text"])
    assert loader.epoch == 0
    batches = list(loader)
    assert loader.epoch == 1 and loader.state_dict()["cursor"] == 0
    assert batches[0]["arr"].dtype == torch.int32 and batches[0]["score"].dtype == torch.float64
    assert batches[0]["text"] == list("abcabcabca")
    numpy_batch = next(iter(reader.dataloader().batch(10).numpy(tensors=["arr"])))
    assert numpy_batch["arr"].dtype == np.uint16


def collate_with_pid(samples):
    return {"pid": os.getpid(), "labels": [s["label"] for s in samples]}


def test_collate_fn_runs_in_the_workers(data):
    reader, _ = data
    loader = (
        reader.dataloader(seed=0)
        .batch(20)
        .pytorch(num_workers=1, tensors=["label"], collate_fn=collate_with_pid)
    )
    with loader:
        batches = list(loader)
    assert [b["labels"] for b in batches] == [[i % 5 for i in range(20)]] * 2
    assert batches[0]["pid"] != os.getpid()
    assert multiprocessing.active_children() == []


def run_epochs(loader, epochs=2):
    out = []
    for _ in range(epochs):
        out.append([{k: np.asarray(v) for k, v in b.items()} for b in loader])
    loader.close()
    return out


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys()
        and all(np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x)
        for x, y in zip(a, b)
    )


def shuffled_noisy(reader, **mode):
    return (
        reader.dataloader(seed=21)
        .shuffle()
        .transform(add_noise)
        .batch(6)
        .pytorch(tensors=["label"], **mode)
    )


def test_identical_batches_for_any_workers_and_threads(data):
    reader, _ = data
    reference = run_epochs(shuffled_noisy(reader, num_workers=0, num_threads=1))
    for workers in (0, 1, 2):
        for threads in (1, 2):
            got = run_epochs(shuffled_noisy(reader, num_workers=workers, num_threads=threads))
            assert all(same(a, b) for a, b in zip(got, reference)), (workers, threads)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("k", [0, 3, 6])
def test_resume_after_k_batches_is_bit_exact(data, k):
    reader, _ = data
    uninterrupted = [b for epoch in run_epochs(shuffled_noisy(reader)) for b in epoch]
    first = shuffled_noisy(reader, num_workers=1)
    it = iter(first)
    consumed = [{key: np.asarray(v) for key, v in next(it).items()} for _ in range(k)]
    state = first.state_dict()
    first.close()
    assert state["cursor"] == (6 * k if k < 7 else 0)
    resumed = shuffled_noisy(reader, num_workers=2)
    resumed.load_state_dict(state)
    rest = [b for epoch in run_epochs(resumed, epochs=2) for b in epoch]
    assert same(consumed + rest[: len(uninterrupted) - k], uninterrupted)


def test_load_state_dict_checks_the_state(data):
    reader, _ = data
    loader = numbered(reader)
    state = loader.state_dict()
    digest = f"md5:{md5_file(reader.path)}"
    assert state == {
        "kind": "Loader",
        "sample_count": N,
        "digest": digest,
        "seed": 5,
        "epoch": 0,
        "cursor": 0,
    }
    with pytest.raises(StateMismatchError, match="sample_count"):
        loader.query("select * where label = 1").load_state_dict(state)
    with pytest.raises(StateMismatchError, match="cursor"):
        loader.load_state_dict({**state, "cursor": N + 1})
    with pytest.raises(StateMismatchError, match="lacks"):
        loader.load_state_dict({"seed": 1})
    # a loader with a fresh seed: the state's seed wins
    resumed = Loader(reader).shuffle().batch(4).pytorch(tensors=["label"])
    resumed.load_state_dict({**state, "cursor": 8, "epoch": 2})
    assert resumed.seed == 5
    assert indices(resumed) == epoch_order(sample_count=N, seed=5, epoch=2).tolist()[8:]


# --- faults, stats, closing ---------------------------------------------------------------


def test_ignore_errors_skips_and_counts(data):
    reader, _ = data
    loader = Loader(reader, ignore_errors=True, seed=0).transform(fail_on_seven).batch(5)
    loader = loader.pytorch(tensors=["label"])
    got = indices(loader)
    assert got == [i for i in range(N) if i != 7]
    assert loader.stats()["skipped"] == 1
    strict = reader.dataloader(seed=0).transform(fail_on_seven).batch(5).pytorch(tensors=["label"])
    with pytest.raises(SampleError, match="key 'k007'") as info:
        list(strict)
    assert "cannot handle seven" in str(info.value)


def die_on_thirteen(sample):
    if int(sample["index"]) == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return sample


def on_alarm(signum, frame):
    raise TimeoutError("the loader hung after a worker was killed")


def test_a_killed_worker_raises_naming_the_sample(data):
    reader, _ = data
    loader = reader.dataloader(seed=0).transform(die_on_thirteen).batch(4)
    loader = loader.pytorch(num_workers=2, tensors=["label"])
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(60)  # a hang fails the test instead of blocking the suite
    try:
        with pytest.raises(WorkerDiedError, match="key 'k013'"):
            list(loader)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    loader.close()
    assert multiprocessing.active_children() == []


def test_collate_error_names_the_field(tmp_path):
    samples = make_samples(4)
    samples[2]["arr"] = np.arange(5, dtype=np.uint16)
    reader = write(tmp_path / "uneven.msgpack", samples)
    with pytest.raises(SampleError, match="'arr'") as info:
        list(reader.dataloader().batch(4).numpy(tensors=["arr"]))
    assert isinstance(info.value.__cause__, CollateError)
    assert "(3,)" in str(info.value) and "(5,)" in str(info.value)


def test_stats_and_verbose_bar(data, capsys):
    reader, _ = data
    loader = Loader(reader, verbose=True, seed=0).batch(8).pytorch(tensors=["label"])
    assert len(list(loader)) == 5
    s = loader.stats()
    assert s["samples"] == N and s["batches"] == 5 and s["returned"] == 5
    assert s["epoch"] == 1 and s["cursor"] == 0 and s["skipped"] == 0
    for key in (
        "samples_per_s",
        "bytes_per_s",
        "stall_pct",
        "read_s",
        "decode_s",
        "transform_s",
        "collate_s",
    ):
        assert key in s and s[key] >= 0
    assert s["samples_per_s"] > 0 and s["read_s"] > 0
    err = capsys.readouterr().err
    assert "img/s" in err and "stall" in err


def test_close_and_context_manager_leave_no_children(data):
    reader, _ = data
    gc.collect()  # loaders other tests left to the garbage collector close now
    before = set(multiprocessing.active_children())
    with reader.dataloader(seed=0).batch(4).pytorch(num_workers=2, tensors=["label"]) as loader:
        it = iter(loader)
        next(it)
        assert len(set(multiprocessing.active_children()) - before) == 2
    assert set(multiprocessing.active_children()) <= before
    assert indices(loader)[:4] == [4, 5, 6, 7]  # iterating again continues at the cursor
    loader.close()
    loader.close()
    assert set(multiprocessing.active_children()) <= before


# --- presets ----------------------------------------------------------------------------------


class TinyPreset:
    """A preset for the tests: decode, take the top-left 4x4 pixels and a random flip."""

    fields = ("image", "label")

    def worker(self, sample, rng):
        assert isinstance(sample["image"], (bytes, memoryview))
        pixels = decode_image(sample["image"])[:4, :4]
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return {
            "pixels": np.ascontiguousarray(pixels),
            "label": sample["label"],
            "index": sample["index"],
        }

    def device(self, batch):
        return {
            "pixels": batch["pixels"].float() / 255,
            "label": batch["label"],
            "index": batch["index"],
        }


def test_preset_runs_worker_then_device(data):
    reader, samples = data
    loader = reader.dataloader(seed=8).batch(4).pytorch().preset(TinyPreset(), device="cpu")
    batch = next(iter(loader))
    assert batch["pixels"].dtype == torch.float32 and batch["pixels"].shape == (4, 4, 4, 3)
    for j, i in enumerate(batch["index"].tolist()):
        pixels = decode_image(samples[i]["image"])[:4, :4]
        if sample_rng(8, 0, j).random() < 0.5:
            pixels = pixels[:, ::-1]
        assert torch.equal(batch["pixels"][j], torch.from_numpy(pixels.copy()).float() / 255)
    loader.close()
    without_mode = reader.dataloader(seed=8).batch(4).preset(TinyPreset())  # pytorch defaults
    assert all(torch.equal(a, b) for a, b in zip(next(iter(without_mode)).values(), batch.values()))
    without_mode.close()
    with pytest.raises(ChainError, match="^transform is already set$"):
        reader.dataloader().preset(TinyPreset()).transform(double)
    with pytest.raises(ChainError, match="^transform is already set$"):
        reader.dataloader().transform(double).preset(TinyPreset())
    with pytest.raises(ConfigError, match="needs .pytorch"):
        reader.dataloader().preset(TinyPreset()).numpy()


class SkipOddPreset:
    """Skips odd samples by its own policy, fails on key k009, drops "index" from its output."""

    fields = ("label",)

    def worker(self, sample, rng):
        from shardstream.engine import SKIPPED

        if sample["key"] == "k009":
            raise ValueError(f"bad sample {sample['key']}")
        if int(sample["index"]) % 2:
            return SKIPPED
        return {"label": sample["label"]}

    def device(self, batch):
        return {"label": batch["label"] * 10}


def test_preset_skips_by_policy_gets_the_key_and_keeps_the_index(data):
    reader, samples = data
    loader = reader.dataloader(seed=1).query("select * where index < 8").batch(4)
    loader = loader.preset(SkipOddPreset())
    batches = list(loader)
    assert [b["index"].tolist() for b in batches] == [[0, 2], [4, 6]]
    assert [b["label"].tolist() for b in batches] == [[0, 20], [40, 10]]
    assert loader.stats()["skipped"] == 4
    loader.close()
    failing = reader.dataloader(seed=1).query("select * where index < 12").batch(4)
    with pytest.raises(SampleError, match="k009.*bad sample k009"):
        list(failing.preset(SkipOddPreset()))
    failing.close()


# --- distributed ------------------------------------------------------------------------------


def distributed_job(rank: int, world_size: int, path: str) -> dict:
    out = {}
    for drop_last in (False, True):
        loader = Loader(path, seed=6).query("select * where index < 39").shuffle()
        loader = loader.batch(3, drop_last).pytorch(tensors=["label"], distributed=True)
        out[drop_last] = {"len": len(loader), "batches": [b["index"].tolist() for b in loader]}
    return out


def test_distributed_ranks_get_disjoint_equal_shares(data):
    reader, _ = data
    n, world = 39, 2
    results = run_world(world, distributed_job, str(reader.path), timeout=120)
    order = epoch_order(sample_count=n, seed=6, epoch=0)
    for drop_last in (False, True):
        ranks = [r[drop_last] for r in results]
        expected_len = (math.floor if drop_last else math.ceil)(n / (3 * world))
        assert [r["len"] for r in ranks] == [expected_len] * world
        assert [len(r["batches"]) for r in ranks] == [expected_len] * world
        for rank, r in enumerate(ranks):
            flat = [i for b in r["batches"] for i in b]
            positions = rank + world * np.arange(len(flat))
            assert flat == order[positions % n].tolist()  # strided share of the epoch order
        seen = [i for r in ranks for b in r["batches"] for i in b]
        if drop_last:  # the tail is cut: disjoint shares of whole batches
            assert len(set(seen)) == len(seen) == world * 3 * expected_len
        else:  # the tail is padded from the start of the order: one sample seen twice
            assert set(seen) == set(range(n)) and len(seen) == world * math.ceil(n / world)
            assert len(seen) - len(set(seen)) == 1
