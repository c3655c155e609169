"""bench_convert.py's ILSVRC2012 row runs end to end on a tiny demo set: both writers convert the
same per-class tars and their outputs are byte-identical."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_convert  # noqa: E402


def test_tiny_ilsvrc2012_row(tmp_path, capsys):
    argv = ["--images", "24", "--repeats", "1", "--ilsvrc2012-only"]
    argv += ["--workdir", str(tmp_path / "work"), "--write-dir", str(tmp_path / "out")]
    assert bench_convert.main(argv) == 0
    out = capsys.readouterr().out
    assert "ILSVRC2012 layout: 24 train images in 10 class tars + 10 val images" in out
    assert "ILSVRC2012 train tar (peer: datadings' writer)" in out
    assert "outputs byte-identical" in out and "DIFFER" not in out
    assert ">=1.5x" in out and "CPU seconds per run" in out
    train = tmp_path / "work" / "ilsvrc2012-24" / "ILSVRC2012_img_train.tar"
    with tarfile.open(train) as outer:
        names = outer.getnames()
        assert names == ["n01440764.tar", "n01443537.tar", "n01484850.tar", "n01491361.tar",
                         "n01494475.tar", "n01496331.tar", "n01498041.tar", "n01514668.tar",
                         "n01514859.tar", "n01518878.tar"]  # fmt: skip
        with tarfile.open(fileobj=outer.extractfile(names[0])) as inner:
            assert inner.getnames() == ["n01440764_0.JPEG", "n01440764_1.JPEG", "n01440764_2.JPEG"]
    assert not (tmp_path / "out").exists()  # timed outputs removed
