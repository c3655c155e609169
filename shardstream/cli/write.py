"""``shardstream write FORMAT``: convert a data set (a folder, archive, list or known set) to packed files.

Every module in :mod:`shardstream.sets` that defines ``NAME``, ``SOURCES``, ``add_arguments(parser)``
and ``items(args)`` is a FORMAT. Its ``items(args)`` maps split names to items; each split is
written with :func:`~shardstream.write.conversion.convert`:

- ``-o DIR`` (default: the working directory) writes ``DIR/<FORMAT>-<split>.msgpack`` per split
  (``DIR/<FORMAT>-<split>.manifest`` plus shards with ``--shard-size``);
- ``-o FILE.msgpack`` (or ``FILE.manifest``) names the output of a converter with one split.

``--shard-samples N`` plans shards of N source items up front; each local worker process then
writes whole shards (see :mod:`shardstream.write.whole_shards`), or ``--engine ray`` runs one
Ray task per shard (on a local cluster started for the run, or ``--ray-address auto|host:port``)
and writes the same files, byte for byte; ``--resume`` keeps the shards an interrupted run
finished.

``-o`` may be a URL (``s3://bucket/prefix/``, ``s3://bucket/prefix/name.manifest``, any fsspec
URL; ``--storage-options JSON`` for credentials and endpoints): each shard is uploaded as it
completes, in the background, and the manifest last as the commit point (see
:mod:`shardstream.write.remote`); ``--resume`` then keeps the shards a killed run uploaded.

A converter with ``label_names(args)`` also gets ``<output>.labels.txt``: the class names in
label order, one a line (readable with :func:`shardstream.read.list.load_labels`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..checks import argument_type, parse_int
from ..checks import size_argument as parse_size
from ..format.atomic import StagedFiles
from ..read.remote.url import url_join
from ..sets import _datadings
from ..sets.discover import converter_modules
from ..write.conversion import convert
from ..write.remote import is_remote_output, put_bytes
from ._help import plain
from ._remote import add_storage_options, storage_options_of

__all__ = ["add_parser", "run", "converter_modules", "parse_size"]

_OUTPUT_SUFFIXES = (".msgpack", ".manifest")
_positive_int = argument_type(parse_int, low=1)
_quality = argument_type(parse_int, low=1, high=100)


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
    outputs: Mapping[str, Path | str] | None
    if _datadings.is_datadings_set(module):  # files named as datadings names them
        outdir: str = getattr(args, "outdir", None) or ""
        if is_remote_output(outdir):  # a URL stays a string: Path would fold its "//"
            outputs = {name: url_join(outdir, name) for name in splits}
        else:
            outputs = _datadings.output_paths(args, list(splits))
    else:
        outputs = _output_paths(args, module.NAME, list(splits))
    if outputs is None:
        return 2
    names = module.label_names(args) if hasattr(module, "label_names") else None
    storage_options = storage_options_of(args)
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
            shard_samples=args.shard_samples,
            engine=args.engine,
            ray_address=args.ray_address,
            resume=args.resume,
            storage_options=storage_options,
        )
        sharded = args.shard_size or args.shard_samples
        shards = f" in {len(report.files)} shards" if sharded else ""
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
            text = "".join(f"{name}\n" for name in names)
            if isinstance(report.path, str):  # a URL output
                put_bytes(
                    report.path + ".labels.txt", text.encode(), storage_options=storage_options
                )
            else:
                _write_text(report.path.with_name(report.path.name + ".labels.txt"), text)
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
        self._any_case = _AnyCaseChoices(self._name_parser_map)
        # argparse only tests `in` and iterates choices; typeshed types them as the parser dict
        self.choices = self._any_case  # type: ignore[assignment]

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        values = [self._any_case.canonical(values[0]), *values[1:]]
        super().__call__(parser, namespace, values, option_string)


def _add_common_arguments(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    group = parser.add_argument_group("output and conversion")
    if output:  # datadings-compatible sets have datadings' -o/--outdir instead
        group.add_argument(
            "-o",
            "--output",
            default=".",
            help="output folder (<FORMAT>-<split>.msgpack inside), or FILE.msgpack / "
            "FILE.manifest for a single split; a URL (s3://bucket/prefix/, ...) uploads each "
            "shard as it completes and the manifest last (default: the working directory)",
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
        "--shard-samples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="write shards of N source items each plus a .manifest (planned up front: "
        "--engine ray writes the same files)",
    )
    group.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes on this machine; ray: Ray tasks on a cluster (each "
        "writes whole shards with --shard-samples; needs 'pip install shardstream[ray]')",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="--engine ray: 'auto' (the running cluster of this machine) or a head node's "
        "host:port (default: start a local cluster for the run)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="--shard-samples, or a URL output: keep the shards an interrupted "
        "run of the same command finished (verified by size and md5), write the rest",
    )
    add_storage_options(parser)
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


def _output_paths(
    args: argparse.Namespace, name: str, splits: list[str]
) -> dict[str, Path | str] | None:
    if is_remote_output(args.output):  # URLs stay strings: Path would fold their "//"
        url: str = args.output
        if url.endswith(_OUTPUT_SUFFIXES):
            if len(splits) != 1:
                _one_split_error(name, splits, url)
                return None
            return {splits[0]: url}
        return {split: url_join(url, f"{name}-{split}.msgpack") for split in splits}
    output = Path(args.output)
    if output.name.endswith(_OUTPUT_SUFFIXES):
        if len(splits) != 1:
            _one_split_error(name, splits, output)
            return None
        return {splits[0]: output}
    return {split: output / f"{name}-{split}.msgpack" for split in splits}


def _one_split_error(name: str, splits: list[str], output: object) -> None:
    print(
        f"shardstream write {name}: error: {name} writes {len(splits)} splits "
        f"({', '.join(splits)}); give an output folder, not {output}",
        file=sys.stderr,
    )


def _write_text(path: Path, text: str) -> None:
    staged = StagedFiles()
    try:
        staged.write_bytes(path, text.encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
