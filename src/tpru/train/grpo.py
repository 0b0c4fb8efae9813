"""``tpru train grpo CONFIG.yaml [key=value ...]``: GRPO with TRL on multi-image prompts.

A run, top to bottom (`train_grpo`):

1. the config is loaded and checked (`tpru.train.config.GRPOTrainConfig`);
2. the run folder is checked: a finished or started run there is refused
   unless ``--resume`` (the same config; only the length of the run may
   change) or ``--overwrite``;
3. the processor is loaded with the configured pixel bounds, the samples are
   loaded (`tpru.train.data.open_train_dataset`) and every prompt is measured
   in tokens, images included; one over ``max_prompt_length`` stops the run,
   naming the longest;
4. the rewards are resolved (`tpru.score.rewards` names, or ``file.py:function``),
   the model is loaded (vision tower frozen if asked, LoRA if asked) and
   TRL's `GRPOTrainer` trains it, generating with vLLM when asked and a GPU is
   there (else with transformers, said in one log line);
5. the model is saved with its processor into the run folder, so
   ``tpru eval --model hf:RUN_DIR`` loads it; with LoRA the adapter goes to
   ``RUN_DIR/adapter`` and the merged model to ``RUN_DIR`` (or the adapter to
   ``RUN_DIR`` with ``lora.merge=false``).

Several GPUs: ``accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml
-m tpru.cli train grpo configs/train/grpo_7b.yaml`` (or ``fsdp.yaml``); every
process runs the same steps, the main process exporting the data first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tpru.config import ConfigError
from tpru.diagnostics import InputError
from tpru.train.common import (
    TrainResult,
    check_run_dir,
    clear_run_dir,
    last_checkpoint,
    load_policy,
    load_processor,
    make_arguments,
    peft_config,
    save_outputs,
    train_dependencies,
    write_config,
)
from tpru.train.config import (
    GRPOTrainConfig,
    RewardSpec,
    VLLMSettings,
    trainer_arguments,
)

__all__ = ["load_reward", "train_grpo", "vllm_arguments"]

log = logging.getLogger("tpru.train")

def train_grpo(config: GRPOTrainConfig, *, resume: bool = False, overwrite: bool = False,
               show_progress: bool = True, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train with GRPO as `config` says (see the module docstring for the steps).

    `callbacks` are ``transformers.TrainerCallback`` objects added to the trainer's
    (bench/grpo_steps.py times the steps with one).

    Raises:
        InputError: bad data, a sample over the token budget, a run folder in
            the way, a model that cannot be loaded (one line each).
        ConfigError: settings TRL refuses (e.g. a batch not divisible by the group).
    """
    from tpru.models._torchvision import import_transformers
    from tpru.train.data import check_prompt_lengths, open_train_dataset

    import_transformers()  # torchvision's workaround first, before TRL imports transformers
    import torch

    with train_dependencies():
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

    run_dir = check_run_dir(config, resume=resume, overwrite=overwrite)
    checkpoint = last_checkpoint(run_dir) if resume else None
    cuda = torch.cuda.is_available()
    rollout = config.rollout
    args = make_arguments(GRPOConfig, {
        **trainer_arguments(config.train, cuda=cuda, show_progress=show_progress),
        "num_generations": rollout.num_generations, "temperature": rollout.temperature,
        "top_p": rollout.top_p, "max_completion_length": rollout.max_completion_length,
        "steps_per_generation": rollout.steps_per_generation, "beta": config.beta,
        "epsilon": config.epsilon, "epsilon_high": config.epsilon_high,
        "loss_type": config.loss_type, "scale_rewards": config.scale_rewards,
        "num_iterations": config.num_iterations,
        "reward_weights": [spec.weight for spec in config.rewards],
        "remove_unused_columns": False,
        # A curriculum is put in order by open_train_dataset; the sampler must keep it.
        "shuffle_dataset": config.data.order == "shuffled",
        **vllm_arguments(rollout.vllm, cuda=cuda,
                         max_model_length=config.max_prompt_length
                         + rollout.max_completion_length),
    })
    rewards: list[Any] = [load_reward(spec) for spec in config.rewards]
    processor = load_processor(config.model)
    with args.main_process_first(desc="training data"):
        if args.process_index == 0:
            clear_run_dir(run_dir, overwrite=overwrite)
        dataset = open_train_dataset(config.data, run_dir, seed=config.train.seed)
    lengths = check_prompt_lengths(dataset, processor, max_prompt_length=config.max_prompt_length,
                                   where=config.data.path, show_progress=show_progress)
    trainer = GRPOTrainer(model=load_policy(config, checkpoint), reward_funcs=rewards, args=args,
                          train_dataset=dataset, processing_class=processor,
                          peft_config=peft_config(config.lora), callbacks=list(callbacks))
    if args.process_index == 0:
        write_config(run_dir, config)
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    return save_outputs(trainer, config, processor, run_dir, lengths)


# --- GRPO's own: vLLM generation and the rewards --------------------------------------------

def vllm_arguments(settings: VLLMSettings, *, cuda: bool, max_model_length: int) -> dict[str, Any]:
    """GRPOConfig's vLLM keywords; vLLM is dropped, in one log line, where there is no GPU."""
    if not settings.enabled:
        return {"use_vllm": False}
    if not cuda:
        log.warning("rollout.vllm.enabled: vLLM needs a CUDA GPU and there is none here; "
                    "generating with transformers instead")
        return {"use_vllm": False}
    if importlib.util.find_spec("vllm") is None:
        raise InputError("rollout.vllm.enabled needs vllm; install it with: "
                         "pip install 'tpru[vllm]' (or set rollout.vllm.enabled=false)")
    arguments: dict[str, Any] = {
        "use_vllm": True, "vllm_mode": settings.mode,
        "vllm_gpu_memory_utilization": settings.gpu_memory_utilization,
        "vllm_tensor_parallel_size": settings.tensor_parallel_size,
        "vllm_enable_sleep_mode": settings.enable_sleep_mode,
        "vllm_max_model_length": max_model_length,
    }
    if settings.server_base_url is not None:
        arguments["vllm_server_base_url"] = settings.server_base_url
    return arguments


def load_reward(spec: RewardSpec) -> Callable[..., list[float | None]]:
    """The TRL reward function `spec` names, its options checked on one response now."""
    from tpru.score.rewards import REWARDS, trl_reward

    if spec.name in REWARDS:
        fn = trl_reward(spec.name, **spec.options)
        try:
            fn(["<think>.</think><answer>A</answer>"], answer=["A"])
        except (TypeError, InputError) as err:
            raise ConfigError(f"reward {spec.name!r}: {err}") from None
        return fn
    where, sep, attr = spec.name.rpartition(":")
    if not sep or not where or not attr:
        raise ConfigError(f"unknown reward {spec.name!r} (rewards: {', '.join(REWARDS)}, or "
                          "path/to/file.py:function, or package.module:function)")
    found = getattr(_import_reward_module(where), attr, None)
    if not callable(found):
        raise ConfigError(f"reward {spec.name!r}: {where} has no function {attr!r}")
    if not spec.options:
        custom: Callable[..., list[float | None]] = found
        return custom
    options = dict(spec.options)

    def with_options(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        result: list[float | None] = found(completions, **columns, **options)
        return result

    with_options.__name__ = with_options.__qualname__ = attr
    return with_options


def _import_reward_module(where: str) -> Any:
    if where.endswith(".py"):
        path = Path(where)
        spec = importlib.util.spec_from_file_location(f"tpru_reward_{path.stem}", path)
        if not path.is_file() or spec is None or spec.loader is None:
            raise ConfigError(f"reward file {path} not found")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # so that the function pickles for data loaders
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as err:
        raise ConfigError(f"reward module {where!r} cannot be imported ({err})") from None
