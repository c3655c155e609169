"""Compose's parameter injection, the prefix fix, the helpers, and the datadings docs example.

datadings 3.4.7 is the oracle wherever shardstream behaves the same; where shardstream fixes a
datadings bug (``prefix``, TypeErrors turned into KeyErrors, ``functools.partial``) the test
shows both behaviours.
"""

from __future__ import annotations

import contextlib
import functools
import io
import random
import re
import warnings

import numpy as np
import pytest
import torch
from datadings.torch import Compose as DatadingsCompose
from datadings.torch import CompressedToPIL as DatadingsCompressedToPIL
from PIL import Image
from torchvision.transforms import RandomHorizontalFlip, ToTensor

from shardstream.compat.datadings.torch_data import Compose, CompressedToPIL, dict2tuple, no_rng
from shardstream.errors import ConfigError, MissingFieldError


def add(v, number):
    return v + number


def sub(x, value):
    return x - value


def scale(v, factor=2):
    return v * factor


class Shift:
    def __call__(self, x, amount, *, sign=1):
        return x + sign * amount

    def twice(self, x, amount):
        return x + 2 * amount


def test_parameters_are_injected_by_name_in_order():
    compose = Compose(add, sub, scale)
    assert compose.param_names == [("number",), ("value",), ("factor",)]
    assert compose.param_names == DatadingsCompose(add, sub, scale).param_names
    params = {"number": 5, "value": 2, "unused": object()}
    assert compose(10, params) == (10 + 5 - 2) * 2  # factor falls back to its default
    assert compose(10, {**params, "factor": 3}) == (10 + 5 - 2) * 3
    assert DatadingsCompose(add, sub, scale)(10, {**params, "factor": 3}) == 39


def test_one_iterable_argument_is_the_list_of_transforms():
    assert Compose([add, sub]).transforms == (add, sub)
    assert Compose((add, sub))(1, {"number": 4, "value": 1}) == 4
    sequential = torch.nn.Sequential(torch.nn.Identity())  # callable and iterable: one transform
    with pytest.warns(UserWarning, match="only accepts varargs"):
        assert Compose(sequential).transforms == (sequential,)
    assert Compose()(7, {}) == 7  # no transforms: identity


def test_shared_parameter_names_receive_the_same_value():
    compose = Compose(add, lambda v, number: v * number)
    assert compose(1, {"number": 3}) == (1 + 3) * 3


def test_prefix_looks_up_prefixed_names_and_passes_plain_names():
    compose = Compose(add, scale, prefix="mask_")
    assert compose.param_names == [("mask_number",), ("mask_factor",)]
    assert compose(1, {"mask_number": 2, "mask_factor": 10, "number": 99}) == 30
    assert compose(1, {"mask_number": 2}) == 6  # default for the absent optional parameter
    with pytest.raises(MissingFieldError, match="'mask_number'"):
        compose(1, {"number": 2})  # the unprefixed name is not looked up
    # datadings 3.4.7 passes the prefixed keyword, so the same call fails there
    oracle = DatadingsCompose(add, prefix="mask_")
    assert oracle.param_names == [("mask_number",)]
    with pytest.raises(KeyError, match="unexpected keyword argument 'mask_number'"):
        oracle(1, {"mask_number": 2})


def test_missing_required_parameter_raises_a_key_error_naming_it():
    compose = Compose(add, sub)
    with pytest.raises(MissingFieldError) as info:
        compose(1, {"number": 1})
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert message.startswith("Required parameters for transform function are missing: <func")
    assert "sub at" in message and "needs 'value' but the parameters hold only 'number'." in message
    assert message.endswith("Incomplete rng function? Missing constants?")
    with pytest.raises(MissingFieldError, match="hold only nothing"):
        compose(1, {})
    with pytest.raises(KeyError, match="Required parameters for transform function are missing"):
        DatadingsCompose(add, sub)(1, {"number": 1})


def test_type_errors_inside_transforms_propagate():
    def broken(v, number):
        return v + "text"

    with pytest.raises(TypeError, match="unsupported operand"):
        Compose(broken)(1, {"number": 1})
    with pytest.raises(KeyError):  # datadings hides the bug behind its missing-parameter error
        DatadingsCompose(broken)(1, {"number": 1})


def test_callable_objects_and_methods_drop_self():
    shift = Shift()
    compose = Compose(shift, shift.twice)
    assert compose.param_names == [("amount", "sign"), ("amount",)]
    assert compose.param_names == DatadingsCompose(shift, shift.twice).param_names
    assert compose(1, {"amount": 2, "sign": -1}) == 1 - 2 + 4


def test_varargs_transforms_warn_and_receive_only_values():
    flip = RandomHorizontalFlip(p=1.0)
    with pytest.warns(UserWarning, match="only accepts varargs so it will only receive sample"):
        compose = Compose(flip, ToTensor())
    assert compose.param_names == [(), ()]
    image = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    out = compose(image, {"anything": 1})
    assert out.shape == (3, 2, 2)
    assert torch.equal(out, ToTensor()(image).flip(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Compose(ToTensor())  # a named value argument: no warning

    def with_varargs(v, *rest, number):
        return v + number

    with pytest.warns(UserWarning, match="varargs are ignored"):
        assert Compose(with_varargs)(1, {"number": 2}) == 3


def test_partials_and_builtins():
    partial = functools.partial(add, number=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # datadings warns that 'v' is not 'self'
        compose = Compose(partial, abs)
    assert compose.param_names == [("number",), ()]
    assert compose(-10, {}) == 7  # the partial's constant
    assert compose(-10, {"number": 30}) == 20  # params override a partial's default
    with pytest.raises(ValueError, match="accepts none"), pytest.warns(UserWarning, match="self"):
        DatadingsCompose(abs)  # datadings rejects builtins


def test_invalid_transforms_raise_config_errors():
    with pytest.raises(ConfigError, match="transform must be callable, not 5") as info:
        Compose(add, 5)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="first positional argument"):
        Compose(lambda: 0)
    with pytest.raises(ConfigError, match="first positional argument"):
        Compose(lambda *, x: x)
    with pytest.raises(ConfigError, match="positional-only parameter 'b'"):
        Compose(eval("lambda a, b, /: a"))
    with pytest.raises(ConfigError, match="prefix must be a str"):
        Compose(add, prefix=1)
    with pytest.raises(ValueError, match="accepts none"):
        DatadingsCompose(lambda: 0)


def test_repr():
    assert repr(Compose(abs, prefix="p_")) == "Compose(<built-in function abs>, prefix='p_')"
    assert repr(CompressedToPIL()) == "CompressedToPIL()"


def test_no_rng_and_dict2tuple():
    assert no_rng({"image": 1}) == {}
    samples = [{"image": i, "label": -i, "key": str(i)} for i in range(3)]
    assert list(dict2tuple(samples)) == [(0, 0), (1, -1), (2, -2)]
    assert list(dict2tuple(samples, keys=["key"])) == [("0",), ("1",), ("2",)]
    with pytest.raises(KeyError):
        list(dict2tuple([{"image": 1}]))


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGB", "JPEG"), ("L", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG")]
)
def test_compressed_to_pil_equals_datadings(mode, fmt):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(24, 40, len(mode)), dtype=np.uint8).squeeze()
    data = encode(Image.fromarray(pixels), fmt)  # PNG: simplejpeg refuses, Pillow decodes
    ours = CompressedToPIL()(data)
    theirs = DatadingsCompressedToPIL()(data)
    assert ours.mode == "RGB" and ours.size == (40, 24)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert np.array_equal(np.asarray(CompressedToPIL()(memoryview(data))), np.asarray(ours))


EXAMPLE = """
import random
from datadings.torch import Compose
from datadings.torch import Dataset
from datadings.reader import ListReader

def add(v, number):
    return v + number

def sub(x, value):
    return x - value

def rng(_):
    return {
        'number': random.randrange(1, 10),
        'value': random.randrange(1, 10),
    }

samples = [{'a': 0, 'b': 0, 'c': 0} for _ in range(10)]
reader = ListReader(samples)
transforms = {
    'a': Compose(add),
    'b': Compose(sub),
    'c': Compose((add, sub)),
}
dataset = Dataset(reader, transforms=transforms, rng=rng)
for i in range(len(dataset)):
    print(dataset[i])
"""
"""The datadings documentation's Compose example, verbatim (the seed's "PyTorch integration")."""

OUR_IMPORTS = {
    "from datadings.torch import Compose": "from shardstream.compat.datadings.torch_data import Compose",
    "from datadings.torch import Dataset": "from shardstream.compat.datadings.torch_data import Dataset",
    "from datadings.reader import ListReader": "from shardstream import ListReader",
}


def run_example(source: str) -> list[str]:
    random.seed(1234)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<datadings example>", "exec"), {"__name__": "__example__"})
    return out.getvalue().splitlines()


def test_datadings_docs_example_runs_with_only_the_imports_changed():
    ours = EXAMPLE
    for theirs, replacement in OUR_IMPORTS.items():
        assert ours.count(theirs) == 1
        ours = ours.replace(theirs, replacement)
    printed = run_example(ours)
    assert printed == run_example(EXAMPLE)  # same draws, same printed samples as datadings
    assert len(printed) == 10
    random.seed(1234)
    for i, line in enumerate(printed):
        number, value = random.randrange(1, 10), random.randrange(1, 10)
        params = {"number": number, "value": value}
        expected = {"a": number, "b": -value, "c": number - value, "key": i, "__params__": params}
        assert line == repr(expected)


LOADER_EXAMPLE = """
from datadings.reader import MsgpackReader
from datadings.torch import IterableDataset
from datadings.torch import CompressedToPIL
from datadings.torch import dict2tuple
from datadings.torch import Compose

from tqdm import tqdm
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import RandomHorizontalFlip


def main():
    path = '.../train.msgpack'
    batch_size = 256
    transforms = {'image': Compose(
        CompressedToPIL(),
        RandomResizedCrop((224, 224)),
        RandomHorizontalFlip(),
        ToTensor(),
    )}
    reader = MsgpackReader(path)
    ds = IterableDataset(
        reader,
        transforms=transforms,
        batch_size=batch_size,
    )
    train = DataLoader(
        dataset=ds,
        batch_size=batch_size,
        num_workers=4,
        persistent_workers=True,
    )
    for epoch in range(3):
        print('Epoch', epoch)
        for x, y in dict2tuple(tqdm(train)):
            pass


if __name__ == "__main__":
    main()
"""
"""The datadings documentation's DataLoader example, verbatim."""


def test_datadings_docs_loader_example_runs_with_imports_and_path_changed(tmp_path):
    from shardstream import FileWriter

    path = tmp_path / "train.msgpack"
    rng = np.random.default_rng(3)
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(12):
            pixels = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
            image = encode(Image.fromarray(pixels), "JPEG")
            writer.write({"key": f"img{i}", "image": image, "label": i % 3})
    source = LOADER_EXAMPLE.replace("'.../train.msgpack'", repr(str(path)))
    source = source.replace("from datadings.reader import", "from shardstream import")
    source = source.replace(
        "from datadings.torch import", "from shardstream.compat.datadings.torch_data import"
    )
    assert "from datadings" not in source
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("ignore")  # varargs transforms, 4 workers on few cores
        exec(compile(source, "<datadings loader example>", "exec"), {"__name__": "__main__"})
    assert out.getvalue().splitlines() == ["Epoch 0", "Epoch 1", "Epoch 2"]
    # tqdm's final count per epoch: the last refresh of each bar, the one its close ends with a
    # newline (a slow machine may add intermediate refreshes)
    finished = re.findall(r"\r(\d+)it \[[^\r\n]*\n", err.getvalue())
    assert finished == ["4", "4", "4"]  # 4 workers x 1 batch of 3 samples
