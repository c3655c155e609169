"""ToImageTensor against helios' torchvision pipeline (ToImage, ToDtype, ToPureTensor)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from shardstream.compat.helios import ToImageTensor
from shardstream.errors import ConfigError, ConfigTypeError

from .data import image_of

DTYPES = [torch.float32, torch.float64, torch.float16, torch.uint8, torch.int16, torch.int32]


def oracle(dtype, scale):
    return v2.Compose([v2.ToImage(), v2.ToDtype(dtype, scale=scale), v2.ToPureTensor()])


def pil_images():
    rgb = image_of(1, (5, 7, 3))
    gray = image_of(2, (5, 7, 1))[..., 0]
    yield Image.fromarray(rgb, "RGB")
    yield Image.fromarray(gray, "L")
    yield Image.fromarray(image_of(3, (5, 7, 4)), "RGBA")
    yield Image.fromarray(gray).convert("1")
    yield Image.fromarray(gray).convert("I")
    yield Image.fromarray(gray).convert("F")
    yield Image.fromarray(gray.astype(np.uint16) * 250)  # mode I;16
    yield Image.fromarray(rgb, "RGB").convert("P")


def arrays():
    yield image_of(4, (6, 3, 3))  # HWC uint8
    yield image_of(5, (6, 3, 1))[..., 0]  # HW
    yield np.linspace(0, 1, 18, dtype=np.float32).reshape(3, 2, 3)
    yield np.arange(24, dtype=np.int16).reshape(2, 4, 3) * 1000
    readonly = image_of(6, (2, 2, 1))
    readonly.flags.writeable = False
    yield readonly


def tensors():
    yield torch.from_numpy(image_of(7, (3, 4, 5)))  # CHW uint8
    yield torch.from_numpy(image_of(8, (4, 5, 1))[..., 0])  # HW
    yield torch.linspace(0, 1, 24).reshape(2, 3, 4)
    yield torch.from_numpy(image_of(9, (2, 3, 4, 5)))  # a batch
    yield torch.tensor([[True, False], [False, True]])


BOOL_INPUTS = {3, 17}  # PIL mode "1" and a bool tensor: no integer rescale from bool
FLOAT32_INPUTS = {5, 10, 15}  # float32 to int32 is unsafe


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # torchvision's
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_values_dtype_and_shape_equal_torchvision(dtype, scale):
    ours, theirs = ToImageTensor(dtype, scale), oracle(dtype, scale)
    refused = set()
    for number, image in enumerate([*pil_images(), *arrays(), *tensors()]):
        try:
            expected = theirs(image)
        except (RuntimeError, TypeError):  # torchvision refuses: so do we
            with pytest.raises(ConfigError):
                ours(image)
            refused.add(number)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no read-only warning from ours
            got = ours(image)
        assert type(got) is torch.Tensor
        assert got.dtype == expected.dtype == dtype, image
        assert got.shape == expected.shape, image
        assert torch.equal(got, expected), image
        assert got.is_contiguous()
    expected_refused = set()
    if scale and not dtype.is_floating_point:
        expected_refused = BOOL_INPUTS | (FLOAT32_INPUTS if dtype == torch.int32 else set())
    assert refused == expected_refused


def test_big_endian_arrays_convert_like_native_ones():
    native = np.arange(12, dtype="<u2").reshape(3, 4) * 5000
    transform = ToImageTensor(torch.float64)
    expected = oracle(torch.float64, True)(native)
    assert torch.equal(transform(native.astype(">u2")), expected)  # torchvision refuses these
    assert expected[0, 1, 0].item() == 20000 / 65535


def test_unsafe_float_to_int_conversions_are_refused_like_torchvision():
    image = torch.rand(1, 2, 2)
    with pytest.raises(ConfigError) as info:
        ToImageTensor(torch.int32)(image)
    assert str(info.value) == (
        "ToImageTensor: the conversion from torch.float32 to torch.int32 cannot be done safely "
        "(the float type cannot hold every value of the integer range)"
    )
    with pytest.raises(RuntimeError, match="cannot be performed safely"):
        oracle(torch.int32, True)(image)


def test_default_is_float32_scaled():
    out = ToImageTensor()(np.array([[0, 51], [255, 102]], dtype=np.uint8))
    assert out.dtype == torch.float32 and out.shape == (1, 2, 2)
    expected = torch.tensor([[[0, 51], [255, 102]]], dtype=torch.float32) * (1.0 / 255)
    assert torch.equal(out, expected)
    assert out[0, 1, 0].item() == 1.0


def test_lists_and_tuples_give_lists_and_tuples_one_image_gives_a_tensor():
    transform = ToImageTensor(torch.uint8)
    a, b = image_of(10, (2, 2, 3)), image_of(11, (2, 2, 3))
    expected_a = torch.from_numpy(a).permute(2, 0, 1)
    expected_b = torch.from_numpy(b).permute(2, 0, 1)
    single = transform(a)
    assert torch.equal(single, expected_a)
    assert torch.equal(transform([a]), expected_a)  # one element: a tensor, not a list
    assert torch.equal(transform((a,)), expected_a)
    pair = transform([a, b])
    assert type(pair) is list and [t.tolist() for t in pair] == [
        expected_a.tolist(),
        expected_b.tolist(),
    ]
    pair = transform((a, b))
    assert type(pair) is tuple and len(pair) == 2 and torch.equal(pair[1], expected_b)
    assert transform([]) == [] and transform(()) == ()


def test_bad_inputs_raise_typed_errors():
    transform = ToImageTensor()
    with pytest.raises(ConfigTypeError) as info:
        transform("image.jpg")
    assert str(info.value) == (
        "ToImageTensor: an image must be a tensor, a NumPy array or a PIL image, got <class 'str'>"
    )
    with pytest.raises(ConfigError, match=r"must be \[H, W, C\] or \[H, W\], got shape \(4,\)"):
        transform(np.zeros(4, dtype=np.uint8))
    with pytest.raises(ConfigError, match=r"must be 2D or higher, got shape \(3,\)"):
        transform(torch.zeros(3))
    with pytest.raises(ConfigError, match="cannot rescale between integer types with torch.bool"):
        ToImageTensor(torch.bool)(torch.zeros(1, 2, 2, dtype=torch.uint8))


def test_repr_and_registry_name():
    assert repr(ToImageTensor(torch.uint8, scale=False)) == (
        "ToImageTensor(dtype=torch.uint8, scale=False)"
    )


def test_the_module_does_not_import_torchvision():
    code = (
        "import sys; import shardstream.compat.helios as h; "
        "h.ToImageTensor()([__import__('numpy').zeros((2, 2, 3), 'uint8')]); "
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout == "False\n", result.stderr
