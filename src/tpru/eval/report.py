"""Accuracy summaries of evaluation runs: what ``tpru report`` computes.

A run folder (written by the runner) holds ``run.json`` (the model, backend,
benchmark, prompt, seed, counts: `tpru.records.RunRecord`) and
``results.jsonl``, one scored item per line (`tpru.records.ResultLine`),
appended as the run goes. A report reads only those two files, so it
works on a run that is still going or was cut off: a half-written last line
is ignored, and when an item appears more than once (an errored item retried
with ``--resume``) its last line wins.

`summarise` gives, for every run, the accuracy overall and by task, category,
scenario, positive vs negative samples, (MuirBench) answerable vs
unanswerable items, number of frames and difficulty bucket (overall and per
task), plus the share of twin pairs where both are right, overall and by task
(`tpru.eval.twins`), and the run's chance and always-None levels
(`tpru.eval.baselines`). Every accuracy is in percent with a seeded bootstrap
interval; an item whose backend failed counts as wrong and is counted under
``errors``. Each run says which split it scored (``run.json``; None where
the run.json predates that record; see `tpru.eval.report_splits`).

Example:
    >>> runs = [load_run("runs/qwen7b-tpru-test")]          # doctest: +SKIP
    >>> summary = summarise(runs, bootstrap=1000, seed=0)   # doctest: +SKIP
    >>> summary.runs[0].overall.accuracy                    # doctest: +SKIP
    70.0
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tpru.diagnostics import InputError
from tpru.eval.baselines import baselines
from tpru.eval.config import CONFIG_FILE
from tpru.eval.report_lengths import LENGTH_BREAKDOWNS, group_key, length_groups
from tpru.eval.twins import pair_groups, pairs
from tpru.records import ResultLine, RunRecord

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"

BREAKDOWNS = ("task", "category", "scenario", "negative", "answerable", "pairs",
              "pairs_by_task", *LENGTH_BREAKDOWNS)
"""Ways a run's items are grouped, in report order.

``negative`` groups items into "positive" and "negative" samples,
``answerable`` into "answerable" and "unanswerable" (MuirBench twins),
``pairs`` has one group, "both twins right", over twin pairs (MuirBench's
answerable/unanswerable, a tpru dataset's positive/negative), and
``pairs_by_task`` the same pairs by task. ``frames`` and ``difficulty`` (and the
same per task) group items by sequence length and difficulty bucket
(`tpru.eval.report_lengths`).
"""


@dataclass(frozen=True)
class Run:
    """A run folder as read: its ``run.json`` and its latest result per item."""

    path: Path
    info: RunRecord
    results: tuple[ResultLine, ...]
    replaced: int = 0
    """Lines superseded by a later line for the same item (retries on ``--resume``)."""
    truncated: bool = False
    """The last line of ``results.jsonl`` was half-written and was ignored."""

    @property
    def files(self) -> tuple[Path, ...]:
        """The run's own files, ``run.json``, ``results.jsonl`` and ``eval.yaml`` (the
        report reads the first two): never to be written over by a report."""
        return self.path / RUN_FILE, self.path / RESULTS_FILE, self.path / CONFIG_FILE

    @property
    def backend(self) -> str:
        """The backend spec the run used (``hf:...``, ``openai:...``, ``random``)."""
        return self.info.backend or ""

    @property
    def model(self) -> str:
        """The model's name, from ``run.json`` or else the backend spec."""
        return self.info.model or self.backend or self.path.name

    @property
    def benchmark(self) -> str:
        """The benchmark's name, from ``run.json`` or else the results."""
        if self.info.benchmark:
            return self.info.benchmark
        counts = Counter(r.benchmark for r in self.results if r.benchmark)
        return counts.most_common(1)[0][0] if counts else ""

    @property
    def split(self) -> str | None:
        """The split the run scored (a name, or ``all``); None where run.json does not
        say (written before tpru recorded it): unknown, not "every split"."""
        return self.info.split or None

    def image_path(self, image: str) -> Path:
        """Where an item's image file is: absolute as is; relative to the run folder
        if it exists there, else to the working folder (where the runner ran)."""
        path = Path(image)
        if path.is_absolute():
            return path
        beside = self.path / path
        return beside if beside.exists() or not path.exists() else path


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run folder (or its ``run.json`` / ``results.jsonl``).

    Raises:
        InputError: the folder or a file is missing, run.json is not a run
            record, a line other than the last is not a valid result, or a
            file is from a newer tpru; the message names the file and line.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    run_file, results_file = folder / RUN_FILE, folder / RESULTS_FILE
    if not results_file.is_file() or not run_file.is_file():
        missing = run_file if not run_file.is_file() else results_file
        raise InputError(f"{missing}: no such file (is {folder} a run folder written by "
                         "tpru eval?)")
    info = RunRecord.load(run_file)
    latest: dict[str, ResultLine] = {}
    lines = results_file.read_text(encoding="utf-8", errors="replace").split("\n")
    truncated = replaced = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # no newline after it: still being written
                log.warning("%s, line %d: half-written last line ignored", results_file, number)
                truncated = 1
                continue
            raise InputError(f"{results_file}, line {number}: not valid JSON ({err})") from None
        result = ResultLine.from_dict(data, f"{results_file}, line {number}")
        replaced += result.id in latest
        latest[result.id] = result  # a retried item keeps its place in the benchmark's order
    if not latest:
        raise InputError(f"{results_file}: no results yet")
    return Run(folder, info, tuple(latest.values()), replaced, bool(truncated))


@dataclass(frozen=True)
class Accuracy:
    """Accuracy of a group of items, in percent, with its bootstrap interval."""

    n: int
    correct: int
    errors: int
    low: float | None = None
    high: float | None = None

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.n


@dataclass(frozen=True)
class RunReport:
    """The accuracies of one run: overall and by every breakdown it has."""

    label: str
    model: str
    backend: str
    benchmark: str
    path: str
    overall: Accuracy
    groups: Mapping[str, Mapping[str, Accuracy]]
    """breakdown (see `BREAKDOWNS`) -> group name -> accuracy; breakdowns with no
    value on any item are left out."""
    rules: Mapping[str, int]
    """How many predictions each extraction rule found."""
    unpaired: int = 0
    """Items naming a counterpart that is not in the run (left out of ``pairs``)."""
    replaced: int = 0
    truncated: bool = False
    split: str | None = None
    """The split scored; None where the run does not say (unknown)."""
    chance: float | None = None
    """Accuracy of a uniform random answer, in percent (`tpru.eval.baselines`)."""
    always_none: float | None = None
    """Accuracy of always answering the None option, in percent; None where no item
    offers it or the results cannot say."""


@dataclass(frozen=True)
class Summary:
    """Summaries of several runs, and how their intervals were drawn."""

    runs: tuple[RunReport, ...]
    bootstrap: int
    seed: int
    confidence: float


def bootstrap_intervals(correct: Sequence[int], n: Sequence[int], *, resamples: int,
                        rng: np.random.Generator,
                        confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals (in percent) of several accuracies at once.

    A resample of n right/wrong outcomes, k of them right, has Binomial(n, k/n)
    right ones, so the resampled counts are drawn directly: the same
    distribution as resampling items, for every group in one numpy call.

    Returns:
        (low, high): arrays aligned with `correct` and `n`.
    """
    k = np.asarray(correct, dtype=np.int64)
    size = np.asarray(n, dtype=np.int64)
    if resamples < 1 or k.size == 0:
        raise ValueError("bootstrap needs at least one resample and one group")
    draws = rng.binomial(size[:, None], (k / size)[:, None], size=(k.size, resamples))
    tail = (1.0 - confidence) / 2.0
    # inverted_cdf: the bounds are accuracies a resample can reach, not interpolations.
    low, high = np.quantile(100.0 * draws / size[:, None], [tail, 1.0 - tail], axis=1,
                            method="inverted_cdf")
    return low, high


def summarise(runs: Iterable[Run], *, bootstrap: int = 1000, seed: int = 0,
              confidence: float = 0.95) -> Summary:
    """Accuracy of each run overall and by group, with bootstrap intervals.

    Args:
        runs: runs from `load_run`.
        bootstrap: resamples per interval; 0 leaves the intervals out.
        seed: seed of the resampling; each run draws from its own generator
            seeded with it, so a run's intervals do not depend on the others.
        confidence: the intervals' coverage.
    """
    runs = list(runs)
    labels = _labels(runs)
    summaries = tuple(_summarise_run(run, label, bootstrap, np.random.default_rng(seed),
                                     confidence) for run, label in zip(runs, labels, strict=True))
    return Summary(summaries, bootstrap, seed, confidence)


def _labels(runs: Sequence[Run]) -> list[str]:
    """The model names, made unique: with the run folder's name where two runs share model
    and benchmark, then with ``#1``, ``#2``, ... where labels still repeat."""
    counts = Counter((run.model, run.benchmark) for run in runs)
    labels = [run.model if counts[(run.model, run.benchmark)] == 1 else
              f"{run.model} ({run.path.name})" for run in runs]
    # Still shared (same model on other benchmarks): numbered 1, 2, ... in command-line order.
    totals, seen = Counter(labels), Counter[str]()
    numbered = []
    for label in labels:
        seen[label] += 1
        numbered.append(f"{label} #{seen[label]}" if totals[label] > 1 else label)
    return numbered


def _summarise_run(run: Run, label: str, bootstrap: int, rng: np.random.Generator,
                   confidence: float) -> RunReport:
    members: dict[tuple[str, str], list[ResultLine]] = {("overall", "overall"): list(run.results)}
    scored = any(result.difficulty is not None for result in run.results)
    for result in run.results:
        for breakdown, group in [*_groups_of(result), *length_groups(result, scored=scored)]:
            members.setdefault((breakdown, group), []).append(result)
    found, unpaired = pairs(run.results)
    keys = list(members)
    correct = [sum(r.correct for r in members[key]) for key in keys]
    sizes = [len(members[key]) for key in keys]
    errors = [sum(r.error is not None for r in members[key]) for key in keys]
    for key, twins in pair_groups(found).items():  # after the items: their draws unchanged
        keys.append(key)
        correct.append(sum(a.correct and b.correct for a, b in twins))
        sizes.append(len(twins))
        errors.append(sum(a.error is not None or b.error is not None for a, b in twins))
    lows: list[float | None] = [None] * len(keys)
    highs: list[float | None] = [None] * len(keys)
    if bootstrap > 0:
        low, high = bootstrap_intervals(correct, sizes, resamples=bootstrap, rng=rng,
                                        confidence=confidence)
        lows, highs = [float(x) for x in low], [float(x) for x in high]
    cells = {key: Accuracy(s, c, e, lo, hi)
             for key, s, c, e, lo, hi in zip(keys, sizes, correct, errors, lows, highs,
                                             strict=True)}
    groups: dict[str, dict[str, Accuracy]] = {}
    for breakdown in BREAKDOWNS:
        named = sorted(((g, cell) for (b, g), cell in cells.items() if b == breakdown),
                       key=lambda named_cell: group_key(breakdown, named_cell[0]))
        if named:
            groups[breakdown] = dict(named)
    levels = baselines(run.results)
    return RunReport(
        label=label, model=run.model, backend=run.backend, benchmark=run.benchmark,
        path=str(run.path), overall=cells[("overall", "overall")], groups=groups,
        rules=dict(sorted(Counter(r.rule for r in run.results).items())), unpaired=unpaired,
        replaced=run.replaced, truncated=run.truncated, split=run.split,
        chance=levels.chance, always_none=levels.always_none)


def _groups_of(result: ResultLine) -> list[tuple[str, str]]:
    """The (breakdown, group) cells one item counts in (besides overall and pairs)."""
    cells = [(name, value) for name, value in (("task", result.task),
                                                ("category", result.category),
                                                ("scenario", result.scenario)) if value]
    if result.negative is not None:
        cells.append(("negative", "negative" if result.negative else "positive"))
    if result.answerable is not None:
        cells.append(("answerable", "answerable" if result.answerable else "unanswerable"))
    return cells
