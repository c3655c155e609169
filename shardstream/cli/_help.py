"""What makes every subcommand's ``--help`` alike: defaults shown, plain text, ``-q`` and ``-y``.

:func:`finish_parsers` runs once over the finished parser tree (see
:func:`shardstream.cli.build_parser`), so a command module needs no boilerplate for it:

- every help text, description and epilog is turned into plain text (:func:`plain`: docstring
  roles such as ``:class:`~a.B``` become ``B``, double backquotes are dropped);
- every option with a default shows it: an option whose help does not already say
  ``default`` gets ``(default: VALUE)`` appended by the formatter (flags, ``None`` and empty
  defaults are left alone: they mean "off" or "not given");
- every command parser (one without subcommands) takes ``-q/--quiet`` and ``-y``: a command
  that lacks them gets them here, documented as having no effect, so scripts may pass both to
  any command.

Not a subcommand: the leading underscore keeps :func:`shardstream.cli.command_modules` from
loading it as one.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

__all__ = [
    "DefaultsHelpFormatter",
    "RawDescriptionDefaultsHelpFormatter",
    "finish_parsers",
    "iter_command_parsers",
    "plain",
]

_ROLE = re.compile(r":[a-z]+:`~?([^`<]+?)(?: <[^>]*>)?`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. [a-z-]+::\s*", re.MULTILINE)

#: Help of a ``-q/--quiet`` added to a command that prints no progress.
QUIET_NOOP_HELP = "no effect: this command shows no progress bars (accepted by every command)"

#: Help of a ``-y`` added to a command that never asks.
YES_NOOP_HELP = "no effect: this command never asks for confirmation (accepted by every command)"


def plain(text: str) -> str:
    """Docstring markup as plain text.

    ``:class:`~a.B``` becomes ``B`` (a role's target without its module path),
    ``:func:`f <a.f>``` becomes ``f``, double backquotes are dropped and a directive line
    (``.. note::``) keeps only its text.

    Args:
        text: a docstring or help text.

    Returns:
        The text without reStructuredText markup.
    """
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = _DIRECTIVE.sub(r"\1", text)
    return text.replace("``", "")


def _shows_default(action: argparse.Action) -> bool:
    """Whether ``action`` has a default worth printing (not a flag's, not None, not empty)."""
    if (
        action.help == argparse.SUPPRESS
        or not action.option_strings
        and action.nargs
        not in (
            argparse.OPTIONAL,
            argparse.ZERO_OR_MORE,
        )
    ):
        return False
    if isinstance(
        action,
        (
            argparse._StoreTrueAction,
            argparse._StoreFalseAction,
            argparse._HelpAction,
            argparse._VersionAction,
            argparse._CountAction,
        ),
    ):
        return False
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False:
        return False
    return not (isinstance(default, (list, tuple, set, dict, str)) and len(default) == 0)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Wrapped help that shows each option's default, like ``ArgumentDefaultsHelpFormatter``,
    except where the help text already says it (``default`` anywhere in it) or where the
    default means "not given" (None, False, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if _shows_default(action) and "default" not in text.lower():
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


class RawDescriptionDefaultsHelpFormatter(
    argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter
):
    """:class:`DefaultsHelpFormatter` keeping the description's own line breaks."""


def iter_command_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree below ``parser`` (itself included), with its command words.

    Args:
        parser: the root parser.
        path: the words that lead to ``parser``.

    Returns:
        ``(words, parser)`` pairs, parents before their subcommands, subcommands by name.
    """
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action._name_parser_map.items():
                if name in action.choices:  # aliases map to the same parser
                    yield from iter_command_parsers(sub, (*path, name))


def finish_parsers(root: argparse.ArgumentParser) -> None:
    """Apply the shared conventions (see the module docstring) to every parser under ``root``.

    Args:
        root: the ``shardstream`` parser with every subcommand registered.
    """
    seen: set[int] = set()
    for _, parser in iter_command_parsers(root):
        if id(parser) in seen:
            continue
        seen.add(id(parser))
        formatter = parser.formatter_class
        raw = isinstance(formatter, type) and issubclass(
            formatter, argparse.RawDescriptionHelpFormatter
        )
        parser.formatter_class = (
            RawDescriptionDefaultsHelpFormatter if raw else DefaultsHelpFormatter
        )
        for attr in ("description", "epilog"):
            value = getattr(parser, attr)
            if value:
                setattr(parser, attr, plain(value))
        has_subcommands = False
        for action in parser._actions:
            if action.help and action.help != argparse.SUPPRESS:
                action.help = plain(action.help)
            elif action.help is None and _shows_default(action):
                action.help = "default: %(default)s"  # argparse prints nothing for no help
            if isinstance(action, argparse._SubParsersAction):
                has_subcommands = True
                for choice in action._choices_actions:
                    if choice.help:
                        choice.help = plain(choice.help)
        if not has_subcommands and parser is not root:
            _ensure_option(parser, "-q", "--quiet", "quiet", QUIET_NOOP_HELP)
            _ensure_option(parser, "-y", "--no-confirm", "no_confirm", YES_NOOP_HELP)


def _ensure_option(
    parser: argparse.ArgumentParser, short: str, long: str, dest: str, help_text: str
) -> None:
    """Give ``parser`` the flag ``short``/``long``: alias an existing half, or add a no-op."""
    have = parser._option_string_actions
    if short in have:
        return
    if long in have:  # e.g. only --quiet: let -q name the same option
        action = have[long]
        action.option_strings = [short, *action.option_strings]
        have[short] = action
        return
    parser.add_argument(short, long, dest=dest, action="store_true", help=help_text)
