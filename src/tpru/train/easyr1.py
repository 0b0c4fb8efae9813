"""``tpru train easyr1``: a complete EasyR1 run folder from a tpru dataset.

Layout::

    RUN/
      config.yaml           the EasyR1 config: a recipe, the run's paths, overrides
      data/train.parquet    the EasyR1 export (tpru.export.easyr1), images embedded
      data/test.parquet     (the validation split: test, val or validation)
      format_prompt.jinja   the export's think/answer template
      reward.py             the reward EasyR1 loads: imports tpru_score, standard library only
      tpru_score/           a copy of tpru.score (extraction and rewards) for reward.py
      launch.sh             one node, or several through Ray
      README.md             how to run it, and what was checked
      tpru.json             how the folder was made
      .tpru-output          marks the folder as tpru's, for --overwrite (tpru.files)

Everything a cluster needs is inside the folder, and every path in
``config.yaml`` is relative to it (launch.sh changes into it), so the folder
can be copied to a cluster that has EasyR1 but not tpru. ``reward.py``
imports the rewards from ``tpru_score/``, a copy of `tpru.score`
(`tpru.train.easyr1_reward`), so it scores exactly as tpru does (a test
loads it the way EasyR1 does, where tpru cannot be imported, and compares).

Before anything is written, every prompt is measured against
``data.max_prompt_length`` with its images counted
(`tpru.train.prompt_budget.measure_prompts`): a prompt EasyR1 cuts short
fails late with "image features and image tokens do not match", the error
its users report most.

Example:
    >>> write_easyr1_run("data/tpru", "runs/tpru-7b", recipe="7b")  # doctest: +SKIP
    PosixPath('runs/tpru-7b')
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tpru import __version__
from tpru.config import ConfigError, apply_overrides
from tpru.curriculum import check_order
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    FORMAT_PROMPT_FILE,
    load_format_prompt,
    staged_output,
)
from tpru.files import OUTPUT_MARKER
from tpru.train.easyr1_reward import REWARD_FILE, REWARD_FUNCTION, write_reward
from tpru.train.prompt_budget import PromptBudget, measure_prompts
from tpru.train.recipes import check_batches, check_run_files, get, integer, load_recipe, put

log = logging.getLogger("tpru.train")

RUN_KIND = "EasyR1 run folder"
"""What a run folder is marked as (`tpru.files`); ``--overwrite`` replaces only such a folder."""

VALIDATION_SPLITS = ("test", "val", "validation")
"""Splits used for validation, first found first."""

_TEMPLATES = Path(__file__).with_name("templates")
_SAFE_PATH = re.compile(r"\./[\w./-]+")
"""A relative path launch.sh can make absolute inside double quotes."""


def write_easyr1_run(dataset: str | os.PathLike[str], out: str | os.PathLike[str], *,
                     model: str | None = None, recipe: str | os.PathLike[str] = "7b",
                     overrides: Sequence[str] = (), nodes: int = 1, gpus_per_node: int = 8,
                     overwrite: bool = False, embed_images: bool = True,
                     format_prompt: str | os.PathLike[str] = BUILTIN_FORMAT_PROMPT,
                     order: str = "dataset", seed: int = 0) -> Path:
    """Write an EasyR1 run folder for `dataset` at `out` and return `out`.

    Args:
        dataset: a folder written by ``tpru build``; it needs a ``train`` split
            and validates on ``test``, ``val`` or ``validation`` (without one,
            validation is turned off).
        out: the run folder; must be empty or missing, or an earlier run
            folder (marked by tpru) with `overwrite`; never the dataset or
            the model, nor inside or around them.
        model: a hub name or local path (default: the recipe's model).
        recipe: ``3b``, ``7b`` or the path of a recipe YAML (see tpru.train.recipes).
        overrides: ``key.sub=value`` for any EasyR1 key, applied last.
        nodes, gpus_per_node: the cluster the batch sizes are checked for.
        embed_images: store the images inside the parquet files (portable);
            False stores their absolute paths, which every node must be able to read.
        format_prompt: tpru's think/answer template by default, or a jinja file.
        order: the order of the train rows: ``dataset`` (as stored), ``shuffled``
            (seeded) or ``curriculum`` (easy to hard by ``meta.difficulty.score``,
            ties in a seeded order), for which EasyR1's ``data.shuffle`` is set
            false so that its sampler keeps it.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Raises:
        InputError: the dataset, recipe or config would fail in EasyR1: a
            prompt over the length budget, more images than
            ``worker.rollout.limit_images`` given in `overrides` (without one,
            it is set to the dataset's most images per sample), batch sizes EasyR1 refuses, or a
            format prompt or reward function it would not find.
    """
    check_order(order)
    data = Dataset.open(dataset)
    splits = data.splits
    if "train" not in splits:
        raise InputError(f"{data.root}: no 'train' split to train on (splits: "
                         f"{', '.join(splits) or 'none'})")
    val_split = next((s for s in VALIDATION_SPLITS if s in splits), None)
    used = ["train"] + ([val_split] if val_split else [])
    counts = {split: sum(1 for _ in data.samples(split)) for split in used}
    config = _assemble(load_recipe(recipe), model=model, val_split=val_split,
                       nodes=nodes, gpus_per_node=gpus_per_node, overrides=overrides)
    _keep_curriculum(config, order, overrides)
    check_batches(config, train_samples=counts["train"])
    _check_reward_choice(config)
    template = load_format_prompt(format_prompt)
    assert template is not None
    budget = measure_prompts(data, used, template, config)
    budget = _fit_limit_images(config, budget, overrides)
    budget.check()
    run = Path(out)
    inputs = [data.root] + ([Path(model).expanduser()] if model is not None else [])
    with staged_output(run, overwrite=overwrite, inputs=inputs, kind=RUN_KIND) as stage:
        _export(data, stage.path / "data", used, embed_images, format_prompt, order, seed)
        shutil.move(stage.path / "data" / FORMAT_PROMPT_FILE, stage.path / FORMAT_PROMPT_FILE)
        (stage.path / "data" / OUTPUT_MARKER).unlink()  # data/ is part of the run, not an export
        write_reward(stage.path)
        _write_config(stage.path / "config.yaml", config, data, recipe)
        facts = _facts(config, data, recipe, model, overrides, embed_images, counts,
                       val_split, budget)
        facts["order"] = {"name": order, "seed": seed}
        (stage.path / "tpru.json").write_text(json.dumps(facts, indent=2) + "\n",
                                              encoding="utf-8")
        launch = stage.path / "launch.sh"
        launch.write_text(_render("launch.sh", _launch_fields(config, recipe)), encoding="utf-8")
        launch.chmod(0o755)
        (stage.path / "README.md").write_text(_render("README.md", _readme_fields(facts, config)),
                                              encoding="utf-8")
        check_run_files(config, stage.path)
    log.info("easyr1 run folder: %s (longest prompt %d of %d tokens)", run, budget.longest,
             budget.limit)
    return run


def _assemble(recipe: dict[str, Any], *, model: str | None, val_split: str | None, nodes: int,
              gpus_per_node: int, overrides: Sequence[str]) -> dict[str, Any]:
    """The recipe with this run's paths, model and cluster filled in, then the overrides."""
    config = recipe
    if model is not None:
        local = Path(model).expanduser()
        put(config, "worker.actor.model.model_path", str(local.resolve()) if local.exists()
            else model)
    if not get(config, "worker.actor.model.model_path"):
        raise InputError("no model: the recipe names none, pass --model")
    put(config, "data.train_files", "./data/train.parquet")
    put(config, "data.val_files", f"./data/{val_split or 'train'}.parquet")
    put(config, "data.format_prompt", f"./{FORMAT_PROMPT_FILE}")
    put(config, "worker.reward.reward_function", f"./{REWARD_FILE}:{REWARD_FUNCTION}")
    put(config, "trainer.nnodes", nodes)
    put(config, "trainer.n_gpus_per_node", gpus_per_node)
    if val_split is None:
        log.warning("the dataset has no test, val or validation split: validation is off")
        put(config, "trainer.val_freq", -1)
        put(config, "trainer.val_before_train", False)
    try:
        return apply_overrides(config, overrides)
    except ConfigError as err:
        raise InputError(str(err)) from None


LIMIT_IMAGES = "worker.rollout.limit_images"


def _fit_limit_images(config: dict[str, Any], budget: PromptBudget,
                      overrides: Sequence[str]) -> PromptBudget:
    """Set ``worker.rollout.limit_images`` to the dataset's most images per sample.

    vLLM reserves memory for that many images per prompt, so a dataset that
    mixes 3- and 16-frame sequences needs the 16-frame samples' count (question
    images plus image options), and a 4-frame dataset needs no more than its
    own. A value given on the command line is kept (and checked).
    """
    if any(item.partition("=")[0].strip() == LIMIT_IMAGES for item in overrides):
        return budget
    if budget.limit_images != budget.max_images:
        log.info("%s: %d, the most images of a sample (sample %s); the recipe had %s",
                 LIMIT_IMAGES, budget.max_images, budget.max_images_id, budget.limit_images)
    put(config, LIMIT_IMAGES, budget.max_images)
    return dataclasses.replace(budget, limit_images=budget.max_images)


def _check_reward_choice(config: dict[str, Any]) -> None:
    """Refuse a reward name reward.py does not have (EasyR1 would fail at the first step)."""
    from tpru.score.rewards import REWARDS

    kwargs = get(config, "worker.reward.reward_function_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise InputError("worker.reward.reward_function_kwargs: expected a mapping")
    name = kwargs.get("reward", "tpru")
    if str(get(config, "worker.reward.reward_function")).startswith(f"./{REWARD_FILE}:") and \
            name not in REWARDS:
        raise InputError(f"worker.reward.reward_function_kwargs.reward: unknown reward {name!r} "
                         f"(rewards: {', '.join(REWARDS)})")


def _keep_curriculum(config: dict[str, Any], order: str, overrides: Sequence[str]) -> None:
    """With a curriculum, EasyR1's sampler must not shuffle: ``data.shuffle`` false, and an
    override that turns it on is refused."""
    if order != "curriculum":
        return
    if any(item.partition("=")[0].strip() == "data.shuffle" for item in overrides) and \
            get(config, "data.shuffle"):
        raise InputError("--order curriculum needs data.shuffle=false (EasyR1 would shuffle "
                         "the curriculum away); drop the data.shuffle override")
    put(config, "data.shuffle", False)


def _export(data: Dataset, out: Path, splits: list[str], embed_images: bool,
            format_prompt: str | os.PathLike[str], order: str, seed: int) -> None:
    from tpru.export import export_dataset

    export_dataset(data.root, "easyr1", out, splits=splits, embed_images=embed_images,
                   format_prompt=format_prompt, order=order, seed=seed)


def _write_config(path: Path, config: dict[str, Any], data: Dataset,
                  recipe: str | os.PathLike[str]) -> None:
    header = (f"# EasyR1 config written by tpru {__version__} from recipe {recipe} for the "
              f"dataset {data.root.resolve()}.\n"
              "# Start it with: bash launch.sh [key=value ...] (paths are relative to this "
              "folder).\n")
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=100)
    path.write_text(header + text, encoding="utf-8")


def _facts(config: dict[str, Any], data: Dataset, recipe: str | os.PathLike[str],
           model: str | None, overrides: Sequence[str], embed_images: bool,
           counts: dict[str, int], val_split: str | None,
           budget: PromptBudget) -> dict[str, Any]:
    return {
        "tpru_version": __version__,
        "dataset": str(data.root.resolve()),
        "dataset_hash": data.info.content_hash,
        "recipe": str(recipe),
        "model": get(config, "worker.actor.model.model_path"),
        "model_argument": model,
        "overrides": list(overrides),
        "embed_images": embed_images,
        "splits": {"train": "train", "validation": val_split},
        "samples": {"train": counts["train"],
                    "validation": counts[val_split] if val_split else 0},
        "prompt_budget": budget.as_dict(),
    }


def _launch_fields(config: dict[str, Any], recipe: str | os.PathLike[str]) -> dict[str, str]:
    loggers = get(config, "trainer.logger") or []
    wandb = ""
    if "wandb" in loggers:
        wandb = ('\nif [ -z "${WANDB_API_KEY:-}" ] && [ -z "${WANDB_MODE:-}" ] && '
                 '! grep -qs "api.wandb.ai" "$HOME/.netrc"; then\n'
                 '  echo "launch.sh: no wandb login found; logging to wandb offline '
                 '(run wandb login, or set WANDB_MODE)" >&2\n'
                 "  export WANDB_MODE=offline\n"
                 "fi\n")
    files = [f'{key}="$PWD/{value[2:]}" \\\n  ' for key in ("data.train_files", "data.val_files")
             if isinstance(value := get(config, key), str) and _SAFE_PATH.fullmatch(value)]
    return {"MODEL": str(get(config, "worker.actor.model.model_path")), "VERSION": __version__,
            "RECIPE": str(recipe), "DATA_FILES": "".join(files),
            "NNODES": str(integer(config, "trainer.nnodes")),
            "GPUS_PER_NODE": str(integer(config, "trainer.n_gpus_per_node")), "WANDB": wandb}


def _readme_fields(facts: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    from tpru.score.rewards import REWARDS

    budget = facts["prompt_budget"]
    train = facts["samples"]["train"]
    rollout = integer(config, "data.rollout_batch_size")
    loggers = list(get(config, "trainer.logger") or [])
    fields = {
        "EXPERIMENT": get(config, "trainer.experiment_name"),
        "PROJECT": get(config, "trainer.project_name"),
        "VERSION": facts["tpru_version"], "DATASET": facts["dataset"],
        "RECIPE": facts["recipe"], "MODEL": facts["model"],
        "NNODES": integer(config, "trainer.nnodes"),
        "GPUS_PER_NODE": integer(config, "trainer.n_gpus_per_node"),
        "IMAGES": "embedded" if facts["embed_images"] else "absolute paths",
        "LOGGERS": ", ".join(loggers) or "nowhere",
        "WANDB_NOTE": " Without a wandb login (`wandb login` or `WANDB_API_KEY`), launch.sh "
                      "logs to wandb offline." if "wandb" in loggers else "",
        "LONGEST": budget["longest"], "MAX_PROMPT": budget["limit"],
        "LONGEST_ID": budget["sample_id"], "LONGEST_IMAGES": budget["images"],
        "LONGEST_IMAGE_TOKENS": budget["image_tokens"], "LONGEST_TEXT": budget["text_tokens"],
        "MIN_PIXELS": get(config, "data.min_pixels"), "MAX_PIXELS": get(config, "data.max_pixels"),
        "COUNTER": budget["counter"], "MAX_IMAGES": budget["max_images"],
        "LIMIT_IMAGES": get(config, "worker.rollout.limit_images"),
        "TRAIN": train, "STEPS": train // rollout, "ROLLOUT_BATCH": rollout,
        "VAL": facts["splits"]["validation"] or "none",
        "VALIDATION": facts["samples"]["validation"],
        "REWARD_FUNCTION": get(config, "worker.reward.reward_function"),
        "REWARDS": ", ".join(f"`{name}`" for name in REWARDS),
    }
    return {key: str(value) for key, value in fields.items()}


def _render(name: str, fields: dict[str, str]) -> str:
    """Fill the ``@@KEY@@`` slots of a template (no template engine: the files are bash)."""
    text = (_TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in fields.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise AssertionError(f"template {name}: unfilled slot near "
                             f"{text[text.index('@@'):][:30]!r}")
    return text
