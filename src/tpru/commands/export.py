"""``tpru export``: a built dataset in the format a trainer or evaluator reads (`tpru.export`)."""

from __future__ import annotations

import argparse

from tpru.commands.common import Command, int_at_least
from tpru.diagnostics import InputError

HELP = "export a dataset for a trainer or evaluator"
DESCRIPTION = (
    "Write a built dataset in the format a trainer or evaluator reads: easyr1 (parquet + "
    "format prompt), verl (parquet), trl (GRPO chat prompts with images), vlmevalkit (custom "
    "MCQ TSV) or hf (Hugging Face datasets).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru export``."""
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--to", required=True, choices=["easyr1", "verl", "trl", "vlmevalkit", "hf"],
                   help="target format")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", action="append", help="only these splits (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--order", choices=["dataset", "shuffled", "curriculum"], default="dataset",
                   help="the order of each split's rows: as the dataset stores them (default), "
                        "a seeded shuffle, or a curriculum from easy to hard by "
                        "meta.difficulty.score (samples with equal scores in a seeded order)")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of --order shuffled and of curriculum ties (default 0)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an exporter option, e.g. embed_images=true (easyr1, verl), "
                        "format_prompt=my.jinja (easyr1, verl, trl), name=MySet and "
                        "include_ordering_letters=true (vlmevalkit); repeatable")


def export_command(args: argparse.Namespace) -> int:
    """Run ``tpru export``: print every file written, one a line."""
    from tpru.config import apply_overrides
    from tpru.export import export_dataset

    options = apply_overrides({}, args.option)
    for key in ("order", "seed"):
        if key in options:
            raise InputError(f"--option {key}=...: use --{key} instead")
    if args.order != "dataset":
        options.update(order=args.order, seed=args.seed)
    written = export_dataset(args.dataset, args.to, args.out, splits=args.split,
                             overwrite=args.overwrite, **options)
    for path in written:
        print(path)
    return 0


COMMAND = Command(help=HELP, description=DESCRIPTION, add_arguments=add_arguments,
                  run=export_command, formatter=argparse.HelpFormatter)
