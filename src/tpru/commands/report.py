"""``tpru report``: summarise run folders as tables, charts and an HTML page
(`tpru.eval.report`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tpru.commands.common import Command, int_at_least
from tpru.diagnostics import InputError
from tpru.eval.report import load_run, summarise
from tpru.eval.report_formats import FORMATS, render
from tpru.eval.report_paper import compare_to_paper, load_paper_results
from tpru.eval.report_splits import mixed_splits

log = logging.getLogger(__name__)

HELP = "summarise evaluation runs: tables, charts, HTML, the paper's numbers"
DESCRIPTION = (
    "Accuracy of one or more evaluation runs (folders written by tpru eval), overall and by "
    "task, category, scenario, positive/negative and answerable/unanswerable items, with "
    "seeded bootstrap intervals, and pair accuracy where items have twins; optionally beside "
    "the TPRU paper's published numbers, as charts, and as an HTML page showing every failed "
    "sample.")
EPILOG = (
    "Published numbers (--compare paper): TPRU-Test overall, MuirBench per task, LEGO-Puzzles "
    "per category, for the paper's models; a run is matched by its benchmark's name and its "
    "model's name, or by --paper-model.\n\n"
    "Splits: every run names the split it scored (run.json; 'unknown' for a run from before "
    "tpru recorded it). Runs of one benchmark that scored different splits (test beside all, "
    "or an unknown split beside a known one) are refused unless --mixed-splits is given; "
    "each run's split is printed either way.\n\n"
    "Example:\n  tpru report runs/qwen7b-muir runs/tpru7b-muir --compare paper "
    "--html report/index.html --plots report/plots\n"
    "  tpru report runs/qwen7b-tpru --format csv --out qwen7b.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tpru report`` arguments to `parser`."""
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders written by tpru eval")
    parser.add_argument("--compare", choices=["paper"],
                        help="show the published numbers of the TPRU paper beside ours")
    parser.add_argument("--paper-model", action="append", default=[], metavar="NAME",
                        help="the paper's model to compare with (e.g. Qwen2.5-VL-7B); once "
                             "for all runs or once per run (default: matched by model name)")
    parser.add_argument("--paper-results", metavar="FILE",
                        help="with --compare paper: a YAML file of published numbers in the "
                             "format of tpru's paper_results.yaml (default: the copy shipped "
                             "with tpru)")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="tables as markdown, CSV or JSON (default md)")
    parser.add_argument("--out", metavar="FILE",
                        help="write the tables to FILE instead of standard output")
    parser.add_argument("--html", metavar="PATH", help="also write an HTML report to PATH")
    parser.add_argument("--embed", action="store_true",
                        help="with --html: inline item images in the HTML report so it works "
                             "on its own")
    parser.add_argument("--max-failures", type=int, metavar="N",
                        help="show at most N failed samples per run in the HTML (default all)")
    parser.add_argument("--plots", metavar="DIR",
                        help="also write PNG charts (overall bars, radars) into DIR: a new "
                             "or empty folder, or one an earlier report wrote (replaced)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples per interval; 0 for none (default 1000)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="coverage of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the bootstrap, 0 or more (default 0)")
    parser.add_argument("--mixed-splits", action="store_true",
                        help="report runs of one benchmark that scored different splits (or "
                             "an unknown split) side by side; refused without it")


def report_command(args: argparse.Namespace) -> int:
    """Run ``tpru report`` with parsed `args`; returns the exit status."""
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise InputError(f"--confidence must be between 0 and 1, got {args.confidence}")
    if args.max_failures is not None and args.max_failures < 0:
        raise InputError(f"--max-failures must be 0 or more, got {args.max_failures}")
    for flag, given in (("--paper-model", args.paper_model),
                        ("--paper-results", args.paper_results)):
        if given and args.compare != "paper":
            raise InputError(f"{flag} needs --compare paper")
    if args.embed and not args.html:
        raise InputError("--embed needs --html (it inlines the HTML report's images)")
    # Checked before anything is printed or written.
    if args.html and Path(args.html).is_dir():
        raise InputError(f"--html {args.html}: is a folder; give the HTML file to write, "
                         f"e.g. {Path(args.html) / 'report.html'}")
    runs = [load_run(path) for path in args.runs]
    summary = summarise(runs, bootstrap=args.bootstrap, seed=args.seed,
                        confidence=args.confidence)
    mixed = mixed_splits(summary.runs)
    for line in mixed:
        log.warning("report: %s", line)
    if mixed and not args.mixed_splits:
        raise InputError(f"{mixed[0]}: their numbers are not comparable; score the same "
                         "split (tpru eval --split) or pass --mixed-splits to report them "
                         "side by side")
    comparison = None
    if args.compare == "paper":
        comparison = compare_to_paper(summary, load_paper_results(args.paper_results),
                                      models=args.paper_model)
    text = render(summary, comparison, args.format)
    from tpru.eval import report_html
    from tpru.files import check_output_file, write_text_atomic

    # Every output is checked before any is written: never a run's own files, never a
    # file tpru did not write (each format is known by how tpru begins it), charts only
    # into a new or empty folder or one an earlier report drew into.
    inputs = [f for run in runs for f in run.files]
    inputs += [Path(args.paper_results)] if args.paper_results else []
    if args.html:
        check_output_file(Path(args.html), kind="report page", inputs=inputs, option="--html",
                          signature=report_html.SIGNATURE)
    if args.plots:
        from tpru.eval.plots import check_plots_folder

        check_plots_folder(Path(args.plots), inputs=inputs)
    if args.out:
        out = Path(args.out)
        signature = {"md": "# Evaluation report", "csv": "run,model,benchmark,",
                     "json": '"tpru_version"'}[args.format]
        check_output_file(out, kind=f"report table ({args.format})", signature=signature,
                          inputs=inputs)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)
        log.info("report: wrote %s", out)
    else:
        sys.stdout.write(text)
    charts = None
    if args.plots:
        from tpru.eval.plots import write_plots

        charts = write_plots(summary, Path(args.plots), comparison)
        for path in charts:
            log.info("report: wrote %s", path)
    if args.html:
        # Charts already drawn into --plots are linked (or inlined), not drawn twice.
        report_html.write_html_report(runs, summary, Path(args.html), comparison=comparison,
                          embed=args.embed, charts=charts, max_failures=args.max_failures)
    return 0


COMMAND = Command(help=HELP, description=DESCRIPTION, epilog=EPILOG, add_arguments=add_arguments,
                  run=report_command)
