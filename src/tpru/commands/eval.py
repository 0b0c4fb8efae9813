"""``tpru eval``: run a model on a benchmark into a resumable run folder (`tpru.eval.runner`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tpru.commands.common import (
    Command,
    add_backend_options,
    add_config_arguments,
    backend_options,
    int_at_least,
    load_config_arguments,
)
from tpru.diagnostics import InputError
from tpru.paths import IMAGES_CACHE, cache_dir

if TYPE_CHECKING:
    from tpru.eval.config import EvalConfig

log = logging.getLogger("tpru.eval")

HELP = "evaluate a model on a benchmark"
DESCRIPTION = (
    "Run a model on a benchmark and write a run folder: run.json (what was run) and "
    "results.jsonl (one scored answer per item, appended and flushed after every batch). "
    "An interrupted run continues with --resume; items whose backend failed are run again. "
    "The run's settings (prompt, split, limit, batch_size, seed, max_new_tokens, temperature, "
    "stop_after_failures) come from an optional YAML file and key=value overrides, the "
    "options below over them, and are written into the run folder as eval.yaml: "
    "tpru eval RUN/eval.yaml --model ... --bench ... --out NEW repeats the run.")
EPILOG = (
    "Models: hf:PATH_OR_HUB_ID, vllm:PATH_OR_HUB_ID, openai:MODEL (with --base-url), random, "
    "blind:<another model> (the same model with every image removed), ray:<another model> "
    "(that model on Ray actors, one copy each: --option actors=4 --option gpus_per_actor=1).\n"
    "Benchmarks: tpru-test, muirbench, lego-puzzles (from the hub), NAME:PATH (a local "
    "parquet/JSONL/TSV file or folder in that benchmark's format), dataset:PATH or a "
    "dataset folder written by tpru build (its test split unless --split names another, "
    "or --split all for every split).\n"
    "Prompts: default, muirbench (VLMEvalKit's), muirbench-authors (the MuirBench "
    "authors' own), lego, tpru (each benchmark's own by default).\n\n"
    "Example:\n  tpru eval --model hf:Qwen/Qwen2.5-VL-7B-Instruct --bench muirbench "
    "--out runs/qwen7b-muir --batch-size 16\n"
    "  tpru eval --model hf:Qwen/Qwen2.5-VL-7B-Instruct --bench muirbench "
    "--out runs/qwen7b-muir --resume\n"
    "  tpru eval runs/qwen7b-muir/eval.yaml limit=100 --model hf:Qwen/Qwen2.5-VL-7B-Instruct "
    "--bench muirbench --out runs/qwen7b-muir-100\n\n"
    "Exit status: 0 every item answered; 3 the run finished but some items failed in the "
    "backend (--resume retries them); 1 an error, including a run stopped after "
    "16 items in a row failed in the backend (a wrong --base-url or key, a server down).")

EXIT_BACKEND_ERRORS = 3
"""The exit status of a run that finished with items failed in the backend (--resume
retries them); 1 is any other error, a run stopped by a failing backend included."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru eval``. Those that set an `EvalConfig` field default to None
    (not given), so that a config file's value stands unless an option overrides it."""
    add_config_arguments(p, "eval")
    p.add_argument("--model", required=True, metavar="BACKEND:NAME",
                   help="the model: hf:PATH_OR_HUB_ID, vllm:..., openai:MODEL, random, blind:..., "
                        "ray:...")
    p.add_argument("--bench", required=True, metavar="NAME|NAME:PATH|PATH",
                   help="the benchmark: tpru-test, muirbench, lego-puzzles, NAME:PATH, "
                        "dataset:PATH or a dataset folder")
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder to write")
    p.add_argument("--split", metavar="NAME",
                   help="the split to score: a dataset folder's 'test' split by default (an "
                        "error if it has none), NAME for another, 'all' for every split "
                        "(train included); a hub benchmark reads its own default (test). "
                        "run.json records the split scored")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N items, in the benchmark's order (1 or more)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (same model, prompt, seed, and a benchmark "
                        "with the same content: checked by fingerprint, not by path)")
    p.add_argument("--prompt", metavar="NAME",
                   help="default, muirbench, muirbench-authors, lego or tpru (default: the "
                        "benchmark's own)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="requests per backend call and per flush of results (default 8)")
    p.add_argument("--max-new-tokens", type=int, metavar="N",
                   help="generation budget per answer (default 1024)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="sampling temperature, 0 or more; 0 is greedy (default 0)")
    p.add_argument("--seed", type=int_at_least(0), metavar="N",
                   help="seed of the per-item sampling seeds and of the random model (default 0)")
    add_backend_options(p)
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where benchmark images are written, named by content "
                        "(default $TPRU_CACHE/images or ~/.cache/tpru/images)")


def eval_command(args: argparse.Namespace) -> int:
    """Run ``tpru eval``; returns the exit status (errors raise `InputError`)."""
    from rich.console import Console

    from tpru.eval.benchmarks import load_benchmark
    from tpru.eval.runner import plan_run, run_eval
    from tpru.models import open_backend

    config = eval_config(args)
    if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
        raise InputError(f"--cache-dir {args.cache_dir}: is a file, not a folder")
    benchmark = load_benchmark(args.bench, cache_dir=args.cache_dir or cache_dir(IMAGES_CACHE),
                               split=config.split)
    # The run folder, and on --resume its settings and the benchmark's fingerprint, are
    # checked before the model loads: a mismatch fails in a second, not after the loading.
    plan = plan_run(benchmark, args.out, config, resume=args.resume, backend_spec=args.model)
    options = backend_options(args, seed=config.seed)
    backend = open_backend(args.model, **options)
    summary = run_eval(backend, benchmark, args.out, config, resume=args.resume,
                       show_progress=not getattr(args, "quiet", False), backend_spec=args.model,
                       backend_options=options, plan=plan)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{benchmark.name}: {summary.correct}/{summary.items} correct "
                  f"({100 * summary.accuracy:.2f}%), {summary.errors} errors, "
                  f"{summary.generated} generated now, {summary.kept} kept; "
                  f"split {benchmark.split or 'unknown'}; run: {summary.path}", markup=False)
    if summary.skipped:
        console.print("skipped rows: " + ", ".join(f"{k} {v}" for k, v in summary.skipped.items()),
                      markup=False)
    if not summary.errors:
        return 0
    if summary.answered == 0:
        log.error("every item failed in the backend (the last error: %s); check --model, "
                  "--base-url and the API key, then run again with --resume",
                  summary.last_error or "see results.jsonl")
    else:
        log.warning("%d items failed in the backend; run again with --resume to retry them",
                    summary.errors)
    return EXIT_BACKEND_ERRORS


CONFIG_OPTIONS = ("prompt", "split", "limit", "batch_size", "seed", "max_new_tokens",
                  "temperature")
"""The options that set an `EvalConfig` field of the same name."""


def eval_config(args: argparse.Namespace) -> EvalConfig:
    """The run's `EvalConfig`: the YAML files and overrides given, the options over them."""
    from dataclasses import replace

    from tpru.eval.config import EvalConfig

    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be 1 or more, got {value}")
    if args.temperature is not None and args.temperature < 0:
        raise InputError(f"--temperature must be 0 or more (0 is greedy), got {args.temperature:g}")
    config = load_config_arguments(EvalConfig, args.config)
    given = {name: getattr(args, name) for name in CONFIG_OPTIONS
             if getattr(args, name) is not None}
    return replace(config, **given)


COMMAND = Command(help=HELP, description=DESCRIPTION, epilog=EPILOG, add_arguments=add_arguments,
                  run=eval_command)
