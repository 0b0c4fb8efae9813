"""What every ``tpru`` command shares: its description (`Command`), the parser class,
number checks, the ``-v``/``-q`` options, logging, and the config files and backend
options of the commands that run a model.

A command module holds its help texts, its arguments and the function that runs
it, gathered in one `Command`; `tpru.commands.COMMANDS` names them. Nothing in
the library imports this package: a command reads its arguments, calls the
library and prints what a person needs to see.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from tpru.diagnostics import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Command:
    """One ``tpru`` command (or ``tpru train`` trainer).

    Attributes:
        help: the one line ``tpru --help`` lists it with.
        description: what ``tpru NAME --help`` says first.
        add_arguments: adds the command's own options to its parser.
        run: runs the command on the parsed arguments; returns the exit status.
        epilog: what ``--help`` says after the options (examples), or None.
        formatter: argparse's help formatter; the default keeps the line breaks
            of `description` and `epilog` (their examples are laid out by hand).
    """

    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None
    formatter: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter


@dataclass(frozen=True)
class CommandGroup:
    """A command whose work is done by the sub-command named next (``tpru train grpo``).

    Attributes:
        help, description: as for `Command`.
        commands: sub-command name -> `Command`, in ``--help`` order.
        dest: the attribute of the parsed arguments that holds the sub-command's name.
        metavar: how ``--help`` names the sub-command.
    """

    help: str
    description: str
    commands: Mapping[str, Command]
    dest: str
    metavar: str


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line like every other error, and a command's
    options and positional arguments in any order (``tpru build --out d key=value --seed 1
    key2=value``, ``tpru train grpo CONFIG.yaml --overwrite key=value``)."""

    _intermixing = False

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(  # type: ignore[override]
            self, args: Sequence[str] | None = None,
            namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        # argparse parses a positional list (nargs="*") only where it first meets it, so
        # `key=value` after an option would be "unrecognized"; intermixed parsing takes it.
        # That parsing calls this method again, and refuses a parser with sub-commands. A
        # command that replaced this method on its parser (tpru train easyr1) keeps its own.
        if self._intermixing or self._subparsers is not None or "parse_known_args" in vars(self):
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def common_options() -> Parser:
    """The parent parser of every command: ``-v``/``--verbose`` and ``-q``/``--quiet``."""
    common = Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="show errors only, no progress bars")
    return common


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Log diagnostics through rich to standard error, at the level ``-v``/``-q`` ask for."""
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    # Diagnostics go to standard error, so that standard output stays parseable.
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False,
                          markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # it logs which CPU build it loads
    # httpx logs every request at INFO: thousands of lines in an openai: evaluation.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of `minimum` or more, refused at parsing otherwise.

    Every command takes its seeds as ``int_at_least(0)``: seeds reach numpy, which refuses
    negative ones, so a negative seed is refused before anything runs or is written.

    Example:
        >>> int_at_least(1)("3")
        3
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def add_config_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """The positional ``CONFIG.yaml`` and ``key=value`` arguments `load_config_arguments`
    reads (``tpru eval``, ``tpru audit``)."""
    p.add_argument("config", nargs="*", metavar="CONFIG.yaml|key=value",
                   help=f"a YAML config file (such as the {command}.yaml an earlier run "
                        "wrote) and/or key.sub=value overrides; the options below override "
                        "both")


def load_config_arguments(cls: type[T], items: Sequence[str]) -> T:
    """A config dataclass from a command's ``CONFIG.yaml`` and ``key=value`` arguments.

    Read as ``tpru build`` reads its own: an item with ``=`` that is not an
    existing file is an override, anything else a YAML file; the files are
    merged in order (a later file's top-level key replaces an earlier one's)
    and the overrides applied over them all. Every field of `cls` has a
    default, so each file is loaded alone too: a bad key or value is blamed
    on the file or the override that wrote it, and an unknown key lists the
    known ones.

    Raises:
        ConfigError: an unreadable file, an unknown key, a bad value; one line.
    """
    from tpru.config import ConfigError, apply_overrides, check_keys, load, read_yaml

    data: dict[str, Any] = {}
    overrides = []
    for item in items:
        if "=" in item and not Path(item).exists():
            check_keys(cls, apply_overrides({}, [item]), source=f"override {item!r}")
            overrides.append(item)
            continue
        from_file = read_yaml(item)
        check_keys(cls, from_file, source=item)
        try:
            load(cls, from_file)
        except ConfigError as err:
            raise ConfigError(f"{item}: {err}") from None
        data.update(from_file)
    try:
        return load(cls, apply_overrides(data, overrides))
    except ConfigError as err:
        raise ConfigError(f"command line: {err}" if overrides else str(err)) from None


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """The options that `backend_options` reads (``tpru eval``, ``tpru audit``)."""
    p.add_argument("--base-url", metavar="URL", action="append",
                   help="server of an openai: model, e.g. http://localhost:8000/v1; repeat it "
                        "to spread the requests over several servers (one per GPU node)")
    p.add_argument("--concurrency", type=int_at_least(1), metavar="N",
                   help="parallel requests to an openai: server")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a backend option, e.g. dtype=bfloat16 or max_pixels=401408 (hf); "
                        "repeatable")


def backend_options(args: argparse.Namespace, *, seed: int,
                    options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword options for `tpru.models.open_backend`: `options` (a config's), then
    the command line's ``--option``, ``--base-url`` and ``--concurrency`` over them; the
    random model draws with the run's `seed` unless an option names another."""
    from tpru.config import apply_overrides

    for option in args.option:
        key, sep, _ = option.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option {option!r} is not of the form KEY=VALUE "
                             "(e.g. --option dtype=bfloat16)")
    result = apply_overrides(options or {}, args.option)
    if args.base_url:
        result["base_url"] = args.base_url[0] if len(args.base_url) == 1 else args.base_url
    if args.concurrency is not None:
        result["concurrency"] = args.concurrency
    if args.model.rsplit(":", 1)[-1] == "random":
        result.setdefault("seed", seed)
    return result
