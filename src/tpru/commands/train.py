"""``tpru train grpo|sft|easyr1``: training with TRL here, or a run folder for EasyR1.

``grpo`` and ``sft`` load a recipe (`tpru.train.config`) with ``key=value``
overrides and train in this process (`tpru.train.grpo.train_grpo`,
`tpru.train.sft.train_sft`); ``easyr1`` writes a run folder for a GPU cluster
(`tpru.train.easyr1.write_easyr1_run`). The trainers' modules, and TRL with
them, are imported only when a trainer runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tpru.commands.common import Command, CommandGroup
from tpru.diagnostics import InputError
from tpru.export.common import BUILTIN_FORMAT_PROMPT

if TYPE_CHECKING:
    from tpru.train.common import TrainResult


# ---------------------------------------------------------------- grpo and sft


def add_trainer_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tpru train grpo`` and ``tpru train sft``."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="a training recipe (configs/train/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. train.max_steps=10 model.freeze_vision=true")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in train.output_dir from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in train.output_dir (only a run tpru wrote)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as YAML and exit")


def grpo_command(args: argparse.Namespace) -> int:
    """``tpru train grpo``: load the config, train, print where the model is."""
    from tpru.train.config import GRPOTrainConfig
    from tpru.train.grpo import train_grpo

    return _train(args, GRPOTrainConfig, train_grpo, "GRPO")


def sft_command(args: argparse.Namespace) -> int:
    """``tpru train sft``: load the config, train, print where the model is."""
    from tpru.train.config import SFTTrainConfig
    from tpru.train.sft import train_sft

    return _train(args, SFTTrainConfig, train_sft, "SFT")


def _train(args: argparse.Namespace, config_class: Any, train: Callable[..., Any],
           label: str) -> int:
    """Load `config_class` from the arguments; print it (--print-config) or `train` it."""
    from tpru.train.config import load_train_config

    config = load_train_config(config_class, args.config, args.overrides)
    if args.print_config:
        _print_config(config)
        return 0
    result = train(config, resume=args.resume, overwrite=args.overwrite,
                   show_progress=not getattr(args, "quiet", False))
    print_summary(result, label)
    return 0


def _print_config(config: object) -> None:
    import yaml

    from tpru.config import to_dict

    sys.stdout.write(yaml.safe_dump(to_dict(config), sort_keys=False))


def print_summary(result: TrainResult, title: str) -> None:
    """A short table of the run for the person who started it (main process only)."""
    if not result.main_process:
        return
    from rich.console import Console
    from rich.table import Table

    logged = [e for e in result.log_history if "loss" in e]
    last = logged[-1] if logged else {}
    table = Table(title=f"{title}: {result.output_dir}", show_header=False)
    table.add_row("steps", str(result.steps))
    for key in ("loss", "reward", "kl", "mean_token_accuracy"):
        if key in last:
            table.add_row(f"last {key}", f"{last[key]:.4g}")
    table.add_row("longest prompt", f"{result.lengths.longest} tokens "
                                    f"({result.lengths.longest_id})")
    table.add_row("model", str(result.model_dir))
    if result.adapter_dir is not None:
        table.add_row("adapter", str(result.adapter_dir))
    console = Console()
    console.print(table)
    console.print(f"evaluate: tpru eval --model hf:{result.model_dir} --bench BENCH --out RUN")


GRPO = Command(
    help="train with GRPO (TRL) on a tpru dataset",
    description="Train a vision-language model (Qwen2.5-VL first) with TRL's GRPOTrainer on the "
                "multi-image questions of a tpru dataset, rewarded by tpru's rewards. Every "
                "prompt is checked against max_prompt_length, image tokens included, before "
                "training. The run folder ends with the model and its processor: evaluate it "
                "with tpru eval --model hf:RUN_DIR.",
    epilog="Any config key can be set as key.sub=value, e.g. train.max_steps=100 "
           "rollout.num_generations=8 'rewards=[{name: ordering_partial}]'.\n\n"
           "Examples:\n"
           "  python -m tpru.models.tiny runs/tiny-qwen    # a tiny random Qwen2.5-VL, offline\n"
           "  tpru train grpo configs/train/grpo_tiny.yaml model.name=runs/tiny-qwen "
           "data.path=demo-synthetic/dataset\n"
           "  accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml "
           "-m tpru.cli train grpo configs/train/grpo_7b.yaml data.path=data/tpru",
    add_arguments=add_trainer_arguments, run=grpo_command)

SFT = Command(
    help="supervised fine-tuning (TRL) on a tpru dataset, the baseline to GRPO",
    description="Fine-tune a vision-language model with TRL's SFTTrainer to answer the "
                "multi-image questions of a tpru dataset with <answer>X</answer> "
                "(target=answer) or a short templated <think> reasoning and the answer "
                "(target=reasoning). Prompts and targets are checked against their token "
                "budgets, image tokens included, before training. Evaluate the run folder with "
                "tpru eval --model hf:RUN_DIR.",
    epilog="Any config key can be set as key.sub=value, e.g. target=reasoning "
           "train.learning_rate=1e-5 lora.enabled=true.\n\n"
           "Example:\n"
           "  accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml "
           "-m tpru.cli train sft configs/train/sft_7b.yaml data.path=data/tpru",
    add_arguments=add_trainer_arguments, run=sft_command)


# ---------------------------------------------------------------- easyr1


def add_easyr1_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru train easyr1``."""
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="override any EasyR1 key, e.g. worker.rollout.n=8")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the run folder to write")
    p.add_argument("--model", metavar="M",
                   help="hub name or local path of the model (default: the recipe's)")
    p.add_argument("--recipe", default="7b", metavar="3b|7b|PATH",
                   help="the paper's 3b or 7b settings, or a recipe YAML (default 7b)")
    p.add_argument("--nodes", type=int, default=1, metavar="N",
                   help="nodes to train on (default 1)")
    p.add_argument("--gpus-per-node", type=int, default=8, metavar="N",
                   help="GPUs per node (default 8)")
    p.add_argument("--format-prompt", default=BUILTIN_FORMAT_PROMPT, metavar="FILE.jinja",
                   help="your own format prompt with {{ content }} (default: tpru's)")
    p.add_argument("--image-paths", action="store_true",
                   help="store absolute image paths instead of embedding the images (smaller; "
                        "every node must read the dataset at the same path)")
    p.add_argument("--order", choices=("dataset", "shuffled", "curriculum"), default="dataset",
                   help="the order of the train rows: as the dataset stores them (default), a "
                        "seeded shuffle, or a curriculum from easy to hard by "
                        "meta.difficulty.score (sets data.shuffle=false so EasyR1 keeps it)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of --order shuffled and of curriculum ties (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run folder tpru wrote")
    p.parse_known_args = _gather_overrides(p)  # type: ignore[method-assign]


def _gather_overrides(parser: argparse.ArgumentParser) -> Callable[..., Any]:
    """`parser`'s parse_known_args, with key=value found after options added to the overrides.

    argparse fills positionals from their first run only, so in ``DATASET
    --out RUN a=b`` the ``a=b`` would be left over and refused.
    """
    parse = type(parser).parse_known_args

    def parse_known_args(args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        known, extras = parse(parser, args, namespace)
        found = [item for item in extras if "=" in item and not item.startswith("-")]
        known.overrides = [*known.overrides, *found]
        return known, [item for item in extras if item not in found]

    return parse_known_args


def easyr1_command(args: argparse.Namespace) -> int:
    """Run ``tpru train easyr1`` from parsed arguments; prints what was written."""
    from rich.console import Console

    from tpru.train.easyr1 import write_easyr1_run

    bad = [item for item in args.overrides if "=" not in item]
    if bad:
        raise InputError(f"{bad[0]!r} is not key=value (only one dataset is taken)")
    run = write_easyr1_run(args.dataset, args.out, model=args.model, recipe=args.recipe,
                           overrides=args.overrides, nodes=args.nodes,
                           gpus_per_node=args.gpus_per_node, overwrite=args.overwrite,
                           embed_images=not args.image_paths, format_prompt=args.format_prompt,
                           order=args.order, seed=args.seed)
    facts = json.loads((run / "tpru.json").read_text(encoding="utf-8"))
    budget = facts["prompt_budget"]
    console = Console()
    console.print(f"wrote {run}: {facts['samples']['train']} train samples, model "
                  f"{facts['model']}, longest prompt about {budget['longest']} of "
                  f"{budget['limit']} tokens", soft_wrap=True)
    console.print(f"start it with: bash {run / 'launch.sh'}", soft_wrap=True)
    return 0


EASYR1 = Command(
    help="write an EasyR1 GRPO run folder for a dataset",
    description="Write a complete EasyR1 run folder for a dataset: the parquet export, the "
                "format prompt, reward.py with a copy of tpru's scorer (standard library only), "
                "config.yaml from a recipe (the paper's 3b or 7b settings, or your YAML), "
                "launch.sh for one node or several through Ray, and a README. Every prompt is "
                "checked against data.max_prompt_length with its image tokens counted, and the "
                "batch sizes against EasyR1's rules, before anything is written.",
    epilog="Any EasyR1 key can be overridden as key.sub=value, e.g. worker.rollout.n=8 "
           "trainer.total_epochs=1 worker.reward.reward_function_kwargs.reward=ordering_partial."
           "\n\nExample:\n  tpru train easyr1 data/tpru --out runs/tpru-7b --recipe 7b\n"
           "  bash runs/tpru-7b/launch.sh",
    add_arguments=add_easyr1_arguments, run=easyr1_command)


COMMAND = CommandGroup(
    help="train a model (GRPO, SFT) or write an EasyR1 run",
    description="Training: grpo and sft run TRL on this machine (or several GPUs through "
                "accelerate); easyr1 writes a complete EasyR1 run folder for a GPU cluster.",
    commands={"grpo": GRPO, "sft": SFT, "easyr1": EASYR1}, dest="trainer", metavar="TRAINER")
