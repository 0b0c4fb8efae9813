"""The reward of an EasyR1 run folder: reward.py and a copy of `tpru.score` beside it.

A cluster that has EasyR1 but not tpru must still score exactly as tpru
does, so `write_reward` copies the modules of `tpru.score` unchanged into
the run folder as the package ``tpru_score/`` and writes reward.py, which
imports the trainer adapters of `tpru.score.rewards` from it. The copy works
under another name because the package imports only itself (relatively) and
Python's standard library; a test imports it where tpru cannot be imported.

EasyR1 loads ``reward_function: ./reward.py:easyr1_reward_inputs`` by path,
as a module outside any package (``spec_from_file_location``), so reward.py
first puts its own folder on ``sys.path``; the name ``tpru_score`` keeps the
copy apart from an installed tpru.

Layout::

    RUN/
      reward.py           the file EasyR1 names; every adapter of tpru.score.rewards
      tpru_score/         tpru.score's modules as this tpru wrote them
        __init__.py  extract.py  extract_rules.py  reward_functions.py  rewards.py  shared.py
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tpru import __version__
from tpru.score import rewards

REWARD_FILE = "reward.py"
"""The file of the run folder EasyR1's config names."""

REWARD_FUNCTION = "easyr1_reward_inputs"
"""The function of reward.py EasyR1 calls: ``fn(reward_inputs)``, EasyR1 v0.3.1 and later."""

PACKAGE = "tpru_score"
"""The name the copy of `tpru.score` has in a run folder, beside reward.py."""

_REWARD_PY = '''\
# Written by tpru {version}; do not edit. EasyR1 loads it by path:
#   worker.reward.reward_function: ./{reward_file}:{function}
"""tpru's reward for EasyR1, from {package}/: the copy of tpru.score beside this file.

{package}/ scores exactly as tpru {version} does: the reward ``tpru`` (the TPRU
release's) and its alternatives, named by reward_function_kwargs.reward, and
the answer extraction tpru evaluates with. EasyR1 loads this file by path, as a
module outside any package, so it puts its own folder on sys.path to import
{package}; Python's standard library is all either needs.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from {package}.rewards import (  # noqa: E402
{names})
from {package}.shared import InputError  # noqa: E402
'''


def reward_source() -> str:
    """The text of reward.py: every public name of `tpru.score.rewards`, imported from the copy."""
    return _REWARD_PY.format(
        version=__version__, reward_file=REWARD_FILE, function=REWARD_FUNCTION, package=PACKAGE,
        names="".join(f"    {name},\n" for name in sorted(rewards.__all__)))


def score_files() -> dict[str, str]:
    """The modules of `tpru.score`, file name -> text, in name order."""
    package = resources.files("tpru.score")
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in sorted(package.iterdir(), key=lambda entry: entry.name)
            if entry.name.endswith(".py")}


def write_reward(run: Path) -> None:
    """Write reward.py and the package it imports, ``tpru_score/``, into the folder `run`."""
    package = run / PACKAGE
    package.mkdir()
    for name, text in score_files().items():
        (package / name).write_text(text, encoding="utf-8")
    (run / REWARD_FILE).write_text(reward_source(), encoding="utf-8")
