"""``shardstream write FORMAT``: convert a data set (a folder, archive, list or known set) to packed files.

Every module in :mod:`shardstream.sets` that defines ``NAME``, ``SOURCES``, ``add_arguments(parser)``
and ``items(args)`` is a FORMAT. Its ``items(args)`` maps split names to items; each split is
written with :func:`~shardstream.write.conversion.convert`:

- ``-o DIR`` (default: the working directory) writes ``DIR/<FORMAT>-<split>.msgpack`` per split
  (``DIR/<FORMAT>-<split>.manifest`` plus shards with ``--shard-size``);
- ``-o FILE.msgpack`` (or ``FILE.manifest``) names the output of a converter with one split.

A converter with ``label_names(args)`` also gets ``<output>.labels.txt``: the class names in
label order, one a line (readable with :func:`shardstream.read.list.load_labels`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ..format.atomic import StagedFiles
from ..sets import _datadings
from ..sets.discover import converter_modules
from ..write.conversion import convert
from ._help import plain

__all__ = ["add_parser", "run", "converter_modules", "parse_size"]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_OUTPUT_SUFFIXES = (".msgpack", ".manifest")


def parse_size(text: str) -> int:
    """Parse a byte size: ``1048576``, ``512K``, ``512M``, ``1.5G``, ``2T`` (powers of 1024;
    ``KiB``/``MiB`` spellings too) or ``500MB`` (a trailing ``B`` without ``i`` means powers of
    1000).

    Raises:
        argparse.ArgumentTypeError: not a size, or not positive.
    """
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 1G, 1048576)")
    number, unit, tail = match.group(1), match.group(2).lower(), match.group(3).lower()
    decimal = tail == "b" and unit != ""
    factor = 1000 ** ("kmgt".index(unit) + 1) if decimal else _UNITS[unit]
    size = int(float(number) * factor)
    if size < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1 byte, got {text!r}")
    return size


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``write`` subcommand with one sub-parser per converter."""
    converters = converter_modules()
    parser = subparsers.add_parser(
        "write",
        help="convert a data set into packed files (FORMAT: " + ", ".join(converters) + ")",
        description="Convert a data set (a folder, archive, list file or known set) to packed "
        "files. Run 'shardstream write FORMAT --help' for a format's options.",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", action=_AnyCaseSubParsers)
    for name, module in converters.items():
        doc = plain((module.__doc__ or name).strip())
        datadings = _datadings.is_datadings_set(module)
        sub = formats.add_parser(
            name,
            aliases=list(getattr(module, "ALIASES", ())),
            help=doc.splitlines()[0].split(": ", 1)[-1],
            description=_datadings.describe(module) if datadings else doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        _add_common_arguments(sub, output=not datadings)
        sub.set_defaults(converter=module)
    parser.set_defaults(run=run, converter=None, write_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert every split of the chosen FORMAT; print one line per output written."""
    module = args.converter
    if module is None:
        parser: argparse.ArgumentParser = args.write_parser
        parser.print_usage(sys.stderr)
        print(
            f"{parser.prog}: error: name a FORMAT: {', '.join(converter_modules())}",
            file=sys.stderr,
        )
        return 2
    if hasattr(module, "command"):  # a mode that writes no data set (--calculate-weights, ...)
        code = module.command(args)
        if code is not None:
            return code
    splits = module.items(args)
    if _datadings.is_datadings_set(module):  # files named as datadings names them
        outputs = _datadings.output_paths(args, list(splits))
    else:
        outputs = _output_paths(args, module.NAME, list(splits))
    if outputs is None:
        return 2
    names = module.label_names(args) if hasattr(module, "label_names") else None
    for split, items in splits.items():
        report = convert(
            items,
            outputs[split],
            workers=args.workers,
            shard_size=args.shard_size,
            max_side=args.max_side,
            quality=args.quality,
            on_error=args.on_error,
            overwrite=args.no_confirm,
            progress=not args.quiet,
        )
        shards = f" in {len(report.files)} shards" if args.shard_size else ""
        print(
            f"{split}: {report.written:,} samples ({report.bytes / 1e6:,.1f} MB){shards} -> "
            f"{report.path} in {report.seconds:.1f} s ({report.samples_per_s:,.0f} samples/s)"
        )
        not_images = module.skipped_non_images(args) if hasattr(module, "skipped_non_images") else 0
        if not_images:
            plural = "s" if not_images != 1 else ""
            print(
                f"{split}: skipped {not_images:,} non-image file{plural} (not an image "
                "extension; --all-files takes them)"
            )
        if report.skipped:
            print(
                f"{split}: skipped {len(report.skipped)} bad source(s), listed in {report.report}",
                file=sys.stderr,
            )
        if names:
            labels = report.path.with_name(report.path.name + ".labels.txt")
            _write_text(labels, "".join(f"{name}\n" for name in names))
    return 0


class _AnyCaseChoices:
    """The sub-parser names as ``choices``: a name not found exactly is found in any case when
    only one name fits (the name map itself stays exact, so ``cifar10`` and ``CIFAR10`` may
    both be registered)."""

    def __init__(self, names: dict[str, Any]) -> None:
        self._names = names

    def canonical(self, name: object) -> object:
        if not isinstance(name, str) or name in self._names:
            return name
        matches = [known for known in self._names if known.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else name

    def __contains__(self, name: object) -> bool:
        return self.canonical(name) in self._names

    def __iter__(self) -> Any:
        return iter(self._names)


class _AnyCaseSubParsers(argparse._SubParsersAction):
    """Sub-commands matched exactly, else in any case (``voc2012`` runs ``VOC2012``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyCaseChoices(self._name_parser_map)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        values = [self.choices.canonical(values[0]), *values[1:]]
        super().__call__(parser, namespace, values, option_string)


def _add_common_arguments(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    group = parser.add_argument_group("output and conversion")
    if output:  # datadings-compatible sets have datadings' -o/--outdir instead
        group.add_argument(
            "-o",
            "--output",
            default=".",
            help="output folder (<FORMAT>-<split>.msgpack inside), or FILE.msgpack / "
            "FILE.manifest for a single split (default: the working directory)",
        )
    group.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="processes reading and transcoding; 1: none, work in this process (default: "
        "every core when an item's work outweighs hashing its bytes, as with transcoding; "
        "else 1, as md5 is then the bound)",
    )
    group.add_argument(
        "--max-side",
        type=_positive_int,
        default=None,
        metavar="N",
        help="downscale images whose longer side exceeds N pixels and re-encode them as JPEG",
    )
    group.add_argument(
        "--quality",
        type=_quality,
        default=None,
        metavar="Q",
        help="re-encode every image as JPEG at quality Q (1-100; default: keep the original "
        "bytes, or 90 where --max-side resizes)",
    )
    group.add_argument(
        "--shard-size",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="write shards of at most SIZE bytes (512M, 1G, ...) plus a .manifest",
    )
    group.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="on a bad source file: stop (raise, default) or leave it out and list it in "
        "<output>.skipped.tsv (skip)",
    )
    group.add_argument(
        "-y",
        "--no-confirm",
        action="store_true",
        help="overwrite existing outputs without asking",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _output_paths(args: argparse.Namespace, name: str, splits: list[str]) -> dict[str, Path] | None:
    output = Path(args.output)
    if output.name.endswith(_OUTPUT_SUFFIXES):
        if len(splits) != 1:
            print(
                f"shardstream write {name}: error: {name} writes {len(splits)} splits "
                f"({', '.join(splits)}); give an output folder, not {output}",
                file=sys.stderr,
            )
            return None
        return {splits[0]: output}
    return {split: output / f"{name}-{split}.msgpack" for split in splits}


def _write_text(path: Path, text: str) -> None:
    staged = StagedFiles()
    try:
        staged.write_bytes(path, text.encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be in 1..100, got {value}")
    return value
