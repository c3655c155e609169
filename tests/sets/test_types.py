"""shardstream.sets.types against datadings 3.4.7's ``datadings.sets.types``, constructor by constructor.

For every documented constructor, hypothesis draws arguments of any kind; called by position and by
name, ours must give exactly datadings' dict: the same keys in the same order, each value the very
object passed. Signatures (names, order, count) must match, which datadings' ``document_keys`` and
writers built on the types rely on.
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.sets import types

datadings_types = pytest.importorskip("datadings.sets.types")
datadings_tools = pytest.importorskip("datadings.tools")

#: the 15 constructors datadings 3.4.7 documents (seed 001), with their arguments
DOCUMENTED = {
    "ADE20kData": ("key", "image", "label", "label_image", "parts_images"),
    "ANP460Data": ("key", "image", "experiments", "anp", "type"),
    "ANP460Experiment": ("locations", "map", "answer", "duration"),
    "ImageClassificationData": ("key", "image", "label"),
    "ImageCoarseClassificationData": ("key", "image", "label", "coarse_label"),
    "ImageData": ("key", "image"),
    "ImageDisparitySegmentationData": ("key", "image", "label_image", "disparity_image"),
    "ImageInstanceSegmentationData": ("key", "image", "label_image", "instance_image"),
    "ImageNet21kData": ("key", "image", "label", "label_tree"),
    "ImageSegmentationData": ("key", "image", "label_image"),
    "MaskedImageSegmentationData": ("key", "image", "label_image", "mask"),
    "Places2017Data": ("key", "image", "label", "label_image", "instance_image", "boundary"),
    "SaliencyData": ("key", "image", "experiments"),
    "SaliencyExperiment": ("locations", "map"),
    "SaliencyTimeseriesExperiment": ("locations", "map", "timestamps", "fixations"),
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN included: values are compared by identity
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
)


def test_the_documented_constructors_and_only_those():
    ours = {n for n, f in vars(types).items() if inspect.isfunction(f) and not n.startswith("_")}
    theirs = {n for n, f in vars(datadings_types).items() if inspect.isfunction(f)}
    assert ours == theirs == set(DOCUMENTED)
    assert sorted(types.__all__) == sorted(DOCUMENTED)
    for name, params in DOCUMENTED.items():
        ours_sig = inspect.signature(getattr(types, name))
        theirs_sig = inspect.signature(getattr(datadings_types, name))
        assert tuple(ours_sig.parameters) == tuple(theirs_sig.parameters) == params, name
        for p in ours_sig.parameters.values():
            assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty
        assert inspect.getdoc(getattr(types, name)), name


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_each_constructor_gives_datadings_dict(name, data):
    params = DOCUMENTED[name]
    args = [data.draw(VALUES, label=p) for p in params]
    ours_fn, theirs_fn = getattr(types, name), getattr(datadings_types, name)
    theirs = theirs_fn(*args)
    for ours in (ours_fn(*args), ours_fn(**dict(zip(params, args)))):
        assert type(ours) is dict
        assert list(ours) == list(theirs) == list(params)
        assert all(ours[k] is theirs[k] for k in params)
    # keyword arguments in another order, and a mix of positions and names
    assert list(ours_fn(**dict(reversed(list(zip(params, args)))))) == list(params)
    assert list(ours_fn(args[0], **dict(zip(params[1:], args[1:])))) == list(params)
    # every call makes a new dict
    assert ours_fn(*args) is not ours_fn(*args)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_argument_errors_are_pythons_as_in_datadings(name):
    params = DOCUMENTED[name]
    for fn in (getattr(types, name), getattr(datadings_types, name)):
        with pytest.raises(TypeError):
            fn(*range(len(params) - 1))
        with pytest.raises(TypeError):
            fn(*range(len(params) + 1))
        with pytest.raises(TypeError):
            fn(*range(len(params)), **{params[0]: 0})
        with pytest.raises(TypeError):
            fn(*range(len(params)), unknown=1)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_datadings_document_keys_reads_ours_as_its_own(name):
    ours = datadings_tools.document_keys(getattr(types, name))
    assert ours == datadings_tools.document_keys(getattr(datadings_types, name))
    assert all(f'``"{p}"``' in ours for p in DOCUMENTED[name])
