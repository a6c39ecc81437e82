"""The parser that ``cli.md`` documents: ``assyst_nodes.cli.build_parser()`` itself, with its
help texts escaped so that reStructuredText shows them as written.

sphinx-argparse reads every help text as reStructuredText, where ``*.xyz`` or ``name_`` would be
markup; the command's help is written for a terminal, so each special character is escaped here
(``\\*`` shows ``*``). Options, defaults and choices are those of the real parser.
"""

from __future__ import annotations

import argparse
import re

from assyst_nodes.cli import build_parser

_SPECIAL = re.compile(r"([\\`*_|])")


def plain(text: str | None) -> str | None:
    """``text`` with the characters reStructuredText would read as markup escaped."""
    return None if text is None else _SPECIAL.sub(r"\\\1", text)


def _escape(parser: argparse.ArgumentParser) -> None:
    """Escape the description, epilog and every help text of ``parser`` and its subcommands."""
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        if action.help is not argparse.SUPPRESS:
            action.help = plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help)
            for subparser in set(action.choices.values()):
                _escape(subparser)


def parser() -> argparse.ArgumentParser:
    """``build_parser()`` with its texts escaped (see the module docstring)."""
    built = build_parser()
    _escape(built)
    return built
