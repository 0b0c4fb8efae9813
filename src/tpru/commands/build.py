"""``tpru build``: a dataset from episode sources, then (with ``audit.model``) its audit.

The build itself is `tpru.builder.pipeline.build`. The audit of the finished
dataset for text-only shortcuts is a step of this command, run after the build
returns (`audit_dataset`): the builder knows nothing of evaluation. Its settings
are the YAML's ``audit:`` section, loaded here into
`tpru.eval.audit_config.AuditConfig` and recorded, resolved, in the build's
config (``--print-config``, ``build.json``, the ``--resume`` fingerprint).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpru.commands.common import Command, int_at_least

if TYPE_CHECKING:
    from tpru.builder.config import BuildConfig
    from tpru.builder.pipeline import BuildResult
    from tpru.eval.audit_config import AuditConfig
    from tpru.eval.audit_result import AuditResult

log = logging.getLogger("tpru")

AUDIT_DIR = "audit"
"""The folder of the build-time audit, inside the dataset."""

DESCRIPTION = (
    "Build a dataset: read episodes, filter frames, formulate the ordering, next-frame and "
    "previous-frame tasks with negatives and distractors, split by episode without leakage, "
    "and write DIR with samples per split, content-addressed images and build.json.")
EPILOG = (
    "Sources: frames:DIR (a folder of episode folders), manifest:FILE.jsonl, "
    "video:PATH (a file or folder of videos), lego-video:PATH, sim:robot|nav|gui|lego, "
    "lerobot:PATH_OR_REPO_ID (a LeRobot dataset), rlds:PATH (TFDS/RLDS, also gs:// or "
    "s3://), segments:FILE.jsonl, coin:PATH, epic-kitchens:PATH, sharerobot:PATH, "
    "gui-odyssey:PATH, habitat:PATH; docs/building.md lists each with its options.\n"
    "Any config key can be set as key.sub=value, e.g. tasks.frames_per_sample=5 "
    "'split.ratios={train: 0.8, test: 0.2}'; tasks.frames_per_sample=[3,5,8] mixes "
    "lengths per window, 'tasks.candidates={ordering: 4, next_frame: 6, prev_frame: 6}' "
    "sets choices per task.\n"
    "See every key and its default with: tpru build --print-config\n"
    "Model stages (docs/building.md): model.name=BACKEND:NAME with judge.enabled=true "
    "(keep episodes the model judges to show a clear process) and/or "
    "describe.mode=missing|always (the model writes descriptions, captions and "
    "negatives); answers are cached, so a rebuild never asks twice. "
    "audit.model=BACKEND:NAME audits the result for text-only shortcuts "
    "(audit.max_lift=0.15 fails the build above it).\n\n"
    "Example:\n  tpru build --source frames:recordings --out data/tpru "
    "--workers 2 tasks.negative_rate=0.25\n"
    "  tpru build --source frames:recordings --out data/tpru "
    "model.name=openai:Qwen2.5-VL-72B-Instruct "
    "'model.options={base_url: \"http://localhost:8000/v1\"}' judge.enabled=true "
    "describe.mode=missing")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru build``."""
    p.add_argument("config", nargs="*", metavar="CONFIG.yaml|key=value",
                   help="a YAML config file and/or key.sub=value overrides")
    p.add_argument("--source", action="append", default=[], metavar="KIND:PATH",
                   help="an episode source; repeat for several")
    p.add_argument("--out", help="the dataset folder to write (default: dataset, in the "
                                 "current folder)")
    p.add_argument("--seed", type=int_at_least(0),
                   help="seed of every random choice, 0 or more (default 0)")
    p.add_argument("--workers", type=int_at_least(1),
                   help="processes reading frames in pass 1 and making samples in pass 2 "
                        "(default 1)")
    p.add_argument("--engine", choices=("local", "ray"),
                   help="where frames are read and samples made: local processes (default) "
                        "or a Ray cluster (needs tpru[ray]; docs/scaling.md); the output is "
                        "the same")
    p.add_argument("--ray-address", metavar="HOST:PORT",
                   help="the Ray cluster's head (ray start --head prints it; sets "
                        "ray.address); without it --engine ray starts Ray here")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad input instead of skipping and counting it")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted build of the same config")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit")


def build_command(args: argparse.Namespace) -> int:
    """Run ``tpru build``: 1 when the audit fails its ``audit.max_lift``, else 0."""
    import yaml

    from tpru.builder.pipeline import build
    from tpru.config import to_dict
    from tpru.models import check_backend

    config, audit = config_from_arguments(args)
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    # The audit's backend is checked before the build, so a bad one fails in seconds.
    if audit.model and (audit.model != config.model.name or audit.options):
        check_backend(audit.model, **audit.options)
    try:
        result = build(config, resume=args.resume, overwrite=args.overwrite,
                       show_progress=not args.quiet)
    except BaseException as err:  # an interruption too: the folder is kept for --resume
        note_unfinished_build(err, Path(os.path.abspath(config.out)))
        raise
    print_build_summary(result.path, result.info, result.calls)
    if audit.model is None:
        return 0
    from tpru.commands.audit import report_outcome

    outcome = audit_dataset(config, audit, result, show_progress=not args.quiet)
    return report_outcome(outcome, audit.model)


def note_unfinished_build(err: BaseException, out: Path) -> None:
    """Add to `err` where the build it stopped left its folder, and what to do with it.

    A failed or interrupted build keeps ``OUT.partial`` so that ``--resume``
    can continue it; the note (printed after the error, on the same line)
    says so, only when that folder exists and the error does not already name
    it (the shortcut probes' failure, a refused resume).
    """
    from tpru.dataset import partial_folder, unfinished_build_note

    partial = partial_folder(out)
    if partial.is_dir() and str(partial) not in str(err):
        # BaseException.add_note from Python 3.11; the same list by hand on 3.10.
        err.__notes__ = [*getattr(err, "__notes__", ()), unfinished_build_note(partial)]


def config_from_arguments(args: argparse.Namespace) -> tuple[BuildConfig, AuditConfig]:
    """The build's config and its audit's from the YAML files, overrides and options given."""
    from tpru.config import apply_overrides, read_yaml

    data: dict[str, object] = {}
    overrides = []
    for item in args.config:
        if "=" in item and not Path(item).exists():
            _check_keys(apply_overrides({}, [item]), source=f"override {item!r}")
            overrides.append(item)
        else:
            from_file = read_yaml(item)
            _check_keys(from_file, source=item)
            data.update(from_file)
    data = apply_overrides(data, overrides)
    if args.source:
        listed = data.get("sources") or []
        # A YAML `sources:` that is not a list is left for `load` to report.
        data["sources"] = [*listed, *args.source] if isinstance(listed, list) else listed
    for key in ("out", "seed", "workers", "engine"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.ray_address is not None:
        section = data.get("ray") or {}
        data["ray"] = {**section, "address": args.ray_address} if isinstance(section, dict) \
            else section  # not a mapping: left for `load` to report
    if args.strict:
        data["strict"] = True
    return load_build_config(data)


def load_build_config(data: Mapping[str, Any]) -> tuple[BuildConfig, AuditConfig]:
    """`BuildConfig` and `AuditConfig` from one mapping (a build YAML's keys).

    The ``audit`` section is loaded and checked as an `AuditConfig`, and given to
    the `BuildConfig` resolved, defaults filled in: the build records it (``build.json``,
    the ``--resume`` fingerprint) without reading it.

    Raises:
        ConfigError: a key or value either config refuses, named by its dotted key.
    """
    from tpru.builder.config import BuildConfig
    from tpru.config import load, to_dict
    from tpru.eval.audit_config import AuditConfig

    section = data.get("audit", {})
    if not isinstance(section, Mapping):  # BuildConfig's loading refuses it, naming the key
        return load(BuildConfig, data), AuditConfig()
    audit = load(AuditConfig, section, where="audit")
    return load(BuildConfig, {**data, "audit": to_dict(audit)}), audit


def _check_keys(data: Mapping[str, Any], *, source: str) -> None:
    """Refuse the first unknown key of `data`, in its order, naming the file or override."""
    from tpru.builder.config import BuildConfig
    from tpru.config import check_keys
    from tpru.eval.audit_config import AuditConfig

    for key, value in data.items():
        if key == "audit" and isinstance(value, Mapping):
            check_keys(AuditConfig, value, source=source, where="audit")
        else:
            check_keys(BuildConfig, {key: value}, source=source)


def audit_dataset(config: BuildConfig, audit: AuditConfig, result: BuildResult, *,
                  show_progress: bool) -> AuditResult:
    """Audit the finished dataset into ``<dataset>/audit`` (see `tpru.eval.audit`), with the
    model stages' backend (``result.backend``) when ``audit.model`` is ``model.name``."""
    from dataclasses import replace

    from tpru.eval.audit import run_audit

    assert audit.model is not None
    same = audit.model == config.model.name and not audit.options
    out = result.path
    try:
        return run_audit(out, replace(audit, options=config.model.options) if same else audit,
                         out / AUDIT_DIR, batch_size=config.model.batch_size, seed=config.seed,
                         show_progress=show_progress, backend=result.backend if same else None)
    except KeyboardInterrupt:
        log.warning("the dataset %s is finished; continue its audit with: tpru audit %s "
                    "--model %s --resume", out, out, audit.model)
        raise


def print_build_summary(path: Path, info: dict[str, object],
                        calls: dict[str, dict[str, int]] | None = None) -> None:
    """What a build wrote: samples per split and task, what was kept and dropped, model calls."""
    from rich.console import Console
    from rich.table import Table

    counts: dict[str, object] = info["counts"]  # type: ignore[assignment]
    drops: dict[str, dict[str, int]] = info["drops"]  # type: ignore[assignment]
    table = Table(title=f"built {path}")
    table.add_column("split")
    table.add_column("samples", justify="right")
    table.add_column("by task")
    samples: dict[str, dict[str, int]] = counts["samples"]  # type: ignore[assignment]
    for split, by_task in samples.items():
        table.add_row(split, str(sum(by_task.values())),
                      ", ".join(f"{k} {v}" for k, v in by_task.items()))
    console = Console()
    console.print(table)
    console.print(f"episodes kept {counts['episodes_kept']}, dropped {counts['episodes_dropped']}; "
                  f"frames kept {counts['frames_kept']} of {counts['frames_read']}; "
                  f"images stored {counts['images']}")
    for stage, reasons in drops.items():
        if reasons:
            console.print(f"dropped {stage}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    stages: dict[str, object] = info.get("model_stages") or {}  # type: ignore[assignment]
    for name in ("judge", "describe"):
        stage_counts = stages.get(name)
        if isinstance(stage_counts, dict):
            console.print(f"{name} ({stages['model']}): "
                          + ", ".join(f"{k} {v}" for k, v in stage_counts.items()))
    for stage, count in (calls or {}).items():
        console.print(f"model calls, {stage}: {count['asked']} asked, {count['cached']} from "
                      f"the cache, {count['errors']} failed")


COMMAND = Command(help="build a dataset from episode sources", description=DESCRIPTION,
                  epilog=EPILOG, add_arguments=add_arguments, run=build_command)
