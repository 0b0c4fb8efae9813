"""What ``tpru train grpo`` and ``tpru train sft`` share: run folder, model, saving.

Both trainers run the same way around their TRL trainer: check the run folder
(`check_run_dir`, `clear_run_dir`), build TRL's arguments (`make_arguments`),
load the processor and the policy (`load_processor`, `load_policy`, LoRA by
`peft_config`), and save the model with its processor (`save_outputs`), ending
in a `TrainResult` (which ``tpru train`` prints). The two modules keep only what
differs (the trainer, GRPO's rewards and vLLM, SFT's targets); see
`tpru.train.grpo` for a run step by step.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from tpru.config import ConfigError, to_dict
from tpru.diagnostics import InputError, first_line
from tpru.files import check_separate, holds_files, is_marked, mark_output
from tpru.registry import install_hint
from tpru.train.config import (
    CONFIG_FILE,
    GRPOTrainConfig,
    LoraSettings,
    ModelConfig,
    SFTTrainConfig,
)

if TYPE_CHECKING:
    from tpru.train.data import LengthReport

log = logging.getLogger("tpru.train")

RESUMABLE_CHANGES = ("train.max_steps", "train.epochs", "train.logging_steps",
                     "train.save_steps", "train.save_total_limit", "train.report_to")
"""Config keys ``--resume`` lets change: how long the run goes and what it reports."""

RUN_KIND = "training run"
"""What a run folder is marked as (`tpru.files`); ``--overwrite`` replaces only such a folder."""

OUTPUT_OPTION = "train.output_dir"
"""The setting that names the run folder, as messages name it."""

TrainConfig = GRPOTrainConfig | SFTTrainConfig
A = TypeVar("A")


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run left.

    Attributes:
        output_dir: the run folder.
        model_dir: the model to evaluate (``hf:MODEL_DIR``), with its processor.
        adapter_dir: the LoRA adapter, or None after full fine-tuning.
        steps: optimiser steps taken.
        log_history: the trainer's logged metrics, one dict per log step.
        lengths: the prompt lengths measured before training.
        main_process: whether this process is the main one (it prints the summary).
    """

    output_dir: Path
    model_dir: Path
    adapter_dir: Path | None
    steps: int
    log_history: tuple[dict[str, float], ...]
    lengths: LengthReport
    main_process: bool = True


def train_dependencies() -> AbstractContextManager[None]:
    """A block whose failed import of a training dependency (trl, peft) names the extra."""
    return install_hint("tpru train", extra="train")


def make_arguments(cls: type[A], kwargs: dict[str, Any]) -> A:
    """TRL's config class built from `kwargs`; its own refusals become `ConfigError`s."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if "activation_checkpointing" not in names:  # transformers before 5 names it differently
        kwargs["gradient_checkpointing"] = kwargs.pop("activation_checkpointing")
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ConfigError(f"the trainer refuses these settings: {err}") from None


def load_processor(model: ModelConfig) -> Any:
    """The model's processor, its images bounded to ``min_pixels..max_pixels``.

    The bounds are set on the processor itself, so the checkpoint saved with it
    sizes images the same way at evaluation.
    """
    from tpru.models._torchvision import import_transformers

    transformers = import_transformers()
    common = {"trust_remote_code": model.trust_remote_code, "padding_side": "left"}
    try:
        processor = transformers.AutoProcessor.from_pretrained(model.name, **common)
        size = dict(getattr(getattr(processor, "image_processor", None), "size", None) or {})
        if model.min_pixels is None and model.max_pixels is None:
            return processor
        if "longest_edge" not in size or "shortest_edge" not in size:
            raise InputError(f"model {model.name!r}: min_pixels/max_pixels apply to Qwen2-VL-style "
                             f"image processors; this one sizes images by {size or 'nothing'} "
                             "(set model.min_pixels and model.max_pixels to null)")
        size = {"shortest_edge": model.min_pixels or size["shortest_edge"],
                "longest_edge": model.max_pixels or size["longest_edge"]}
        return transformers.AutoProcessor.from_pretrained(model.name, size=size, **common)
    except (OSError, ValueError) as err:
        raise InputError(f"model {model.name!r}: cannot load its processor "
                         f"({first_line(err)})") from None


def load_model(model: ModelConfig, *, freeze_vision: bool = False) -> Any:
    """The model in the configured dtype, its vision tower frozen with `freeze_vision`."""
    import torch

    from tpru.models._torchvision import import_transformers

    transformers = import_transformers()
    kwargs: dict[str, Any] = {"trust_remote_code": model.trust_remote_code,
                              "dtype": model.dtype if model.dtype == "auto"
                              else getattr(torch, model.dtype)}
    if model.attn_implementation is not None:
        kwargs["attn_implementation"] = model.attn_implementation
    try:
        loaded = transformers.AutoModelForImageTextToText.from_pretrained(model.name, **kwargs)
    except (OSError, ValueError) as err:
        raise InputError(f"model {model.name!r}: cannot load ({first_line(err)})") from None
    if freeze_vision:
        tower = vision_tower(loaded)
        if tower is None:
            raise InputError(f"model {model.name!r}: model.freeze_vision is set but no vision "
                             "tower was found (looked for visual, vision_tower, vision_model)")
        count = sum(p.numel() for p in tower.parameters())
        tower.requires_grad_(False)
        log.info("froze the vision tower: %d parameters", count)
    return loaded


def last_checkpoint(run_dir: Path) -> Path:
    """The run folder's latest ``checkpoint-N``, for ``--resume``."""
    steps = {int(p.name.removeprefix("checkpoint-")): p for p in run_dir.glob("checkpoint-*")
             if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit()}
    if not steps:
        raise InputError(f"{run_dir}: no checkpoint-N folder to resume from")
    return steps[max(steps)]


def load_policy(config: TrainConfig, checkpoint: Path | None) -> Any:
    """The model to train: the configured one, or on resume the checkpoint's weights.

    On resume the weights are loaded here, by ``from_pretrained``, because the
    trainer's own reload of a checkpoint does not map Qwen2.5-VL's saved key
    names back (QwenLM/Qwen3-VL#1763): it reports missing keys and trains on
    from the base weights. That report, printed later, is then harmless. The
    model keeps the base model's name, from which TRL builds GRPO's KL
    reference. A LoRA checkpoint holds the adapter only; the trainer reloads it.
    """
    freeze = config.model.freeze_vision and not config.lora.enabled
    if checkpoint is None or config.lora.enabled:
        return load_model(config.model, freeze_vision=freeze)
    log.info("resuming from %s: policy weights loaded from it", checkpoint)
    model = load_model(dataclasses.replace(config.model, name=str(checkpoint)),
                       freeze_vision=freeze)
    model.config._name_or_path = config.model.name
    return model


def vision_tower(model: Any) -> Any:
    """The vision encoder module of an image-text-to-text model, or None."""
    for name in ("model.visual", "visual", "model.vision_tower", "vision_tower",
                 "model.vision_model", "vision_model"):
        try:
            return model.get_submodule(name)
        except AttributeError:
            continue
    return None


def peft_config(lora: LoraSettings) -> Any:
    """peft's LoraConfig for `lora`, or None for full fine-tuning."""
    if not lora.enabled:
        return None
    with train_dependencies():
        import peft
    targets: str | list[str] = list(lora.target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    return peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                           target_modules=targets, task_type="CAUSAL_LM")


def check_run_dir(config: TrainConfig, *, resume: bool, overwrite: bool) -> Path:
    """The run folder, after refusing one whose contents would be lost or mixed up.

    ``train.output_dir`` may not be, contain or lie inside the data or the
    model it trains (when those are local paths). A non-empty folder must be
    a training run tpru wrote (`is_run_dir`): ``--resume`` continues it,
    ``--overwrite`` replaces it; any other non-empty folder is refused, with
    or without a flag, so that model files never land in (or wipe) a dataset.
    """
    run_dir = Path(config.train.output_dir)
    check_separate(run_dir, [config.data.path, config.model.name], option=OUTPUT_OPTION)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir}: exists and is not a folder")
    saved = run_dir / CONFIG_FILE
    if resume:
        if overwrite:
            raise InputError("--resume and --overwrite exclude each other")
        if not saved.is_file():
            raise InputError(f"{run_dir}: no run to resume (no {CONFIG_FILE})")
        earlier = _flatten(yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
        now = _flatten(to_dict(config))
        differ = [f"{k} {earlier.get(k)!r} (now {now.get(k)!r})"
                  for k in sorted(set(earlier) | set(now))
                  if earlier.get(k) != now.get(k) and k not in RESUMABLE_CHANGES]
        if differ:
            raise InputError(f"{run_dir}: cannot resume: the run used {'; '.join(differ)}")
    elif holds_files(run_dir):
        _check_is_run(run_dir)
        if not overwrite:
            raise InputError(f"{run_dir}: already holds a training run; continue it with "
                             f"--resume, replace it with --overwrite, or choose another "
                             f"{OUTPUT_OPTION}")
    return run_dir


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` is a training run tpru wrote.

    `clear_run_dir` marks the folder (`tpru.files.OUTPUT_MARKER`, kind
    `RUN_KIND`) before anything else is written into it; a run from a tpru
    version before the marker is known by its `CONFIG_FILE`.
    """
    return is_marked(folder, RUN_KIND) or (folder / CONFIG_FILE).is_file()


def clear_run_dir(run_dir: Path, *, overwrite: bool) -> None:
    """Create and mark the run folder; with `overwrite`, empty it first.

    Only a folder `is_run_dir` recognises is emptied. The data export stays:
    its stamp tells whether it still matches the data.
    """
    from tpru.train.data import EXPORT_DIR, STAMP_FILE

    if overwrite and holds_files(run_dir):
        _check_is_run(run_dir)
        for entry in run_dir.iterdir():
            if entry.name in (EXPORT_DIR, STAMP_FILE):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_output(run_dir, RUN_KIND)


def _check_is_run(run_dir: Path) -> None:
    if not is_run_dir(run_dir):
        raise InputError(f"{run_dir}: is not a training run tpru wrote (and not empty); "
                         f"choose another {OUTPUT_OPTION}")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return {k.removesuffix("."): v for k, v in flat.items()}


def write_config(run_dir: Path, config: TrainConfig) -> None:
    """Write the resolved config into the run folder, so the run can be repeated."""
    text = yaml.safe_dump(to_dict(config), sort_keys=False)
    (run_dir / CONFIG_FILE).write_text(text, encoding="utf-8")


def save_outputs(trainer: Any, config: TrainConfig, processor: Any, run_dir: Path,
                 lengths: LengthReport) -> TrainResult:
    """Save the trained model (and adapter) with the processor into `run_dir`.

    With LoRA the adapter goes to ``RUN_DIR/adapter`` and the merged model to
    ``RUN_DIR`` (or the adapter to ``RUN_DIR`` with ``lora.merge=false``).
    """
    lora = config.lora
    adapter_dir = (run_dir / "adapter" if lora.merge else run_dir) if lora.enabled else None
    trainer.save_model(str(adapter_dir or run_dir))  # every process: ZeRO-3/FSDP gather here
    main = bool(trainer.accelerator.is_main_process)
    if lora.enabled and lora.merge and main:
        assert adapter_dir is not None
        merge_adapter(config.model, adapter_dir, run_dir, processor)
    trainer.accelerator.wait_for_everyone()
    history = tuple(dict(entry) for entry in trainer.state.log_history)
    return TrainResult(output_dir=run_dir, model_dir=run_dir, adapter_dir=adapter_dir,
                       steps=int(trainer.state.global_step), log_history=history,
                       lengths=lengths, main_process=main)


def merge_adapter(model: ModelConfig, adapter_dir: Path, out: Path, processor: Any) -> None:
    """Load the base model afresh on the CPU, merge the adapter into it and save it to `out`.

    Loading anew, rather than merging the trained copy, works whatever sharded
    the training copy (ZeRO-3, FSDP).
    """
    from peft import PeftModel

    base = load_model(model)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    log.info("merged the LoRA adapter into %s", out)
