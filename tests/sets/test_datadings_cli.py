"""``shardstream write NAME`` for datadings' sets: names in any case, datadings' arguments, help
texts listing source files, URLs and sample keys, and the engine's options on such sets."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from shardstream.cli import main
from shardstream.cli.write import converter_modules
from shardstream.sets import _datadings

from .datadings_oracle import read_samples
from .datadings_sources import jpeg, write_zip

SETS = {
    "ADE20k", "ANP460", "CAMVID", "CAT2000", "Cityscapes", "Coutrot1", "FIGRIMFixation",
    "ImageNet21k", "InriaBuildings", "MIT1003", "MIT300", "Places2017", "Places365", "RIT18",
    "SALICON2015", "SALICON2017", "VOC2012", "Vaihingen",
}  # fmt: skip


def _datadings_sets() -> dict:
    return {n: m for n, m in converter_modules().items() if _datadings.is_datadings_set(m)}


def test_every_set_is_registered_with_datadings_name_and_fields() -> None:
    found = _datadings_sets()
    assert set(found) >= SETS
    for name, module in found.items():
        assert importlib.util.find_spec(f"datadings.sets.{name}_write") is not None, name
        assert module.FIELDS[0][0] == "key" and module.FIELDS[1][0] == "image", name
        assert module.SOURCES or module.UNLISTED_SOURCES, name


def test_write_help_lists_every_set() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "write", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for name in SETS:
        assert name in result.stdout


@pytest.mark.parametrize("typed", ["voc2012", "VOC2012", "Voc2012"])
def test_set_help_in_any_case_shows_sources_urls_and_keys(
    typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["write", typed, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "usage: shardstream write VOC2012" in out
    assert "VOCtrainval_11-May-2012.tar  md5 6cd6e144f989b92b3379bac3b3de84fd" in out
    assert "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar" in out
    for key in ("key", "image", "label_image"):
        assert f"\n  {key} " in out
    for option in ("--outdir", "--skip-verification", "--shuffle", "--on-error", "--workers"):
        assert option in out


def test_every_set_help_names_each_source_and_field() -> None:
    for name, module in _datadings_sets().items():
        text = _datadings.describe(module)
        for source in module.SOURCES:
            assert source.name in text and source.md5 in text, name
            assert (source.url or "no download URL") in text, name
        for field, _ in module.FIELDS:
            assert f"\n  {field} " in text, name


@pytest.fixture
def mit300(tmp_path: Path) -> Path:
    indir = tmp_path / "in"
    indir.mkdir()
    members = {"BenchmarkIMAGES/i1.jpg": jpeg(1), "BenchmarkIMAGES/i2.jpg": b"not a JPEG"}
    members["BenchmarkIMAGES/i3.jpg"] = jpeg(3)
    write_zip(indir / "BenchmarkIMAGES.zip", members)
    return indir


def test_outdir_defaults_to_indir_and_bad_images_stop_or_are_skipped(
    mit300: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["write", "mit300", str(mit300), "-s", "--shuffle", "no", "--quiet", "-y"]
    assert main(argv) == 1
    assert "BenchmarkIMAGES.zip:BenchmarkIMAGES/i2.jpg" in capsys.readouterr().err
    assert not (mit300 / "MIT300.msgpack").exists()
    assert main([*argv, "--on-error", "skip"]) == 0
    samples = read_samples(mit300 / "MIT300.msgpack")
    assert [s["key"] for s in samples] == ["BenchmarkIMAGES/i1.jpg", "BenchmarkIMAGES/i3.jpg"]
    report = (mit300 / "MIT300.msgpack.skipped.tsv").read_text().splitlines()
    assert len(report) == 2 and report[1].startswith(f"{mit300}/BenchmarkIMAGES.zip:")


def test_wrong_md5_is_refused_unless_skipped(mit300: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["write", "MIT300", str(mit300), "-o", str(out), "--quiet", "--on-error", "skip"]
    assert main(argv) == 1  # the miniature is not the official archive
    assert not out.exists() or not list(out.iterdir())
    assert main([*argv, "-s"]) == 0
    assert len(read_samples(out / "MIT300.msgpack")) == 2


def test_missing_source_without_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["write", "MIT300", str(tmp_path), "--no-download", "--quiet"]) == 1
    assert "BenchmarkIMAGES.zip is not in" in capsys.readouterr().err


def test_missing_source_without_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["write", "cityscapes", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "leftImg8bit_trainvaltest.zip is not in" in err and "cityscapes-dataset.com" in err


def test_shuffle_is_the_default_and_a_seed_repeats_it(mit300: Path, tmp_path: Path) -> None:
    members = {f"BenchmarkIMAGES/i{i}.jpg": jpeg(i) for i in range(12)}
    write_zip(mit300 / "BenchmarkIMAGES.zip", members)
    orders = []
    for run, seed in enumerate(["5", "5", None]):
        out = tmp_path / f"out{run}"
        extra = ["--seed", seed] if seed else []
        assert main(["write", "MIT300", str(mit300), "-o", str(out), "-s", "--quiet", *extra]) == 0
        orders.append([s["key"] for s in read_samples(out / "MIT300.msgpack")])
    assert orders[0] == orders[1] and sorted(orders[0]) == sorted(members)
    assert orders[0] != sorted(members, key=list(members).index)  # 12! orders: not the source's
    assert sorted(orders[2]) == sorted(members)


def test_shards_for_a_datadings_set(mit300: Path, tmp_path: Path) -> None:
    members = {f"BenchmarkIMAGES/i{i}.jpg": jpeg(i, (64, 48)) for i in range(8)}
    write_zip(mit300 / "BenchmarkIMAGES.zip", members)
    out = tmp_path / "out"
    argv = ["write", "MIT300", str(mit300), "-o", str(out), "-s", "--shuffle", "no", "--quiet"]
    assert main([*argv, "--shard-size", "4K"]) == 0
    assert (out / "MIT300.manifest").is_file()
    assert len(list(out.glob("MIT300-*.msgpack"))) >= 2


def test_names_differing_only_in_case_stay_apart() -> None:
    import argparse

    from shardstream.cli.write import _AnyCaseSubParsers

    parser = argparse.ArgumentParser()
    formats = parser.add_subparsers(dest="format", action=_AnyCaseSubParsers)
    for name in ("cifar10", "CIFAR10", "VOC2012"):
        formats.add_parser(name)
    assert parser.parse_args(["cifar10"]).format == "cifar10"
    assert parser.parse_args(["CIFAR10"]).format == "CIFAR10"
    assert parser.parse_args(["voc2012"]).format == "VOC2012"
    with pytest.raises(SystemExit):
        parser.parse_args(["Cifar10"])  # two names fit: refused as unknown
