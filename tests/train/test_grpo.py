"""``tpru train grpo`` on the CPU: TRL's GRPOTrainer on the tiny Qwen2.5-VL and a dataset built
by ``tpru build``, the checkpoint reloaded by the evaluation backend and evaluated.

The tiny model is random, so the release's reward is 0 for every completion and
gives no gradient; the runs add a reward file (written here) scoring the share
of capital letters, which differs between random completions, so the policy
really moves.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tpru.commands.train import add_trainer_arguments, grpo_command
from tpru.config import ConfigError
from tpru.diagnostics import InputError
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.runner import run_eval
from tpru.train.common import TrainResult
from tpru.train.config import CONFIG_FILE, GRPOTrainConfig, SFTTrainConfig, load_train_config
from tpru.train.data import EXPORT_DIR, check_prompt_lengths, open_train_dataset, prompt_lengths
from tpru.train.grpo import train_grpo

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "configs" / "train"
ACCELERATE = ROOT / "configs" / "accelerate"

REWARD_FILE = '''
from tpru.score.rewards import completion_text


def upper_share(completions, **columns):
    """The share of capital letters in each completion: varies between random completions."""
    texts = [completion_text(c) for c in completions]
    return [sum(ch.isupper() for ch in t) / max(len(t), 1) for t in texts]
'''


# --- fixtures (test_sft.py imports them) -----------------------------------------------------

@pytest.fixture(scope="module")
def tpru_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset built by ``tpru build`` from synthetic episodes, with 64-pixel images."""
    from tpru.cli import main
    from tpru.sources.synthetic import write_synthetic_episodes

    root = tmp_path_factory.mktemp("tpru-dataset")
    write_synthetic_episodes(root / "episodes", episodes=2, frames=5, seed=0, size=(96, 72))
    out = root / "dataset"
    status = main(["build", "-q", "--source", f"frames:{root / 'episodes'}", "--out", str(out),
                   "--seed", "0", "image.max_side=64"])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def reward_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rewards") / "shape_reward.py"
    path.write_text(REWARD_FILE, encoding="utf-8")
    return path


def tiny_overrides(model: Path, dataset: Path, out: Path) -> list[str]:
    """Overrides of the tiny recipes pointing them at this test's model, data and run folder."""
    return [f"model.name={model}", f"data.path={dataset}", f"train.output_dir={out}",
            "data.limit=4", "train.max_steps=2", "train.weight_decay=0.0"]


def weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def changed(before: dict[str, Any], after: dict[str, Any], prefix: str) -> int:
    import torch

    names = [n for n in before if n.startswith(prefix)]
    assert names, f"no weights named {prefix}*"
    return sum(not torch.equal(before[n], after[n]) for n in names)


def distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    """L2 distance between the decoder layers' weights of two models."""
    import torch

    names = [n for n in a if n.startswith("model.layers.")]
    return float(torch.sqrt(sum(((a[n] - b[n]).double() ** 2).sum() for n in names)))


def losses(result: TrainResult) -> list[float]:
    return [entry["loss"] for entry in result.log_history if "loss" in entry]


def evaluate(model_dir: Path, dataset: Path, out: Path) -> Any:
    """Load a saved model through the evaluation backend and run it on the test split."""
    from tpru.models.hf import HFBackend

    backend = HFBackend(str(model_dir), device="cpu", dtype="float32")
    bench = load_benchmark(f"dataset:{dataset}", cache_dir=out.parent / "cache", split="test")
    summary = run_eval(backend, bench, out, EvalConfig(max_new_tokens=8), show_progress=False)
    assert summary.items == summary.answered > 0
    assert summary.errors == 0
    return backend


# --- a full fine-tuning run ------------------------------------------------------------------

@pytest.fixture(scope="module")
def grpo_run(tiny_model_dir: Path, tpru_dataset: Path, reward_file: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[GRPOTrainConfig, TrainResult]:
    out = tmp_path_factory.mktemp("grpo") / "run"
    config = load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml", [
        *tiny_overrides(tiny_model_dir, tpru_dataset, out), "model.max_pixels=6272",
        f"rewards=[{{name: tpru}}, {{name: '{reward_file}:upper_share', weight: 0.5}}]"])
    return config, train_grpo(config, show_progress=False, callbacks=[StepCounter()])


class StepCounter:
    """A trainer callback (transformers calls its methods by event name): counts steps."""

    steps: ClassVar[list[int]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)

        def event(args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if name == "on_step_end":
                StepCounter.steps.append(state.global_step)
            return control
        return event


def test_grpo_trains_and_saves_a_model_the_evaluation_loads(
        grpo_run: tuple[GRPOTrainConfig, TrainResult], tiny_model_dir: Path, tpru_dataset: Path,
        tmp_path: Path) -> None:
    config, result = grpo_run
    assert result.steps == 2
    assert StepCounter.steps == [1, 2]  # the callback given to train_grpo saw every step
    assert len(losses(result)) == 2 and all(math.isfinite(x) for x in losses(result))
    logged = result.log_history[0]
    assert "rewards/tpru/mean" in logged and "rewards/upper_share/mean" in logged
    assert logged["reward_std"] > 0  # the reward file gives a learning signal

    before, after = weights(tiny_model_dir), weights(result.model_dir)
    assert changed(before, after, "model.layers.") > 0
    assert changed(before, after, "visual.") > 0  # the paper trains the vision tower
    for name in ("config.json", "model.safetensors", "processor_config.json",
                 "tokenizer.json", "chat_template.jinja", CONFIG_FILE):
        assert (result.model_dir / name).is_file(), name
    assert yaml.safe_load((result.output_dir / CONFIG_FILE).read_text())["rollout"][
        "num_generations"] == config.rollout.num_generations

    backend = evaluate(result.model_dir, tpru_dataset, tmp_path / "eval")
    # the pixel bounds trained with are the ones the evaluation sizes images by
    assert backend.processor.image_processor.size["longest_edge"] == 6272


def test_a_second_run_into_the_same_folder_is_refused_or_must_match(
        grpo_run: tuple[GRPOTrainConfig, TrainResult]) -> None:
    config, _ = grpo_run
    with pytest.raises(InputError, match="already holds a training run"):
        train_grpo(config, show_progress=False)
    changed_lr = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       learning_rate=0.5))
    with pytest.raises(InputError, match=r"cannot resume: .*train\.learning_rate"):
        train_grpo(changed_lr, resume=True, show_progress=False)


def test_resume_continues_from_the_checkpoint_against_the_base_reference(
        grpo_run: tuple[GRPOTrainConfig, TrainResult], tiny_model_dir: Path) -> None:
    """The trainer's own reload of a Qwen2.5-VL checkpoint leaves the decoder at the base
    weights (QwenLM/Qwen3-VL#1763); tpru loads them itself, and keeps the base as reference."""
    config, first = grpo_run
    assert first.log_history[0]["kl"] == 0  # step 1: the policy is the reference
    checkpoint = weights(first.output_dir / "checkpoint-2")
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=3))
    result = train_grpo(longer, resume=True, show_progress=False)
    assert result.steps == 3
    resumed = [entry for entry in result.log_history if entry.get("step") == 3 and "kl" in entry]
    assert resumed and resumed[0]["kl"] > 0
    # one step from the checkpoint, three from the base; restarting from the base would give
    # the opposite (one step from the base, more from the checkpoint)
    final = weights(result.model_dir)
    assert distance(final, checkpoint) < 0.5 * distance(final, weights(tiny_model_dir))


def test_lora_saves_the_adapter_and_a_merged_model(
        tiny_model_dir: Path, tpru_dataset: Path, reward_file: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "lora"
    config = load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml", [
        *tiny_overrides(tiny_model_dir, tpru_dataset, out), "lora.enabled=true", "lora.r=4",
        "train.learning_rate=0.01", "rollout.vllm.enabled=true",
        f"rewards=[{{name: '{reward_file}:upper_share'}}]"])
    with caplog.at_level(logging.WARNING, logger="tpru.train"):
        result = train_grpo(config, show_progress=False)
    assert "vLLM needs a CUDA GPU" in caplog.text  # the CPU fallback says so

    assert result.adapter_dir == out / "adapter"
    assert (out / "adapter" / "adapter_config.json").is_file()
    from safetensors.torch import load_file

    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: it trained
    assert all(math.isfinite(x) for x in losses(result))

    base, merged = weights(tiny_model_dir), weights(result.model_dir)
    assert set(merged) == set(base)  # a plain model, no adapter weights left in it
    assert changed(base, merged, "model.layers.") > 0
    evaluate(result.model_dir, tpru_dataset, tmp_path / "eval")


DISTRIBUTED_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="rank %(process)d: %(message)s")
from tpru.train.config import GRPOTrainConfig, load_train_config
from tpru.train.grpo import train_grpo
config = load_train_config(GRPOTrainConfig, sys.argv[1], sys.argv[2:])
train_grpo(config, show_progress=False)
"""


@pytest.mark.slow
def test_two_processes_share_the_export_and_the_length_check(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    """``torchrun`` with two CPU processes (gloo): what accelerate launch does on GPUs."""
    script = tmp_path / "train.py"
    script.write_text(DISTRIBUTED_SCRIPT, encoding="utf-8")
    out = tmp_path / "run"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(RECIPES / "grpo_tiny.yaml"),
         *tiny_overrides(tiny_model_dir, tpru_dataset, out), "data.limit=6",
         "train.per_device_batch_size=2"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr
    assert log.count("wrote 4 files to") == 1 and log.count("reusing the TRL export") == 1
    # each process measured half, and both saw all six lengths
    assert log.count("prompt lengths fit: 6 samples") == 2
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()


# --- the prompt-length check -----------------------------------------------------------------

def test_a_prompt_over_the_budget_stops_the_run_naming_the_longest(
        tiny_model_dir: Path, tpru_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    args = parser.parse_args([str(RECIPES / "grpo_tiny.yaml"),
                              *tiny_overrides(tiny_model_dir, tpru_dataset, out),
                              "data.limit=null", "max_prompt_length=300"])
    with pytest.raises(InputError) as caught:
        grpo_command(args)
    message = str(caught.value)
    assert "\n" not in message and "max_prompt_length=300" in message
    assert not (out / CONFIG_FILE).exists()  # stopped before training

    longest_id = message.split("the longest is sample ")[1].split(" with ")[0].strip("'")
    reported = int(message.split(" with ")[1].split(" tokens")[0])
    assert reported == _count_tokens(tiny_model_dir, out, longest_id)


def _count_tokens(model: Path, run_dir: Path, sample_id: str) -> int:
    """The prompt's tokens counted independently: the processor on the rendered chat turn."""
    import datasets

    from tpru.models._torchvision import import_transformers

    processor = import_transformers().AutoProcessor.from_pretrained(str(model))
    rows = datasets.load_from_disk(str(run_dir / EXPORT_DIR))["train"]
    row = rows[rows["id"].index(sample_id)]
    text = processor.apply_chat_template(row["prompt"], tokenize=False,
                                         add_generation_prompt=True)
    lengths = [len(processor(text=[text], images=row["images"])["input_ids"][0])]
    other = [len(processor(text=[processor.apply_chat_template(r["prompt"], tokenize=False,
                                                               add_generation_prompt=True)],
                           images=r["images"])["input_ids"][0]) for r in rows]
    assert lengths[0] == max(other)  # it is the longest
    return lengths[0]


def test_the_budget_is_inclusive_and_counts_image_tokens(tiny_model_dir: Path, tpru_dataset: Path,
                                                         tmp_path: Path) -> None:
    from tpru.train.common import load_processor
    from tpru.train.config import DataConfig, ModelConfig

    dataset = open_train_dataset(DataConfig(path=str(tpru_dataset), limit=6), tmp_path)
    model = str(tiny_model_dir)
    small = load_processor(ModelConfig(name=model, min_pixels=3136, max_pixels=3136))
    large = load_processor(ModelConfig(name=model, min_pixels=12544, max_pixels=12544))
    _, short, _ = prompt_lengths(dataset, small, show_progress=False)
    _, long, _ = prompt_lengths(dataset, large, show_progress=False)
    images = [len(row) for row in dataset["images"]]
    # every image is 64x48: the larger bound adds the same number of tokens to each image
    extra = [b - a for a, b in zip(short, long, strict=True)]
    per_image = extra[0] // images[0]
    assert per_image > 0 and extra == [per_image * n for n in images]
    report = check_prompt_lengths(dataset, large, max_prompt_length=max(long),
                                  show_progress=False)
    assert report.longest == max(long)
    with pytest.raises(InputError, match="of 6 prompts exceed"):
        check_prompt_lengths(dataset, large, max_prompt_length=max(long) - 1, show_progress=False)


# --- data sources ----------------------------------------------------------------------------

def test_release_style_columns_load_through_the_hub_code_path(tpru_dataset: Path,
                                                              tmp_path: Path) -> None:
    """A folder of parquet files with problem/answer/images goes through ``load_dataset``."""
    import datasets

    from tpru.dataset import Dataset
    from tpru.export.common import problem_text
    from tpru.train.config import DataConfig

    source = Dataset.open(tpru_dataset)
    samples = list(source.samples("train"))[:3]
    rows = {"problem": [problem_text(s) for s in samples], "answer": [s.answer for s in samples],
            "images": [[str(source.image_path(p)) for p in s.images] for s in samples]}
    folder = tmp_path / "hub-like"
    folder.mkdir()
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "train-00000.parquet"))

    loaded = open_train_dataset(DataConfig(path=str(folder)), tmp_path / "run")
    assert loaded.num_rows == 3
    first = loaded[0]
    parts = first["prompt"][0]["content"]
    assert sum(p["type"] == "image" for p in parts) == len(first["images"]) == len(
        samples[0].images)
    assert "<answer>" in parts[-1]["text"]  # the format prompt was applied
    assert first["images"][0].size == (64, 48)  # paths became images

    with pytest.raises(InputError, match="no split 'dev'|cannot load"):
        open_train_dataset(DataConfig(path=str(folder), split="dev"), tmp_path / "run")
    datasets.Dataset.from_dict({"text": ["a"]}).to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(InputError, match=r"bad\.parquet.*missing column"):
        open_train_dataset(DataConfig(path=str(tmp_path / "bad.parquet")), tmp_path / "run")


# --- configs and recipes ---------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "match"), [
    (["rollout.num_generation=4"], "unknown key rollout.num_generation"),
    (["rewards=[{name: nope}]"], "unknown reward 'nope'"),
    (["rewards=[{name: tpru, options: {format_wieght: 0.2}}]"], "format_wieght"),
    (["train.per_device_batch_size=3"], "divisible by num_generations"),
    (["model.min_pixels=20000", "model.max_pixels=10000"], "min_pixels 20000 is above"),
])
def test_bad_settings_fail_before_training(overrides: Sequence[str], match: str,
                                           tmp_path: Path) -> None:
    base = [f"model.name={tmp_path / 'model'}", f"data.path={tmp_path / 'data'}",
            f"train.output_dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match=match):
        train_grpo(load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml",
                                     [*base, *overrides]), show_progress=False)


@pytest.mark.parametrize("name", ["grpo_3b", "grpo_7b"])
def test_paper_recipes_hold_the_paper_settings(name: str) -> None:
    config = load_train_config(GRPOTrainConfig, RECIPES / f"{name}.yaml")
    train = config.train
    assert (train.learning_rate, config.beta, train.weight_decay) == (1e-6, 0.01, 0.01)
    assert (config.epsilon, config.epsilon_high, config.train.warmup) == (0.2, 0.3, 0.0)
    assert (config.max_prompt_length, config.rollout.max_completion_length) == (7000, 1024)
    assert (config.model.min_pixels, config.model.max_pixels) == (16_384, 36_864)
    rollout = config.rollout
    assert (rollout.num_generations, rollout.temperature, rollout.top_p) == (5, 1.0, 0.99)
    assert config.train.epochs == 2 and not config.model.freeze_vision
    # 8 GPUs: one optimiser step sees the global batch of 128 prompts x 5 completions, and one
    # generation round the rollout batch of 256 prompts (two optimiser steps), as in EasyR1
    step = train.per_device_batch_size * train.gradient_accumulation_steps * 8
    assert step == 128 * 5
    assert train.per_device_batch_size * (rollout.steps_per_generation or 0) * 8 == 256 * 5


def test_sft_and_accelerate_configs_load() -> None:
    sft = load_train_config(SFTTrainConfig, RECIPES / "sft_7b.yaml")
    assert sft.model.name == "Qwen/Qwen2.5-VL-7B-Instruct" and sft.max_prompt_length == 7000
    zero3 = yaml.safe_load((ACCELERATE / "deepspeed_zero3.yaml").read_text())
    assert zero3["distributed_type"] == "DEEPSPEED"
    assert zero3["deepspeed_config"]["zero_stage"] == 3
    assert zero3["deepspeed_config"]["zero3_save_16bit_model"] is True  # save_model gathers
    fsdp = yaml.safe_load((ACCELERATE / "fsdp.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP"
    assert fsdp["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
