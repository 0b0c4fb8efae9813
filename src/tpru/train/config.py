"""The configurations of ``tpru train grpo`` and ``tpru train sft``: frozen dataclasses.

A recipe is a YAML file (see ``configs/train/``) loaded with `load_train_config`,
``key.sub=value`` overrides applied on top, every key and type checked at load
(`tpru.config.load`), so a typo fails before a GPU is touched. The resolved
config is written into the run folder as ``tpru_train.yaml``.

The field names follow TRL where TRL has the same knob (``beta``, ``epsilon``,
``epsilon_high``, ``num_generations``); the paper's values are in the recipes,
not in these defaults, except where a default is the only sensible choice.

Example:
    >>> config = load_train_config(GRPOTrainConfig, None, [
    ...     "model.name=Qwen/Qwen2.5-VL-3B-Instruct", "data.path=data/tpru",
    ...     "train.output_dir=runs/grpo", "rollout.num_generations=4"])
    >>> config.rollout.num_generations, config.rewards[0].name
    (4, 'tpru')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tpru.config import ConfigError, apply_overrides, check_keys, load, read_yaml

CONFIG_FILE = "tpru_train.yaml"
"""The resolved config, written into every run folder."""


@dataclass(frozen=True)
class ModelConfig:
    """The policy model and how its images are sized.

    Attributes:
        name: a local model folder or a hub id (Qwen2.5-VL first; any
            image-text-to-text model with a Qwen2-VL-style processor).
        dtype: the weights' dtype when loaded (``auto``: the checkpoint's).
        attn_implementation: e.g. ``flash_attention_2`` or ``sdpa``; None:
            transformers' default.
        min_pixels, max_pixels: each image is resized into this many pixels
            (the paper: 16,384..36,864). They are written into the saved
            processor, so evaluation sizes images as training did. None keeps
            the processor's own bound.
        freeze_vision: train the language model only (the paper trains the
            vision tower too).
        trust_remote_code: allow model code from the hub repository.
    """

    name: str
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "bfloat16"
    attn_implementation: str | None = None
    min_pixels: int | None = 16_384
    max_pixels: int | None = 36_864
    freeze_vision: bool = False
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name is required (a model folder or a hub id)")
        if self.min_pixels is not None and self.max_pixels is not None \
                and self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels {self.min_pixels} is above "
                             f"max_pixels {self.max_pixels}")


@dataclass(frozen=True)
class DataConfig:
    """The training samples.

    Attributes:
        path: a dataset folder written by ``tpru build`` (exported for TRL
            into the run folder first), a TRL export (``tpru export --to
            trl``), a local data folder or file, or a hub dataset id. The rows
            need a ``prompt`` column of chat messages with ``{"type": "image"}``
            parts and an ``images`` column, or a ``problem`` text with one
            ``<image>`` per image (the TPRU release's columns); and the gold
            letters in ``answer`` (or ``solution``).
        split: the split to train on.
        format_prompt: the template the question is rendered with (``builtin``:
            tpru's think/answer prompt; a jinja file with ``{{ content }}``;
            None: the bare question). Used when the prompt is built here (a
            tpru dataset folder, a ``problem`` column); an exported ``prompt``
            column is taken as it is.
        limit: train on the first N samples only (smoke runs), taken after
            `order` (with ``curriculum``: the N easiest).
        order: ``shuffled``: the trainer's sampler shuffles the samples every
            epoch, seeded by ``train.seed``; ``curriculum``: easy to hard by
            difficulty score (the ``difficulty`` column of a TRL export, from
            ``meta.difficulty.score``), equal scores in an order seeded by
            ``train.seed``, and the sampler keeps that order (TRL's
            ``shuffle_dataset=False``; a sequential sampler for SFT). A
            curriculum is refused for data without a score on every sample.
    """

    path: str
    split: str = "train"
    format_prompt: str | None = "builtin"
    limit: int | None = None
    order: Literal["shuffled", "curriculum"] = "shuffled"

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path is required (a dataset folder or a hub id)")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA with peft instead of full fine-tuning.

    Attributes:
        enabled: train LoRA adapters; the base weights stay frozen.
        r, alpha, dropout: the adapters' rank, scaling and dropout.
        target_modules: module names to adapt (default: the language model's
            attention and MLP projections), or ``["all-linear"]``.
        merge: also write the model with the adapter merged into it; the run
            folder then holds the merged model and ``adapter/`` the adapter,
            else the run folder holds the adapter.
    """

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                       "gate_proj", "up_proj", "down_proj")
    merge: bool = True

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be at least 1, not {self.r}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module")


@dataclass(frozen=True)
class TrainerSettings:
    """What every trainer shares: optimisation, batches, schedule, checkpoints.

    Attributes:
        output_dir: the run folder: checkpoints, the final model with its
            processor (``tpru eval --model hf:OUTPUT_DIR`` loads it), the
            resolved config.
        seed: seeds TRL, the data order, the LoRA init and sampling.
        learning_rate, weight_decay, max_grad_norm: the optimiser (AdamW).
        warmup: linear warm-up steps, or below 1 a fraction of all steps
            (the paper: none).
        lr_scheduler: a transformers scheduler name (``constant``, ``linear``,
            ``cosine``, ...).
        per_device_batch_size: completions per device per forward/backward.
        gradient_accumulation_steps: forward/backward passes per optimiser step.
        epochs: passes over the data, unless `max_steps` is set.
        max_steps: stop after this many optimiser steps (overrides `epochs`).
        logging_steps, save_steps: how often to log and to write a checkpoint.
        save_total_limit: checkpoints kept (None: all).
        bf16: bfloat16 mixed precision (GPUs; turn off on CPU).
        gradient_checkpointing: recompute activations to save memory.
        report_to: trackers for the metrics (``wandb``, ``tensorboard``, ...).
    """

    output_dir: str
    seed: int = 0
    learning_rate: float = 1e-6
    weight_decay: float = 0.01
    warmup: float = 0.0
    lr_scheduler: str = "constant"
    max_grad_norm: float = 1.0
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    epochs: float = 2.0
    max_steps: int | None = None
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int | None = 2
    bf16: bool = True
    gradient_checkpointing: bool = True
    report_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir is required (the run folder)")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, not {self.seed}")
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "logging_steps",
                     "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.warmup < 0:
            raise ValueError("warmup must be 0 or more")


@dataclass(frozen=True)
class RewardSpec:
    """One reward of GRPO and its weight in the sum TRL optimises.

    Attributes:
        name: a reward of `tpru.score.rewards.REWARDS` (``tpru``, ``ordering_partial``,
            ...), or ``path/to/file.py:function`` / ``package.module:function``
            naming a TRL reward function ``f(completions, **columns) ->
            list[float | None]``.
        weight: its weight.
        options: keyword options of the reward (e.g. ``format_weight``).
    """

    name: str = "tpru"
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VLLMSettings:
    """Rollouts with vLLM (a CUDA GPU; on a machine without one, transformers generates).

    Attributes:
        enabled: generate with vLLM.
        mode: ``colocate`` (an engine inside each training process) or
            ``server`` (a separate ``trl vllm-serve --model MODEL`` process).
        server_base_url: the server's URL in server mode (None: TRL's
            default host and port).
        gpu_memory_utilization: share of GPU memory the colocated engine takes.
        tensor_parallel_size: GPUs per colocated engine.
        enable_sleep_mode: offload the colocated engine while training.
    """

    enabled: bool = False
    mode: Literal["colocate", "server"] = "colocate"
    server_base_url: str | None = None
    gpu_memory_utilization: float = 0.4
    tensor_parallel_size: int = 1
    enable_sleep_mode: bool = False


@dataclass(frozen=True)
class RolloutSettings:
    """How completions are sampled for GRPO.

    Attributes:
        num_generations: completions per prompt (the group; paper: 5).
        temperature, top_p: sampling (paper: 1.0 and 0.99).
        max_completion_length: tokens per completion (paper: 1024).
        steps_per_generation: optimiser micro-steps served by one generation
            round (None: `gradient_accumulation_steps`). A round samples
            ``per_device_batch_size * processes * steps_per_generation``
            completions; twice the accumulation steps makes two optimiser
            steps per round, as EasyR1's rollout batch of 256 prompts with a
            global batch of 128 does.
        vllm: vLLM generation.
    """

    num_generations: int = 5
    temperature: float = 1.0
    top_p: float = 0.99
    max_completion_length: int = 1024
    steps_per_generation: int | None = None
    vllm: VLLMSettings = field(default_factory=VLLMSettings)

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (GRPO compares a group)")
        if self.max_completion_length < 1:
            raise ValueError("max_completion_length must be at least 1")


@dataclass(frozen=True)
class GRPOTrainConfig:
    """``tpru train grpo``: TRL's GRPOTrainer on multi-image prompts.

    Attributes:
        max_prompt_length: tokens a prompt may take, image tokens included;
            checked for every sample before training (TRL does not truncate
            prompts, and a truncated image breaks the model's input).
        beta: KL coefficient against the reference model (paper: 0.01; 0
            drops the reference model).
        epsilon, epsilon_high: the clip range of the importance ratio (paper:
            0.2 and 0.3; None: symmetric).
        loss_type: TRL's loss normalisation (``dapo``: token mean over the
            global batch, like EasyR1's token-mean; ``grpo``, ``dr_grpo``, ...).
        scale_rewards: advantages divided by the group's std (``group``), the
            batch's (``batch``) or not at all (``none``).
        num_iterations: policy updates per generated batch (mu).
        rewards: the rewards and weights TRL sums.
    """

    model: ModelConfig
    data: DataConfig
    train: TrainerSettings
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    rewards: tuple[RewardSpec, ...] = (RewardSpec(),)
    max_prompt_length: int = 7000
    beta: float = 0.01
    epsilon: float = 0.2
    epsilon_high: float | None = 0.3
    loss_type: str = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_iterations: int = 1

    def __post_init__(self) -> None:
        if not self.rewards:
            raise ValueError("rewards must name at least one reward")
        if self.max_prompt_length < 1:
            raise ValueError("max_prompt_length must be at least 1")
        if self.beta < 0 or self.epsilon <= 0:
            raise ValueError("beta must be 0 or more and epsilon positive")


@dataclass(frozen=True)
class SFTTrainConfig:
    """``tpru train sft``: TRL's SFTTrainer on the same samples, the supervised baseline.

    Attributes:
        target: what the model learns to answer: ``answer`` (``<answer>X</answer>``)
            or ``reasoning`` (a short templated ``<think>`` sentence, then the answer).
        max_prompt_length: tokens a prompt may take, image tokens included
            (checked before training).
        max_completion_length: tokens the target may take (checked too);
            sequences are never truncated, so no image token is cut.
    """

    model: ModelConfig
    data: DataConfig
    train: TrainerSettings
    lora: LoraSettings = field(default_factory=LoraSettings)
    target: Literal["answer", "reasoning"] = "answer"
    max_prompt_length: int = 7000
    max_completion_length: int = 1024

    def __post_init__(self) -> None:
        if self.max_prompt_length < 1 or self.max_completion_length < 1:
            raise ValueError("max_prompt_length and max_completion_length must be at least 1")


C = TypeVar("C", GRPOTrainConfig, SFTTrainConfig)


def trainer_arguments(train: TrainerSettings, *, cuda: bool,
                      show_progress: bool = True) -> dict[str, Any]:
    """The keyword arguments of TRL's GRPOConfig / SFTConfig that `train` sets.

    Args:
        cuda: whether a CUDA GPU is there; without one the trainer runs on the CPU.
        show_progress: show the trainer's progress bar.
    """
    return {
        "output_dir": train.output_dir, "seed": train.seed, "data_seed": train.seed,
        "learning_rate": train.learning_rate, "weight_decay": train.weight_decay,
        "warmup_steps": train.warmup, "lr_scheduler_type": train.lr_scheduler,
        "max_grad_norm": train.max_grad_norm,
        "per_device_train_batch_size": train.per_device_batch_size,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "num_train_epochs": train.epochs,
        "max_steps": -1 if train.max_steps is None else train.max_steps,
        "logging_steps": train.logging_steps, "save_strategy": "steps",
        "save_steps": train.save_steps, "save_total_limit": train.save_total_limit,
        "bf16": train.bf16, "activation_checkpointing": train.gradient_checkpointing,
        "report_to": list(train.report_to) or "none", "use_cpu": not cuda,
        "disable_tqdm": not show_progress,
    }


def load_train_config(cls: type[C], path: str | os.PathLike[str] | None,
                      overrides: Sequence[str] = ()) -> C:
    """Load a training config: the YAML file at `path` (optional), then `overrides`.

    An error names where the bad value came from: the file, or the command
    line's override (``override 'bogus=1': unknown key bogus``).

    Raises:
        ConfigError: an unreadable file, an unknown key, a wrong type, a
            missing required value; the message names the key.
    """
    data = read_yaml(path) if path is not None else {}
    if path is not None:
        check_keys(cls, data, source=str(path))
    for item in overrides:
        check_keys(cls, apply_overrides({}, [item]), source=f"override {item!r}")
    try:
        return load(cls, apply_overrides(data, overrides))
    except ConfigError as err:
        raise ConfigError(_blamed(cls, path, data, overrides, err)) from None


def _blamed(cls: type[C], path: str | os.PathLike[str] | None, data: Mapping[str, Any],
            overrides: Sequence[str], err: ConfigError) -> str:
    """`err`'s message prefixed with its source: the file when the file alone has the same
    error, the command line when the file alone loads; unprefixed when it cannot be told
    (the message names the key either way)."""
    if path is None:
        return f"command line: {err}" if overrides else str(err)
    if not overrides:
        return f"{path}: {err}"
    try:
        load(cls, data)
    except ConfigError as alone:
        return f"{path}: {err}" if str(alone) == str(err) else str(err)
    return f"command line: {err}"
