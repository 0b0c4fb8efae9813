"""``tpru audit``: check a built dataset for text-only shortcuts (`tpru.eval.audit`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tpru.commands.common import (
    Command,
    add_backend_options,
    add_config_arguments,
    backend_options,
    int_at_least,
    load_config_arguments,
)
from tpru.diagnostics import InputError
from tpru.eval.audit import (
    CONTROLS,
    DEFAULT_CONTROLS,
    REPORT_FILE,
    AuditGroup,
    check_settings,
    run_audit,
)
from tpru.eval.audit_config import AuditRunConfig
from tpru.eval.audit_result import AuditResult, describe, unchecked_message

HELP = "check a built dataset for text-only shortcuts (blind and shuffled-image controls)"
DESCRIPTION = (
    "Run a model on a dataset folder written by tpru build under controls that take the "
    "visual evidence away, and report how far each control gets above chance, overall, per "
    "task, per scenario and for positive vs negative samples. A model that reads the images "
    "should fall to chance under every control; what stays above chance is a shortcut in "
    "the text (the question, the option wording, the answer letters).\n\n"
    "Controls (--controls, comma-separated; default blind,shuffled):\n"
    "  blind     the model with every image removed\n"
    "  shuffled  the model with each item's images in a seeded random order (question and\n"
    "            option images permuted together, never left in place): the images no\n"
    "            longer match the question, the text is unchanged\n"
    "  full      the model as it is, for reference (never checked against --max-lift)\n\n"
    "Chance is 1/options for a multiple-choice item and 1/k! for a letter ordering of k "
    "images; a group's chance is the mean over its items. Lift = accuracy - chance, in "
    "points. With --max-lift, a group of a blind or shuffled control fails when its lift is "
    "above the threshold and it has at least --min-samples items (smaller groups are too "
    "noisy to judge); the command then exits with status 1. When no group has that many "
    "items nothing is checked: the command says so, and exits with status 1 under --strict."
    "\n\n"
    "Each control is a resumable run folder (like tpru eval) in OUT/<control>/; OUT/audit.json "
    "and OUT/audit.md hold every group's accuracy, chance, lift and 95% bootstrap interval.\n\n"
    "Settings can also come from a YAML file and key=value overrides, with the keys of a "
    "build config: audit.controls, audit.split, audit.limit, audit.max_lift, "
    "audit.min_samples, audit.max_new_tokens, audit.options, seed, batch_size, prompt; the "
    "options below override them. OUT/audit.yaml records the settings an audit ran with: "
    "tpru audit DATASET OUT/audit.yaml --model ... --out NEW repeats it.")
EPILOG = (
    "Models: hf:PATH_OR_HUB_ID, vllm:PATH_OR_HUB_ID, openai:MODEL (with --base-url), random, "
    "ray:<another model> (that model on Ray actors: --option actors=4 "
    "--option gpus_per_actor=1). "
    "The model is loaded once for all controls.\n"
    "Audit the split you will report on: --split test (the default is every split).\n\n"
    "Example:\n  tpru audit data/mine --model hf:Qwen/Qwen2.5-VL-7B-Instruct --split test "
    "--max-lift 0.15\n"
    "  tpru audit data/mine --model openai:my-model --base-url http://localhost:8000/v1 "
    "--controls blind,shuffled,full --out runs/audit-mine --resume")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru audit``. Those that set a config field default to None (not
    given), so that a config file's value stands unless an option overrides it."""
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    add_config_arguments(p, "audit")
    p.add_argument("--model", required=True, metavar="BACKEND:NAME",
                   help="the model: hf:PATH_OR_HUB_ID, vllm:..., openai:MODEL, random "
                        "or ray:...")
    p.add_argument("--controls", metavar="LIST",
                   help=f"comma-separated controls among {', '.join(CONTROLS)} "
                        f"(default {','.join(DEFAULT_CONTROLS)})")
    p.add_argument("--out", metavar="DIR",
                   help="the audit folder to write (default DATASET/audit; the dataset's "
                        "splits and content hash are not affected)")
    p.add_argument("--split", help="the split to audit (default: every split)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N items, in the dataset's order (the same in every "
                        "control)")
    p.add_argument("--max-lift", type=float, metavar="X",
                   help="fail when a blind or shuffled group's lift is above X, a fraction "
                        "(0.15: 15 points above chance); default: report only")
    p.add_argument("--min-samples", type=int, metavar="N",
                   help="only groups of at least N items can fail (default 20)")
    p.add_argument("--strict", action="store_true",
                   help="with --max-lift: exit 1 when no group had --min-samples items, so "
                        "nothing was checked (default: say so and exit 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the audit in --out (same model, dataset, split, seed)")
    p.add_argument("--prompt", metavar="NAME",
                   help="default, muirbench, muirbench-authors, lego or tpru (default: tpru)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="requests per backend call and per flush of results (default 8)")
    p.add_argument("--max-new-tokens", type=int, metavar="N",
                   help="generation budget per answer, greedy (default 1024)")
    p.add_argument("--seed", type=int_at_least(0),
                   help="seed of the image shuffling, the per-item sampling seeds, the random "
                        "model and the bootstrap, 0 or more (default 0)")
    add_backend_options(p)


def audit_command(args: argparse.Namespace) -> int:
    """Run ``tpru audit``; returns 1 when a group fails --max-lift (or, with --strict, when
    nothing was checked), else 0."""
    out = Path(args.out) if args.out else Path(args.dataset) / "audit"
    config = audit_config(args)
    if args.strict and config.audit.max_lift is None:
        raise InputError("--strict needs --max-lift (or audit.max_lift): without a threshold "
                         "nothing is checked")
    result = run_audit(args.dataset, config.audit, out, batch_size=config.batch_size,
                       seed=config.seed, prompt=config.prompt, resume=args.resume,
                       show_progress=not getattr(args, "quiet", False))
    return report_outcome(result, args.model, strict=args.strict)


AUDIT_OPTIONS = ("split", "limit", "max_lift", "min_samples", "max_new_tokens")
"""The options that set an `AuditConfig` field of the same name (besides --model,
--controls and the backend options)."""

RUN_OPTIONS = ("seed", "batch_size", "prompt")
"""The options that set an `AuditRunConfig` field of the same name."""


def audit_config(args: argparse.Namespace) -> AuditRunConfig:
    """The audit's settings: the YAML files and overrides given, the options over them.

    The options are checked first, with the messages `run_audit` gives
    (`tpru.eval.audit.check_settings`), so a bad option reads as it always did.
    """
    loaded = load_config_arguments(AuditRunConfig, args.config)
    given = {name: getattr(args, name) for name in AUDIT_OPTIONS
             if getattr(args, name) is not None}
    run = {name: getattr(args, name) for name in RUN_OPTIONS if getattr(args, name) is not None}
    merged = {**vars(loaded.audit), **given}
    controls = args.controls.split(",") if args.controls is not None else merged["controls"]
    seed = run.get("seed", loaded.seed)
    chosen = check_settings(args.model, controls, merged["limit"],
                            run.get("batch_size", loaded.batch_size), merged["max_new_tokens"],
                            merged["max_lift"], merged["min_samples"], seed)
    options = backend_options(args, seed=seed, options=loaded.audit.options)
    audit = replace(loaded.audit, **given, model=args.model, controls=chosen, options=options)
    return replace(loaded, audit=audit, **run)


def report_outcome(result: AuditResult, model: str, *, strict: bool = False) -> int:
    """Print the audit's summary (and its failure, on standard error); the exit status.

    An audit with a threshold that checked nothing (every group smaller than
    min_samples) passes, and says so; with `strict` it fails instead.
    """
    _print_summary(result, model)
    unchecked = unchecked_message(result)
    if unchecked is not None:
        print(f"audit {'failed' if strict else 'passed'}, but {unchecked}", file=sys.stderr)
        return 1 if strict else 0
    if result.passed:
        return 0
    worst = describe(result.failures[0], result.max_lift)
    more = len(result.failures) - 1
    print(f"audit failed: {worst}" + (f", and {more} more group{'s' * (more > 1)}" if more else "")
          + f"; see {result.path / REPORT_FILE}", file=sys.stderr)
    return 1


def _print_summary(result: AuditResult, model: str) -> None:
    """Per control: overall accuracy, chance and lift, and the group of largest lift."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"audit of {model}")
    for column in ("control", "items", "accuracy", "chance", "lift", "largest lift"):
        table.add_column(column, justify="left" if column in ("control", "largest lift")
                         else "right")
    for control in dict.fromkeys(g.control for g in result.groups):
        groups = [g for g in result.groups if g.control == control]
        overall = groups[0]
        judged = [g for g in groups[1:] if g.n >= result.min_samples]
        worst: AuditGroup | None = max(judged, key=lambda g: g.lift, default=None)
        table.add_row(control, str(overall.n), f"{100 * overall.accuracy:.1f}%",
                      f"{100 * overall.chance:.1f}%", f"{100 * overall.lift:+.1f}",
                      f"{worst.by} {worst.group}: {100 * worst.lift:+.1f} (n={worst.n})"
                      if worst else f"(no group of {result.min_samples}+ items)")
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    console.print(f"report: {result.path / REPORT_FILE}", markup=False)


COMMAND = Command(help=HELP, description=DESCRIPTION, epilog=EPILOG, add_arguments=add_arguments,
                  run=audit_command)
