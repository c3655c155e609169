"""DINO under torchrun: 2 CPU processes (gloo) share every epoch and keep one teacher."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from shardstream.methods.train.config import DinoTrainConfig
from shardstream.methods.train.loop import train_dino

REPO = Path(__file__).resolve().parents[3]
STEPS = 8  # 2 epochs: 70 samples, 35 positions per rank, 4 batches of 8 (drop_last)


def config(data: Path, out: Path, batch_size: int) -> DinoTrainConfig:
    return DinoTrainConfig(
        data=str(data),
        out=out,
        steps=STEPS,
        batch_size=batch_size,
        num_workers=0,
        torch_threads=1,
        checkpoint_every=0,
        progress=False,
        device="cpu",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_share_each_epoch_like_one(demo_70, tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, os, sys
            import torch
            sys.path.insert(0, {str(REPO)!r})
            from pathlib import Path
            from tests.methods.train.test_distributed import config
            from shardstream.methods.train.loop import train_dino

            out = Path({str(tmp_path / "ddp")!r})
            result = train_dino(config({str(demo_70)!r}, out, 8), record_indices=True)
            rank = int(os.environ["RANK"])
            (out / f"rank{{rank}}.json").write_text(json.dumps(
                {{"indices": result.seen_indices, "losses": result.losses,
                  "world_size": int(os.environ["WORLD_SIZE"])}}
            ))
            torch.save(result.model.state_dict(), out / f"rank{{rank}}.pt")
            """
        )
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(script),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "ddp"
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [len(r["indices"]) for r in ranks] == [STEPS, STEPS]
    assert all(len(batch) == 8 for r in ranks for batch in r["indices"])

    single = train_dino(config(demo_70, tmp_path / "single", 16), record_indices=True)
    assert len(single.seen_indices) == STEPS
    for epoch in range(2):
        steps = range(4 * epoch, 4 * epoch + 4)
        seen = [{i for step in steps for i in r["indices"][step]} for r in ranks]
        assert len(seen[0]) == len(seen[1]) == 32
        assert not seen[0] & seen[1]  # disjoint shares of the epoch
        alone = {i for step in steps for i in single.seen_indices[step]}
        assert seen[0] | seen[1] == alone  # together exactly the 1-process run's 64 of 70
        for step in steps:  # and even batch by batch (rank r takes positions r, r + 2, ...)
            together = set(ranks[0]["indices"][step]) | set(ranks[1]["indices"][step])
            assert together == set(single.seen_indices[step])

    teachers = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert list(teachers[0]) == list(teachers[1])
    for name, tensor in teachers[0].items():
        if isinstance(tensor, torch.Tensor):
            assert torch.equal(tensor, teachers[1][name]), name
    assert all(r["losses"][0] > 0 for r in ranks)
    assert (out / "checkpoint.pt").is_file()
