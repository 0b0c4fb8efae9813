"""Counts that describe a built dataset: what ``tpru stats`` prints.

`compute_stats` streams every split once and returns a plain, JSON-ready dict
(``tpru stats --json`` prints it as is); `render_stats` turns that dict into
rich tables for a person. The same block of counts is given for the whole
dataset and, under ``by_split``, for each split, so a skew in one split (all
negatives in test, answer "A" too often in train) is visible at a glance.

Example:
    >>> from rich.console import Console
    >>> stats = compute_stats(Dataset.open("out/demo"))      # doctest: +SKIP
    >>> Console().print(render_stats(stats))                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table

from tpru.dataset import Dataset
from tpru.schema import TASKS, Sample

log = logging.getLogger(__name__)

UNKNOWN_KIND = "unknown"
"""Negative kind counted for a negative sample whose meta names none."""


class _Tally:
    """Running counts over a stream of samples; holds no sample."""

    def __init__(self) -> None:
        self.samples = 0
        self.tasks: Counter[str] = Counter()
        self.scenarios: Counter[str] = Counter()
        self.negative: Counter[str] = Counter()
        self.negative_kinds: Counter[str] = Counter()
        self.ordering_forms: Counter[str] = Counter()
        self.answer_letters: dict[str, Counter[str]] = {}
        self.images_min: int | None = None
        self.images_max: int | None = None
        self.images_sum = 0
        self.model_text: Counter[str] = Counter()

    def add(self, sample: Sample) -> None:
        self.samples += 1
        self.tasks[sample.task] += 1
        self.scenarios[sample.scenario] += 1
        self.negative["negative" if sample.negative else "positive"] += 1
        if sample.negative:
            self.negative_kinds[str(sample.meta.get("negative_kind") or UNKNOWN_KIND)] += 1
        if sample.task == "ordering":
            self.ordering_forms["letters" if sample.options is None else "options"] += 1
        if sample.options is not None:
            self.answer_letters.setdefault(sample.task, Counter())[sample.answer] += 1
        # What the build's model stages wrote into this sample (tpru.builder.model_stages).
        if sample.meta.get("negative_source") == "model":
            self.model_text["negative description"] += 1
        if sample.meta.get("description_paraphrase") is not None:
            self.model_text["paraphrased description"] += 1
        if sample.meta.get("captions"):
            self.model_text["step captions"] += 1
        n_images = len(sample.images)
        self.images_sum += n_images
        self.images_min = n_images if self.images_min is None else min(self.images_min, n_images)
        self.images_max = n_images if self.images_max is None else max(self.images_max, n_images)

    def as_dict(self) -> dict[str, Any]:
        mean = round(self.images_sum / self.samples, 3) if self.samples else None
        return {
            "samples": self.samples,
            "tasks": _task_order(self.tasks),
            "scenarios": dict(sorted(self.scenarios.items())),
            "negative": {"positive": self.negative["positive"],
                         "negative": self.negative["negative"]},
            "negative_kinds": dict(sorted(self.negative_kinds.items())),
            "ordering_forms": {"options": self.ordering_forms["options"],
                               "letters": self.ordering_forms["letters"]},
            "answer_letters": {task: dict(sorted(letters.items()))
                               for task, letters in _task_order(self.answer_letters).items()},
            "images_per_sample": {"min": self.images_min, "mean": mean,
                                  "max": self.images_max},
            # Only for datasets built with model stages, so older outputs read the same.
            **({"model_text": dict(sorted(self.model_text.items()))}
               if self.model_text else {}),
        }


def _task_order(counts: dict[str, Any]) -> dict[str, Any]:
    """The paper's tasks first, in their order, then any other name sorted."""
    known = [t for t in TASKS if t in counts]
    others = sorted(t for t in counts if t not in TASKS)
    return {t: counts[t] for t in known + others}


def compute_stats(dataset: Dataset) -> dict[str, Any]:
    """Count the samples of every split of `dataset`, streaming each split once.

    Returns:
        A JSON-serialisable dict: ``dataset`` (its folder), ``schema_version``
        and ``seed`` (from ``build.json``), ``splits`` (samples per split, in
        build order), the counts of the whole dataset (``samples``, ``tasks``,
        ``scenarios``, ``negative``, ``negative_kinds``, ``ordering_forms``,
        ``answer_letters`` per task for multiple-choice samples,
        ``images_per_sample`` min/mean/max; ``model_text``, samples carrying
        text the build's model stages wrote, only when there are any), and
        ``by_split`` with the same counts per split.
    """
    info = dataset.info
    total = _Tally()
    per_split: dict[str, dict[str, Any]] = {}
    for split in dataset.splits:
        tally = _Tally()
        for sample in dataset.samples(split):
            tally.add(sample)
            total.add(sample)
        per_split[split] = tally.as_dict()
        log.debug("stats: %s has %d samples", split, tally.samples)
    return {
        "dataset": str(dataset.root),
        "schema_version": info.SCHEMA_VERSION,
        "seed": info.seed,
        "splits": {split: counts["samples"] for split, counts in per_split.items()},
        **total.as_dict(),
        "by_split": per_split,
    }


def render_stats(stats: dict[str, Any]) -> Group:
    """Rich tables of `stats` (as returned by `compute_stats`) for the terminal.

    One overview table (samples, negatives and images per split), one table
    per breakdown (task, scenario, negative kind, ordering form) with a column
    per split, and the answer-letter distribution per task with shares, where
    an uneven spread means a model could score by always picking one letter.
    """
    splits: dict[str, dict[str, Any]] = stats.get("by_split", {})
    tables: list[Table] = [_overview(stats, splits)]
    for key, title in (("tasks", "Task"), ("scenarios", "Scenario"),
                       ("negative_kinds", "Negative kind"),
                       ("ordering_forms", "Ordering form"),
                       ("model_text", "Model-written text")):
        if stats.get(key):
            tables.append(_breakdown(stats, splits, key, title))
    if stats.get("answer_letters"):
        tables.append(_answer_letters(stats["answer_letters"]))
    return Group(*tables)


def _overview(stats: dict[str, Any], splits: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=f"Dataset {stats.get('dataset', '')}", title_justify="left")
    table.add_column("Split")
    for name in ("Samples", "Positive", "Negative", "Images min", "mean", "max"):
        table.add_column(name, justify="right")
    rows = [*splits.items(), ("all", stats)]
    for index, (name, counts) in enumerate(rows):
        images = counts.get("images_per_sample", {})
        table.add_row(name, str(counts.get("samples", 0)),
                      str(counts.get("negative", {}).get("positive", 0)),
                      str(counts.get("negative", {}).get("negative", 0)),
                      _number(images.get("min")), _number(images.get("mean")),
                      _number(images.get("max")), end_section=index == len(rows) - 2)
    return table


def _breakdown(stats: dict[str, Any], splits: dict[str, dict[str, Any]], key: str,
               title: str) -> Table:
    table = Table(title=f"By {title.lower()}", title_justify="left")
    table.add_column(title)
    for name in splits:
        table.add_column(name, justify="right")
    table.add_column("all", justify="right", style="bold")
    for value, count in stats[key].items():
        cells = [str(counts.get(key, {}).get(value, 0)) for counts in splits.values()]
        table.add_row(value, *cells, str(count))
    return table


def _answer_letters(letters_by_task: dict[str, dict[str, int]]) -> Table:
    letters = sorted({letter for counts in letters_by_task.values() for letter in counts})
    table = Table(title="Gold answer letter (multiple choice)", title_justify="left")
    table.add_column("Task")
    for letter in letters:
        table.add_column(letter, justify="right")
    for task, counts in letters_by_task.items():
        total = sum(counts.values())
        cells = [f"{counts.get(letter, 0)} ({100 * counts.get(letter, 0) / total:.0f}%)"
                 for letter in letters]
        table.add_row(task, *cells)
    return table


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
