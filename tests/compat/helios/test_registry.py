"""helios' Registry, the four registries and their factories, and the seed's registry examples."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from torch.utils.data import default_collate

from shardstream.compat.helios import (
    COLLATE_FN_REGISTRY,
    DATASET_REGISTRY,
    SAMPLER_REGISTRY,
    TRANSFORM_REGISTRY,
    Registry,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSequentialSampler,
    ToImageTensor,
    create_collate_fn,
    create_dataset,
    create_sampler,
    create_transform,
)
from shardstream.errors import (
    AlreadyRegisteredError,
    ConfigTypeError,
    NotRegisteredError,
    ShardstreamError,
)

from .data import IndexDataset

ROOT = Path(__file__).resolve().parents[3]


class Alpha:
    pass


def beta():
    return "beta"


def test_register_decorator_and_call_forms_return_the_object():
    reg = Registry("things")
    assert reg.register(Alpha) is Alpha  # call form

    @reg.register  # bare decorator
    def gamma():
        return 1

    @reg  # the registry itself as decorator (helios' COLLATE_FN_REGISTRY example)
    def delta():
        return 2

    @reg.register()  # called without an object
    class Eps:
        pass

    @reg.register(suffix="v2")
    def zeta():
        return 3

    reg.register(beta, "old")  # positional suffix, as helios' register(obj, suffix)
    assert list(reg.keys()) == ["Alpha", "gamma", "delta", "Eps", "zeta_v2", "beta_old"]
    assert (gamma(), delta(), zeta()) == (1, 2, 3)
    assert list(reg) == [
        ("Alpha", Alpha),
        ("gamma", gamma),
        ("delta", delta),
        ("Eps", Eps),
        ("zeta_v2", zeta),
        ("beta_old", beta),
    ]
    assert len(reg) == 6
    assert str(reg) == "things"
    assert "Alpha" in reg and "zeta_v2" in reg and "zeta" not in reg and 3 not in reg
    assert repr(reg).startswith("Registry('things', names=['Alpha', 'gamma'")


def test_a_non_string_suffix_is_ignored_as_in_helios():
    reg = Registry("things")
    reg.register(Alpha, suffix=5)  # type: ignore[arg-type]
    assert list(reg.keys()) == ["Alpha"]


def test_registering_a_name_twice_raises_a_value_error_naming_it():
    reg = Registry("things")
    reg.register(Alpha)
    with pytest.raises(AlreadyRegisteredError) as info:
        reg.register(Alpha)
    assert (
        str(info.value) == "error: an object named 'Alpha' already exists in the 'things' registry"
    )
    assert isinstance(info.value, ValueError) and isinstance(info.value, ShardstreamError)
    reg.register(Alpha, suffix="b")  # another name is fine
    with pytest.raises(AlreadyRegisteredError, match="'Alpha_b' already exists"):
        reg.register(suffix="b")(Alpha)
    assert list(reg.keys()) == ["Alpha", "Alpha_b"]


def test_registering_an_object_without_a_name_is_a_type_error():
    reg = Registry("things")
    with pytest.raises(ConfigTypeError) as info:
        reg.register(functools.partial(beta))
    assert str(info.value) == (
        "registry 'things': can only register objects with a __name__ (classes and functions), "
        "got partial"
    )
    assert isinstance(info.value, TypeError)
    assert len(reg) == 0


def test_get_exact_name_needs_no_warning():
    reg = Registry("things")
    reg.register(Alpha)
    reg.register(Alpha, suffix="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reg.get("Alpha") is Alpha
        assert reg.get("Alpha", suffix="x") is Alpha  # exact name wins, no fallback
        assert reg.get("Alpha_x") is Alpha


def test_get_falls_back_to_the_suffixed_name_with_a_warning():
    reg = Registry("things")
    reg.register(beta, suffix="old")
    with pytest.warns(UserWarning) as record:
        assert reg.get("beta", suffix="old") is beta
    assert [str(w.message) for w in record] == ["found beta_old instead of beta"]
    assert record[0].filename == __file__  # points at the caller


def test_get_missing_raises_key_error_and_warns_first_when_a_suffix_was_tried():
    reg = Registry("things")
    with pytest.raises(NotRegisteredError) as info:
        reg.get("nothing")
    assert str(info.value) == "No object called 'nothing' found in the 'things' registrar"
    assert isinstance(info.value, KeyError)
    with (
        pytest.warns(UserWarning, match="^found nothing_v1 instead of nothing$"),
        pytest.raises(NotRegisteredError) as info,
    ):
        reg.get("nothing", suffix="v1")
    assert str(info.value) == "No object called 'nothing' found in the 'things' registrar"


def test_global_registries_are_named_and_prepopulated():
    assert (str(DATASET_REGISTRY), str(COLLATE_FN_REGISTRY)) == ("dataset", "collate_fn")
    assert (str(SAMPLER_REGISTRY), str(TRANSFORM_REGISTRY)) == ("sampler", "transform")
    assert COLLATE_FN_REGISTRY.get("default_collate") is default_collate
    assert dict(iter(SAMPLER_REGISTRY)) == {
        "ResumableRandomSampler": ResumableRandomSampler,
        "ResumableSequentialSampler": ResumableSequentialSampler,
        "ResumableDistributedSampler": ResumableDistributedSampler,
    }
    assert TRANSFORM_REGISTRY.get("ToImageTensor") is ToImageTensor


@pytest.fixture
def scratch_name(request):
    """A name unique to the test; the global registries keep what a test registers."""
    return f"Scratch_{request.node.name}"


def test_create_dataset_instantiates_with_the_arguments(scratch_name):
    cls = type(scratch_name, (IndexDataset,), {})
    DATASET_REGISTRY.register(cls)
    made = create_dataset(scratch_name, 7)
    assert type(made) is cls and len(made) == 7
    with pytest.raises(NotRegisteredError, match="'dataset' registrar"):
        create_dataset("NoSuchDataset")


def test_create_collate_fn_returns_functions_and_instantiates_classes(scratch_name):
    assert create_collate_fn("default_collate", "ignored", key="ignored") is default_collate

    def fn(batch):
        return batch

    fn.__name__ = scratch_name + "_fn"
    COLLATE_FN_REGISTRY.register(fn)
    assert create_collate_fn(fn.__name__, 1, 2, x=3) is fn

    class Pad:
        def __init__(self, value, *, width=2):
            self.value, self.width = value, width

    Pad.__name__ = scratch_name + "_cls"
    COLLATE_FN_REGISTRY.register(Pad)
    made = create_collate_fn(Pad.__name__, 0, width=5)
    assert type(made) is Pad and (made.value, made.width) == (0, 5)


def test_create_collate_fn_refuses_other_callables(scratch_name):
    class Holder:
        def __call__(self, batch):
            return batch

    holder = Holder()
    holder.__name__ = scratch_name
    COLLATE_FN_REGISTRY.register(holder)
    with pytest.raises(ConfigTypeError) as info:
        create_collate_fn(scratch_name)
    assert str(info.value) == (
        f"create_collate_fn: '{scratch_name}' must be registered as a function or a class; "
        f"Expected a type but found {Holder}"
    )
    # a builtin function (not types.FunctionType) is not a class either, as in helios
    COLLATE_FN_REGISTRY.register(len, suffix=scratch_name)
    with pytest.raises(ConfigTypeError, match="Expected a type but found <class 'builtin"):
        create_collate_fn(f"len_{scratch_name}")


def test_create_sampler_builds_the_registered_samplers():
    data = IndexDataset(5)
    sampler = create_sampler("ResumableRandomSampler", data, seed=3, batch_size=2)
    assert isinstance(sampler, ResumableRandomSampler) and len(sampler) == 5
    assert list(create_sampler("ResumableSequentialSampler", data)) == [0, 1, 2, 3, 4]
    dist = create_sampler(
        "ResumableDistributedSampler", data, num_replicas=2, rank=1, shuffle=False
    )
    assert list(dist) == [1, 3, 0]
    with pytest.raises(NotRegisteredError, match="^No object called 'X' found in the 'sampler'"):
        create_sampler("X")


def test_create_transform_builds_to_image_tensor():
    import torch

    made = create_transform("ToImageTensor", torch.float64, scale=False)
    assert isinstance(made, ToImageTensor)
    out = made(torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8))
    assert out.dtype == torch.float64 and out.tolist() == [[[1.0, 2.0], [3.0, 4.0]]]


# The seed's registry examples (002_*.txt, DATASET_REGISTRY and COLLATE_FN_REGISTRY), adapted
# only in the import line. Each code block shows two alternatives (decorator, then call form);
# run together they would register the same name twice, so each alternative runs in its own
# fresh interpreter (this also keeps the global registries of this process clean).
DECORATOR_FORMS = """
import shardstream.compat.helios as hld

# This automatically registers your dataset.
@hld.DATASET_REGISTRY.register
class MyDataset:
    ...

# This automatically registers your collate function.
@hld.COLLATE_FN_REGISTRY
def my_collate_fn():
    ...
"""

CALL_FORMS = """
import shardstream.compat.helios as hld

class MyDataset:
    ...

def my_collate_fn():
    ...

# Alternatively you can manually register a dataset like this:
hld.DATASET_REGISTRY.register(MyDataset)

# Alternatively you can manually register a collate function like this:
hld.COLLATE_FN_REGISTRY.register(my_collate_fn)
"""

CHECK = """
assert hld.DATASET_REGISTRY.get("MyDataset") is MyDataset
assert hld.create_dataset("MyDataset").__class__ is MyDataset
assert hld.create_collate_fn("my_collate_fn") is my_collate_fn
print(sorted(hld.DATASET_REGISTRY.keys()), list(hld.COLLATE_FN_REGISTRY.keys()))
"""


def test_seed_registry_examples_run_as_written():
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code) + CHECK],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code in (DECORATOR_FORMS, CALL_FORMS)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out == "['MyDataset'] ['default_collate', 'my_collate_fn']\n"
