"""``shardstream split``: cut a dataset into consecutive parts at given sample positions.

Positions ``A B`` make three files: ``[0, A)``, ``[A, B)`` and ``[B, end)``: file ``i`` holds
samples ``pos[i-1]`` to ``pos[i] - 1``. Positions must be strictly ascending and inside
``1 .. len - 1``. Outputs are named ``<root>-<i><ext>`` after the input unless ``-o`` gives one
name per part. Samples are copied as raw bytes, never decoded. All outputs are written together
and appear only when every one is complete; any failure leaves none of them. The input's class
names (``<input>.labels.txt``) are written next to every part.

The positions fix the size of each part (``pos[i] - pos[i-1]`` samples). ``--shuffle`` fills
the parts with a random choice of samples instead of consecutive runs (seeded: ``--seed``, or a
random seed that is printed); ``--stratify`` fills them so that each part keeps the class
proportions of the input (by the ``label`` field). Either way each part keeps the input's order
and the input is read once, front to back.

Stratified counts (:func:`stratified_counts`): with ``m`` samples of a class among ``N``, a part
of ``n`` samples gets ``m * n / N`` of them, rounded down or up: every part gets exactly its
size and every class is used up exactly. The units left after rounding down go by largest
remainder (the largest fractional parts first) while both the class and the part still lack
one; where that leaves a unit unplaced, the units already placed are moved along so that it
fits (an augmenting path), so no count is ever more than one from its exact share. Within a
class, the samples in dataset order (shuffled with ``--shuffle``) fill part 0 first, then part
1, and so on.

Differences from ``datadings-split`` (3.4.7), all deliberate:

- exact ranges: datadings' running counter was off by one (with 5 samples and positions ``2 4``
  its files held samples ``[0, 1]``, ``[2, 3, 4]``, ``[4]`` and then it crashed with an
  ``IndexError``);
- positions must be strictly ascending (datadings accepted repeats, making empty files) and bad
  positions, a wrong number of ``-o`` names or an output that is the input are usage errors
  (exit 2; datadings exited 1);
- existing outputs are refused (or confirmed on a terminal) before anything is written, and a
  refusal stops the command (datadings skipped a declined file and wrote the others);
- ``-o`` may be repeated as well as given several names; a manifest or a glob of shards is
  accepted as input (``-o`` is needed for a glob); a ``-o`` name ending in ``.manifest`` is
  written as a sharded set (shards of ``--shard-size`` bytes, by default the input's largest
  data file).
"""

from __future__ import annotations

import argparse
import os
import random
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from contextlib import ExitStack
from itertools import islice
from typing import Any

from ..errors import LabelError
from ..format.manifest import is_manifest
from ..read.open import is_glob
from ._common import (
    INPUT_HELP,
    OUTPUT_HELP,
    DatasetOutput,
    add_overwrite_argument,
    add_quiet_argument,
    add_seed_argument,
    add_shard_size_argument,
    check_outputs,
    counted,
    input_labels,
    make_progress,
    positive_int,
    random_seed,
    shard_size_for,
)
from ._peek import MISSING
from ._remote import add_storage_options, open_input, storage_options_of
from .info import read_label_field

__all__ = ["add_parser", "run", "assign_parts", "default_outputs", "stratified_counts"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``split`` subcommand."""
    parser = subparsers.add_parser(
        "split",
        help="cut a dataset into parts at sample positions",
        description=__doc__.split("\n\n")[0],
        epilog="example: 'shardstream split all.msgpack 1000 -o val.msgpack train.msgpack' "
        "puts samples 0-999 in val.msgpack and the rest in train.msgpack; with '--shuffle "
        "--stratify' val.msgpack gets 1000 random samples in the classes' proportions",
    )
    parser.add_argument("infile", help=INPUT_HELP)
    parser.add_argument(
        "positions",
        type=positive_int,
        nargs="+",
        metavar="POS",
        help="index of the first sample of the next part (ascending)",
    )
    parser.add_argument(
        "-o",
        "--outfiles",
        nargs="+",
        action="extend",
        metavar="OUT",
        help="outputs, one per part, each " + OUTPUT_HELP + " (default: <root>-<i><ext> after "
        "the input, packed files for a manifest input)",
    )
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="fill the parts with randomly chosen samples (each part keeps the input's order)",
    )
    parser.add_argument(
        "--stratify",
        action="store_true",
        help="keep the class proportions (by the label field) in every part",
    )
    add_seed_argument(parser, "seed of --shuffle (default: random, printed)")
    add_shard_size_argument(parser)
    add_storage_options(parser)
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the parts; returns 0."""
    parser, positions = args.parser, args.positions
    if any(b <= a for a, b in zip(positions, positions[1:])):
        parser.error(f"positions must be strictly ascending, got {' '.join(map(str, positions))}")
    outputs = args.outfiles
    if outputs is None:
        if is_glob(args.infile):
            parser.error("give the output names with -o when the input is a glob")
        outputs = default_outputs(args.infile, len(positions) + 1)
    elif len(outputs) != len(positions) + 1:
        parser.error(
            f"expected {len(positions) + 1} output names (one per part), got {len(outputs)}"
        )
    if args.seed is not None and not args.shuffle:
        parser.error("--seed needs --shuffle")
    check_outputs(parser, [args.infile], outputs)
    options = storage_options_of(args)
    shard_size = shard_size_for(parser, args.shard_size, [args.infile], outputs, options)
    with open_input(args, args.infile) as reader:
        n = len(reader)
        if n < 2:
            parser.error(f"{args.infile} holds {n} sample{'s' if n != 1 else ''}: nothing to split")
        if positions[-1] >= n:
            parser.error(
                f"position {positions[-1]} is past the last sample: {args.infile} holds {n} "
                f"samples, so positions must be at most {n - 1}"
            )
        bounds = [0, *positions, n]
        sizes = [stop - start for start, stop in zip(bounds, bounds[1:])]
        parts = None
        if args.shuffle or args.stratify:
            seed = (random_seed() if args.seed is None else args.seed) if args.shuffle else None
            if seed is not None:
                print(f"seed: {seed} (--seed {seed} repeats this split)", flush=True)
            labels = _labels_of(reader, args) if args.stratify else None
            parts = assign_parts(
                n, sizes, labels=labels, rng=None if seed is None else random.Random(seed)
            )
        names = input_labels(args.infile, options)
        with ExitStack() as stack:
            writers = [
                stack.enter_context(
                    DatasetOutput(
                        path=out,
                        shard_size=shard_size if is_manifest(out) else None,
                        overwrite=args.no_confirm,
                        labels=names,
                        storage_options=options,
                    )
                )
                for out in outputs
            ]
            bar = make_progress(args.quiet, n, "split")
            stack.callback(bar.close)
            samples = counted(reader.iter(0, yield_key=True, raw=True), bar)
            if parts is None:
                for writer, start, stop in zip(writers, bounds, bounds[1:]):
                    for key, raw in islice(samples, stop - start):
                        writer.write(key, raw)
            else:
                for part, (key, raw) in zip(parts, samples):
                    writers[part].write(key, raw)
        how = "stratified" if args.stratify else "shuffled"
        for writer, start, stop in zip(writers, bounds, bounds[1:]):
            if parts is None:
                print(f"{writer.describe()}: samples {start}-{stop - 1} ({stop - start:,})")
            else:
                print(f"{writer.describe()}: {stop - start:,} samples ({how})")
    return 0


def stratified_counts(
    class_counts: Mapping[Hashable, int], sizes: Sequence[int]
) -> dict[Hashable, list[int]]:
    """How many samples of each class go to each part, keeping the class proportions.

    Args:
        class_counts: samples per class (classes in a fixed order: ties are broken by it).
        sizes: samples per part; they must add up to the samples of all classes.

    Returns:
        ``{class: [count in part 0, count in part 1, ...]}`` where each class's counts add up to
        its samples, each part's counts add up to its size, and each count is the exact share
        ``m * n / N`` rounded down or up (see the module docstring for the rounding).

    Raises:
        ValueError: the sizes do not add up to the class counts, or a count is negative.
    """
    classes = list(class_counts)
    total = sum(class_counts.values())
    if sum(sizes) != total or any(v < 0 for v in (*class_counts.values(), *sizes)):
        raise ValueError(f"part sizes {list(sizes)} do not split {total} samples")
    if total == 0:
        return {c: [0] * len(sizes) for c in classes}
    counts = {c: [class_counts[c] * n // total for n in sizes] for c in classes}
    spare = {c: [class_counts[c] * n % total for n in sizes] for c in classes}
    row = {c: class_counts[c] - sum(counts[c]) for c in classes}
    column = [n - sum(counts[c][i] for c in classes) for i, n in enumerate(sizes)]
    bumped: set[tuple[Any, int]] = set()
    order = {c: k for k, c in enumerate(classes)}
    cells = [(c, i) for c in classes for i in range(len(sizes)) if spare[c][i]]
    cells.sort(key=lambda cell: (-spare[cell[0]][cell[1]], order[cell[0]], cell[1]))
    for c, i in cells:  # largest remainder first
        if row[c] and column[i]:
            bumped.add((c, i))
            row[c] -= 1
            column[i] -= 1
    for c in classes:  # units the greedy pass could not place: move placed ones along
        while row[c]:
            _augment(c, cells, bumped, column)
            row[c] -= 1
    for c, i in bumped:
        counts[c][i] += 1
    return counts


def _augment(start: Any, cells: list, bumped: set, column: list[int]) -> None:
    """Place one more unit of class ``start``: find a path class -> part (unbumped cell) ->
    class (bumped cell) -> ... ending at a part that lacks a unit, and flip its cells."""
    by_class: dict[Any, list[int]] = {}
    for c, i in cells:
        by_class.setdefault(c, []).append(i)
    came_from: dict[Any, Any] = {("class", start): None}
    queue = deque([("class", start)])
    while queue:
        node = queue.popleft()
        kind, value = node
        if kind == "class":
            steps = [("part", i) for i in by_class.get(value, []) if (value, i) not in bumped]
        else:
            if column[value] > 0:
                column[value] -= 1
                while came_from[node] is not None:  # flip the path back to start
                    prev = came_from[node]
                    if prev[0] == "class":
                        bumped.add((prev[1], node[1]))
                    else:
                        bumped.discard((node[1], prev[1]))
                    node = prev
                return
            steps = [("class", c) for c, i in bumped if i == value]
        for step in steps:
            if step not in came_from:
                came_from[step] = node
                queue.append(step)
    raise RuntimeError("no augmenting path, yet the rounding always exists")  # pragma: no cover


def assign_parts(
    n: int,
    sizes: Sequence[int],
    *,
    labels: Sequence[Hashable] | None = None,
    rng: random.Random | None = None,
) -> list[int]:
    """The part of every sample.

    Args:
        n: number of samples.
        sizes: samples per part (adding up to ``n``).
        labels: each sample's class, to keep the class proportions in every part
            (:func:`stratified_counts`; classes in order of first appearance); None: no strata.
        rng: shuffles which samples go where; None keeps the dataset order (consecutive runs
            without ``labels``, each class's samples in order with them).

    Returns:
        ``parts[j]``: the part sample ``j`` goes to; part ``i`` gets ``sizes[i]`` samples.

    Raises:
        ValueError: the sizes do not add up to ``n``, or ``labels`` has not ``n`` entries.
    """
    if sum(sizes) != n or (labels is not None and len(labels) != n):
        raise ValueError(f"part sizes {list(sizes)} / labels do not fit {n} samples")
    groups: dict[Hashable, list[int]] = {}
    for j in range(n):
        groups.setdefault(None if labels is None else labels[j], []).append(j)
    quotas = stratified_counts({c: len(m) for c, m in groups.items()}, sizes)
    parts = [0] * n
    for c, members in groups.items():
        if rng is not None:
            rng.shuffle(members)
        start = 0
        for part, count in enumerate(quotas[c]):
            for j in members[start : start + count]:
                parts[j] = part
            start += count
    return parts


def _labels_of(reader: Any, args: argparse.Namespace) -> list[Hashable]:
    """Every sample's ``label`` field (one pass that decodes nothing else)."""
    bar = make_progress(args.quiet, len(reader), "labels")
    try:
        labels = list(read_label_field(reader, bar))
    finally:
        bar.close()
    if MISSING in labels:
        j = labels.index(MISSING)
        raise LabelError(
            f"{args.infile}: sample {j} ({reader.get(j, yield_key=True)[0]!r}) has no label "
            "field; --stratify needs one on every sample"
        )
    return labels


def default_outputs(infile: str, parts: int) -> list[str]:
    """Output names ``<root>-<i><ext>`` for ``parts`` parts of ``infile``.

    A manifest's parts are single packed files, so they get the extension ``.msgpack``.

    Args:
        infile: the input path.
        parts: number of outputs.

    Returns:
        The names, ``i`` counting from 0.
    """
    root, ext = os.path.splitext(infile)
    if is_manifest(infile):
        ext = ".msgpack"
    return [f"{root}-{i}{ext}" for i in range(parts)]
