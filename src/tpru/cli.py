"""The ``tpru`` command line: one entry point, one sub-command per job.

Every command exits non-zero with a one-line reason on bad input; ``--help``
on each sub-command explains its options.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from tpru import __version__

log = logging.getLogger("tpru")

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    from tpru.builder.split import LeakageError
    from tpru.config import ConfigError
    from tpru.diagnostics import InputError
    from tpru.schema import RecordError

    try:
        status: int = args.run(args)
        return status
    except (InputError, ConfigError, RecordError, LeakageError) as err:
        print(f"tpru {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as err:  # a folder that cannot be written, a full disk, ...
        print(f"tpru {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command in ("build", "demo", "eval", "audit") \
            else ""
        print(f"tpru {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _setup_logging(verbose: bool, quiet: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    # Diagnostics go to standard error, so that standard output stays parseable.
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False,
                          markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # it logs which CPU build it loads
    # httpx logs every request at INFO: thousands of lines in an openai: evaluation.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line like every other error, and a command's
    options and positional arguments in any order (``tpru build --out d key=value --seed 1
    key2=value``, ``tpru train grpo CONFIG.yaml --overwrite key=value``)."""

    _intermixing = False

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(  # type: ignore[override]
            self, args: Sequence[str] | None = None,
            namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        # argparse parses a positional list (nargs="*") only where it first meets it, so
        # `key=value` after an option would be "unrecognized"; intermixed parsing takes it.
        # That parsing calls this method again, and refuses a parser with sub-commands. A
        # command that replaced this method on its parser (tpru train easyr1) keeps its own.
        if self._intermixing or self._subparsers is not None or "parse_known_args" in vars(self):
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of `minimum` or more, refused at parsing otherwise.

    Every command takes its seeds as ``int_at_least(0)``: seeds reach numpy, which refuses
    negative ones, so a negative seed is refused before anything runs or is written.

    Example:
        >>> int_at_least(1)("3")
        3
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tpru",
        description="Build TPRU-style temporal and procedural multi-image datasets from "
                    "ordered frame sequences, export them to trainers, train with GRPO, and "
                    "evaluate models on TPRU-Test, MuirBench, LEGO-Puzzles and your own sets.")
    parser.add_argument("--version", action="version", version=f"tpru {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="show errors only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_from_module(sub, common, "demo", "tpru.demo")
    _add_build(sub, common)
    _add_export(sub, common)
    _add_stats(sub, common)
    _add_view(sub, common)
    for name, module in (("eval", "tpru.eval.cli"), ("audit", "tpru.eval.audit_cli"),
                         ("report", "tpru.eval.report_cli")):
        _add_from_module(sub, common, name, module)
    _add_train(sub, common)
    return parser


# ---------------------------------------------------------------- build


def _add_build(sub: argparse._SubParsersAction[_Parser],
               common: _Parser) -> None:
    p = sub.add_parser(
        "build", parents=[common], help="build a dataset from episode sources",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a dataset: read episodes, filter frames, formulate the ordering, "
                    "next-frame and previous-frame tasks with negatives and distractors, split "
                    "by episode without leakage, and write DIR with samples per split, "
                    "content-addressed images and build.json.",
        epilog="Sources: frames:DIR (a folder of episode folders), manifest:FILE.jsonl, "
               "video:PATH (a file or folder of videos).\n"
               "Any config key can be set as key.sub=value, e.g. tasks.frames_per_sample=5 "
               "'split.ratios={train: 0.8, test: 0.2}'.\n"
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
    p.add_argument("config", nargs="*", metavar="CONFIG.yaml|key=value",
                   help="a YAML config file and/or key.sub=value overrides")
    p.add_argument("--source", action="append", default=[], metavar="KIND:PATH",
                   help="an episode source; repeat for several")
    p.add_argument("--out", help="the dataset folder to write (default: dataset, in the "
                                 "current folder)")
    p.add_argument("--seed", type=int_at_least(0),
                   help="seed of every random choice, 0 or more (default 0)")
    p.add_argument("--workers", type=int_at_least(1), help="processes reading frames (default 1)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad input instead of skipping and counting it")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted build of the same config")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit")
    p.set_defaults(run=_run_build)


def _build_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from tpru.builder.config import BuildConfig
    from tpru.config import apply_overrides, check_keys, load, read_yaml

    data: dict[str, object] = {}
    overrides = []
    for item in args.config:
        if "=" in item and not Path(item).exists():
            check_keys(BuildConfig, apply_overrides({}, [item]), source=f"override {item!r}")
            overrides.append(item)
        else:
            from_file = read_yaml(item)
            check_keys(BuildConfig, from_file, source=item)
            data.update(from_file)
    data = apply_overrides(data, overrides)
    if args.source:
        listed = data.get("sources") or []
        # A YAML `sources:` that is not a list is left for `load` to report.
        data["sources"] = [*listed, *args.source] if isinstance(listed, list) else listed
    for key in ("out", "seed", "workers"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.strict:
        data["strict"] = True
    return load(BuildConfig, data)


def _run_build(args: argparse.Namespace) -> int:
    import yaml

    from tpru.builder.pipeline import build
    from tpru.config import to_dict

    config = _build_config(args)
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    result = build(config, resume=args.resume, overwrite=args.overwrite,
                   show_progress=not args.quiet)
    print_build_summary(result.path, result.info, result.calls)
    if result.audit is not None:
        from tpru.eval.audit_cli import report_outcome

        return report_outcome(result.audit, str(config.audit.model))
    return 0


def print_build_summary(path: Path, info: dict[str, object],
                         calls: dict[str, dict[str, int]] | None = None) -> None:
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


# ---------------------------------------------------------------- demo


# ---------------------------------------------------------------- export, stats, view


def _add_export(sub: argparse._SubParsersAction[_Parser],
                common: _Parser) -> None:
    p = sub.add_parser(
        "export", parents=[common], help="export a dataset for a trainer or evaluator",
        description="Write a built dataset in the format a trainer or evaluator reads: "
                    "easyr1 (parquet + format prompt), verl (parquet), trl (GRPO chat prompts "
                    "with images), vlmevalkit (custom MCQ TSV) or hf (Hugging Face datasets).")
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--to", required=True, choices=["easyr1", "verl", "trl", "vlmevalkit", "hf"],
                   help="target format")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", action="append", help="only these splits (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an exporter option, e.g. embed_images=true (easyr1, verl), "
                        "format_prompt=my.jinja (easyr1, verl, trl), name=MySet and "
                        "include_ordering_letters=true (vlmevalkit); repeatable")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from tpru.config import apply_overrides
    from tpru.export import export_dataset

    options = apply_overrides({}, args.option)
    written = export_dataset(args.dataset, args.to, args.out, splits=args.split,
                             overwrite=args.overwrite, **options)
    for path in written:
        print(path)
    return 0


def _add_stats(sub: argparse._SubParsersAction[_Parser],
               common: _Parser) -> None:
    p = sub.add_parser("stats", parents=[common], help="counts of a dataset",
                       description="Counts by split, task, scenario, positive vs negative, "
                                   "answer letter and images per sample.")
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tpru.dataset import Dataset
    from tpru.stats import compute_stats, render_stats

    stats = compute_stats(Dataset.open(args.dataset))
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
    else:
        Console().print(render_stats(stats))
    return 0


def _add_view(sub: argparse._SubParsersAction[_Parser],
              common: _Parser) -> None:
    p = sub.add_parser("view", parents=[common], help="write an HTML contact sheet of samples",
                       description="Write a static HTML page showing samples with their "
                                   "question, images, options and gold answer.")
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--out", help="HTML file to write (default DATASET/view.html)")
    p.add_argument("--limit", type=int_at_least(0), default=50,
                   help="samples per split (default 50)")
    p.add_argument("--embed", action="store_true",
                   help="inline the images so the page works on its own")
    p.set_defaults(run=_run_view)


def _run_view(args: argparse.Namespace) -> int:
    from tpru.dataset import Dataset
    from tpru.view import write_contact_sheet

    dataset = Dataset.open(args.dataset)
    out = Path(args.out) if args.out else dataset.root / "view.html"
    print(write_contact_sheet(dataset, out, limit_per_split=args.limit, embed=args.embed))
    return 0


def _add_from_module(sub: argparse._SubParsersAction[_Parser], common: _Parser, name: str,
                     module_name: str) -> None:
    """A sub-command whose module holds HELP, DESCRIPTION, EPILOG, add_arguments and
    ``<name>_command``."""
    import importlib

    module = importlib.import_module(module_name)
    p = sub.add_parser(name, parents=[common], help=module.HELP, description=module.DESCRIPTION,
                       epilog=module.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(p)
    p.set_defaults(run=getattr(module, f"{name}_command"))


def _add_train(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    train = sub.add_parser("train", help="train a model (GRPO, SFT) or write an EasyR1 run",
                           description="Training: grpo and sft run TRL on this machine "
                                       "(or several GPUs through accelerate); easyr1 writes a "
                                       "complete EasyR1 run folder for a GPU cluster.")
    trainers = train.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    for name in ("grpo", "sft", "easyr1"):
        _add_from_module(trainers, common, name, f"tpru.train.{name}")


if __name__ == "__main__":
    sys.exit(main())
