"""compat.datadings.commands: datadings' command modules and functions, run by shardstream's
command line, give datadings' outputs (bytes equal where datadings is deterministic)."""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

pytest.importorskip("datadings")

from datadings.commands import cat as dd_cat  # noqa: E402
from datadings.commands import convert_index as dd_convert_index  # noqa: E402
from datadings.commands import merge as dd_merge  # noqa: E402
from datadings.commands import sample as dd_sample  # noqa: E402
from datadings.commands import shuffle as dd_shuffle  # noqa: E402
from datadings.commands import split as dd_split  # noqa: E402
from datadings.commands import write as dd_write  # noqa: E402
from datadings.reader import MsgpackReader as DatadingsReader  # noqa: E402
from datadings.writer import FileWriter as DatadingsWriter  # noqa: E402

from shardstream.compat.datadings.commands import (  # noqa: E402
    bench,
    cat,
    convert_index,
    merge,
    sample,
    shuffle,
    split,
    write,
)

INDEX = (".msgpack", ".msgpack.offsets", ".msgpack.keys", ".msgpack.key_hashes", ".msgpack.filter")


def _dataset(path: Path, n: int = 20, prefix: str = "s") -> Path:
    with DatadingsWriter(path, disable=True) as writer:
        for i in range(n):
            writer.write({"key": f"{prefix}{i:02d}", "label": i % 3, "txt": "x" * i})
    return path


def _files(path: Path) -> list[bytes]:
    stem = str(path).removesuffix(".msgpack")
    return [Path(stem + suffix).read_bytes() for suffix in INDEX]


def _samples(path: Path) -> list[dict]:
    with DatadingsReader(path) as reader:
        return list(reader)


@pytest.fixture
def data(tmp_path) -> Path:
    return _dataset(tmp_path / "data.msgpack")


def _datadings_main(module, monkeypatch, *argv: object) -> None:
    monkeypatch.setattr(sys, "argv", [module.__name__, *map(str, argv)])
    module.main()


def test_cat_prints_what_datadings_prints(data, monkeypatch, capsys):
    _datadings_main(dd_cat, monkeypatch, data, "-s", 8)
    theirs = capsys.readouterr().out
    assert cat.main([str(data), "-s", "8"]) == 0
    assert capsys.readouterr().out == theirs
    cat.cat(str(data), 8)
    assert capsys.readouterr().out == theirs
    assert theirs.splitlines()[1] == "{'key': 's01', 'label': 1, 'txt': 'x'}"


@pytest.mark.parametrize("strategy", ["sequential", "random"])
def test_sample_writes_datadings_bytes(data, tmp_path, monkeypatch, strategy):
    _datadings_main(dd_sample, monkeypatch, data, tmp_path / "dd.msgpack", 7, "-s", strategy)
    assert sample.main([str(data), str(tmp_path / "a.msgpack"), "7", "-s", strategy]) == 0
    sample.sample(str(data), str(tmp_path / "b.msgpack"), 7, strategy)
    expected = _files(tmp_path / "dd.msgpack")
    assert _files(tmp_path / "a.msgpack") == expected
    assert _files(tmp_path / "b.msgpack") == expected
    assert len(_samples(tmp_path / "a.msgpack")) == 7


def test_split_writes_datadings_bytes(data, tmp_path, monkeypatch):
    dd = [tmp_path / "dd0.msgpack", tmp_path / "dd1.msgpack"]
    with pytest.raises(IndexError):  # datadings seeks past the end after the last part
        _datadings_main(dd_split, monkeypatch, data, 6, "-o", *dd, "-y")
    ours = [str(tmp_path / "a0.msgpack"), str(tmp_path / "a1.msgpack")]
    assert split.main([str(data), "6", "-o", *ours, "-y"]) == 0
    fun = [str(tmp_path / "b0.msgpack"), str(tmp_path / "b1.msgpack")]
    split.split_dataset(str(data), fun, [6], True)
    for theirs, a, b in zip(dd, ours, fun, strict=True):
        assert _files(Path(a)) == _files(theirs) == _files(Path(b))
    assert [s["key"] for s in _samples(dd[1])][0] == "s06"


def test_merge_concat_writes_datadings_bytes(tmp_path):
    one = _dataset(tmp_path / "one.msgpack", 5, "a")
    two = _dataset(tmp_path / "two.msgpack", 4, "b")
    # datadings' merge main() crashes on args.infiles; its merge_concat is the oracle
    dd_merge.merge_concat([str(one), str(two)], str(tmp_path / "dd.msgpack"), False)
    assert merge.main([str(one), str(two), str(tmp_path / "m.msgpack"), "-s", "concat"]) == 0
    merge.merge_concat([str(one), str(two)], str(tmp_path / "f.msgpack"), False)
    expected = _files(tmp_path / "dd.msgpack")
    assert _files(tmp_path / "m.msgpack") == expected == _files(tmp_path / "f.msgpack")


def test_merge_random_keeps_every_sample_in_input_order(tmp_path):
    one = _dataset(tmp_path / "one.msgpack", 5, "a")
    two = _dataset(tmp_path / "two.msgpack", 4, "b")
    merge.merge_random([str(one), str(two)], str(tmp_path / "r.msgpack"), shuffle=False)
    keys = [s["key"] for s in _samples(tmp_path / "r.msgpack")]
    assert sorted(keys) == [f"a{i:02d}" for i in range(5)] + [f"b{i:02d}" for i in range(4)]
    assert [k for k in keys if k[0] == "a"] == [f"a{i:02d}" for i in range(5)]


def test_merge_helpers_equal_datadings():
    assert list(merge.cumsum([1, 2, 3])) == list(dd_merge.cumsum([1, 2, 3])) == [1, 3, 6]
    assert merge.setup_ranges([1, 3]) == dd_merge.setup_ranges([1, 3]) == [0.25, 1.0]
    ranges = merge.setup_ranges([2, 5, 3])
    random.seed(5)
    theirs = [dd_merge.select_set(ranges) for _ in range(50)]
    random.seed(5)
    assert [merge.select_set(ranges) for _ in range(50)] == theirs
    assert set(theirs) == {0, 1, 2}
    with pytest.raises(ZeroDivisionError):
        merge.setup_ranges([0, 0])


@pytest.mark.parametrize("true_shuffle", [False, True])
def test_shuffle_writes_a_permutation(data, tmp_path, monkeypatch, true_shuffle):
    flags = ["--true-shuffle"] if true_shuffle else ["--buf-size", "0.5", "--chunk-size", "2"]
    _datadings_main(dd_shuffle, monkeypatch, data, tmp_path / "dd.msgpack", "-y", *flags)
    assert shuffle.main([str(data), str(tmp_path / "a.msgpack"), "-y", *flags]) == 0
    args = argparse.Namespace(
        true_shuffle=true_shuffle, buf_size=0.5, chunk_size=2, no_confirm=True
    )
    shuffle.shuffle(str(data), str(tmp_path / "b.msgpack"), args)
    expected = sorted(_samples(tmp_path / "dd.msgpack"), key=lambda s: s["key"])
    assert expected == _samples(data)
    for name in ("a.msgpack", "b.msgpack"):
        assert sorted(_samples(tmp_path / name), key=lambda s: s["key"]) == expected


def _legacy(folder: Path) -> Path:
    path = _dataset(folder / "old.msgpack")
    offsets = DatadingsReader(path)._offsets.tolist()
    keys = [s["key"] for s in _samples(path)]
    (folder / "old.msgpack.index").write_bytes(msgpack.packb(dict(zip(keys, offsets[:-1]))))
    for suffix in INDEX[1:]:
        Path(str(path).removesuffix(".msgpack") + suffix).unlink()
    md5 = Path(str(path) + ".md5")
    md5.write_text("".join(line + "\n" for line in md5.read_text().splitlines()[:1]))
    return path


def test_convert_index_writes_datadings_bytes(tmp_path, monkeypatch):
    folders = [tmp_path / name for name in ("dd", "main", "fun")]
    for folder in folders:
        folder.mkdir()
    paths = [_legacy(folder) for folder in folders]
    _datadings_main(dd_convert_index, monkeypatch, paths[0])
    assert convert_index.main([str(paths[1])]) == 0
    convert_index.convert_index(str(paths[2]), None)
    expected = _files(paths[0])
    md5 = sorted(Path(str(paths[0]) + ".md5").read_text().splitlines())
    assert len(md5) == 5
    for path in paths[1:]:
        assert _files(path) == expected
        assert sorted(Path(str(path) + ".md5").read_text().splitlines()) == md5


def test_bench_accepts_datadings_options_including_buffering(data, capsys):
    assert bench.main([str(data), "-b", "4096", "-s", "-r"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^20 samples read in [\d.]+ seconds", out, re.M), out
    bench.bench(
        bench.reader_msgpack,
        argparse.Namespace(infile=str(data), buffering=4096, shuffle=True, raw=False),
    )
    line = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"20 samples read in [\d.]+ seconds, [\d.]+ samples/s, [\d.]+ MB/s", line)


def test_bench_directory_reader(tmp_path, capsys):
    for label in ("a", "b"):
        (tmp_path / "tree" / label).mkdir(parents=True)
        (tmp_path / "tree" / label / "f.bin").write_bytes(b"12345")
    args = argparse.Namespace(
        infile=str(tmp_path / "tree" / "{LABEL}" / "**"),
        separator="\t",
        include=(),
        exclude=(),
        root_dir="",
        shuffle=False,
        raw=False,
    )
    reader, size = bench.reader_directory(args)
    assert (len(reader), size) == (2, 0)
    bench.bench(bench.reader_directory, args)
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 samples read in ")


def test_write_lists_the_sets_datadings_knows(capsys):
    ours = write.find_writers()
    assert "VOC2012" in ours
    assert set(ours) <= set(dd_write.find_writers())
    assert write.format_writers(sorted(ours)) == dd_write.format_writers(sorted(ours))
    assert write.writer_link("VOC2012") == (
        ":py:mod:`VOC2012 <shardstream.compat.datadings.sets.VOC2012_write>`"
    )
    assert write.main([]) == 1
    assert "VOC2012" in capsys.readouterr().out
    assert write.main(["-h"]) == 0
    with pytest.raises(SystemExit) as stop:
        write.main(["voc2012", "--help"])
    assert stop.value.code == 0
    assert "label_image" in capsys.readouterr().out


def test_set_write_module_main_runs_shardstream_write(capsys):
    from shardstream.compat.datadings.sets import VOC2012, VOC2012_write

    assert VOC2012_write.main is not None and not hasattr(VOC2012, "main")
    assert VOC2012.CLASSES[:2] == ["background", "aeroplane"]
    with pytest.raises(SystemExit) as stop:
        VOC2012_write.main(["--help"])
    assert stop.value.code == 0
    assert "VOCtrainval_11-May-2012.tar" in capsys.readouterr().out


def test_commands_run_as_modules(data):
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "shardstream.compat.datadings.commands.cat", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "{'key': 's00', 'label': 0, 'txt': ''}"


def test_set_write_module_runs_as_datadings_command_line(tmp_path):
    """``python -m datadings.sets.VOC2012_write ARGS`` with only the module prefix changed
    writes datadings' bytes."""
    import tarfile

    from tests.sets.test_voc2012 import ROOT, _add, _jpeg, _label_png

    indir = tmp_path / "src"
    indir.mkdir()
    with tarfile.open(indir / "VOCtrainval_11-May-2012.tar", "w") as tar:
        for split, names in {
            "train": ["2007_000032", "2007_000039"],
            "val": ["2007_000033"],
        }.items():
            _add(tar, f"{ROOT}/ImageSets/Segmentation/{split}.txt", "\n".join(names).encode())
            for seed, name in enumerate(names):
                _add(tar, f"{ROOT}/JPEGImages/{name}.jpg", _jpeg(seed))
                _add(tar, f"{ROOT}/SegmentationClass/{name}.png", _label_png(seed))
    outs = {}
    for package in ("datadings", "shardstream.compat.datadings"):
        out = tmp_path / package.replace(".", "_")
        argv = [str(indir), "-o", str(out), "-y", "-s", "--shuffle", "no"]
        done = subprocess.run(
            [sys.executable, "-m", f"{package}.sets.VOC2012_write", *argv],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outs[package] = out
    for split in ("train", "val"):
        theirs = _files(outs["datadings"] / f"{split}.msgpack")
        assert _files(outs["shardstream.compat.datadings"] / f"{split}.msgpack") == theirs
    assert [s["key"] for s in _samples(outs["datadings"] / "train.msgpack")] == [
        "2007_000032",
        "2007_000039",
    ]
