"""``shardstream eval knn DATA --checkpoint FILE``: k-NN accuracy of a run's frozen teacher.

Every ``--holdout``-th sample of each class of DATA is classified by a weighted vote of its ``-k`` nearest
neighbours among the others (or use ``--test`` for a separate held-out data set).
``--random-init`` also scores the same architecture with untrained weights, for comparison.
The result is also written as JSON to ``knn.json`` next to the checkpoint (``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..methods.train.run_folder import KNN_NAME
from ._common import INPUT_HELP, positive_int
from ._remote import add_storage_options, fsspec_defaults, storage_options_of

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval`` and its subcommands (``knn``)."""
    parser = subparsers.add_parser(
        "eval", help="evaluate a trained model", description=__doc__.splitlines()[0]
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    knn = kinds.add_parser("knn", help="weighted k-NN on frozen embeddings", description=__doc__)
    knn.add_argument("data", help=INPUT_HELP)
    knn.add_argument("--checkpoint", type=Path, required=True, help="a train dino checkpoint")
    knn.add_argument("--test", default=None, help="a separate held-out data set")
    knn.add_argument(
        "--holdout", type=positive_int, default=2, help="hold out every N-th sample of each class"
    )
    knn.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="side of the evaluated centre crops (default: the run's local crop size)",
    )
    knn.add_argument("-k", type=positive_int, default=20, help="neighbours")
    knn.add_argument("--temperature", type=float, default=0.07, help="vote temperature")
    knn.add_argument("--batch-size", type=positive_int, default=64)
    knn.add_argument("--workers", type=int, default=2, help="loader processes")
    knn.add_argument("--device", default="cpu")
    knn.add_argument("--random-init", action="store_true", help="also score untrained weights")
    add_storage_options(knn)
    knn.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the result as JSON (default: knn.json next to the checkpoint)",
    )
    knn.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the k-NN top-1 accuracy (and the random-init baseline when asked)."""
    import torch

    from ..methods.train.evaluate import (  # delayed: imports torch (optional)
        eval_image_size,
        evaluate_knn,
        load_trained,
        write_knn_json,
    )
    from ..methods.train.loop import build_model  # delayed: imports torch (optional)

    model, config, step = load_trained(args.checkpoint)
    options = dict(
        image_size=args.image_size or eval_image_size(config),
        holdout=args.holdout,
        test_data=args.test,
        k=args.k,
        temperature=args.temperature,
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
    )
    defaults = fsspec_defaults([args.data, args.test], storage_options_of(args))
    with defaults:
        result = evaluate_knn(model, args.data, **options)
    print(
        f"knn: top-1 {100 * result.accuracy:.1f} % (k={result.k}, {result.train_samples} "
        f"bank, {result.test_samples} held out, {options['image_size']} px)"
    )
    record = {
        "checkpoint": str(args.checkpoint),
        "step": step,
        "data": str(args.data),
        "test_data": None if args.test is None else str(args.test),
        "holdout": None if args.test is not None else args.holdout,
        "image_size": options["image_size"],
        "k": result.k,
        "temperature": args.temperature,
        "top1": result.accuracy,
        "train_samples": result.train_samples,
        "test_samples": result.test_samples,
    }
    if args.random_init:
        torch.manual_seed(config.seed)
        with fsspec_defaults([args.data, args.test], storage_options_of(args)):
            baseline = evaluate_knn(build_model(config).eval(), args.data, **options)
        print(f"knn: random-init top-1 {100 * baseline.accuracy:.1f} %")
        record["random_init_top1"] = baseline.accuracy
    written = write_knn_json(args.json or args.checkpoint.parent / KNN_NAME, record)
    print(f"knn: result written to {written}", file=sys.stderr)
    return 0
