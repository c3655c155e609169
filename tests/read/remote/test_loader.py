"""The Loader over remote sets gives exactly the batches of the same set in local files:
shuffled with the DINO preset and workers, resumed mid-epoch, and on 2 gloo ranks x 2 workers
that share one node cache and download every shard once."""

from __future__ import annotations

import numpy as np
import torch

from shardstream import Loader
from shardstream.vision.dino import DinoPreset
from tests.contracts.dist_harness import run_world

TINY_DINO = dict(
    global_crops_size=32, local_crops_size=16, local_crops_number=2, patch_size=8, colour="workers"
)


def dino_loader(source, **remote):
    return (
        Loader(source, seed=11, **remote)
        .batch(8)
        .shuffle(buffer_size=0.1)
        .pytorch(num_workers=2)
        .preset(DinoPreset(**TINY_DINO), device="cpu")
    )


def as_arrays(batch) -> dict:
    out = {}
    for name, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[name] = value.numpy().copy()
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            out[name] = [v.numpy().copy() for v in value]
        else:
            out[name] = value
    return out


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def epoch(loader) -> list:
    return [as_arrays(b) for b in loader]


def test_dino_preset_over_s3_and_resume_match_local(moto_s3, served_root, tmp_path):
    remote = dict(storage_options=moto_s3.options, cache_dir=tmp_path / "cache", prefetch_shards=2)
    url = "s3://sets/images/i.manifest"
    local = epoch(dino_loader(served_root / "images" / "i.manifest"))
    assert len(local) == 6
    assert same(epoch(dino_loader(url, **remote)), local)
    # resume after 2 batches, in a fresh loader (warm cache)
    first = dino_loader(url, **remote)
    it = iter(first)
    head = [as_arrays(next(it)) for _ in range(2)]
    state = first.state_dict()
    first.close()
    resumed = dino_loader(url, **remote)
    resumed.load_state_dict(state)
    assert same(head + epoch(resumed), local)


def _rank_job(rank: int, world: int, url: str, local: str, cache: str) -> dict:
    def loader(source, **remote):
        return (
            Loader(source, seed=5, **remote)
            .batch(3)
            .shuffle()
            .pytorch(num_workers=2, tensors=["label"], distributed=True)
        )

    got = [{k: np.asarray(v).tolist() for k, v in b.items()} for b in loader(url, cache_dir=cache)]
    want = [{k: np.asarray(v).tolist() for k, v in b.items()} for b in loader(local)]
    return {"got": got, "want": want}


def test_two_gloo_ranks_two_workers_match_local_and_download_each_shard_once(
    http, served_root, tmp_path
):
    manifest = served_root / "images" / "i.manifest"
    results = run_world(
        2, _rank_job, f"{http.url}/images/i.manifest", str(manifest), str(tmp_path / "cache")
    )
    for result in results:
        assert result["got"] == result["want"] and len(result["got"]) == 8
    seen = sorted(i for r in results for b in r["got"] for i in b["index"])
    assert seen == list(range(48))
    shards = sorted(p.name for p in manifest.parent.glob("i-*.msgpack"))
    assert len(shards) >= 5
    for name in shards:  # one download per shard for the whole node
        assert http.whole[f"/images/{name}"] == 1, (name, dict(http.whole))
        # besides it only byte ranges of single samples (each rank's probe of sample 0)
        assert http.gets[f"/images/{name}"] <= 3
