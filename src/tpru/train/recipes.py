"""EasyR1 recipes: the paper's GRPO settings as data, and the checks a run's config must pass.

A recipe is a YAML file of EasyR1 config sections (``data``, ``algorithm``,
``worker``, ``trainer``) with EasyR1's own key names, so that every value can
be looked up in EasyR1's documentation and overridden the way EasyR1 users
already do (``worker.rollout.n=8``). The paper's recipes ship as
``configs/train/easyr1_tpru_3b.yaml`` and ``easyr1_tpru_7b.yaml`` and are
named ``3b`` and ``7b``; any other recipe is a path.

A recipe holds no paths of a particular run: tpru fills in the data files,
format prompt, reward function and node and GPU counts when it writes a run
folder. The checks here catch, before a job reaches a cluster, what EasyR1
would only report after loading the model, or never:

- the three defects of the TPRU release's configs (`check_run_files`): a
  format prompt and a reward function swapped, a format prompt file that does
  not exist (EasyR1 prints a line and trains without the prompt), and a reward
  file named without ``:function`` (EasyR1 then calls ``main``);
- EasyR1's batch arithmetic (`check_batches`): the divisibility rules its
  trainer and workers enforce, and a train split with no full batch;
- prompts longer than ``data.max_prompt_length`` once their images are
  counted (`tpru.train.prompt_budget.measure_prompts`), which EasyR1 drops
  or cuts ("image features and image tokens do not match"), and more images
  than vLLM is allowed.

Example:
    >>> config = load_recipe("7b")
    >>> get(config, "worker.rollout.n"), get(config, "data.max_pixels")
    (5, 36864)
"""

from __future__ import annotations

import ast
import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpru.config import ConfigError, read_yaml
from tpru.diagnostics import InputError

RECIPES: dict[str, str] = {"3b": "easyr1_tpru_3b.yaml", "7b": "easyr1_tpru_7b.yaml"}
"""Recipe name -> file in the source tree's ``configs/train``."""

RECIPE_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"
"""Where the named recipes live: ``configs/train`` of the tpru source tree."""

SECTIONS = ("data", "algorithm", "worker", "trainer")
"""The top-level sections of an EasyR1 config (its ``PPOConfig``)."""

EASYR1_DEFAULTS: dict[str, Any] = {
    "algorithm.adv_estimator": "grpo", "data.rollout_batch_size": 512,
    "data.mini_rollout_batch_size": None, "data.max_prompt_length": 512,
    "data.min_pixels": 262144, "data.max_pixels": 4194304,
    "worker.actor.global_batch_size": 256, "worker.actor.ulysses_size": 1,
    "worker.actor.micro_batch_size_per_device_for_update": 4,
    "worker.actor.micro_batch_size_per_device_for_experience": 16,
    "worker.actor.fsdp.enable_cpu_offload": False, "worker.rollout.n": 1,
    "worker.rollout.tensor_parallel_size": 2, "worker.rollout.limit_images": 0,
}
"""EasyR1's defaults for the keys the checks read, used when a config leaves them out."""


def recipe_path(recipe: str | os.PathLike[str]) -> Path:
    """The YAML file of `recipe`: a name in `RECIPES`, or a path."""
    name = str(recipe)
    if name in RECIPES:
        path = RECIPE_DIR / RECIPES[name]
        if not path.is_file():
            raise InputError(f"recipe {name!r}: {path} not found; the named recipes ship with "
                             "the tpru source tree (configs/train), pass --recipe PATH instead")
        return path
    path = Path(recipe)
    if not path.is_file():
        raise InputError(f"recipe {name!r} is neither a recipe name "
                         f"({', '.join(sorted(RECIPES))}) nor a YAML file")
    return path


def load_recipe(recipe: str | os.PathLike[str]) -> dict[str, Any]:
    """The EasyR1 config sections of `recipe` (a name in `RECIPES` or a YAML path).

    Only the top-level sections are checked here; EasyR1 refuses an unknown
    key below them when it loads the config.
    """
    path = recipe_path(recipe)
    try:
        data = read_yaml(path)
    except ConfigError as err:
        raise InputError(str(err)) from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise InputError(f"{path}: unknown section {unknown[0]!r} "
                         f"(an EasyR1 config has {', '.join(SECTIONS)})")
    for section, value in data.items():
        if not isinstance(value, Mapping):
            raise InputError(f"{path}: section {section!r} is not a mapping")
    return copy.deepcopy(data)


def get(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted `key`, else `default` (else EasyR1's default for the checked keys)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default if default is not None else EASYR1_DEFAULTS.get(key)
        node = node[part]
    return node


def put(config: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` to `value`, creating the sections on the way."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def integer(config: Mapping[str, Any], key: str) -> int:
    """The integer at `key`, with a one-line error naming the key if it is not one."""
    value = get(config, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{key}: expected an integer, got {value!r}")
    return value


def check_batches(config: Mapping[str, Any], *, train_samples: int) -> None:
    """Refuse batch sizes EasyR1 would reject at start-up, or that leave no full batch.

    The rules are those of EasyR1's trainer and FSDP workers: the rollout
    batch divides into actor updates, the samples of a step divide into
    micro-batches, every GPU gets a share of each update, the rollout's tensor
    parallel size divides the GPUs, and GRPO samples more than one response
    per prompt. The train loader drops an incomplete last batch, so a split
    smaller than one batch would train on nothing.
    """
    rollout = integer(config, "data.rollout_batch_size")
    mini = get(config, "data.mini_rollout_batch_size")
    loader_batch = integer(config, "data.mini_rollout_batch_size") if mini is not None else rollout
    n = integer(config, "worker.rollout.n")
    update = integer(config, "worker.actor.global_batch_size")
    micro_update = integer(config, "worker.actor.micro_batch_size_per_device_for_update")
    micro_experience = integer(config, "worker.actor.micro_batch_size_per_device_for_experience")
    ulysses = integer(config, "worker.actor.ulysses_size")
    tensor_parallel = integer(config, "worker.rollout.tensor_parallel_size")
    gpus = integer(config, "trainer.nnodes") * integer(config, "trainer.n_gpus_per_node")
    problems = []
    if min(rollout, loader_batch, n, update, micro_update, micro_experience, ulysses,
           tensor_parallel, gpus) < 1:
        problems.append("batch sizes, rollout.n, parallel sizes and GPU counts must be positive")
    elif rollout % update:
        problems.append(f"data.rollout_batch_size {rollout} is not a multiple of "
                        f"worker.actor.global_batch_size {update}")
    elif rollout * n % micro_experience:
        problems.append(f"data.rollout_batch_size x worker.rollout.n = {rollout * n} is not a "
                        f"multiple of micro_batch_size_per_device_for_experience "
                        f"{micro_experience}")
    else:
        per_device = update * n // max(1, gpus // ulysses)
        if per_device == 0:
            problems.append(f"an update of {update * n} samples is smaller than the {gpus} GPUs")
        elif per_device % micro_update:
            problems.append(f"{per_device} samples per GPU per update is not a multiple of "
                            f"micro_batch_size_per_device_for_update {micro_update}")
        elif get(config, "worker.actor.fsdp.enable_cpu_offload") and per_device != micro_update:
            problems.append("worker.actor.fsdp.enable_cpu_offload needs one micro-batch per "
                            f"update ({per_device} samples per GPU, micro-batches of "
                            f"{micro_update})")
    if gpus >= 1 and tensor_parallel >= 1 and gpus % tensor_parallel:
        problems.append(f"{gpus} GPUs do not divide into worker.rollout.tensor_parallel_size "
                        f"{tensor_parallel}")
    if get(config, "algorithm.adv_estimator") in ("grpo", "rloo") and n < 2:
        problems.append("GRPO needs worker.rollout.n > 1 responses per prompt")
    if loader_batch >= 1 and train_samples < loader_batch:
        problems.append(f"the train split has {train_samples} samples, fewer than one batch of "
                        f"{loader_batch} (data.rollout_batch_size), so EasyR1 would train on "
                        "nothing")
    if problems:
        raise InputError("EasyR1 would refuse this config: " + "; ".join(problems))


def check_run_files(config: Mapping[str, Any], run_dir: Path) -> None:
    """Refuse the TPRU release's config defects, with paths resolved from `run_dir`.

    EasyR1 resolves relative paths from the folder it is started in, which is
    the run folder (launch.sh changes into it).
    """
    prompt = get(config, "data.format_prompt")
    reward = get(config, "worker.reward.reward_function")
    if not isinstance(prompt, str) or not prompt:
        raise InputError("data.format_prompt is not set: the model would never be told to "
                         "answer in <think>/<answer> tags")
    if not isinstance(reward, str) or not reward:
        raise InputError("worker.reward.reward_function is not set")
    if _python_file(prompt) or reward.endswith((".jinja", ".j2", ".txt")):
        raise InputError(f"data.format_prompt ({prompt}) and worker.reward.reward_function "
                         f"({reward}) are swapped")
    prompt_file = _resolve(prompt, run_dir)
    if not prompt_file.is_file():
        raise InputError(f"data.format_prompt: {prompt} does not exist in {run_dir}; EasyR1 "
                         "would train without the prompt (it only prints 'not found')")
    if "content" not in prompt_file.read_text(encoding="utf-8"):
        raise InputError(f"data.format_prompt: {prompt_file} never uses {{{{ content }}}}")
    path, sep, function = reward.rpartition(":")
    if not sep or not function or not _python_file(path):
        raise InputError(f"worker.reward.reward_function: {reward!r} is not PATH.py:FUNCTION; "
                         "without ':FUNCTION' EasyR1 calls a function named main")
    reward_file = _resolve(path, run_dir)
    if not reward_file.is_file():
        raise InputError(f"worker.reward.reward_function: {path} does not exist in {run_dir}")
    defined = top_level_names(reward_file)
    if function not in defined:
        raise InputError(f"worker.reward.reward_function: {reward_file} has no function "
                         f"{function!r}")
    for key in ("data.train_files", "data.val_files"):
        value = str(get(config, key) or "")
        local = _resolve(value.partition("@")[0], run_dir)
        if value.startswith(("./", "../", "/")) and not local.exists():
            raise InputError(f"{key}: {value} does not exist in {run_dir}")


def top_level_names(path: Path) -> set[str]:
    """Names a Python file binds at its top level: functions, classes, assignments, imports.

    Imports count because an EasyR1 run folder's reward.py imports its
    functions from the copy of tpru.score beside it.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise InputError(f"{path}: not valid Python ({err.msg}, line {err.lineno})") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name.partition(".")[0] for alias in node.names
                         if alias.name != "*")
    return names


def _python_file(path: str) -> bool:
    return path.partition(":")[0].endswith(".py")


def _resolve(path: str, run_dir: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else run_dir / candidate
