"""Each data set kind returns exactly the right (image, target) for known files."""

from __future__ import annotations

import gzip
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from shardstream.compat.dinov2.datasets import (
    DatasetWithEnumeratedTargets,
    ImageFolder,
    ImageNet,
    ImageNet22k,
    PackedDataset,
    read_block_list,
)
from shardstream.compat.dinov2.loaders import make_dataset
from shardstream.errors import (
    ConfigError,
    CorruptIndexError,
    DatasetFormatError,
    DatasetNotFoundError,
    DatasetReadError,
    DatasetSplitError,
)

from .data import (
    IMAGENET_LABELS,
    NUM_CLASSES,
    jpeg,
    pixels,
    write_file,
    write_imagenet,
    write_imagenet22k,
    write_packed,
)


def assert_image(image, index):
    """``image`` is demo image ``index``: an RGB PIL image with its exact size and pixels."""
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    expected = pixels(index)
    assert image.size == (expected.shape[1], expected.shape[0])
    np.testing.assert_array_equal(np.asarray(image), expected)


# --- ImageFolder -------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    """A class-per-folder tree: file name -> demo image index, plus a few non-images."""
    root = tmp_path / "images"
    layout = {
        "cat/b.jpg": 0,
        "cat/a.JPEG": 1,
        "cat/sub/c.png_but_jpeg.jpg": 2,
        "dog/10.jpg": 3,
        "dog/9.jpg": 4,
        "bird/x.webp.jpeg": 5,
    }
    for relpath, index in layout.items():
        write_file(root / relpath, jpeg(index))
    write_file(root / "cat" / "notes.txt", b"not an image")
    write_file(root / "stray.jpg", jpeg(6))  # files directly in root are no class
    return root, layout


def test_image_folder_order_and_targets(folder):
    root, layout = folder
    dataset = ImageFolder(root=root)
    assert dataset.classes == ["bird", "cat", "dog"]
    assert dataset.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    expected = [  # sorted class folders; sorted walk; plain (not natural) file name order
        ("bird/x.webp.jpeg", 0),
        ("cat/a.JPEG", 1),
        ("cat/b.jpg", 1),
        ("cat/sub/c.png_but_jpeg.jpg", 1),
        ("dog/10.jpg", 2),
        ("dog/9.jpg", 2),
    ]
    assert dataset.samples == [(str(root / rel), target) for rel, target in expected]
    assert dataset.imgs == dataset.samples
    assert dataset.targets == [0, 1, 1, 1, 2, 2]
    assert dataset.get_targets().dtype == np.int64
    assert len(dataset) == 6
    for i, (rel, target) in enumerate(expected):
        image, label = dataset[i]
        assert_image(image, layout[rel])
        assert label == target
        assert dataset.get_image_data(i) == jpeg(layout[rel])
    with pytest.raises(IndexError):
        dataset[6]


def test_image_folder_matches_torchvision(folder):
    from torchvision.datasets import ImageFolder as TorchvisionImageFolder

    root, _ = folder
    ours, theirs = ImageFolder(root=str(root)), TorchvisionImageFolder(str(root))
    assert ours.classes == theirs.classes
    assert ours.class_to_idx == theirs.class_to_idx
    assert ours.samples == theirs.samples
    assert ours.targets == theirs.targets
    for i in range(len(theirs)):
        (a, x), (b, y) = ours[i], theirs[i]
        assert x == y
        assert a.size == b.size and a.mode == b.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_image_folder_transforms_and_make_dataset(folder):
    root, layout = folder
    dataset = make_dataset(
        dataset_str=f"ImageFolder:root={root}",
        transform=lambda image: image.size,
        target_transform=lambda target: target * 10,
    )
    assert isinstance(dataset, ImageFolder)
    index = layout["dog/9.jpg"]
    assert dataset[5] == ((pixels(index).shape[1], pixels(index).shape[0]), 20)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        ImageFolder(root=tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write_file(tmp_path / "flat" / "a.jpg", jpeg(0))
    with pytest.raises(DatasetNotFoundError, match="no class folder found"):
        ImageFolder(root=tmp_path / "flat")
    write_file(tmp_path / "flat" / "cls" / "notes.txt", b"x")
    write_file(tmp_path / "flat" / "cls2" / "a.jpg", jpeg(0))
    with pytest.raises(FileNotFoundError, match="no image file in the class folders cls "):
        ImageFolder(root=tmp_path / "flat")


def test_unreadable_image_raises_dinov2s_runtime_error(tmp_path):
    write_file(tmp_path / "cls" / "broken.jpg", b"not a jpeg")
    dataset = ImageFolder(root=tmp_path)
    with pytest.raises(DatasetReadError, match="^can not read image for sample 0$") as info:
        dataset[0]
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None


# --- ImageNet ----------------------------------------------------------------------------------


@pytest.fixture
def imagenet(tmp_path):
    root = tmp_path / "imagenet"
    return root, tmp_path / "extra", write_imagenet(root)


def test_imagenet_dump_extra_writes_dinov2s_files(imagenet):
    root, extra, _ = imagenet
    dataset = ImageNet(split=ImageNet.Split.TRAIN, root=root, extra=extra)
    dataset.dump_extra()
    assert sorted(p.name for p in extra.iterdir()) == [
        "class-ids-TRAIN.npy",
        "class-names-TRAIN.npy",
        "entries-TRAIN.npy",
    ]
    entries = np.load(extra / "entries-TRAIN.npy")
    assert entries.dtype == np.dtype(
        [
            ("actual_index", "<u4"),
            ("class_index", "<u4"),
            ("class_id", "<U9"),
            ("class_name", "<U18"),
        ]
    )
    assert entries.tolist() == [  # ImageFolder order: "n01440764_10026" < "n01440764_9"
        (10026, 0, "n01440764", "tench, Tinca tinca"),
        (9, 0, "n01440764", "tench, Tinca tinca"),
        (77, 1, "n01443537", "goldfish"),
        (123, 2, "n01484850", "great white shark"),
        (40, 2, "n01484850", "great white shark"),
        (5, 2, "n01484850", "great white shark"),
    ]
    assert np.load(extra / "class-ids-TRAIN.npy").tolist() == [c for c, _ in IMAGENET_LABELS]
    assert np.load(extra / "class-names-TRAIN.npy").tolist() == [n for _, n in IMAGENET_LABELS]


def test_imagenet_train_samples(imagenet):
    root, extra, sources = imagenet
    ImageNet(split="TRAIN", root=root, extra=extra).dump_extra()
    dataset = make_dataset(dataset_str=f"ImageNet:split=TRAIN:root={root}:extra={extra}")
    assert isinstance(dataset, ImageNet) and dataset.split is ImageNet.Split.TRAIN
    assert len(dataset) == 6
    expected = [
        ("n01440764", 10026, 0),
        ("n01440764", 9, 0),
        ("n01443537", 77, 1),
        ("n01484850", 123, 2),
        ("n01484850", 40, 2),
        ("n01484850", 5, 2),
    ]
    for i, (class_id, number, target) in enumerate(expected):
        image, label = dataset[i]
        assert_image(image, sources[f"train/{class_id}/{class_id}_{number}.JPEG"])
        assert label == target == dataset.get_target(i)
        assert dataset.get_class_id(i) == class_id
        assert dataset.get_class_name(i) == dict(IMAGENET_LABELS)[class_id]
    assert dataset.get_targets().tolist() == [0, 0, 1, 2, 2, 2]
    assert dataset.find_class_id(2) == "n01484850"
    assert dataset.find_class_name(0) == "tench, Tinca tinca"


def test_imagenet_val_and_test_splits(imagenet):
    root, extra, sources = imagenet
    val = ImageNet(split=ImageNet.Split.VAL, root=root, extra=extra)
    test = ImageNet(split=ImageNet.Split.TEST, root=root, extra=extra)
    val.dump_extra()
    test.dump_extra()
    assert not (extra / "class-ids-TEST.npy").exists()
    assert [val.get_target(i) for i in range(len(val))] == [0, 1, 1, 2]
    image, target = val[2]
    assert_image(image, sources["val/n01443537/ILSVRC2012_val_00000002.JPEG"])
    assert target == 1

    entries = np.load(extra / "entries-TEST.npy")
    assert entries.tolist() == [
        (1, 4294967295, "", ""),
        (2, 4294967295, "", ""),
        (7, 4294967295, "", ""),
    ]
    assert len(test) == 3
    for i, number in enumerate([1, 2, 7]):
        image, target = test[i]
        assert_image(image, sources[f"test/ILSVRC2012_test_{number:08d}.JPEG"])
        assert target is None
        assert test.get_class_id(i) is None and test.get_class_name(i) is None
    assert test.get_targets() is None
    with pytest.raises(ConfigError, match="class ids are not available for the TEST split"):
        test.find_class_id(0)
    enumerated = DatasetWithEnumeratedTargets(test)
    image, (index, target) = enumerated[2]
    assert (index, target) == (2, 2)  # a None target becomes the index
    assert enumerated.get_target(2) == (2, None)  # not in get_target
    assert enumerated.get_image_data(1) == jpeg(sources["test/ILSVRC2012_test_00000002.JPEG"])
    assert len(enumerated) == 3


def test_imagenet_split_layout_helpers():
    split = ImageNet.Split
    assert split.TRAIN.get_image_relpath(7, "n01") == "train/n01/n01_7.JPEG"
    assert split.VAL.get_image_relpath(7, "n01") == "val/n01/ILSVRC2012_val_00000007.JPEG"
    assert split.TEST.get_image_relpath(12) == "test/ILSVRC2012_test_00000012.JPEG"
    assert split.VAL.parse_image_relpath("val/n02/ILSVRC2012_val_00000031.JPEG") == ("n02", 31)
    assert [s.length for s in split] == [1_281_167, 50_000, 100_000]
    with pytest.raises(ConfigError):
        split.TEST.parse_image_relpath("test/ILSVRC2012_test_00000001.JPEG")


def test_imagenet_errors(imagenet, tmp_path):
    root, extra, _ = imagenet
    dataset = ImageNet(split="VAL", root=root, extra=extra)
    with pytest.raises(DatasetNotFoundError, match=r"entries-VAL\.npy: ImageNet extra file not"):
        len(dataset)
    dataset.dump_extra()
    strict = ImageNet(split="VAL", root=root, extra=extra, check_length=True)
    with pytest.raises(DatasetFormatError, match="holds 4 entries; the full ImageNet VAL split"):
        len(strict)
    with pytest.raises(DatasetSplitError):
        ImageNet(split="DEV", root=root, extra=extra)
    (extra / "entries-TRAIN.npy").write_bytes(b"garbage")
    with pytest.raises(CorruptIndexError):
        len(ImageNet(split="TRAIN", root=root, extra=extra))

    (root / "labels.txt").unlink()
    with pytest.raises(DatasetReadError, match=r'^can not read labels file ".*labels\.txt"$'):
        ImageNet(split="TRAIN", root=root, extra=tmp_path / "x").dump_extra()
    (root / "labels.txt").write_text("n01440764,tench\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="has no row for the class folders n01443537"):
        ImageNet(split="TRAIN", root=root, extra=tmp_path / "x").dump_extra()
    assert not (tmp_path / "x" / "entries-TRAIN.npy").exists()


def test_imagenet_pickles_without_its_memory_maps(imagenet):
    root, extra, sources = imagenet
    dataset = ImageNet(split="TRAIN", root=root, extra=extra)
    dataset.dump_extra()
    assert len(dataset) == 6  # maps the entries
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._entries is None
    assert copy[1][1] == 0
    assert_image(copy[1][0], sources["train/n01440764/n01440764_9.JPEG"])


# --- ImageNet22k -------------------------------------------------------------------------------


@pytest.fixture
def imagenet22k(tmp_path):
    root = tmp_path / "in22k"
    classes = {"n00004475": [0, 1, 2], "n00005787": [3], "n06470073": [4, 5]}
    sources = write_imagenet22k(root, classes)
    return root, tmp_path / "extra22k", sources


def test_imagenet22k_dump_extra_and_samples(imagenet22k):
    root, extra, sources = imagenet22k
    ImageNet22k(root=root, extra=extra).dump_extra()
    entries = np.load(extra / "entries.npy")
    assert entries.dtype.names == (
        "class_index",
        "class_id",
        "start_offset",
        "end_offset",
        "filename",
    )
    assert entries.dtype["start_offset"] == np.dtype("<u4")
    with tarfile.open(root / "n00004475.tar") as tar:
        members = tar.getmembers()
    ends = [m.offset_data + (m.size + 511) // 512 * 512 for m in members]
    rows = [row for row in entries.tolist() if row[1] == "n00004475"]
    assert rows == [(0, "n00004475", m.offset, end, m.name) for m, end in zip(members, ends)]
    assert np.load(extra / "class-ids.npy").tolist() == ["n00004475", "n00005787", "n06470073"]

    dataset = make_dataset(dataset_str=f"ImageNet22k:root={root}:extra={extra}")
    assert isinstance(dataset, ImageNet22k)
    names = [str(name) for name in entries["filename"]]
    assert len(dataset) == 6 and len(names) == 6
    for i, name in enumerate(names):
        image, target = dataset[i]
        assert_image(image, sources[name])
        assert target == int(entries["class_index"][i])
        assert dataset.get_image_data(i)[: len(jpeg(sources[name]))] == jpeg(sources[name])
    assert dataset.get_targets().tolist() == [0, 0, 0, 1, 2, 2]
    assert dataset.get_class_id(3) == "n00005787"
    assert dataset.find_class_id(2) == "n06470073"


def test_imagenet22k_skips_the_known_broken_file_and_gunzips(tmp_path):
    root, folder = tmp_path / "in22k", tmp_path / "members"
    compressed = gzip.compress(jpeg(7), mtime=0)
    write_file(folder / "n06470073_47249.JPEG", b"broken")
    write_file(folder / "n06470073_1.JPEG", compressed)
    (root / "blocks").mkdir(parents=True)
    with tarfile.open(root / "n06470073.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("n06470073_47249.JPEG", "n06470073_1.JPEG"):
            tar.add(folder / name, arcname=name)
    with tarfile.open(root / "n06470073.tar") as tar:
        members = tar.getmembers()
        end_block = (members[-1].offset_data + 511) // 512 + (members[-1].size + 511) // 512
    log = "".join(f"block {m.offset // 512}: {m.name}\n" for m in members)
    (root / "blocks" / "n06470073.log").write_text(
        log + f"block {end_block}: ** Block of NULs **\n"
    )
    dataset = ImageNet22k(root=root, extra=tmp_path / "extra")
    dataset.dump_extra()
    assert len(dataset) == 1
    assert dataset.get_image_data(0).rstrip(b"\0") == jpeg(7).rstrip(b"\0")
    assert_image(dataset[0][0], 7)


def test_imagenet22k_cache_and_pickle(imagenet22k):
    root, extra, sources = imagenet22k
    dataset = ImageNet22k(root=root, extra=extra, mmap_cache_size=1)
    dataset.dump_extra()
    for i in (0, 3, 4, 0):
        dataset[i]
    assert list(dataset._maps) == ["n00004475"]  # only the most recent tarball stays mapped
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._maps == {} and copy._entries is None
    assert_image(copy[5][0], sources["n06470073_5.JPEG"])
    dataset.close()
    assert dataset._maps == {}


def test_read_block_list_errors(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("block 0: a.JPEG\nblock 3: b.JPEG\n")
    with pytest.raises(DatasetFormatError, match="does not end with the"):
        read_block_list(log)
    log.write_text("block 3: a.JPEG\nblock 1: ** Block of NULs **\n")
    with pytest.raises(DatasetFormatError, match="line 2: block 1 goes backwards"):
        read_block_list(log)
    log.write_text("block zero: a.JPEG\n")
    with pytest.raises(DatasetFormatError, match="line 1: expected 'block <n>: <name>'"):
        read_block_list(log)
    log.write_text("block 0: dir/\nblock 1: dir/a:b.JPEG\nblock 4: ** Block of NULs **\n")
    assert read_block_list(log) == [("dir/a:b.JPEG", 512, 2048)]
    with pytest.raises(DatasetReadError, match="can not read blocks file"):
        read_block_list(tmp_path / "missing.log")
    with pytest.raises(DatasetNotFoundError, match=r"no <class_id>\.tar tarball found"):
        ImageNet22k(root=tmp_path, extra=tmp_path).dump_extra()
    with pytest.raises(ConfigError, match="mmap_cache_size must be >= 1"):
        ImageNet22k(root=tmp_path, extra=tmp_path, mmap_cache_size=0)


# --- Packed ------------------------------------------------------------------------------------


def test_packed_single_file(tmp_path):
    path = write_packed(tmp_path / "train.msgpack", range(5))
    dataset = make_dataset(dataset_str=f"Packed:path={path}")
    assert isinstance(dataset, PackedDataset)
    assert len(dataset) == 5
    for i in range(5):
        image, target = dataset[i]
        assert_image(image, i)
        assert target == i % NUM_CLASSES == dataset.get_target(i)
        assert dataset.get_image_data(i) == jpeg(i)
    with pytest.raises(IndexError):
        dataset[5]


def test_packed_glob_of_shards_in_sorted_order(tmp_path):
    write_packed(tmp_path / "train-01.msgpack", range(3, 5))
    write_packed(tmp_path / "train-00.msgpack", range(0, 3))
    write_packed(tmp_path / "other.msgpack", range(9, 10))
    dataset = make_dataset(
        dataset_str=f"Packed:path={tmp_path}/train-*", target_transform=lambda t: -t
    )
    assert dataset.shards == [str(tmp_path / f"train-0{i}.msgpack") for i in range(2)]
    assert len(dataset) == 5
    for i in range(5):
        image, target = dataset[i]
        assert_image(image, i)
        assert target == -(i % NUM_CLASSES)


def test_packed_data_field_missing_label_and_pixel_arrays(tmp_path):
    data = make_dataset(
        dataset_str=f"Packed:path={write_packed(tmp_path / 'd.msgpack', range(2), field='data', label=False)}"
    )
    image, target = data[1]
    assert_image(image, 1)
    assert target is None
    assert DatasetWithEnumeratedTargets(data)[1][1] == (1, 1)

    from shardstream import FileWriter

    array = pixels(0)[:5, :7]
    with FileWriter(tmp_path / "a.msgpack", overwrite=True, disable=True) as writer:
        writer.write({"key": "a", "image": array, "label": 4})
        writer.write({"key": "b", "pixels": b"", "label": 5})
        writer.write({"key": "c", "image": b"\xff\xd8 broken", "label": 6})
    arrays = PackedDataset(path=tmp_path / "a.msgpack")
    image, target = arrays[0]
    assert (image.size, image.mode, target) == ((7, 5), "RGB", 4)
    np.testing.assert_array_equal(np.asarray(image), array)
    with pytest.raises(
        DatasetFormatError,
        match="sample 1 has no image field .image or data.; its fields are key, pixels, label",
    ):
        arrays[1]
    with pytest.raises(DatasetReadError, match="can not read image for sample 2"):
        arrays[2]


def test_packed_errors_and_pickling(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        PackedDataset(path=tmp_path / "missing.msgpack")
    with pytest.raises(DatasetNotFoundError, match="the glob pattern matches no packed data set"):
        PackedDataset(path=tmp_path / "none-*")
    dataset = PackedDataset(path=write_packed(tmp_path / "p.msgpack", range(2)))
    dataset[0]
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._reader is None
    assert_image(copy[1][0], 1)
    dataset.close()
    assert_image(dataset[1][0], 1)  # reopens


def test_transforms_argument_rules(tmp_path):
    path = write_packed(tmp_path / "p.msgpack", range(1))
    with pytest.raises(ConfigError, match="either transforms or transform/target_transform"):
        ImageNet(split="TRAIN", root=tmp_path, extra=tmp_path, transforms=print, transform=print)
    dataset = ImageNet(
        split="TRAIN", root=tmp_path, extra=tmp_path, transforms=lambda i, t: ("pair", t)
    )
    assert dataset.transform is None and dataset.target_transform is None
    packed = PackedDataset(path=path, transform=lambda image: image.size)
    assert packed[0] == ((pixels(0).shape[1], pixels(0).shape[0]), 0)
    assert repr(packed) == f"PackedDataset(root={str(path)!r}, samples=1)"
