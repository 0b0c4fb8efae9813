"""``tpru stats``: counts of a built dataset (`tpru.stats`), as tables or JSON."""

from __future__ import annotations

import argparse
import json

from tpru.commands.common import Command

HELP = "counts of a dataset"
DESCRIPTION = ("Counts by split, task, scenario, positive vs negative, answer letter and images "
               "per sample.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru stats``."""
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def stats_command(args: argparse.Namespace) -> int:
    """Run ``tpru stats``: the counts on standard output."""
    from rich.console import Console

    from tpru.dataset import Dataset
    from tpru.stats import compute_stats, render_stats

    stats = compute_stats(Dataset.open(args.dataset))
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
    else:
        Console().print(render_stats(stats))
    return 0


COMMAND = Command(help=HELP, description=DESCRIPTION, add_arguments=add_arguments,
                  run=stats_command, formatter=argparse.HelpFormatter)
