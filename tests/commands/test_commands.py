"""The command table: every name loads a command from its own module, listed in order."""

from __future__ import annotations

import pytest

from tpru.commands import COMMANDS, main
from tpru.commands.common import Command, CommandGroup
from tpru.registry import load


def test_every_command_is_its_own_module_and_help_lists_them_in_table_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, target in COMMANDS.items():
        assert target == f"tpru.commands.{name}:COMMAND"
        assert isinstance(load(target, what=name), (Command, CommandGroup))
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out.split("COMMAND", 2)[-1]
    # A command's line starts with 4 spaces; its help, when wrapped, goes on with more.
    names = [line.split()[0] for line in listed.splitlines()
             if line.startswith("    ") and not line.startswith("     ")]
    assert names == list(COMMANDS)
    trainers = load(COMMANDS["train"], what="train")
    assert list(trainers.commands) == ["grpo", "sft", "easyr1"]
