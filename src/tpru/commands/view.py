"""``tpru view``: a static HTML page of a dataset's samples (`tpru.view`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tpru.commands.common import Command, int_at_least

HELP = "write an HTML contact sheet of samples"
DESCRIPTION = ("Write a static HTML page showing samples with their question, images, options "
               "and gold answer.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tpru view``."""
    p.add_argument("dataset", help="a dataset folder written by tpru build")
    p.add_argument("--out", help="HTML file to write (default DATASET/view.html)")
    p.add_argument("--limit", type=int_at_least(0), default=50,
                   help="samples per split (default 50)")
    p.add_argument("--embed", action="store_true",
                   help="inline the images so the page works on its own")


def view_command(args: argparse.Namespace) -> int:
    """Run ``tpru view``: print the page written."""
    from tpru.dataset import Dataset
    from tpru.view import write_contact_sheet

    dataset = Dataset.open(args.dataset)
    out = Path(args.out) if args.out else dataset.root / "view.html"
    print(write_contact_sheet(dataset, out, limit_per_split=args.limit, embed=args.embed))
    return 0


COMMAND = Command(help=HELP, description=DESCRIPTION, add_arguments=add_arguments,
                  run=view_command, formatter=argparse.HelpFormatter)
