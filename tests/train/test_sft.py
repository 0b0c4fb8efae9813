"""``tpru train sft`` on the CPU: TRL's SFTTrainer on the tiny Qwen2.5-VL and a dataset built by
``tpru build``, the shipped 7B recipe shrunk by overrides; the result reloaded by the
evaluation backend and evaluated."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import yaml
from test_grpo import (  # the same built dataset and helpers
    changed,
    evaluate,
    losses,
    tiny_overrides,
    tpru_dataset,
    weights,
)

from tpru.commands.train import add_trainer_arguments, sft_command
from tpru.diagnostics import InputError
from tpru.score.rewards import tpru as tpru_reward
from tpru.train.config import CONFIG_FILE, SFTTrainConfig, load_train_config
from tpru.train.data import sft_target
from tpru.train.sft import train_sft

__all__ = ["tpru_dataset"]

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "train" / "sft_7b.yaml"


def cpu_overrides(model: Path, dataset: Path, out: Path) -> list[str]:
    """The 7B recipe, shrunk to the tiny model on the CPU."""
    return [f"model.name={model}", f"data.path={dataset}", f"train.output_dir={out}",
            "model.dtype=float32", "model.min_pixels=3136", "model.max_pixels=12544",
            "data.limit=4", "train.max_steps=2", "train.per_device_batch_size=2",
            "train.gradient_accumulation_steps=1", "train.bf16=false",
            "train.gradient_checkpointing=false", "train.learning_rate=0.001",
            "train.lr_scheduler=constant", "train.warmup=0", "train.logging_steps=1",
            "max_prompt_length=2048", "max_completion_length=128"]


def test_sft_trains_with_reasoning_targets_and_a_frozen_vision_tower(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = load_train_config(SFTTrainConfig, RECIPE, [
        *cpu_overrides(tiny_model_dir, tpru_dataset, out), "target=reasoning",
        "model.freeze_vision=true"])
    result = train_sft(config, show_progress=False)

    assert result.steps == 2 and result.adapter_dir is None
    assert len(losses(result)) == 2 and all(math.isfinite(x) and x > 0 for x in losses(result))
    assert 0 < result.lengths.longest_completion <= 128
    before, after = weights(tiny_model_dir), weights(result.model_dir)
    assert changed(before, after, "model.layers.") > 0
    assert changed(before, after, "visual.") == 0  # frozen
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["target"] == "reasoning"
    evaluate(result.model_dir, tpru_dataset, tmp_path / "eval")


def test_the_tiny_recipe_trains_a_few_steps_and_saves_a_model_the_evaluation_loads(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    """configs/train/sft_tiny.yaml, the CPU smoke run beside grpo_tiny.yaml, as shipped
    but for where its model, data and run folder are."""
    out = tmp_path / "run"
    config = load_train_config(SFTTrainConfig, RECIPE.parent / "sft_tiny.yaml",
                               tiny_overrides(tiny_model_dir, tpru_dataset, out))
    result = train_sft(config, show_progress=False)

    assert result.steps == 2 and result.adapter_dir is None
    assert len(losses(result)) == 2 and all(math.isfinite(x) and x > 0 for x in losses(result))
    assert changed(weights(tiny_model_dir), weights(result.model_dir), "model.layers.") > 0
    evaluate(result.model_dir, tpru_dataset, tmp_path / "eval")


@pytest.mark.parametrize(("recipe", "trainer"), [("grpo_tiny.yaml", "grpo"),
                                                 ("sft_tiny.yaml", "sft")])
def test_a_tiny_recipe_names_the_commands_that_use_it(recipe: str, trainer: str) -> None:
    """Its header is the recipe's how-to: the dataset it reads is the one its demo
    command writes (never over the simulators' demo-out), trained by its own trainer."""
    text = (RECIPE.parent / recipe).read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data_path = yaml.safe_load(text)["data"]["path"]
    assert f"tpru train {trainer} configs/train/{recipe}" in header
    demo = f"tpru demo --synthetic --out {Path(data_path).parent}"
    assert demo in header and "demo-out" not in text


def test_sft_lora_without_merging_leaves_an_adapter_the_evaluation_loads(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = load_train_config(SFTTrainConfig, RECIPE, [
        *cpu_overrides(tiny_model_dir, tpru_dataset, out), "lora.enabled=true", "lora.r=4",
        "lora.merge=false", "lora.target_modules=[all-linear]"])
    result = train_sft(config, show_progress=False)

    assert result.adapter_dir == result.model_dir == out
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    backend = evaluate(out, tpru_dataset, tmp_path / "eval")
    assert getattr(backend.model, "peft_config", None)  # the adapter came with the base model


def test_a_target_over_its_budget_is_refused_naming_the_sample(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    args = parser.parse_args([str(RECIPE), *cpu_overrides(tiny_model_dir, tpru_dataset, out),
                              "target=reasoning", "max_completion_length=8"])
    with pytest.raises(InputError, match=r"the target of sample '[^']+' takes \d+ tokens, "
                                         r"over max_completion_length=8"):
        sft_command(args)
    assert not (out / CONFIG_FILE).exists()


def test_print_config_shows_the_resolved_recipe(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    assert sft_command(parser.parse_args([str(RECIPE), "target=reasoning", "--print-config"])) \
        == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["target"] == "reasoning"
    assert printed["model"]["name"] == "Qwen/Qwen2.5-VL-7B-Instruct"


@pytest.mark.parametrize(("answer", "task", "negative"), [
    ("B", "next_frame", False), ("CABD", "ordering", False), ("E", "prev_frame", True)])
def test_targets_are_what_the_reward_scores_best(answer: str, task: str, negative: bool) -> None:
    reasoning = sft_target(answer, task=task, negative=negative, target="reasoning")
    assert tpru_reward(reasoning, answer) == {"overall": 0.92, "format": 0.2, "accuracy": 1.0}
    assert tpru_reward(sft_target(answer), answer)["accuracy"] == 1.0
    with pytest.raises(InputError, match="unknown SFT target"):
        sft_target(answer, target="essay")
