"""``tpru train sft CONFIG.yaml [key=value ...]``: the supervised baseline, with TRL's SFTTrainer.

The same samples as GRPO (`tpru.train.data.open_train_dataset`), each with a
target the model learns to write after the prompt (``target``):
``answer`` gives ``<answer>C</answer>``, ``reasoning`` a short templated
``<think>`` sentence and then the answer (`tpru.train.data.sft_target`), so the
output has the shape tpru's rewards and extractor read. The loss covers the
target only. Prompts and targets are measured in tokens, images included,
before training, and sequences are never truncated, so no image token is cut.

The run folder, the checks on it, the LoRA and the saved model with its
processor are those of ``tpru train grpo`` (see `tpru.train.grpo`); the code
both use is in `tpru.train.common`.

Example:
    tpru train sft configs/train/sft_7b.yaml data.path=data/tpru train.output_dir=runs/sft
"""

from __future__ import annotations

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
from tpru.train.config import SFTTrainConfig, trainer_arguments

__all__ = ["train_sft"]

def train_sft(config: SFTTrainConfig, *, resume: bool = False, overwrite: bool = False,
              show_progress: bool = True) -> TrainResult:
    """Fine-tune as `config` says; returns where the model went and what was logged.

    Raises:
        InputError: bad data, a sample over its token budget, a run folder in
            the way, a model that cannot be loaded (one line each).
        ConfigError: settings TRL refuses.
    """
    from tpru.models._torchvision import import_transformers
    from tpru.train.data import check_prompt_lengths, open_train_dataset, with_sft_completions

    import_transformers()  # torchvision's workaround first, before TRL imports transformers
    import torch

    with train_dependencies():
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

    run_dir = check_run_dir(config, resume=resume, overwrite=overwrite)
    checkpoint = last_checkpoint(run_dir) if resume else None
    args = make_arguments(SFTConfig, {
        **trainer_arguments(config.train, cuda=torch.cuda.is_available(),
                            show_progress=show_progress),
        # Lengths are checked below; truncating would cut image tokens or the answer.
        "max_length": None, "completion_only_loss": True,
        # A curriculum is put in order by open_train_dataset; the sampler must keep it.
        **({"train_sampling_strategy": "sequential"} if config.data.order == "curriculum"
           else {}),
    })
    processor = load_processor(config.model)
    with args.main_process_first(desc="training data"):
        if args.process_index == 0:
            clear_run_dir(run_dir, overwrite=overwrite)
        dataset = with_sft_completions(open_train_dataset(config.data, run_dir,
                                                          seed=config.train.seed),
                                       config.target)
    lengths = check_prompt_lengths(dataset, processor, max_prompt_length=config.max_prompt_length,
                                   max_completion_length=config.max_completion_length,
                                   where=config.data.path, show_progress=show_progress)
    dataset = dataset.select_columns(["prompt", "completion", "images"])
    trainer = SFTTrainer(model=load_policy(config, checkpoint), args=args, train_dataset=dataset,
                         processing_class=processor, peft_config=peft_config(config.lora))
    if args.process_index == 0:
        write_config(run_dir, config)
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    return save_outputs(trainer, config, processor, run_dir, lengths)
