"""``shardstream train dino DATA``: DINO self-supervised pretraining from a packed data set.

Runs on the CPU or a GPU, alone or under ``torchrun`` (one process per GPU, or several CPU
processes with gloo). The run folder ``--out`` gets the checkpoint (every ``--checkpoint-every``
steps), ``config.yaml`` (the resolved settings, in dinov2's layout), ``metrics.csv`` and
``log.jsonl`` (every ``--log-every`` steps; TensorBoard events too when tensorboard is installed).
An existing run folder is reused only with ``--resume`` (continue exactly, with the run's own
settings; only ``--steps`` and the run-only options may change) or ``-y`` (start over).
``--config-file`` reads settings in dinov2's SSL config layout; command-line options override it.
The bar shows images/s, the loss and the input stall (the share of time spent waiting for data:
near 0 % means the model, not the loader, sets the pace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..methods.train.config import DinoTrainConfig
from ..methods.train.run_folder import plan_run
from ..methods.train.ssl_config import read_config_file
from ._common import INPUT_HELP, nonnegative_int, positive_int
from ._remote import add_storage_options, fsspec_defaults, storage_options_of

__all__ = ["add_parser", "run", "add_training_arguments", "config_from_args", "explicit_settings"]

#: option dest -> the DinoTrainConfig setting it sets
_SETTING_OF = {
    "out": "out",
    "steps": "steps",
    "batch_size": "batch_size",
    "encoder": "encoder_name",
    "encoder_kwargs": "encoder_kwargs",
    "global_size": "global_crops_size",
    "local_size": "local_crops_size",
    "local_crops": "local_crops_number",
    "prototypes": "n_prototypes",
    "masks": "masks",
    "lr": "lr",
    "min_lr": "min_lr",
    "warmup_steps": "warmup_steps",
    "weight_decay": "weight_decay",
    "weight_decay_end": "weight_decay_end",
    "clip_grad": "clip_grad",
    "workers": "num_workers",
    "threads": "num_threads",
    "torch_threads": "torch_threads",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "log_every": "log_every",
    "device": "device",
    "precision": "precision",
    "resize": "resize",
    "decode": "decode",
}


class _Given(argparse.Action):
    """Store the value and remember that the option was given (resumes apply only those)."""

    def __init__(self, *args: Any, constant: Any = None, **kwargs: Any) -> None:
        if constant is not None:  # a flag: no argument, stores ``constant``
            kwargs.update(nargs=0, const=constant)
        super().__init__(*args, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        value = self.const if self.nargs == 0 else values
        setattr(namespace, self.dest, value)
        given = set(getattr(namespace, "given_options", None) or ())
        namespace.given_options = given | {self.dest}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` and its method subcommands (``dino``)."""
    parser = subparsers.add_parser(
        "train", help="pretrain a model on a packed data set", description=__doc__.splitlines()[0]
    )
    methods = parser.add_subparsers(dest="method", metavar="METHOD")
    methods.required = True
    dino = methods.add_parser(
        "dino",
        help="DINO self-distillation with multi-crop views",
        description=__doc__.splitlines()[0],
    )
    dino.add_argument("data", help=INPUT_HELP)
    add_storage_options(dino)
    add_training_arguments(dino)
    dino.set_defaults(run=run)
    return parser


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``train dino`` (also used by ``shardstream demo``)."""

    defaults = DinoTrainConfig(data="-")

    def add(*names: str, **kwargs: Any) -> None:
        if kwargs.pop("action", None) == "store_true":
            kwargs["constant"] = True
        parser.add_argument(*names, action=_Given, **kwargs)

    add("--out", type=Path, default=defaults.out, help="run folder (checkpoint, config, metrics)")
    add("--steps", type=positive_int, default=defaults.steps, help="optimizer steps in total")
    add("--batch-size", type=positive_int, default=defaults.batch_size, help="images per step")
    add("--encoder", default=defaults.encoder_name, help="timm model name of the backbone")
    add(
        "--encoder-kwargs",
        type=json.loads,
        default=None,
        help="JSON object of timm arguments (default: a tiny ViT for the CPU)",
    )
    add("--global-size", type=positive_int, default=defaults.global_crops_size)
    add("--local-size", type=positive_int, default=defaults.local_crops_size)
    add("--local-crops", type=nonnegative_int, default=defaults.local_crops_number)
    add("--prototypes", type=positive_int, default=defaults.n_prototypes)
    add("--masks", action="store_true", default=False, help="also draw iBOT masks in the loader")
    add("--lr", type=float, default=defaults.lr, help="peak learning rate per 256 images")
    add("--min-lr", type=float, default=defaults.min_lr)
    add("--warmup-steps", type=nonnegative_int, default=defaults.warmup_steps)
    add("--weight-decay", type=float, default=defaults.weight_decay)
    add("--weight-decay-end", type=float, default=defaults.weight_decay_end)
    add("--clip-grad", type=float, default=defaults.clip_grad, help="0 disables clipping")
    add("--workers", type=nonnegative_int, default=defaults.num_workers, help="loader processes")
    add("--threads", type=positive_int, default=defaults.num_threads, help="threads per worker")
    add(
        "--torch-threads",
        type=positive_int,
        default=defaults.torch_threads,
        help="intra-op threads of the training process (default: the cores workers leave free)",
    )
    add("--seed", type=int, default=defaults.seed)
    add("--checkpoint-every", type=nonnegative_int, default=defaults.checkpoint_every)
    add(
        "--log-every",
        type=positive_int,
        default=defaults.log_every,
        help="steps between rows of metrics.csv (and TensorBoard, log.jsonl)",
    )
    parser.add_argument(
        "--config-file",
        type=Path,
        default=None,
        help="YAML settings in dinov2's SSL config layout (crops, dino, ibot, train, student, "
        "teacher, optim; others under shardstream); options given here override it",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its own settings (--steps may extend it)",
    )
    parser.add_argument(
        "-y", "--yes", action="store_true", help="start over in an existing run folder"
    )
    add("--device", choices=("auto", "cpu", "cuda"), default=defaults.device)
    add("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=defaults.precision)
    add(
        "--resize",
        choices=("cpu", "device"),
        default=defaults.resize,
        help="resize the views in the loader workers (exact) or on the training device",
    )
    add(
        "--decode",
        choices=("cpu", "device"),
        default=defaults.decode,
        help="decode the JPEGs in the workers, or on the CUDA device with nvJPEG (resizing "
        "there too)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The :class:`~shardstream.methods.train.config.DinoTrainConfig` of parsed options."""

    extra = {} if args.encoder_kwargs is None else {"encoder_kwargs": args.encoder_kwargs}
    return DinoTrainConfig(
        data=args.data,
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        encoder_name=args.encoder,
        global_crops_size=args.global_size,
        local_crops_size=args.local_size,
        local_crops_number=args.local_crops,
        n_prototypes=args.prototypes,
        masks=args.masks,
        lr=args.lr,
        min_lr=args.min_lr,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        weight_decay_end=args.weight_decay_end,
        clip_grad=args.clip_grad,
        num_workers=args.workers,
        num_threads=args.threads,
        torch_threads=args.torch_threads,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        resume=args.resume,
        device=args.device,
        precision=args.precision,
        resize=args.resize,
        decode=args.decode,
        progress=not args.quiet,
        **extra,
    )


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line: ``data`` and the options the user typed.

    Returns:
        Setting name -> value (``DinoTrainConfig`` names).
    """
    values = {"data": args.data}
    for dest in getattr(args, "given_options", None) or ():
        values[_SETTING_OF[dest]] = getattr(args, dest)
    return values


def run(args: argparse.Namespace) -> int:
    """Train; print the loss trajectory and the speed (notes about the run folder to stderr)."""
    from ..methods.train.loop import train_dino  # delayed: imports torch (optional)

    from_file = read_config_file(args.config_file) if args.config_file else {}
    given = explicit_settings(args)
    explicit = {**from_file, **given}
    settings = {**config_from_args(args).to_dict(), **explicit}
    leader = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 owns the run folder
    plan = plan_run(
        settings, explicit=explicit, resume=args.resume, overwrite=args.yes, leader=leader
    )
    for line in plan.messages if leader else ():
        print(line, file=sys.stderr)
    with fsspec_defaults([plan.config.data], storage_options_of(args)):
        result = train_dino(plan.config.replace(progress=not args.quiet))
    if result.losses:
        print(
            f"dino: steps {result.first_step}-{result.steps}, loss {result.losses[0]:.4f} -> "
            f"{result.losses[-1]:.4f}, {result.images_per_second:,.0f} images/s, "
            f"input stall {100 * result.input_stall:.1f} %"
        )
    print(f"checkpoint: {result.checkpoint}")
    return 0
