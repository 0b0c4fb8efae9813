"""tpru.score stands alone: a copy under another name scores where tpru cannot be imported.

EasyR1 run folders carry such a copy (`tpru.train.easyr1_reward`), so the
package may import only itself, relatively, and Python's standard library.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import tpru.score
from tpru.score.extract import extract_answer
from tpru.score.rewards import REWARDS, score_response
from tpru.score.shared import IMAGE_OPTION, NONE_OPTION

SCORE = Path(tpru.score.__file__).parent

EXTRACTIONS = [
    ("The correct answer is (B).", [IMAGE_OPTION] * 4 + [NONE_OPTION], None),
    ("I'd say none of the options fits.", [IMAGE_OPTION, IMAGE_OPTION, NONE_OPTION], None),
    ("<answer>(A) 1 3 4 2</answer>", ["1 3 4 2", "4 3 2 1", NONE_OPTION], None),
    ("the order is 4 3 2 1", ["1 3 4 2", "4 3 2 1", NONE_OPTION], None),
    ("Order: C -> A -> B -> D", None, 4),
    ("\\boxed{\\text{B}}", [IMAGE_OPTION] * 3, None),
    ("nothing here", [IMAGE_OPTION] * 3, None),
]
"""(response, options, n_images) for `extract_answer`."""

SCORED = [
    ("<think>C first.</think><answer>CABD</answer>", "CABD", {"response_length": 12}),
    ("<think>r</think><answer>CBAD</answer>", "CABD", {"n_images": 4}),
    ("None of the choices provided.", "C",
     {"options": [IMAGE_OPTION, IMAGE_OPTION, NONE_OPTION]}),
    ("The answer is (B)" + " pad" * 300, "B", {}),
]
"""(response, gold, context) for `score_response` with every reward."""

COPY_SCRIPT = """\
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
from copied_score.extract import extract_answer
from copied_score.rewards import REWARDS, score_response
extractions, scored = json.loads(sys.stdin.read())
print(json.dumps({
    "tpru": importlib.util.find_spec("tpru") is not None,
    "extracted": [[e.answer, e.rule] for e in (extract_answer(*case) for case in extractions)],
    "scores": {name: [score_response(name, *case) for case in scored] for name in REWARDS},
}))
"""


def _absolute_imports(path: Path) -> list[tuple[str, bool]]:
    """(module, inside an ``except`` handler) for each absolute import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    handled = {id(node) for handler in ast.walk(tree) if isinstance(handler, ast.ExceptHandler)
               for node in ast.walk(handler)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in handled) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module or "", id(node) in handled))
    return found


def test_the_package_imports_only_itself_and_the_standard_library() -> None:
    """Relative imports only; tpru.score by name only as rewards.py's by-path fallback."""
    for path in sorted(SCORE.glob("*.py")):
        for module, fallback in _absolute_imports(path):
            top = module.partition(".")[0]
            allowed = top in sys.stdlib_module_names or (fallback and
                                                         module.startswith("tpru.score."))
            assert allowed, f"{path.name} imports {module}"


def test_a_copy_scores_where_tpru_cannot_be_imported(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    shutil.copytree(SCORE, folder / "copied_score",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-I", "-S", "-c", COPY_SCRIPT, str(folder)],
                          input=json.dumps([EXTRACTIONS, SCORED]), capture_output=True,
                          text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["tpru"] is False
    assert found["extracted"] == [[e.answer, e.rule] for e in
                                  (extract_answer(*case) for case in EXTRACTIONS)]
    expected = {name: [score_response(name, *case) for case in SCORED] for name in REWARDS}
    assert found["scores"] == json.loads(json.dumps(expected))


def test_tpru_shares_the_scorers_names() -> None:
    """The records and the command line use the scorer's definitions, not copies of them."""
    import tpru.diagnostics
    import tpru.schema
    import tpru.score.shared

    assert tpru.schema.NONE_OPTION is tpru.score.shared.NONE_OPTION
    assert tpru.schema.IMAGE_OPTION is tpru.score.shared.IMAGE_OPTION
    assert tpru.diagnostics.InputError is tpru.score.shared.InputError
