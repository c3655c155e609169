"""The engine rows of ``bench_convert.py``: Ray vs local engine vs LitData vs MosaicML, one run.

On the same demo images, with and without re-encoding (max side 512, quality 90), each writer
converts ``root`` into shards of about the same size, timed outputs on tmpfs, the writers
timed in rounds (one run of each per round) so that the shared machine's load drifts evenly:

- shardstream's local engine: ``convert(..., shard_samples=N)`` (worker processes chosen as
  ``shardstream write`` chooses them: with at least as many shards as cores, each worker
  process writes whole shards, md5 included);
- shardstream's Ray engine: the same with ``engine="ray"`` on a local Ray cluster started once
  before the timed runs as the engine starts one (workers at this process' priority, see
  ``local_cluster_options``; its start-up is reported as a fixed cost, not timed in the rate);
  the two outputs are compared byte for byte;
- LitData ``optimize()`` with one worker process per core, forked (its default spawns them:
  ~4 s more per run) and ``keep_data_ordered=False``, each item read (and re-encoded) in its
  workers;
- MosaicML ``MDSWriter``, two ways: one writer fed by a process pool that reads (and
  re-encodes) the images, and one writer per process on a contiguous part of the items followed
  by ``merge_index`` (its documented parallel conversion; no samples cross processes). The
  faster of the three peers is the target's peer.

Every writer gets the same list of the images, made once before the timed runs (the folder
scan's time is printed, not timed in any row), and writes into an empty folder: every output
is removed after its run, untimed (shardstream's are first reduced to md5s of their files, to
check that the Ray engine's equal the local engine's byte for byte).

The peers re-encode with :func:`peer_transcode`: libjpeg-turbo through simplejpeg (DCT-scaled
decode), Pillow's Lanczos, 4:2:0 quality 90: shardstream's own pixel path, the fastest usual user
code. shardstream's engines re-encode with ``transcode_image``, which also has a DCT-domain path
(see ``shardstream/write/transcode.py``): a JPEG that fits and is already quantized with the
quality-90 tables (as the demo photos are) keeps its coefficients instead of being decoded and
encoded again. The rows ``transcode one core`` measure both paths on the same images, so that
the share of the engines' lead owed to it is visible.

Ray fixed costs, measured in the same run: cluster start-up and shut-down (``ray.init`` of a
local cluster), per-task scheduling (a round of no-op tasks), and result traffic (a task
returning 4 MiB, as the streamed mode returns packed samples; shard tasks return ~200 bytes).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import statistics
import time
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from harness import Measurement, Row, Table, measure

from shardstream.sets.imagefolder import scan_folder
from shardstream.write.conversion import convert, default_workers

__all__ = ["engine_rows", "ray_fixed_costs"]

TRANSCODE = {"max_side": 512, "quality": 90}


def peer_transcode(data: bytes, max_side: int, quality: int) -> bytes:
    """The re-encode the peers run: the fastest usual user code, libjpeg-turbo through simplejpeg
    (decoded at the smallest DCT scale still >= 2x the target), Pillow's Lanczos, 4:2:0 at
    ``quality``: shardstream's own pixel path (``transcode_image`` without the DCT-domain
    path, which only shardstream has); other formats through Pillow."""
    import simplejpeg
    from PIL import Image

    from shardstream.write.transcode import REDUCING_GAP, target_size

    if simplejpeg.is_jpeg(data):
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace in ("YCbCr", "Gray"):
            target = target_size(width, height, max_side)
            gray = colorspace == "Gray"
            pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB",
                                            min_width=target[0] * REDUCING_GAP,
                                            min_height=target[1] * REDUCING_GAP)  # fmt: skip
            if (pixels.shape[1], pixels.shape[0]) != target:
                image = Image.fromarray(pixels[:, :, 0] if gray else pixels)
                resized = image.resize(target, Image.Resampling.LANCZOS)
                pixels = np.asarray(resized)
                pixels = pixels[:, :, None] if gray else pixels
            return simplejpeg.encode_jpeg(pixels, quality=quality,
                                          colorspace="GRAY" if gray else "RGB",
                                          colorsubsampling="Gray" if gray else "420")  # fmt: skip
    with Image.open(io.BytesIO(data)) as image:
        converted = image.convert("RGB")
        target = target_size(converted.width, converted.height, max_side)
        if converted.size != target:
            converted = converted.resize(target, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        converted.save(buffer, format="JPEG", quality=quality, subsampling=2)
        return buffer.getvalue()


def _load(path: str, transcode: bool) -> bytes:
    data = Path(path).read_bytes()
    return peer_transcode(data, **TRANSCODE) if transcode else data


def _litdata_item(item: tuple[str, int, str], transcode: bool) -> dict[str, Any]:
    key, label, path = item
    return {"key": key, "image": _load(path, transcode), "label": label}


def litdata_optimize(items: list, out: Path, transcode: bool, shard_bytes: int) -> None:
    """LitData ``optimize()`` of ``items`` ((key, label, path)), one worker per core, with its
    fastest documented settings here: workers forked (its default start method spawns them, a
    fixed ~4 s) and ``keep_data_ordered=False`` (shardstream's output is ordered)."""
    from litdata import optimize

    shutil.rmtree(out, ignore_errors=True)
    optimize(
        fn=functools.partial(_litdata_item, transcode=transcode),
        inputs=items,
        output_dir=str(out),
        chunk_bytes=shard_bytes,
        num_workers=default_workers(),
        verbose=False,
        mode="overwrite",
        start_method="fork",
        keep_data_ordered=False,
    )


def _mds_item(item: tuple[str, int, str], transcode: bool) -> dict[str, Any]:
    key, label, path = item
    return {"key": key, "image": _load(path, transcode), "label": label}


_MDS_COLUMNS = {"key": "str", "image": "bytes", "label": "int"}


def mds_write(items: list, out: Path, transcode: bool, shard_bytes: int) -> None:
    """MosaicML ``MDSWriter`` fed by a process pool (one process per core) reading the items."""
    from streaming import MDSWriter

    shutil.rmtree(out, ignore_errors=True)
    with Pool(default_workers()) as pool, MDSWriter(out=str(out), columns=_MDS_COLUMNS,
                                                    size_limit=shard_bytes) as writer:  # fmt: skip
        for sample in pool.imap(functools.partial(_mds_item, transcode=transcode), items, 32):
            writer.write(sample)


def _mds_part(part: tuple[int, list], out: str, transcode: bool, shard_bytes: int) -> None:
    from streaming import MDSWriter

    index, items = part
    with MDSWriter(out=os.path.join(out, str(index)), columns=_MDS_COLUMNS,
                   size_limit=shard_bytes) as writer:  # fmt: skip
        for item in items:
            writer.write(_mds_item(item, transcode))


def mds_parallel(items: list, out: Path, transcode: bool, shard_bytes: int) -> None:
    """MDS as its documentation converts in parallel: one ``MDSWriter`` per process on a
    contiguous part of the items (no samples sent between processes), then ``merge_index``."""
    from streaming.base.util import merge_index

    shutil.rmtree(out, ignore_errors=True)
    workers = default_workers()
    size = -(-len(items) // workers)
    parts = [(i, items[i * size : (i + 1) * size]) for i in range(workers)]
    with Pool(workers) as pool:
        pool.map(functools.partial(_mds_part, out=str(out), transcode=transcode,
                                   shard_bytes=shard_bytes), parts, 1)  # fmt: skip
    merge_index(str(out), keep_local=True)


def shardstream_engine(items: list, out: Path, engine: str, transcode: bool, shard: int) -> None:
    """``shardstream write imagefolder ROOT -o OUT --shard-samples N [--engine ray]`` on the
    folder's ``items`` (listed before the timed runs, as the peers' list is)."""
    convert(
        items,
        out / "set.manifest",
        shard_samples=shard,
        engine="ray" if engine == "ray" else "local",
        overwrite=True,
        progress=False,
        max_side=TRANSCODE["max_side"] if transcode else None,
        quality=TRANSCODE["quality"] if transcode else None,
    )


def _digests(folder: Path) -> dict[str, str]:
    """md5 of every file of an output folder, by name."""
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _spread(m: Any) -> str:
    return f"median {m.median:.2f} s (min {min(m.seconds):.2f}, max {max(m.seconds):.2f})"


def _interleaved(
    writers: dict[str, Callable[[], None]], count: int, repeats: int, warmup: int
) -> dict[str, Measurement]:
    """Time every writer ``repeats`` times in rounds (one run of each per round), so a change
    in the shared machine's load falls on all of them alike."""
    for _ in range(warmup):
        for name, run in writers.items():
            run()
            shutil.rmtree(_DROPPED[name], ignore_errors=True)
    seconds: dict[str, list[float]] = {name: [] for name in writers}
    for _ in range(repeats):
        for name, run in writers.items():
            seconds[name] += measure(run, items=count, repeats=1, warmup=0).seconds
            if name in _DIGESTS:  # shardstream's outputs: compared after the runs
                _DIGESTS[name] = _digests(_DROPPED[name])
            shutil.rmtree(_DROPPED[name], ignore_errors=True)
    return {name: Measurement(seconds[name], count) for name in writers}


#: outputs removed right after each run, untimed (every writer writes into an empty folder;
#: tmpfs room: 20,000 images are ~2 GB per writer)
_DROPPED: dict[str, Path] = {}
#: the md5s of the last run's files of the shardstream engines, by engine
_DIGESTS: dict[str, dict[str, str]] = {}


def ray_fixed_costs(repeats: int) -> dict[str, float]:
    """Seconds of a local cluster's start-up and shut-down, per no-op task, per 4 MiB result."""
    import ray

    from shardstream.write.ray_engine import local_cluster_options

    options = {"include_dashboard": False, "log_to_driver": False, **local_cluster_options()}
    starts, stops = [], []
    for _ in range(max(1, min(repeats, 2))):
        begin = time.perf_counter()
        ray.init(address="local", **options)
        starts.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        ray.shutdown()
        stops.append(time.perf_counter() - begin)
    ray.init(address="local", **options)  # as the engine starts a cluster for a run
    noop = ray.remote(lambda: None)
    payload = ray.remote(lambda: b"\0" * (4 << 20))
    ray.get([noop.remote() for _ in range(50)])  # workers started
    tasks = 400
    per_task = measure(lambda: ray.get([noop.remote() for _ in range(tasks)]), items=tasks,
                       repeats=repeats)  # fmt: skip
    results = 20
    traffic = measure(lambda: ray.get([payload.remote() for _ in range(results)]), items=results,
                      nbytes=results * (4 << 20), repeats=repeats)  # fmt: skip
    return {
        "start": statistics.median(starts),
        "stop": statistics.median(stops),
        "per_task": per_task.median / tasks,
        "result_mb_per_s": traffic.mb_per_s,
    }


def engine_rows(
    table: Table, root: Path, write_dir: Path, count: int, repeats: int, shard: int
) -> None:
    """Add the engine comparison rows to ``table`` (with and without re-encoding)."""
    import ray

    transcode_rows(table, root, repeats)
    costs = ray_fixed_costs(repeats)  # leaves a local cluster running for the Ray engine
    print(
        f"Ray fixed costs: local cluster start {costs['start']:.2f} s, shut-down "
        f"{costs['stop']:.2f} s; per task (no-op, {default_workers()} CPUs) "
        f"{costs['per_task'] * 1e3:.2f} ms; result traffic {costs['result_mb_per_s']:,.0f} MB/s "
        f"(4 MiB results)",
        flush=True,
    )
    begin = time.perf_counter()
    scanned = scan_folder(root).items
    print(f"folder scan (not timed in any row): {time.perf_counter() - begin:.2f} s", flush=True)
    plain = [(item.key, item.label, item.source) for item in scanned]
    shard_bytes = max(
        1 << 20, sum(Path(p).stat().st_size for _, _, p in plain) // max(1, -(-count // shard))
    )
    try:
        for transcode in (False, True):
            label = "re-encode 512px q90" if transcode else "original bytes"
            runs: dict[str, Any] = {}
            writers: dict[str, Callable[[], None]] = {
                "local": functools.partial(
                    shardstream_engine, scanned, write_dir / "local", "local", transcode, shard
                ),
                "ray": functools.partial(
                    shardstream_engine, scanned, write_dir / "ray", "ray", transcode, shard
                ),
                "litdata": functools.partial(
                    litdata_optimize, plain, write_dir / "litdata", transcode, shard_bytes
                ),
                "mds": functools.partial(
                    mds_write, plain, write_dir / "mds", transcode, shard_bytes
                ),
                "mds-parallel": functools.partial(
                    mds_parallel, plain, write_dir / "mds-parallel", transcode, shard_bytes
                ),
            }
            _DROPPED.update({name: write_dir / name for name in writers})
            _DIGESTS.update(local={}, ray={})
            runs = _interleaved(writers, count, repeats, warmup=0 if transcode else 1)
            same = _DIGESTS["local"] == _DIGESTS["ray"] != {}
            print(
                f"   {label}: " + "; ".join(f"{n} {_spread(m)}" for n, m in runs.items())
                + f"; Ray output {'byte-identical to local' if same else 'DIFFERS'}",
                flush=True,
            )  # fmt: skip
            peers = {"LitData": "litdata", "MDS": "mds", "MDS parallel writers": "mds-parallel"}
            peer_name = max(peers, key=lambda name: runs[peers[name]].items_per_s)
            peer = runs[peers[peer_name]].items_per_s
            table.add(Row(f"{label}: Ray engine (peer: local engine)", runs["local"].items_per_s,
                          runs["ray"].items_per_s, "samples/s", target=0.9,
                          note=f"{default_workers()} CPUs, 1 node"))  # fmt: skip
            table.add(Row(f"{label}: local engine (peer: {peer_name})", peer,
                          runs["local"].items_per_s, "samples/s", target=1.2))  # fmt: skip
            table.add(Row(f"{label}: Ray engine (peer: {peer_name})", peer,
                          runs["ray"].items_per_s, "samples/s", target=1.2))  # fmt: skip
            table.add(Row(f"{label}: LitData optimize()", None, runs["litdata"].items_per_s,
                          "samples/s", note="info"))  # fmt: skip
            table.add(Row(f"{label}: MosaicML MDSWriter (pool-fed)", None,
                          runs["mds"].items_per_s, "samples/s", note="info"))  # fmt: skip
            table.add(Row(f"{label}: MosaicML MDSWriter (parallel writers + merge_index)", None,
                          runs["mds-parallel"].items_per_s, "samples/s", note="info"))  # fmt: skip
    finally:
        ray.shutdown()
        for name in ("local", "ray", "litdata", "mds", "mds-parallel"):
            shutil.rmtree(write_dir / name, ignore_errors=True)
    os.environ.pop("RAY_ADDRESS", None)


def draft_psnr() -> list[tuple[str, int, float]]:
    """PSNR (dB) of ``transcode_image``'s downscaling path (decoded at the smallest DCT scale at
    least ``REDUCING_GAP`` x the target, then Lanczos) against a full-size decode and Lanczos,
    on scikit-image's colour photos (saved as quality-95 JPEGs), for max sides of 1/4 and 1/8
    of each photo's longer side (1/2 decodes at full size): the pixels before encoding. Returns
    (photo, reduction, PSNR)."""
    import simplejpeg
    from PIL import Image
    from skimage import data as photos

    from shardstream.write.transcode import REDUCING_GAP, target_size

    found = []
    for name in ("astronaut", "coffee", "hubble_deep_field", "retina", "rocket",
                 "immunohistochemistry", "stereo_motorcycle"):  # fmt: skip
        loaded = getattr(photos, name)()
        loaded = loaded[0] if isinstance(loaded, tuple) else loaded  # the stereo pair's left
        pixels = np.ascontiguousarray(loaded[:, :, :3])
        encoded = simplejpeg.encode_jpeg(pixels, quality=95, colorsubsampling="420")
        height, width = pixels.shape[:2]
        full = Image.fromarray(simplejpeg.decode_jpeg(encoded))
        for denominator in (4, 8):
            target = target_size(width, height, max(width, height) // denominator)
            scaled = simplejpeg.decode_jpeg(encoded, min_width=target[0] * REDUCING_GAP,
                                            min_height=target[1] * REDUCING_GAP)  # fmt: skip
            draft = Image.fromarray(scaled)
            if draft.size != target:
                draft = draft.resize(target, Image.Resampling.LANCZOS)
            reference = np.asarray(full.resize(target, Image.Resampling.LANCZOS), np.float64)
            error = np.mean((np.asarray(draft, np.float64) - reference) ** 2)
            found.append((name, denominator, 10 * np.log10(255**2 / error) if error else 99.0))
    return found


def transcode_rows(table: Table, root: Path, repeats: int, count: int = 1000) -> None:
    """One core's re-encode rate (max side 512, quality 90) of the peers' pixel path and of
    ``transcode_image`` on the first ``count`` demo images, and the draft path's PSNR."""
    from shardstream.write.transcode import transcode_image

    images = [Path(item.source).read_bytes() for item in scan_folder(root).items[:count]]
    ours = measure(lambda: [transcode_image(d, **TRANSCODE) for d in images], items=len(images),
                   repeats=repeats)  # fmt: skip
    peer = measure(lambda: [peer_transcode(d, **TRANSCODE) for d in images], items=len(images),
                   repeats=repeats)  # fmt: skip
    print(f"   transcode one core: pixel path {_spread(peer)}; transcode_image {_spread(ours)}",
          flush=True)  # fmt: skip
    table.add(Row("transcode one core: transcode_image (peer: pixel path)", peer.items_per_s,
                  ours.items_per_s, "images/s", note="info"))  # fmt: skip
    psnr = draft_psnr()
    print("   DCT-scaled decode + Lanczos vs full decode + Lanczos: "
          + ", ".join(f"{name} 1/{scale} {value:.1f} dB" for name, scale, value in psnr),
          flush=True)  # fmt: skip
    table.add(Row("downscale: DCT-scaled decode vs full decode, lowest PSNR", None,
                  min(value for _, _, value in psnr), "dB", note="info"))  # fmt: skip
