"""The reward of an EasyR1 run folder, run the way EasyR1 runs it, where tpru cannot be imported.

Every check of reward.py runs in a separate Python started with ``-I -S``
(no site-packages, no environment, no current folder on sys.path), so the
only scorer it can find is the copy ``tpru_score/`` beside it; what it
computes is compared with tpru's own `tpru.score.rewards`.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tpru.score
import tpru.score.rewards
from tpru.train.easyr1_reward import (
    PACKAGE,
    REWARD_FILE,
    REWARD_FUNCTION,
    reward_source,
    score_files,
    write_reward,
)
from tpru.train.recipes import top_level_names

RESPONSES = [
    "<think>C happens first.</think> <answer>CABD</answer>",
    "<think>\nthe arm lifts the cup\n</think>\n< answer > B </answer>",
    "The answer is <answer>B</answer>.",
    "<think>x</think><answer>'b'</answer>",
    "<answer>ACBD</answer>",
    "The correct answer is (B).",
    "none of the options fits",
    "<think>long</think><answer>E</answer>" + " pad" * 400,
    "",
]
GOLDS = ["CABD", "B", "B", "B", "ABCD", "B", "E", "E", "A"]

LOAD_LIKE_EASYR1 = """\
from __future__ import annotations  # the annotations of score_everything name typing.Any
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("custom_reward_fn", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["custom_reward_fn"] = module
spec.loader.exec_module(module)
data = json.loads(sys.stdin.read())
"""
"""What EasyR1's FunctionRewardManager does with ``worker.reward.reward_function``."""


def run_like_easyr1(reward_file: Path, code: str, data: Any, cwd: Path) -> Any:
    """Load `reward_file` as EasyR1 does in a Python where tpru cannot be imported; run `code`.

    `code` sees the module as ``module`` and `data` (sent as JSON) as
    ``data``, and sets ``result``, which comes back through JSON.
    """
    script = f"{LOAD_LIKE_EASYR1}{code}\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(reward_file)],
                          input=json.dumps(data), capture_output=True, text=True, check=False,
                          cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def score_everything(module: Any, responses: list[str], golds: list[str]) -> dict[str, Any]:
    """Every adapter of a reward module, for every reward it names (run in both Pythons)."""
    inputs = [{"response": r, "response_length": len(r) // 4, "ground_truth": g}
              for r, g in zip(responses, golds, strict=True)]
    scores = {}
    for name in module.REWARDS:
        scores[name] = {
            "reward_inputs": module.easyr1_reward_inputs(inputs, reward=name),
            "one_input": module.easyr1_reward_inputs(inputs[1], reward=name),
            "main": module.main(inputs, reward=name),
            "batch": module.easyr1_batch(responses, golds, reward=name),
            "verl": [module.verl_compute_score("tpru", r, g, reward=name)
                     for r, g in zip(responses, golds, strict=True)],
        }
    try:
        module.easyr1_batch(responses, golds, reward="nope")
        error = None
    except module.InputError as err:
        error = str(err)
    return {"names": [module.REWARD_NAME, module.REWARD_TYPE], "scores": scores,
            "compute_score": module.compute_score(responses, golds),
            "sequential": module.easyr1_sequential(responses[0], golds[0]), "error": error}


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("easyr1-reward") / "run"
    run.mkdir()
    write_reward(run)
    return run


def test_the_folder_holds_reward_py_and_an_unchanged_copy_of_tpru_score(
        reward_dir: Path) -> None:
    source = Path(tpru.score.__file__).parent
    assert sorted(p.name for p in reward_dir.iterdir()) == sorted([PACKAGE, REWARD_FILE])
    copied = sorted(p.name for p in (reward_dir / PACKAGE).iterdir())
    assert copied == sorted(p.name for p in source.glob("*.py")) == list(score_files())
    for name in copied:
        assert (reward_dir / PACKAGE / name).read_bytes() == (source / name).read_bytes(), name


def test_reward_file_scores_exactly_like_tpru(reward_dir: Path, tmp_path: Path) -> None:
    code = inspect.getsource(score_everything) + "result = score_everything(module, *data)"
    found = run_like_easyr1(reward_dir / REWARD_FILE, code, [RESPONSES, GOLDS], tmp_path)
    expected = score_everything(tpru.score.rewards, RESPONSES, GOLDS)
    assert found == json.loads(json.dumps(expected))
    assert list(found["scores"]) == list(tpru.score.rewards.REWARDS)
    assert found["sequential"] == {"overall": 0.92, "format": 0.2, "accuracy": 1.0}
    assert found["error"] is not None and "unknown reward 'nope'" in found["error"]


def test_reward_file_uses_the_copy_beside_it_without_tpru(reward_dir: Path,
                                                          tmp_path: Path) -> None:
    code = ("result = {'tpru': importlib.util.find_spec('tpru') is not None,\n"
            "          'package': sys.modules['tpru_score'].__file__,\n"
            f"          'function': module.{REWARD_FUNCTION}.__module__}}")
    found = run_like_easyr1(reward_dir / REWARD_FILE, code, None, tmp_path)
    assert found == {"tpru": False, "function": f"{PACKAGE}.rewards",
                     "package": str(reward_dir.resolve() / PACKAGE / "__init__.py")}


def test_reward_file_imports_only_the_standard_library_and_the_copy(reward_dir: Path) -> None:
    tree = ast.parse((reward_dir / REWARD_FILE).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {PACKAGE}
    # Every adapter can be named as ./reward.py:FUNCTION, as check_run_files sees it.
    names = top_level_names(reward_dir / REWARD_FILE)
    assert {*tpru.score.rewards.__all__, "InputError", REWARD_FUNCTION} <= names


def test_reward_source_is_deterministic() -> None:
    assert reward_source() == reward_source()
    compile(reward_source(), REWARD_FILE, "exec")
