"""Training: GRPO and SFT with TRL in process, and run folders for EasyR1 with its recipes.

`EXPORTS` maps a public name to ``"module:attr"``, loaded through
`tpru.registry`. Modules are imported only when a name is first used (``from
tpru.train import write_easyr1_run``), so a missing optional dependency (TRL
for grpo and sft, pyarrow for the EasyR1 export) matters only to the user who
picks that entry, and the error says which extra to install. The ``tpru
train`` commands that call them are in `tpru.commands.train`.

Example:
    >>> from tpru.train import load_recipe
    >>> load_recipe("3b")["worker"]["actor"]["model"]["model_path"]
    'Qwen/Qwen2.5-VL-3B-Instruct'
"""

from __future__ import annotations

from typing import Any

from tpru.registry import load

EXPORTS: dict[str, str] = {
    "train_grpo": "tpru.train.grpo:train_grpo",
    "train_sft": "tpru.train.sft:train_sft",
    "write_easyr1_run": "tpru.train.easyr1:write_easyr1_run",
    "reward_source": "tpru.train.easyr1_reward:reward_source",
    "write_reward": "tpru.train.easyr1_reward:write_reward",
    "load_recipe": "tpru.train.recipes:load_recipe",
    "measure_prompts": "tpru.train.prompt_budget:measure_prompts",
    "RECIPES": "tpru.train.recipes:RECIPES",
}
"""Public name -> ``"module:attr"``."""

EXTRAS: dict[str, str] = {
    "tpru.train.grpo": "train",
    "tpru.train.sft": "train",
    "tpru.train.easyr1": "export",
}
"""Which extra of tpru a module needs, for the install hint."""

__all__ = ["EXPORTS", *sorted(EXPORTS)]


def __getattr__(name: str) -> Any:
    """Import the module of `name` on first use; a missing dependency names its extra."""
    if name not in EXPORTS:
        raise AttributeError(f"module 'tpru.train' has no attribute {name!r}")
    module_name = EXPORTS[name].partition(":")[0]
    return load(EXPORTS[name], what=f"tpru.train.{name}", extra=EXTRAS.get(module_name))
