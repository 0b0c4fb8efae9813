"""The ``tpru`` command line: one entry point, one module per command.

`COMMANDS` names each command's `tpru.commands.common.Command` (``tpru train``'s
is a `tpru.commands.common.CommandGroup` of trainers), in the order ``tpru
--help`` lists them. A command module reads its arguments, calls the library
and prints what a person needs to see; the library never imports this package.

Every command exits non-zero with a one-line reason on bad input; ``--help``
on each command explains its options.

Example:
    >>> main(["stats", "--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tpru import __version__
from tpru.commands.common import Command, CommandGroup, Parser, common_options, setup_logging
from tpru.registry import load

__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_INTERRUPTED", "main", "make_parser"]

COMMANDS: dict[str, str] = {
    "demo": "tpru.commands.demo:COMMAND",
    "build": "tpru.commands.build:COMMAND",
    "export": "tpru.commands.export:COMMAND",
    "stats": "tpru.commands.stats:COMMAND",
    "view": "tpru.commands.view:COMMAND",
    "eval": "tpru.commands.eval:COMMAND",
    "audit": "tpru.commands.audit:COMMAND",
    "report": "tpru.commands.report:COMMAND",
    "train": "tpru.commands.train:COMMAND",
}
"""Command name -> ``"module:attr"`` of its `Command` or `CommandGroup`, in ``--help`` order."""

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

RESUMABLE = ("build", "demo", "eval", "audit")
"""The commands an interrupted run of which ``--resume`` continues (said when interrupted)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    from tpru.builder.split import LeakageError
    from tpru.config import ConfigError
    from tpru.diagnostics import InputError
    from tpru.schema import RecordError

    try:
        status: int = args.run(args)
        return status
    except (InputError, ConfigError, RecordError, LeakageError) as err:
        print(f"tpru {args.command}: error: {_with_notes(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as err:  # a folder that cannot be written, a full disk, ...
        print(f"tpru {args.command}: error: {_with_notes(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as err:
        notes = getattr(err, "__notes__", None)
        hint = (f"; {'; '.join(notes)}" if notes
                else " (continue with --resume)" if args.command in RESUMABLE else "")
        print(f"tpru {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _with_notes(err: BaseException) -> str:
    """The error's message and the notes a command added to it (`BaseException.add_note`:
    where a failed build left its folder), on one line."""
    return "; ".join([str(err), *getattr(err, "__notes__", ())])


def make_parser() -> argparse.ArgumentParser:
    """The ``tpru`` parser, with a sub-parser for every command in `COMMANDS`."""
    parser = Parser(
        prog="tpru",
        description="Build TPRU-style temporal and procedural multi-image datasets from "
                    "ordered frame sequences, export them to trainers, train with GRPO, and "
                    "evaluate models on TPRU-Test, MuirBench, LEGO-Puzzles and your own sets.")
    parser.add_argument("--version", action="version", version=f"tpru {__version__}")
    common = common_options()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, target in COMMANDS.items():
        command = load(target, what=f"tpru {name}")
        if isinstance(command, CommandGroup):
            group = sub.add_parser(name, help=command.help, description=command.description)
            inner = group.add_subparsers(dest=command.dest, required=True,
                                         metavar=command.metavar)
            for inner_name, inner_command in command.commands.items():
                _add_command(inner, common, inner_name, inner_command)
        else:
            _add_command(sub, common, name, command)
    return parser


def _add_command(sub: argparse._SubParsersAction[Parser], common: Parser, name: str,
                 command: Command) -> None:
    p = sub.add_parser(name, parents=[common], help=command.help,
                       description=command.description, epilog=command.epilog,
                       formatter_class=command.formatter)
    command.add_arguments(p)
    p.set_defaults(run=command.run)
