"""One consistent command line: every command and subcommand, found by walking the parser.

Each command's ``--help`` shows the default of every option that has one and holds no
reStructuredText markup; every command accepts ``-q`` and ``-y``; ``--version`` prints the
version; bare ``shardstream`` prints the help.
"""

from __future__ import annotations

import argparse
import re

import pytest

import shardstream
from shardstream.cli import build_parser, main
from tests.cli.demo_data import shardstream as run_cli

_RST = re.compile(r":[a-z]+:`|``|^\s*\.\. [a-z-]+::", re.MULTILINE)
_NO_DEFAULT = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._HelpAction,
    argparse._VersionAction,
    argparse._SubParsersAction,
)


def _walk(parser, words=(), seen=None):
    """Every parser below ``parser``, found through its subparser actions (none hard-coded)."""
    seen = set() if seen is None else seen
    if id(parser) in seen:  # an alias names a parser already walked
        return
    seen.add(id(parser))
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action._name_parser_map.items():
                yield from _walk(sub, (*words, name), seen)


def _commands():
    """``(words, parser)`` for every command that runs (a parser without subcommands)."""
    return [
        (words, parser)
        for words, parser in _walk(build_parser())
        if words and not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    ]


COMMANDS = _commands()
IDS = [" ".join(words) for words, _ in COMMANDS]


ALL_PARSERS = list(_walk(build_parser()))


@pytest.mark.parametrize(
    ("words", "parser"), ALL_PARSERS, ids=[" ".join(w) or "shardstream" for w, _ in ALL_PARSERS]
)
def test_no_markup_in_any_help_including_command_groups(words, parser):
    assert not _RST.search(parser.format_help()), " ".join(words)


def _has_default(action: argparse.Action) -> bool:
    if isinstance(action, _NO_DEFAULT) or action.help == argparse.SUPPRESS:
        return False
    if not action.option_strings and action.nargs not in ("?", "*"):
        return False
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return not (isinstance(default, (str, list, tuple, dict, set)) and len(default) == 0)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_walk_finds_every_command_module_and_converter():
    from shardstream.cli import command_modules
    from shardstream.cli.write import converter_modules

    top = {words[0] for words, _ in COMMANDS}
    assert len(top) == len(command_modules())
    writes = {words[1] for words, _ in COMMANDS if words[0] == "write"}
    assert writes == set(converter_modules())
    assert ("split",) in [w for w, _ in COMMANDS]


@pytest.mark.parametrize(("words", "parser"), COMMANDS, ids=IDS)
def test_help_shows_every_default_and_no_markup(words, parser):
    text = parser.format_help()
    assert not _RST.search(text), f"markup in 'shardstream {' '.join(words)} --help'"
    assert not _RST.search(parser.description or "")
    checked = 0
    for action in parser._actions:
        if not _has_default(action):
            continue
        formatter = parser._get_formatter()
        formatter.add_argument(action)
        shown = formatter.format_help()
        assert "default" in shown.lower(), f"{' '.join(words)} {action.option_strings}: {shown}"
        own = action.help or ""
        if "default" not in own.lower() or "%(default)s" in own:  # the value, not words for it
            assert _squash(str(action.default)) in _squash(shown)
        checked += 1
    # each option's block is part of the whole --help text
    assert checked == 0 or "default" in text


def _required_argv(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the positionals and required options, so that parsing can succeed."""
    argv = []
    for action in parser._actions:
        if isinstance(action, _NO_DEFAULT):
            continue
        if action.option_strings and not action.required:
            continue
        if action.nargs == "?" or action.nargs == "*":
            continue
        value = str(next(iter(action.choices))) if action.choices else "1"
        argv += [*action.option_strings[:1], value]
    return argv


@pytest.mark.parametrize(("words", "parser"), COMMANDS, ids=IDS)
def test_every_command_takes_quiet_and_yes(words, parser):
    base = _required_argv(parser)
    plain_args = parser.parse_args(base)
    for flags in (["-q", "-y"], ["--quiet", "-y"]):
        args = parser.parse_args([*base, *flags])
        assert args.quiet is True
        changed = {
            k for k, v in vars(args).items() if k in vars(plain_args) and vars(plain_args)[k] != v
        }
        assert "quiet" in changed and len(changed) == 2, changed  # -y sets exactly one option
    help_text = parser.format_help()
    assert "-q, --quiet" in help_text and re.search(r"^\s+-y\b", help_text, re.MULTILINE)


def test_every_command_runs_with_q_and_y_through_the_console_script(tmp_path):
    """One real run each of a command that never asks and one that writes (both with -q -y)."""
    from tests.cli.demo_data import demo_samples, write_packed

    data = write_packed(tmp_path / "d.msgpack", demo_samples(6, 2))
    cat = run_cli("cat", data, "-q", "-y")
    assert cat.returncode == 0, cat.stderr
    assert len(cat.stdout.splitlines()) == 6
    out = tmp_path / "s.msgpack"
    out.write_bytes(b"")  # an existing output: -y overwrites it without asking
    sample = run_cli("sample", data, out, "3", "-s", "sequential", "-q", "-y")
    assert sample.returncode == 0, sample.stderr
    assert sample.stderr == ""


def test_version_prints_the_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"shardstream {shardstream.__version__}\n"
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"shardstream {shardstream.__version__}\n"


def test_bare_shardstream_prints_the_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out == build_parser().format_help()
    assert out.startswith("usage: shardstream")
    for name in {words[0] for words, _ in COMMANDS}:
        assert re.search(rf"^\s+{re.escape(name)}\b", out, re.MULTILINE), name
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout.startswith("usage: shardstream") and "merge" in result.stdout
