"""The TPRU paper's published accuracies, matched to runs for ``tpru report --compare paper``.

The numbers live in package data (``paper_results.yaml``: one table per
benchmark, a row of accuracies in percent per model, the source named), not
in code. A run is matched to a benchmark by name (TPRU-Test, MuirBench,
LEGO-Puzzles; case and punctuation ignored), to a published model by
``--paper-model`` or by its own model name, and its groups (MuirBench tasks,
LEGO-Puzzles categories) to the paper's columns by name.

Example:
    >>> comparison = compare_to_paper(summarise([load_run("runs/qwen7b")]))  # doctest: +SKIP
    >>> [(r.group, r.paper, r.difference) for r in comparison.rows]       # doctest: +SKIP
    [('overall', 50.33, 1.2)]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tpru.diagnostics import InputError
from tpru.eval.report import Accuracy, RunReport, Summary

log = logging.getLogger(__name__)

PAPER_RESULTS = "paper_results.yaml"
"""Package data: the TPRU paper's published accuracies, with their source."""


@dataclass(frozen=True)
class PaperBenchmark:
    """One benchmark's published table: a row of accuracies (%) per model."""

    name: str
    title: str
    breakdown: str | None
    """The result field the columns are groups of ("task", "category"), or None."""
    columns: tuple[str, ...]
    """Group names in the paper's order, then "overall"."""
    rows: Mapping[str, tuple[float, ...]]
    aliases: tuple[str, ...] = ()
    group_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def column(self, group: str) -> str | None:
        """The paper's column for one of our group names (spelling-tolerant), or None."""
        wanted = _key(group)
        for column in self.columns:
            if wanted in {_key(c) for c in (column, *self.group_aliases.get(column, ()))}:
                return column
        return None

    def value(self, model: str, column: str) -> float:
        return self.rows[model][self.columns.index(column)]


@dataclass(frozen=True)
class PaperResults:
    """The published numbers of every benchmark, and where they come from."""

    source: str
    benchmarks: Mapping[str, PaperBenchmark]

    def benchmark(self, name: str) -> PaperBenchmark | None:
        """The benchmark called `name` (or one of its aliases), ignoring case and punctuation."""
        wanted = _key(name)
        for bench in self.benchmarks.values():
            if wanted in {_key(n) for n in (bench.name, bench.title, *bench.aliases)}:
                return bench
        return None


def load_paper_results(path: str | os.PathLike[str] | None = None) -> PaperResults:
    """Read the published numbers (default: the copy shipped with tpru).

    Raises:
        InputError: a file that cannot be read, is not UTF-8 or YAML, or is not a
            table of published results; the message names the file.
    """
    import importlib.resources

    import yaml

    where = str(path) if path is not None else f"tpru/eval/{PAPER_RESULTS}"
    try:
        if path is None:
            text = importlib.resources.files("tpru.eval").joinpath(PAPER_RESULTS).read_text(
                "utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as err:
        raise InputError(f"{where}: cannot read the published results "
                         f"({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a UTF-8 text file") from None
    except yaml.YAMLError as err:
        raise InputError(f"{where}: not valid YAML ({_one_line(err)})") from None
    benchmarks = _benchmarks(data, where)
    for bench in benchmarks.values():
        for model, row in bench.rows.items():
            if len(row) != len(bench.columns):
                raise InputError(f"{where}: {bench.name}, {model}: {len(row)} numbers for "
                                 f"{len(bench.columns)} columns")
    return PaperResults(str(data["source"]), benchmarks)


def _benchmarks(data: object, where: str) -> dict[str, PaperBenchmark]:
    """The tables of a published-results file's parsed YAML, or an error saying what is wrong.

    The expected shape (see ``paper_results.yaml``)::

        source: <where the numbers come from>
        benchmarks:
          <name>: {columns: [...], rows: {<model>: [numbers, one per column]}, ...}
    """
    expected = ("expected 'source' and 'benchmarks', each benchmark with 'columns' and "
                "'rows', as in tpru's paper_results.yaml")
    if not isinstance(data, dict) or "source" not in data or \
            not isinstance(data.get("benchmarks"), dict):
        raise InputError(f"{where}: not a table of published results ({expected})")
    benchmarks = {}
    for name, b in data["benchmarks"].items():
        try:
            if not isinstance(b, dict) or not isinstance(b.get("rows"), dict):
                raise TypeError(expected)
            benchmarks[name] = PaperBenchmark(
                name=name, title=str(b.get("title", name)), breakdown=b.get("breakdown"),
                columns=tuple(str(c) for c in b["columns"]),
                rows={str(model): tuple(float(x) for x in row)
                      for model, row in b["rows"].items()},
                aliases=tuple(b.get("aliases", ())),
                group_aliases={k: tuple(v) for k, v in (b.get("group_aliases") or {}).items()})
        except KeyError as err:
            raise InputError(f"{where}: benchmark {name!r}: missing {err}") from None
        except (TypeError, AttributeError, ValueError) as err:
            raise InputError(f"{where}: benchmark {name!r}: not a table of published results "
                             f"({err})") from None
    return benchmarks


def _one_line(err: Exception) -> str:
    """A YAML error on one line: its problem and where ("line 2, column 1")."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem}, line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _key(name: str) -> str:
    """`name` lowercased with only letters and digits: "Qwen2.5-VL-7B" -> "qwen25vl7b"."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def match_model(name: str, candidates: Iterable[str]) -> str | None:
    """The published model that `name` (a hub id, a path, a display name) names.

    A candidate matches when its key (see `_key`) occurs in `name`'s key and
    the match starts and ends at word boundaries of `name` ("Qwen2.5-VL-7B"
    is found in "Qwen/Qwen2.5-VL-7B-Instruct", not in "Qwen2.5-VL-72B"); the
    longest match wins ("GPT-4o-mini" over "GPT-4o"), and a tie matches nothing.

    Example:
        >>> match_model("Qwen/Qwen2.5-VL-7B-Instruct", ["Qwen2.5-VL-7B", "Qwen2.5-VL-72B"])
        'Qwen2.5-VL-7B'
    """
    kept = [index for index, ch in enumerate(name) if ch.isalnum()]
    text = _key(name)

    def at_boundaries(start: int, end: int) -> bool:
        first, last = kept[start], kept[end - 1]
        return (first == 0 or not name[first - 1].isalnum()) and (
            last == len(name) - 1 or not name[last + 1].isalnum())

    found: list[tuple[int, str]] = []
    for candidate in candidates:
        key = _key(candidate)
        start = text.find(key) if key else -1
        while start >= 0:
            if at_boundaries(start, start + len(key)):
                found.append((len(key), candidate))
                break
            start = text.find(key, start + 1)
    found.sort(reverse=True)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None
    return found[0][1]


@dataclass(frozen=True)
class PaperRow:
    """One published number beside ours (``ours`` is None where the run lacks the group)."""

    run: str
    benchmark: str
    paper_model: str
    breakdown: str
    """"overall", or the benchmark's breakdown ("task", "category")."""
    group: str
    """The paper's name of the group ("overall" for the overall figure)."""
    ours: Accuracy | None
    paper: float
    run_group: str | None = None
    """The run's own name of the group (None where the run lacks it)."""

    @property
    def difference(self) -> float | None:
        """Ours minus the paper's, in percentage points."""
        return None if self.ours is None else self.ours.accuracy - self.paper


@dataclass(frozen=True)
class Comparison:
    """Published numbers matched to the runs, and why some runs have none."""

    source: str
    rows: tuple[PaperRow, ...]
    notes: tuple[str, ...]


def compare_to_paper(summary: Summary, paper: PaperResults | None = None, *,
                     models: Sequence[str] = ()) -> Comparison:
    """Match every run to the paper's benchmark and model and pair up the numbers.

    Args:
        summary: from `summarise`.
        paper: published numbers (default: `load_paper_results()`).
        models: published model names (``--paper-model``): none (match each run
            by its model's name), one for every run, or one per run.
    """
    paper = paper or load_paper_results()
    if len(models) not in (0, 1, len(summary.runs)):
        raise InputError(f"--paper-model given {len(models)} times for {len(summary.runs)} "
                         "runs: give it once, or once per run")
    rows: list[PaperRow] = []
    notes: list[str] = []
    for index, run in enumerate(summary.runs):
        bench = paper.benchmark(run.benchmark)
        if bench is None:
            notes.append(f"{run.label}: the paper has no numbers for benchmark "
                         f"'{run.benchmark}' (it has {', '.join(paper.benchmarks)})")
            continue
        asked = models[0] if len(models) == 1 else models[index] if models else None
        model = match_model(asked or run.model, bench.rows)
        if model is None:
            what = f"--paper-model '{asked}'" if asked else f"model '{run.model}'"
            notes.append(f"{run.label}: {what} matches none of the paper's {bench.title} "
                         f"models ({', '.join(bench.rows)}); name one with --paper-model")
            continue
        breakdown = _breakdown_of(run, bench)
        ours, clashes = _groups_by_column(run.groups.get(breakdown, {}), bench)
        notes.extend(f"{run.label}: {breakdown}s {', '.join(groups)} all match the paper's "
                     f"{bench.title} column '{column}'; not compared (one group per column)"
                     for column, groups in clashes.items())
        ours["overall"] = ("overall", run.overall)
        for column in bench.columns:
            group, cell = ours.get(column, (None, None))
            rows.append(PaperRow(
                run.label, bench.title, model, "overall" if column == "overall" else breakdown,
                column, cell, bench.value(model, column), group))
    for note in notes:
        log.warning("compare: %s", note)
    return Comparison(paper.source, tuple(rows), tuple(notes))


def _groups_by_column(groups: Mapping[str, Accuracy], bench: PaperBenchmark
                      ) -> tuple[dict[str | None, tuple[str, Accuracy]], dict[str, list[str]]]:
    """The run's group for each paper column, and the columns several groups match.

    Two groups on one column (a run from a loader that kept LEGO-Puzzles'
    ``10_rotate_1`` and ``11_rotate_2`` apart, under aliases for Rotation)
    would show one half's accuracy as the whole's, so such a column is left
    out and named instead.
    """
    matched: dict[str | None, list[tuple[str, Accuracy]]] = {}
    for group, cell in groups.items():
        matched.setdefault(bench.column(group), []).append((group, cell))
    ours = {column: found[0] for column, found in matched.items()
            if column is None or len(found) == 1}
    clashes = {column: [g for g, _ in found] for column, found in matched.items()
               if column is not None and len(found) > 1}
    return ours, clashes


def _breakdown_of(run: RunReport, bench: PaperBenchmark) -> str:
    """The run's breakdown whose groups are the paper's columns.

    Loaders differ in where a benchmark's groups go (LEGO-Puzzles' categories
    may be an item's ``task`` or its ``category``), so the run's task and
    category breakdowns are both tried: the one naming more of the paper's
    columns wins, the paper's own breakdown on a tie.
    """
    if bench.breakdown is None:
        return "overall"
    choices = [bench.breakdown, *(b for b in ("task", "category") if b != bench.breakdown)]
    return max(choices, key=lambda b: sum(bench.column(g) is not None
                                          for g in run.groups.get(b, {})))
