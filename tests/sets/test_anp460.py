"""ANP460: shardstream's writer equals datadings 3.4.7's on miniature images_original.zip and
wrangled_data.zip. datadings always shuffles this set (unseeded): both run with one seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_zip

IMAGES = ["images_original/0.jpg", "images_original/1.jpg", "images_original/2.jpg"]


def _fixations(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 800, (int(rng.integers(2, 7)), 4))
    return "".join(",".join(map(str, row)) + "\r\n" for row in rows).encode()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("anp460")
    write_zip(root / "images_original.zip", {name: jpeg(i) for i, name in enumerate(IMAGES)})
    anps = {"0.jpg": ["happy dog", "positive"], "1.jpg": ["dark street", "negative"]}
    anps["2.jpg"] = ["old car", "neutral"]
    data = {"wrangled_data/image_anp_list.json": json.dumps(anps).encode()}
    for s, subject in enumerate(["s01", "s02"]):
        answers = "".join(
            f"{i},{'yes' if (i + s) % 2 else 'no'},{1.5 + i + s}\r\n" for i in range(3)
        )
        data[f"wrangled_data/{subject}/answer.txt"] = answers.encode()
        for i in range(3):
            data[f"wrangled_data/{subject}/{i}.txt"] = _fixations(10 * s + i)
    write_zip(root / "wrangled_data.zip", data)
    return root


@pytest.mark.parametrize("seed", [0, 7])
def test_equals_datadings_with_one_seed(seed: int, indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("ANP460", indir, tmp_path, ["ANP460.msgpack"], seed=seed)
    samples = written["ANP460.msgpack"]
    assert sorted(s["key"] for s in samples) == IMAGES
    sample = next(s for s in samples if s["key"] == "images_original/1.jpg")
    assert list(sample) == ["key", "image", "experiments", "anp", "type"]
    assert (sample["anp"], sample["type"]) == ("dark street", "negative")
    assert [list(e) for e in sample["experiments"]] == [
        ["locations", "map", "answer", "duration"]
    ] * 2
    assert [(e["answer"], e["duration"]) for e in sample["experiments"]] == [
        ("yes", 2.5),
        ("no", 3.5),
    ]
    assert sample["experiments"][0]["locations"].dtype == np.float32
