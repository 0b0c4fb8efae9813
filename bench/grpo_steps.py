"""A few GRPO steps, timed: step time, the share spent generating, peak memory.

    .venv/bin/python bench/grpo_steps.py --size 3b               # a CUDA GPU: the real measurement
    .venv/bin/python bench/grpo_steps.py --size 3b --vllm        # generation in vLLM (colocate)
    .venv/bin/python bench/grpo_steps.py --size tiny --completion-length 16   # CPU dry run
    .venv/bin/python bench/grpo_steps.py --size small --steps 3 --completion-length 128  # CPU

What it does, top to bottom:

1. Builds a tpru dataset of synthetic 640x480 episodes (``tpru build``, cached
   under ``--out``) and the model: ``tiny`` is the tiny offline Qwen2.5-VL;
   ``3b`` and ``7b`` are randomly initialised Qwen2.5-VL with those models'
   published shapes (bfloat16, the tiny model's tokenizer; no download);
   ``small`` (0.54 B parameters: Qwen2.5-0.5B's text model under an 8-block
   vision tower) is the size two CPU cores can train, with the 3B recipe.
2. Runs ``tpru train grpo`` (`tpru.train.grpo.train_grpo`) from the paper's
   recipe (configs/train/grpo_3b.yaml or grpo_7b.yaml; grpo_tiny.yaml for
   ``tiny``) with: images resized into the paper's 16,384..36,864 pixels, a
   group of ``--group`` (5) completions per prompt, ``--prompts`` prompts per
   optimiser step, ``--completion-length`` (1024) new tokens, ``--steps`` steps,
   no checkpoints. A random model rarely ends a completion early, so every
   completion runs to the full length: the worst case of generation.
3. A trainer callback clocks each optimiser step, and the model's
   ``generate`` (or vLLM's ``LLM.generate`` with ``--vllm``) is wrapped to clock
   the time spent generating; CUDA is synchronised at each clock reading.
   Peak memory is ``torch.cuda.max_memory_allocated`` (and ``_reserved``) over
   the run; on a CPU, the process's peak RSS.
4. A markdown section on the terminal, appended to ``--results``
   (bench/RESULTS.md), with the device named. The first step (warm-up: CUDA
   kernels, vLLM's graphs) is reported apart from the median of the others.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_common import (
    BENCH_DIR,
    code_version,
    ensure_dataset,
    ensure_random_qwen25_vl,
    ensure_tiny,
    machine,
    torch_versions,
)

ROOT = BENCH_DIR.parent
PAPER_PIXELS = (16384, 36864)
"""EasyR1's image bounds in the TPRU release: every image resized into this many pixels."""
RECIPES = {"tiny": "grpo_tiny.yaml", "small": "grpo_3b.yaml", "3b": "grpo_3b.yaml",
           "7b": "grpo_7b.yaml"}
"""The recipe per model size; ``small`` (a CPU stand-in) takes the paper's 3B settings."""


class Clock:
    """Wall-time readings that first wait for the GPU, so that queued kernels count."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self._sync: Callable[[], None] = torch.cuda.synchronize if self.cuda else (lambda: None)

    def now(self) -> float:
        self._sync()
        return time.perf_counter()


class StepTimer:
    """A TrainerCallback (duck-typed: transformers calls these methods by name) that
    records when each optimiser step ends, and wraps the policy's ``generate``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.marks: list[float] = []
        self.generate_s: list[float] = []
        self.generate_calls = 0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = self.clock.now()
            try:
                return fn(*args, **kwargs)
            finally:
                self.generate_s.append(self.clock.now() - start)
                self.generate_calls += 1
        return wrapper

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model")
        if model is not None and not getattr(model, "_tpru_timed", False):
            model.generate = self.timed(model.generate)
            model._tpru_timed = True
        self.marks.append(self.clock.now())
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.marks.append(self.clock.now())
        return control

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):  # every other event: nothing to do
            return lambda args, state, control, **kwargs: control
        raise AttributeError(name)


def wrap_vllm(timer: StepTimer) -> None:
    """Clock vLLM's ``LLM.generate`` (colocate mode generates there, not in the model)."""
    from vllm import LLM

    LLM.generate = timer.timed(LLM.generate)  # type: ignore[method-assign]


def peak_memory() -> dict[str, float]:
    import torch

    if torch.cuda.is_available():
        return {"allocated_gib": torch.cuda.max_memory_allocated() / 1024 ** 3,
                "reserved_gib": torch.cuda.max_memory_reserved() / 1024 ** 3}
    return {"rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def model_for(args: argparse.Namespace) -> Path:
    tiny = ensure_tiny(args.out)
    if args.size == "tiny":
        return tiny
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return ensure_random_qwen25_vl(args.out / f"qwen25-vl-{args.size}-random", tiny, args.size,
                                   args.seed, min_pixels=PAPER_PIXELS[0],
                                   max_pixels=PAPER_PIXELS[1], device=device)


def overrides(args: argparse.Namespace, model: Path, dataset: Path) -> list[str]:
    import torch

    cuda = torch.cuda.is_available()
    batch = args.prompts * args.group
    return [
        f"model.name={model}", f"model.min_pixels={PAPER_PIXELS[0]}",
        f"model.max_pixels={PAPER_PIXELS[1]}",
        f"model.dtype={'bfloat16' if cuda else 'float32'}",
        f"data.path={dataset}", f"data.limit={args.prompts * (args.steps + 1)}",
        f"train.output_dir={args.out / 'run'}", f"train.max_steps={args.steps}",
        f"train.per_device_batch_size={batch}", "train.gradient_accumulation_steps=1",
        f"train.bf16={'true' if cuda else 'false'}", "train.save_steps=100000",
        "train.logging_steps=1", "train.report_to=[]",
        f"rollout.num_generations={args.group}", "rollout.steps_per_generation=1",
        f"rollout.max_completion_length={args.completion_length}",
        f"rollout.vllm.enabled={'true' if args.vllm else 'false'}",
        f"max_prompt_length={args.max_prompt_length}",
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tpru.train.config import GRPOTrainConfig, load_train_config
    from tpru.train.grpo import train_grpo

    dataset = ensure_dataset(args.out, args.episodes, 6, args.seed)
    model = model_for(args)
    recipe = ROOT / "configs" / "train" / RECIPES[args.size]
    config = load_train_config(GRPOTrainConfig, recipe, overrides(args, model, dataset))
    timer = StepTimer(Clock())
    if args.vllm:
        wrap_vllm(timer)
    started = time.perf_counter()
    result = train_grpo(config, overwrite=True, show_progress=False, callbacks=[timer])
    total = time.perf_counter() - started
    steps = [b - a for a, b in zip(timer.marks, timer.marks[1:], strict=False)]
    if len(steps) != args.steps:
        sys.exit(f"grpo_steps.py: clocked {len(steps)} steps, expected {args.steps}")
    later = steps[1:] or steps
    generate = timer.generate_s
    # Each step generates once (steps_per_generation=1): pair them up, then the share.
    later_generate = generate[1:] if len(generate) == len(steps) else generate
    return {"recipe": recipe.relative_to(ROOT).as_posix(), "model": str(model),
            "steps": steps, "first_step_s": steps[0], "median_step_s": statistics.median(later),
            "generate_s": generate, "generate_calls": timer.generate_calls,
            "generate_share": sum(later_generate) / sum(later) if sum(later) else 0.0,
            "total_s": total, "memory": peak_memory(),
            "losses": [h["loss"] for h in result.log_history if "loss" in h]}


def device_line() -> str:
    import torch

    if not torch.cuda.is_available():
        return f"CPU only: {machine(torch_versions())}"
    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, {props.total_memory / 1024 ** 3:.0f} GiB, CUDA {torch.version.cuda}, "
            f"torch {torch.__version__}; host: {machine(torch_versions())}")


def report(args: argparse.Namespace, command: str, code: str, data: dict[str, Any]) -> str:
    memory = ", ".join(f"{k.replace('_gib', '')} {v:.1f} GiB" for k, v in data["memory"].items())
    engine = "vLLM colocate" if args.vllm else "transformers generate"
    lines = [
        f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: GRPO steps, {args.size}", "",
        f"- device: {device_line()}", f"- command: `{command}`", f"- code: {code}",
        f"- recipe: {data['recipe']} with {args.prompts} prompt(s) x {args.group} completions "
        f"per step, images in {PAPER_PIXELS[0]}..{PAPER_PIXELS[1]} pixels, "
        f"{args.completion_length} new tokens per completion, generation by {engine}",
        "",
        "| measure | value |", "|---|---:|",
        f"| first step (warm-up) | {data['first_step_s']:.2f} s |",
        f"| median of the other {max(len(data['steps']) - 1, 1)} steps | "
        f"{data['median_step_s']:.2f} s |",
        f"| share of those steps spent generating | {100 * data['generate_share']:.1f}% |",
        f"| generate calls | {data['generate_calls']} |",
        f"| peak memory | {memory} |",
        f"| whole run (loading included) | {data['total_s']:.1f} s |",
        "",
        "Step times (s): " + ", ".join(f"{s:.2f}" for s in data["steps"]),
        "Losses: " + ", ".join(f"{v:.4g}" for v in data["losses"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(RECIPES), default="3b",
                        help="tiny (the offline test model), or random 3b / 7b shapes")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps (default 4)")
    parser.add_argument("--group", type=int, default=5,
                        help="completions per prompt (default 5, the paper's)")
    parser.add_argument("--prompts", type=int, default=1,
                        help="prompts per optimiser step on this GPU (default 1)")
    parser.add_argument("--completion-length", type=int, default=1024,
                        help="new tokens per completion (default 1024, the paper's)")
    parser.add_argument("--max-prompt-length", type=int, default=7000,
                        help="prompt budget in tokens, images included (default 7000)")
    parser.add_argument("--vllm", action="store_true", help="generate with vLLM (colocate)")
    parser.add_argument("--episodes", type=int, default=4,
                        help="synthetic episodes per scenario for the dataset (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "grpo-steps",
                        help="where the dataset, models and run go (cached)")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="the markdown file the section is appended to")
    args = parser.parse_args()
    if min(args.steps, args.group, args.prompts, args.completion_length) < 1:
        sys.exit("grpo_steps.py: --steps, --group, --prompts and --completion-length must be "
                 "at least 1")
    if args.steps < 2:
        print("note: with one step there is only the warm-up step to report")
    command = "python bench/grpo_steps.py " + shlex.join(sys.argv[1:])
    code = code_version()
    data = run(args)
    text = report(args, command, code, data)
    print(text)
    (args.out / "last.json").write_text(json.dumps(data, indent=1))
    with args.results.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)
    print(f"appended to {args.results}")


if __name__ == "__main__":
    main()
