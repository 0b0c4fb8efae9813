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
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class Batches:
    """The numbers EasyR1's batch rules read from a config (`check_batches`)."""

    rollout: int
    """data.rollout_batch_size: prompts per step."""
    mini: int | None
    """data.mini_rollout_batch_size: the loader's batch when set, else `rollout`."""
    n: int
    update: int
    """worker.actor.global_batch_size: prompts per actor update."""
    micro_update: int
    micro_experience: int
    ulysses: int
    tensor_parallel: int
    gpus: int
    offload: bool

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Batches:
        """Read them from `config` (EasyR1's defaults where it says nothing)."""
        mini = get(config, "data.mini_rollout_batch_size")
        return cls(
            rollout=integer(config, "data.rollout_batch_size"),
            mini=integer(config, "data.mini_rollout_batch_size") if mini is not None else None,
            n=integer(config, "worker.rollout.n"),
            update=integer(config, "worker.actor.global_batch_size"),
            micro_update=integer(config, "worker.actor.micro_batch_size_per_device_for_update"),
            micro_experience=integer(
                config, "worker.actor.micro_batch_size_per_device_for_experience"),
            ulysses=integer(config, "worker.actor.ulysses_size"),
            tensor_parallel=integer(config, "worker.rollout.tensor_parallel_size"),
            gpus=integer(config, "trainer.nnodes") * integer(config, "trainer.n_gpus_per_node"),
            offload=bool(get(config, "worker.actor.fsdp.enable_cpu_offload")))


def check_batches(config: Mapping[str, Any], *, train_samples: int) -> None:
    """Refuse batch sizes EasyR1 would reject at start-up, or that leave no full batch.

    The rules are those of EasyR1's trainer and FSDP workers: the rollout
    batch divides into actor updates, the samples of a step divide into
    micro-batches, every GPU gets a share of each update, the rollout's tensor
    parallel size divides the GPUs, and GRPO samples more than one response
    per prompt. The train loader drops an incomplete last batch, so a split
    smaller than one batch would train on nothing.

    When the batch sizes are what is wrong, the message ends with sizes that
    pass every rule for this split and these GPUs (`suggest_batches`), so one
    correction is enough: the rules are not met one refusal at a time.
    """
    b = Batches.of(config)
    problems = []
    if min(b.rollout, 1 if b.mini is None else b.mini, b.n, b.update, b.micro_update,
           b.micro_experience, b.ulysses, b.tensor_parallel, b.gpus) < 1:
        problems.append("batch sizes, rollout.n, parallel sizes and GPU counts must be positive")
        sizes = []
    else:
        sizes = _rollout_problems(b, train_samples) + _update_problems(b)
        problems += sizes
    if b.gpus >= 1 and b.tensor_parallel >= 1 and b.gpus % b.tensor_parallel:
        problems.append(f"{b.gpus} GPUs do not divide into worker.rollout.tensor_parallel_size "
                        f"{b.tensor_parallel}")
    if get(config, "algorithm.adv_estimator") in ("grpo", "rloo") and b.n < 2:
        problems.append("GRPO needs worker.rollout.n > 1 responses per prompt")
    if not problems:
        return
    message = "EasyR1 would refuse this config: " + "; ".join(problems)
    suggestion = suggest_batches(b, train_samples) if sizes else None
    if suggestion:
        message += (f". Batch sizes that fit {train_samples} train samples on {b.gpus} GPU"
                    f"{'s' * (b.gpus != 1)}: " + " ".join(f"{k}={v}" for k, v in
                                                         suggestion.items()))
    raise InputError(message)


def suggest_batches(b: Batches, train_samples: int) -> dict[str, int]:
    """The overrides (``key: value``) of the largest rollout batch that passes every batch
    rule with `train_samples` train samples, the other settings kept; empty when none does.

    The actor's update batch is kept when a rollout batch fits it, else the
    largest rollout batch with any smaller update batch is chosen. With
    ``data.mini_rollout_batch_size`` set, nothing is suggested: its own rules
    are EasyR1's to state.

    Example:
        >>> b = Batches(rollout=256, mini=None, n=5, update=128, micro_update=1,
        ...             micro_experience=2, ulysses=1, tensor_parallel=2, gpus=8,
        ...             offload=False)
        >>> suggest_batches(b, 200)
        {'data.rollout_batch_size': 128}
    """
    if b.mini is not None:
        return {}
    limit = min(b.rollout, train_samples)
    best: tuple[int, int] | None = None
    for update in [b.update, *range(min(b.update - 1, limit), 0, -1)]:
        largest = limit - limit % update
        if largest < 1 or (best is not None and largest <= best[0]):
            continue
        if _update_problems(replace(b, update=update)):
            continue
        rollout = next((r for r in range(largest, 0, -update)
                        if not _rollout_problems(replace(b, rollout=r, update=update),
                                                 train_samples)), None)
        if rollout is not None and (best is None or rollout > best[0]):
            best = (rollout, update)
            if update == b.update:
                break  # the update batch kept: the smallest change
    if best is None:
        return {}
    changed = {"data.rollout_batch_size": (best[0], b.rollout),
               "worker.actor.global_batch_size": (best[1], b.update)}
    return {key: new for key, (new, old) in changed.items() if new != old}


def _rollout_problems(b: Batches, train_samples: int) -> list[str]:
    """The rules on the rollout batch: whole updates, whole micro-batches, a full batch."""
    problems = []
    if b.rollout % b.update:
        problems.append(f"data.rollout_batch_size {b.rollout} is not a multiple of "
                        f"worker.actor.global_batch_size {b.update}")
    elif b.rollout * b.n % b.micro_experience:
        problems.append(f"data.rollout_batch_size x worker.rollout.n = {b.rollout * b.n} is not "
                        f"a multiple of micro_batch_size_per_device_for_experience "
                        f"{b.micro_experience}")
    loader = b.mini if b.mini is not None else b.rollout
    if train_samples < loader:
        key = "data.mini_rollout_batch_size" if b.mini is not None else "data.rollout_batch_size"
        problems.append(f"the train split has {train_samples} samples, fewer than one batch of "
                        f"{loader} ({key}), so EasyR1 would train on nothing")
    return problems


def _update_problems(b: Batches) -> list[str]:
    """The rules on an actor update: a share for every GPU, in whole micro-batches."""
    per_device = b.update * b.n // max(1, b.gpus // b.ulysses)
    if per_device == 0:
        return [f"an update of {b.update * b.n} samples is smaller than the {b.gpus} GPUs"]
    if per_device % b.micro_update:
        return [f"{per_device} samples per GPU per update is not a multiple of "
                f"micro_batch_size_per_device_for_update {b.micro_update}"]
    if b.offload and per_device != b.micro_update:
        return ["worker.actor.fsdp.enable_cpu_offload needs one micro-batch per update "
                f"({per_device} samples per GPU, micro-batches of {b.micro_update})"]
    return []


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
