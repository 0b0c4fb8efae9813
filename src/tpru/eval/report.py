"""Accuracy summaries of evaluation runs: what ``tpru report`` computes.

A run folder (written by the runner) holds ``run.json`` (the model, backend,
benchmark, prompt, seed, counts) and ``results.jsonl``, one scored item per
line, appended as the run goes. A report reads only those two files, so it
works on a run that is still going or was cut off: a half-written last line
is ignored, and when an item appears more than once (an errored item retried
with ``--resume``) its last line wins.

`summarise` gives, for every run, the accuracy overall and by task, category,
scenario, positive vs negative samples and (MuirBench) answerable vs
unanswerable items, plus the share of twin pairs where both are right, overall
and by task (`tpru.eval.twins`), and the run's chance and always-None levels
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpru.diagnostics import InputError
from tpru.eval.baselines import baselines
from tpru.eval.twins import pair_groups, pairs

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"

BREAKDOWNS = ("task", "category", "scenario", "negative", "answerable", "pairs",
              "pairs_by_task")
"""Ways a run's items are grouped, in report order.

``negative`` groups items into "positive" and "negative" samples,
``answerable`` into "answerable" and "unanswerable" (MuirBench twins),
``pairs`` has one group, "both twins right", over twin pairs (MuirBench's
answerable/unanswerable, a tpru dataset's positive/negative), and
``pairs_by_task`` the same pairs by task.
"""


@dataclass(frozen=True)
class Result:
    """One scored item: a line of ``results.jsonl`` (fields as the runner writes them)."""

    id: str
    correct: bool
    answer: str
    benchmark: str = ""
    task: str = ""
    category: str | None = None
    scenario: str | None = None
    negative: bool | None = None
    answerable: bool | None = None
    counterpart: str | None = None
    prediction: str | None = None
    rule: str = "none"
    response: str = ""
    error: str | None = None
    question: str = ""
    options: tuple[str, ...] | None = None
    images: tuple[str, ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Result:
        """Read one decoded line; `where` ("FILE, line N") prefixes any error."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}")

        def get(key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
            value = data.get(key)
            if value is None:
                if default is _REQUIRED:
                    raise InputError(f"{where}: field '{key}' is missing")
                return default
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                kinds = kind if isinstance(kind, tuple) else (kind,)
                raise InputError(f"{where}: field '{key}': expected "
                                 f"{' or '.join(k.__name__ for k in kinds)}, "
                                 f"got {type(value).__name__}")
            return value

        options = get("options", list)
        images = get("images", list, [])
        if any(not isinstance(x, str) for x in [*(options or []), *images]):
            raise InputError(f"{where}: fields 'options' and 'images' must list strings")
        item_id = get("id", (str, int), _REQUIRED)
        counterpart = get("counterpart", (str, int))
        return cls(
            id=str(item_id), correct=get("correct", bool, _REQUIRED),
            answer=str(get("answer", (str, int), _REQUIRED)),
            benchmark=get("benchmark", str, ""), task=get("task", str, ""),
            category=get("category", str), scenario=get("scenario", str),
            negative=get("negative", bool), answerable=get("answerable", bool),
            counterpart=None if counterpart is None else str(counterpart),
            prediction=get("prediction", str), rule=get("rule", str, "none"),
            response=get("response", str, ""), error=get("error", str),
            question=get("question", str, ""),
            options=None if options is None else tuple(options), images=tuple(images),
            usage=get("usage", dict, {}))


_REQUIRED = object()


@dataclass(frozen=True)
class Run:
    """A run folder as read: its ``run.json`` and its latest result per item."""

    path: Path
    info: Mapping[str, Any]
    results: tuple[Result, ...]
    replaced: int = 0
    """Lines superseded by a later line for the same item (retries on ``--resume``)."""
    truncated: bool = False
    """The last line of ``results.jsonl`` was half-written and was ignored."""

    @property
    def files(self) -> tuple[Path, Path]:
        """The run's own files, ``run.json`` and ``results.jsonl``: inputs of a report,
        never to be written over by one."""
        return self.path / RUN_FILE, self.path / RESULTS_FILE

    @property
    def backend(self) -> str:
        """The backend spec the run used (``hf:...``, ``openai:...``, ``random``)."""
        return _text(self.info, "backend", "backend_spec", "spec")

    @property
    def model(self) -> str:
        """The model's name, from ``run.json`` or else the backend spec."""
        return _text(self.info, "model", "model_name") or self.backend or self.path.name

    @property
    def benchmark(self) -> str:
        """The benchmark's name, from ``run.json`` or else the results."""
        named = _text(self.info, "benchmark", "benchmark_name")
        if named:
            return named
        counts = Counter(r.benchmark for r in self.results if r.benchmark)
        return counts.most_common(1)[0][0] if counts else ""

    @property
    def split(self) -> str | None:
        """The split the run scored (a name, or ``all``); None where run.json does not
        say (written before tpru recorded it): unknown, not "every split"."""
        value = self.info.get("split")
        return value if isinstance(value, str) and value else None

    def image_path(self, image: str) -> Path:
        """Where an item's image file is: absolute as is; relative to the run folder
        if it exists there, else to the working folder (where the runner ran)."""
        path = Path(image)
        if path.is_absolute():
            return path
        beside = self.path / path
        return beside if beside.exists() or not path.exists() else path


def _text(info: Mapping[str, Any], *keys: str) -> str:
    """The first of `keys` in `info` that holds text (or a mapping with a ``name``)."""
    for key in keys:
        value = info.get(key)
        if isinstance(value, Mapping):
            value = value.get("name") or value.get("spec")
        if isinstance(value, str) and value:
            return value
    return ""


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run folder (or its ``run.json`` / ``results.jsonl``).

    Raises:
        InputError: the folder or a file is missing, or a line other than the
            last is not a valid result; the message names the file and line.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    run_file, results_file = folder / RUN_FILE, folder / RESULTS_FILE
    if not results_file.is_file() or not run_file.is_file():
        missing = run_file if not run_file.is_file() else results_file
        raise InputError(f"{missing}: no such file (is {folder} a run folder written by "
                         "tpru eval?)")
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{run_file}: not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise InputError(f"{run_file}: expected a JSON object")
    latest: dict[str, Result] = {}
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
        result = Result.from_dict(data, f"{results_file}, line {number}")
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
    members: dict[tuple[str, str], list[Result]] = {("overall", "overall"): list(run.results)}
    for result in run.results:
        for breakdown, group in _groups_of(result):
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
        named = sorted((g, cell) for (b, g), cell in cells.items() if b == breakdown)
        if named:
            groups[breakdown] = dict(named)
    levels = baselines(run.results)
    return RunReport(
        label=label, model=run.model, backend=run.backend, benchmark=run.benchmark,
        path=str(run.path), overall=cells[("overall", "overall")], groups=groups,
        rules=dict(sorted(Counter(r.rule for r in run.results).items())), unpaired=unpaired,
        replaced=run.replaced, truncated=run.truncated, split=run.split,
        chance=levels.chance, always_none=levels.always_none)


def _groups_of(result: Result) -> list[tuple[str, str]]:
    """The (breakdown, group) cells one item counts in (besides overall and pairs)."""
    cells = [(name, value) for name, value in (("task", result.task),
                                                ("category", result.category),
                                                ("scenario", result.scenario)) if value]
    if result.negative is not None:
        cells.append(("negative", "negative" if result.negative else "positive"))
    if result.answerable is not None:
        cells.append(("answerable", "answerable" if result.answerable else "unanswerable"))
    return cells
