"""The dinov2, datadings and helios entry points read URLs (moto S3 and an HTTP Range server on
127.0.0.1) for a single data file and for a sharded set, and give the samples the same set gives
from local files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shardstream.compat.datadings.reader import MsgpackReader
from shardstream.compat.datadings.torch_data import Dataset as DatadingsDataset
from shardstream.compat.dinov2.datasets import PackedDataset
from shardstream.compat.dinov2.loaders import _split_tokens, make_dataset, parse_dataset_str
from shardstream.compat.helios import DataLoaderParams, DataModule
from shardstream.errors import DatasetStringError
from tests.read.remote.url_sets import http, name, write_url_sets
from tests.write.s3_gate import moto

__all__ = ["http", "moto", "name"]  # fixtures

COUNT = 18


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    """``one.msgpack`` and ``many.manifest`` (4 shards) of the same samples."""
    root = tmp_path_factory.mktemp("remote-entry")
    write_url_sets(root, COUNT)
    return root


@pytest.fixture(scope="module")
def s3(moto, local) -> str:
    moto.upload(local, "entry", "sets")
    return "s3://entry/sets"


def reference(local: Path, name: str) -> list[tuple[str, int, bytes]]:
    reader = MsgpackReader(local / "one.msgpack")
    return [(s["key"], s["label"], s["image"]) for s in reader]


def test_datadings_msgpack_reader_opens_urls(moto, s3, http, local, name, tmp_path):
    expected = reference(local, name)
    for url, options in ((f"{s3}/{name}", moto.options), (f"{http.url}/{name}", None)):
        reader = MsgpackReader(url, storage_options=options)
        assert len(reader) == COUNT
        assert [(s["key"], s["label"], s["image"]) for s in reader] == expected
        assert reader.get(7)["key"] == "k007"
        reader.close()
    with MsgpackReader(f"file://{local / 'one.msgpack'}") as plain:
        assert isinstance(plain, MsgpackReader) and len(plain) == COUNT


def test_datadings_torch_dataset_from_a_url_in_loader_workers(moto, s3, local, name):
    dataset = DatadingsDataset(f"{s3}/{name}", storage_options=moto.options)
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, num_workers=2, collate_fn=list)
    got = [(s["key"], s["label"], s["image"]) for batch in loader for s in batch]
    dataset.close()
    assert got == reference(local, name)


def test_dinov2_packed_dataset_and_dataset_strings_read_urls(moto, s3, http, local, name):
    local_set = PackedDataset(path=local / name)
    expected = [(local_set.get_target(i), local_set.get_image_data(i)) for i in range(COUNT)]
    remote = PackedDataset(path=f"{s3}/{name}", storage_options=moto.options)
    assert len(remote) == COUNT
    assert [(remote.get_target(i), remote.get_image_data(i)) for i in range(COUNT)] == expected
    image, target = remote[4]
    assert target == 1 and image.size == local_set[4][0].size
    # a dataset string holds the URL (credentials from the environment; HTTP needs none)
    from_string = make_dataset(dataset_str=f"Packed:path={http.url}/{name}")
    assert [from_string.get_target(i) for i in range(COUNT)] == [t for t, _ in expected]
    assert from_string.get_image_data(11) == expected[11][1]


def test_dataset_strings_keep_url_colons_and_still_reject_bad_tokens():
    _, kwargs = parse_dataset_str("Packed:path=https://host:8080/a/b.manifest")
    assert kwargs == {"path": "https://host:8080/a/b.manifest"}
    _, kwargs = parse_dataset_str("Packed:path=simplecache::s3://bucket/x.msgpack")
    assert kwargs == {"path": "simplecache::s3://bucket/x.msgpack"}
    with pytest.raises(DatasetStringError, match="exactly one '='"):
        parse_dataset_str("Packed:path=/a:b")


class UrlModule(DataModule):
    """A helios DataModule whose training set is a URL."""

    def __init__(self, url: str, options: dict | None) -> None:
        super().__init__()
        self.url, self.options = url, options

    def setup(self) -> None:
        dataset = DatadingsDataset(self.url, storage_options=self.options)
        params = DataLoaderParams(
            batch_size=6, num_workers=1, pin_memory=False, shuffle=True, collate_fn=list
        )
        self._add_train_phase(dataset, params)


def test_helios_datamodule_trains_from_a_url(moto, s3, local, name):
    def keys(module: DataModule) -> list[str]:
        module.is_distributed = False
        module.trainer = object()
        module.setup()
        loader, sampler = module.train_dataloader()
        sampler.set_epoch(1)
        return [s["key"] for batch in loader for s in batch]

    remote = keys(UrlModule(f"{s3}/{name}", moto.options))
    assert remote == keys(UrlModule(str(local / name), None))
    assert sorted(remote) == [f"k{i:03d}" for i in range(COUNT)]


_PLAIN = st.text(alphabet="abcXYZ019_-./=", min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["Packed", "ImageNet", "ImageFolder"]), tokens=st.lists(_PLAIN))
def test_dataset_strings_without_urls_split_as_before(name, tokens):
    text = ":".join([name, *tokens])
    assume("://" not in text)  # a "://" (as in "Packed://") reads as a URL's scheme separator
    assert _split_tokens(text) == text.split(":")


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["s3", "gs", "https", "file", "simplecache::s3"]),
    host=st.from_regex(r"[a-z0-9.\-]{0,12}", fullmatch=True),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.from_regex(r"(/[A-Za-z0-9_.\-]{1,8}){0,4}", fullmatch=True),
)
def test_a_url_value_stays_whole(scheme, host, port, path):
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    assert _split_tokens(f"Packed:path={url}") == ["Packed", f"path={url}"]
    assert _split_tokens(f"ImageNet:root={url}:split=TRAIN") == [
        "ImageNet", f"root={url}", "split=TRAIN"
    ]  # fmt: skip
