"""Dataset strings: dinov2's syntax, every error it raises (typed, same builtins), our kinds."""

from __future__ import annotations

import pytest

from shardstream.compat.dinov2.datasets import ImageFolder, ImageNet, ImageNet22k, PackedDataset
from shardstream.compat.dinov2.loaders import make_dataset, parse_dataset_str
from shardstream.errors import (
    DatasetArgumentError,
    DatasetSplitError,
    DatasetStringError,
    DatasetStringKeyError,
    ShardstreamError,
)


def test_imagenet_string_gives_class_and_split_member():
    cls, kwargs = parse_dataset_str(
        "ImageNet:split=TRAIN:root=/data/imagenet:extra=/data/imagenet-extra"
    )
    assert cls is ImageNet
    assert kwargs == {
        "split": ImageNet.Split.TRAIN,
        "root": "/data/imagenet",
        "extra": "/data/imagenet-extra",
    }
    assert ImageNet.Split.TRAIN.value == "train"


@pytest.mark.parametrize("split", ["TRAIN", "VAL", "TEST"])
def test_imagenet_split_by_member_name(split):
    _, kwargs = parse_dataset_str(f"ImageNet:root=r:extra=e:split={split}")
    assert kwargs["split"] is ImageNet.Split[split]


@pytest.mark.parametrize(
    ("text", "cls", "kwargs"),
    [
        ("ImageNet22k:root=/t:extra=/x", ImageNet22k, {"root": "/t", "extra": "/x"}),
        ("ImageFolder:root=/images", ImageFolder, {"root": "/images"}),
        ("Packed:path=/p/train.msgpack", PackedDataset, {"path": "/p/train.msgpack"}),
        ("Packed:path=/p/train-*.msgpack", PackedDataset, {"path": "/p/train-*.msgpack"}),
        ("ImageFolder:root=", ImageFolder, {"root": ""}),
    ],
)
def test_other_kinds(text, cls, kwargs):
    assert parse_dataset_str(text) == (cls, kwargs)


def _error(text):
    with pytest.raises(ShardstreamError) as info:
        parse_dataset_str(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("ImageNet:split", "split"),  # no '='
        ("ImageNet:root=a=b:extra=e:split=TRAIN", "root=a=b"),  # two '='
        ("ImageNet:root=/a:", ""),  # empty trailing token
        ("ImageFolder:root=C:/images", "/images"),  # a value with ':' breaks the string
    ],
)
def test_token_without_exactly_one_equals_is_a_value_error(text, token):
    error = _error(text)
    assert type(error) is DatasetStringError
    assert isinstance(error, ValueError)
    assert f'token "{token}"' in str(error)
    assert text in str(error)


def test_unknown_key_is_an_assertion_error_checked_before_the_name():
    error = _error("Nope:root=/a:colour=red")
    assert type(error) is DatasetStringKeyError
    assert isinstance(error, AssertionError)
    assert str(error) == (
        'dataset string "Nope:root=/a:colour=red": unknown key "colour" in token "colour=red"; '
        "use root, extra, split, path"
    )


def test_unsupported_name_is_a_value_error():
    error = _error("CIFAR10:root=/a")
    assert type(error) is DatasetStringError
    assert isinstance(error, ValueError)
    assert str(error).startswith('Unsupported dataset "CIFAR10"')
    assert "ImageNet, ImageNet22k, ImageFolder, Packed" in str(error)
    assert type(_error("")) is DatasetStringError  # empty name


def test_unknown_split_is_a_key_error():
    error = _error("ImageNet:split=train:root=/a:extra=/b")  # member names only
    assert type(error) is DatasetSplitError
    assert isinstance(error, KeyError)
    assert str(error) == "unknown ImageNet split 'train'; use one of TRAIN, VAL, TEST"


def test_split_for_imagenet22k_is_a_type_error():
    error = _error("ImageNet22k:split=TRAIN:root=/a:extra=/b")
    assert type(error) is DatasetArgumentError
    assert isinstance(error, TypeError)
    assert 'ImageNet22k does not take the key "split"; it takes root, extra' in str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Packed:root=/a", 'Packed does not take the key "root"; it takes path'),
        ("ImageFolder:path=/a", 'ImageFolder does not take the key "path"; it takes root'),
        ("ImageFolder:root=/a:extra=/b", 'does not take the key "extra"'),
        ("ImageNet:split=TRAIN:root=/a", "ImageNet needs the key extra (e.g. ImageNet:split=..."),
        ("ImageNet", "ImageNet needs the keys split, root, extra"),
        ("Packed", "Packed needs the key path (e.g. Packed:path=...)"),
    ],
)
def test_keys_the_kind_does_not_take_or_lacks_are_type_errors(text, message):
    error = _error(text)
    assert type(error) is DatasetArgumentError
    assert isinstance(error, TypeError)
    assert message in str(error)


def test_repeated_key_is_refused():
    error = _error("ImageFolder:root=/a:root=/b")
    assert type(error) is DatasetStringError
    assert 'key "root" is given twice (token "root=/b")' in str(error)


def test_non_string_is_refused():
    error = _error(b"ImageNet")
    assert type(error) is DatasetStringError


def test_make_dataset_raises_parse_errors_before_touching_files(tmp_path):
    with pytest.raises(DatasetStringKeyError):
        make_dataset(dataset_str=f"ImageFolder:root={tmp_path}:bad=1")
    with pytest.raises(DatasetSplitError):
        make_dataset(dataset_str=f"ImageNet:split=DEV:root={tmp_path}:extra={tmp_path}")
