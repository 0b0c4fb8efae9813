"""A summary as text: markdown tables, CSV and JSON (``tpru report --format``).

All three carry the same numbers. Markdown is for a person (one table per
breakdown, intervals in brackets); CSV is one long table, one row per run and
group, with the published number and the difference beside ours when
compared; JSON is the whole summary, nested, with the comparison and its
source. Accuracies are in percent everywhere. Every form names the split each
run scored (``unknown`` for a run.json that predates that record), and the
markdown and JSON say where runs of one benchmark scored different splits.

Example:
    >>> text = render(summarise([load_run("runs/a")]), None, "md")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tpru import __version__
from tpru.eval.report import BREAKDOWNS, Accuracy, RunReport, Summary
from tpru.eval.report_lengths import split_group
from tpru.eval.report_paper import Comparison
from tpru.eval.report_splits import mixed_splits, split_name

FORMATS = ("md", "csv", "json")

CSV_COLUMNS = ("run", "model", "benchmark", "split", "breakdown", "group", "n", "correct",
               "accuracy", "ci_low", "ci_high", "errors", "paper_model", "paper", "difference")
"""Columns of the CSV form, in order."""

_TITLES = {"task": "By task", "category": "By category", "scenario": "By scenario",
           "negative": "Positive and negative samples",
           "answerable": "Answerable and unanswerable items (MuirBench)",
           "pairs": "Twin pairs where both items are right",
           "pairs_by_task": "Twin pairs where both items are right, by task",
           "frames": "By number of frames",
           "frames_by_task": "By number of frames, per task",
           "difficulty": "By difficulty (easy: score < 1/3, medium: < 2/3, hard: the rest)",
           "difficulty_by_task": "By difficulty, per task"}

_KEY_COLUMNS = {"negative": ("group",), "answerable": ("group",), "pairs": ("group",),
                "pairs_by_task": ("task",), "frames_by_task": ("task", "frames"),
                "difficulty_by_task": ("task", "difficulty")}
"""The columns naming a group, where they are not the breakdown's own name."""


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells, for markdown and HTML alike."""

    key: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


def render(summary: Summary, comparison: Comparison | None, fmt: str) -> str:
    """The summary in `fmt` ("md", "csv" or "json")."""
    if fmt == "md":
        return to_markdown(summary, comparison)
    if fmt == "csv":
        return to_csv(summary, comparison)
    if fmt == "json":
        return json.dumps(to_dict(summary, comparison), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _interval(cell: Accuracy) -> str:
    if cell.low is None or cell.high is None:
        return "n/a"
    return f"[{cell.low:.2f}, {cell.high:.2f}]"


def tables(summary: Summary, comparison: Comparison | None = None) -> list[Table]:
    """The report's tables: overall, one per breakdown present, rules, comparison."""
    level = f"{summary.confidence:.0%} CI"
    out = [Table("overall", "Overall",
                 ("run", "benchmark", "split", "n", "correct", "accuracy", level, "errors"),
                 tuple((r.label, r.benchmark, split_name(r.split), str(r.overall.n),
                        str(r.overall.correct), _pct(r.overall.accuracy), _interval(r.overall),
                        str(r.overall.errors))
                       for r in summary.runs),
                 tuple(f"Warning: {line}." for line in mixed_splits(summary.runs)))]
    for breakdown in BREAKDOWNS:
        rows = [(r.label, *split_group(breakdown, group), str(c.n), str(c.correct),
                 _pct(c.accuracy), _interval(c), str(c.errors))
                for r in summary.runs for group, c in r.groups.get(breakdown, {}).items()]
        if rows:
            names = _KEY_COLUMNS.get(breakdown, (breakdown,))
            out.append(Table(breakdown, _TITLES[breakdown],
                             ("run", *names, "n", "correct", "accuracy", level, "errors"),
                             tuple(rows)))
    out.append(Table("rules", "Answer extraction: which rule found the prediction",
                     ("run", "rule", "items"),
                     tuple((r.label, rule, str(count)) for r in summary.runs
                           for rule, count in r.rules.items())))
    if comparison is not None:
        out.append(Table(
            "paper", "Compared with the paper",
            ("run", "benchmark", "paper model", "group", "ours", "paper", "difference"),
            tuple((p.run, p.benchmark, p.paper_model, p.group,
                   _pct(None if p.ours is None else p.ours.accuracy), _pct(p.paper),
                   "n/a" if p.difference is None else f"{p.difference:+.2f}")
                  for p in comparison.rows),
            (f"Published numbers: {comparison.source}.", *comparison.notes)))
    return out


def _cell_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(summary: Summary, comparison: Comparison | None = None) -> str:
    """Markdown: a heading and a pipe table per `Table`, numbers right-aligned."""
    lines = ["# Evaluation report", "",
             f"{len(summary.runs)} run(s). Accuracy in %, with {summary.confidence:.0%} "
             f"bootstrap intervals ({summary.bootstrap} resamples, seed {summary.seed}). "
             "Items whose backend failed count as wrong; they are counted under errors.", ""]
    for run in summary.runs:
        extra = [f"split {split_name(run.split)}"]
        extra += [f"{name} {value:.2f}%" for name, value in (("chance", run.chance),
                                                              ("always None", run.always_none))
                  if value is not None]
        if run.replaced:
            extra.append(f"{run.replaced} earlier line(s) superseded by retries")
        if run.truncated:
            extra.append("half-written last line ignored")
        if run.unpaired:
            extra.append(f"{run.unpaired} item(s) whose twin is not in the run")
        lines.append(f"- {_cell_text(run.label)}: `{run.path}` ({run.backend or 'backend n/a'})"
                     + (f"; {'; '.join(extra)}" if extra else ""))
    for table in tables(summary, comparison):
        numeric = [all(_numeric(row[i]) for row in table.rows) and bool(table.rows)
                   for i in range(len(table.header))]
        lines += ["", f"## {table.title}", ""]
        lines.append("| " + " | ".join(_cell_text(h) for h in table.header) + " |")
        lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
        lines += ["| " + " | ".join(_cell_text(c) for c in row) + " |" for row in table.rows]
        if table.notes:
            lines += ["", *(f"- {note}" for note in table.notes)]
    return "\n".join(lines) + "\n"


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == "n/a"
    return True


def csv_rows(summary: Summary, comparison: Comparison | None = None) -> list[dict[str, Any]]:
    """One row per run and group ("overall" first), keyed by `CSV_COLUMNS`."""
    paper = {} if comparison is None else {
        (p.run, p.breakdown, p.run_group): p for p in comparison.rows if p.run_group}
    rows: list[dict[str, Any]] = []
    for run in summary.runs:
        groups: list[tuple[str, str, Accuracy]] = [("overall", "overall", run.overall)]
        groups += [(b, g, c) for b in BREAKDOWNS for g, c in run.groups.get(b, {}).items()]
        for breakdown, group, cell in groups:
            match = paper.get((run.label, breakdown, group))
            rows.append({
                "run": run.label, "model": run.model, "benchmark": run.benchmark,
                "split": split_name(run.split), "breakdown": breakdown, "group": group,
                "n": cell.n, "correct": cell.correct,
                "accuracy": round(cell.accuracy, 4), "ci_low": _round(cell.low),
                "ci_high": _round(cell.high), "errors": cell.errors,
                "paper_model": match.paper_model if match else None,
                "paper": match.paper if match else None,
                "difference": _round(match.difference) if match else None})
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def to_csv(summary: Summary, comparison: Comparison | None = None) -> str:
    """CSV with a header row; empty cells where a value does not apply."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(summary, comparison):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _cell_dict(cell: Accuracy) -> dict[str, Any]:
    return {"n": cell.n, "correct": cell.correct, "errors": cell.errors,
            "accuracy": cell.accuracy, "ci_low": cell.low, "ci_high": cell.high}


def _run_dict(run: RunReport) -> dict[str, Any]:
    groups: Mapping[str, Mapping[str, Accuracy]] = run.groups
    return {"label": run.label, "model": run.model, "backend": run.backend,
            "benchmark": run.benchmark, "split": run.split, "path": run.path,
            "chance": run.chance, "always_none": run.always_none,
            "overall": _cell_dict(run.overall),
            "groups": {b: {g: _cell_dict(c) for g, c in cells.items()}
                       for b, cells in groups.items()},
            "rules": dict(run.rules), "unpaired": run.unpaired, "replaced": run.replaced,
            "truncated": run.truncated}


def to_dict(summary: Summary, comparison: Comparison | None = None) -> dict[str, Any]:
    """The whole summary as JSON-ready data (what ``--format json`` prints)."""
    data: dict[str, Any] = {
        "tpru_version": __version__, "unit": "percent", "bootstrap": summary.bootstrap,
        "seed": summary.seed, "confidence": summary.confidence,
        "mixed_splits": mixed_splits(summary.runs),
        "runs": [_run_dict(run) for run in summary.runs], "comparison": None}
    if comparison is not None:
        data["comparison"] = {
            "source": comparison.source, "notes": list(comparison.notes),
            "rows": [{"run": p.run, "benchmark": p.benchmark, "paper_model": p.paper_model,
                      "breakdown": p.breakdown, "group": p.group, "run_group": p.run_group,
                      "ours": None if p.ours is None else p.ours.accuracy, "paper": p.paper,
                      "difference": p.difference} for p in comparison.rows]}
    return data
