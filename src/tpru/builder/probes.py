"""Model-free shortcut probes: rules that answer without looking at an image.

A sample that a rule over its text, its option structure or where its
candidates came from answers above chance teaches that rule, not temporal
understanding. Every build runs these probes on its choice samples (the
letter form of ordering, "CABD", has no options and is free of them by
construction) and reports, per task, each probe's accuracy beside the
accuracy its answers would have by chance, with a 95% interval; a probe that
exceeds chance by more than ``probes.max_lift`` fails the build.

A probe answers each sample with a set of options it cannot tell apart (a
uniform guess among them), so ties cost it nothing and gain it nothing. Its
chance is what the same answers would score if the options' texts and the
candidates' provenance said nothing about the gold answer: the None option
is gold as often as the task has negatives, every other option shares the
rest. A rule that reads nothing is then exactly at chance, whatever the
share of negatives; "always None" is such a rule, reported as the reference
line it is (its accuracy is the share of negatives, by design).

The probes:

- ``transposition_centre`` (ordering options): the order with the most other
  orders one swap of two positions away; None when no order has such a
  neighbour.
- ``kendall_centre`` (ordering options): the order with the smallest summed
  Kendall distance to the others.
- ``longest_option``: the longest option text, None excluded.
- ``majority_letter``: the letter most often gold in train, answered on the
  other splits (without a train split: learned on half of the episodes and
  answered on the other half, both ways).
- ``always_none``: the None option (reference).
- ``own_episode_count``, ``candidate_episodes``, ``other_scenario_count``
  (image candidates): from the number of candidates taken from the sample's
  own episode, of distinct episodes among them, and from another scenario
  (``meta.candidates``), learned like ``majority_letter``: answer None for
  the values where negatives are common enough that None is the better
  guess, and guess among the other options otherwise.
- ``question_images``: the same, from the number of images the question
  shows (with mixed sequence lengths).

The rules are in `tpru.builder.probe_rules`; this module scores them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpru.builder.probe_rules import PROBES as PROBES  # re-exported: the table scored here
from tpru.builder.probe_rules import Picks, Probe, own_episode_count
from tpru.builder.probe_rules import ProbeItem as ProbeItem
from tpru.builder.probe_rules import Rule as Rule
from tpru.diagnostics import InputError

Z95 = 1.959963984540054


class ShortcutError(InputError):
    """A probe answers a task far above chance without the images; the message says which."""


# ---------------------------------------------------------------- scoring


def wilson(successes: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + Z95 ** 2 / (2 * n)
    spread = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n))
    scale = 1 + Z95 ** 2 / n
    low = 0.0 if successes <= 0 else max(0.0, (centre - spread) / scale)
    high = 1.0 if successes >= n else min(1.0, (centre + spread) / scale)
    return low, high


def _half(item: ProbeItem) -> int:
    """Which half of the episodes the item's episode is in, when there is no train split."""
    return hashlib.sha256(item.episode_id.encode()).digest()[0] % 2


Side = Callable[[ProbeItem], bool]


@dataclass
class _TaskStats:
    """What the first reading of a task's items learns: counts, and which folds it has."""

    n: int = 0
    with_none: int = 0
    negatives: int = 0
    train: bool = False
    rest: bool = False
    own: dict[bool, Counter[int]] = field(
        default_factory=lambda: {True: Counter(), False: Counter()})

    def add(self, item: ProbeItem) -> None:
        self.n += 1
        if item.none is not None:
            self.with_none += 1
            self.negatives += int(item.negative)
        self.train |= item.split == "train"
        self.rest |= item.split != "train"
        count = own_episode_count(item)
        if count is not None:
            self.own[item.negative][count] += 1

    @property
    def share(self) -> float:
        return self.negatives / self.with_none if self.with_none else 0.0

    def folds(self) -> list[tuple[Side, Side]]:
        """(learn from, answer on) for the learned probes: train and the rest, or two
        halves of the episodes, each learning from one and answering on the other."""
        if self.train and self.rest:
            return [(lambda i: i.split == "train", lambda i: i.split != "train")]
        return [(lambda i: _half(i) == 0, lambda i: _half(i) == 1),
                (lambda i: _half(i) == 1, lambda i: _half(i) == 0)]


@dataclass
class _Score:
    """A probe's running score on one task."""

    n: int = 0
    right: float = 0.0
    chance: float = 0.0

    def add(self, item: ProbeItem, picked: Picks, negative_share: float) -> None:
        if not picked:
            return
        self.n += 1
        self.right += (item.gold in picked) / len(picked)
        self.chance += sum(_prior(item, i, negative_share) for i in picked) / len(picked)

    def result(self, probe: Probe) -> dict[str, Any] | None:
        """Accuracy, chance and interval; None if the probe never applied."""
        if self.n == 0:
            return None
        low, high = wilson(self.right, self.n)
        accuracy, chance = self.right / self.n, self.chance / self.n
        return {"n": self.n, "accuracy": round(accuracy, 4), "chance": round(chance, 4),
                "low": round(low, 4), "high": round(high, 4),
                "lift": round(accuracy - chance, 4), "within": low <= chance,
                "reads": probe.reads, "reference": probe.reference}


def _prior(item: ProbeItem, option: int, negative_share: float) -> float:
    """How often `option` would be gold if nothing but the share of negatives were known."""
    if item.none is None:
        return 1 / len(item.options)
    if option == item.none:
        return negative_share
    return (1 - negative_share) / max(len(item.options) - 1, 1)


def total_variation(a: Counter[int], b: Counter[int]) -> float:
    """Total variation distance between two count distributions (0 when either is empty)."""
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return 0.0
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))


def run_probes(items: Iterable[ProbeItem], *, max_lift: float | None,
               min_samples: int) -> dict[str, Any]:
    """Every probe on every task: the report ``build.json`` keeps under ``probes``.

    `items` is read a few times in turn (counts, then the learned probes'
    fits, then the answers, one reading per fold), never held: a `ProbeLog`
    keeps a large build's items in a file. A one-shot iterator is read into a
    list first.

    Returns:
        ``{"max_lift", "min_samples", "leaks": ["task/probe", ...], "tasks": {task:
        {"n", "negative_share", "own_episode_tv", "probes": {name: {"n", "accuracy",
        "chance", "low", "high", "lift", "within", "reads", "reference"}}}}}``.
        ``own_episode_tv`` is the total variation distance between the numbers
        of own-episode candidates of positives and of negatives.
    """
    if iter(items) is items:
        items = list(items)
    stats: dict[str, _TaskStats] = defaultdict(_TaskStats)
    for item in items:
        stats[item.task].add(item)
    folds = {task: s.folds() for task, s in stats.items()}
    learned = [p for p in PROBES if p.learner is not None]
    learners = {(task, p.name, f): p.learner() for task in stats for p in learned
                for f in range(len(folds[task])) if p.learner is not None}
    for item in items:
        for f, (learn_from, _) in enumerate(folds[item.task]):
            if learn_from(item):
                for probe in learned:
                    learners[item.task, probe.name, f].add(item)
    rules = {key: learner.rule() for key, learner in learners.items()}
    scores = {(task, p.name): _Score() for task in stats for p in PROBES}
    # One reading per fold, so that a learned probe's sums run over its folds in order.
    for f in range(max((len(x) for x in folds.values()), default=0)):
        for item in items:
            share, task_folds = stats[item.task].share, folds[item.task]
            for probe in PROBES:
                if probe.rule is not None and f == 0:
                    rule = probe.rule
                elif probe.learned and f < len(task_folds) and task_folds[f][1](item):
                    rule = rules[item.task, probe.name, f]
                else:
                    continue
                scores[item.task, probe.name].add(item, rule(item), share)
    tasks: dict[str, Any] = {}
    leaks: list[str] = []
    for task in sorted(stats):
        task_stats = stats[task]
        report: dict[str, Any] = {"n": task_stats.n,
                                  "negative_share": round(task_stats.share, 4), "probes": {}}
        own = task_stats.own
        if own[True] or own[False]:
            report["own_episode_tv"] = round(total_variation(own[True], own[False]), 4)
        for probe in PROBES:
            result = scores[task, probe.name].result(probe)
            if result is None:
                continue
            result["leaks"] = bool(
                not probe.reference and max_lift is not None and task_stats.n >= min_samples
                and result["lift"] > max_lift and not result["within"])
            if result["leaks"]:
                leaks.append(f"{task}/{probe.name}")
            report["probes"][probe.name] = result
        tasks[task] = report
    return {"max_lift": max_lift, "min_samples": min_samples, "leaks": leaks, "tasks": tasks}


class ProbeLog:
    """Probe items in a file, one JSON line each, instead of in memory.

    Pass 2 adds the item of every choice sample it writes and hands the log to
    `run_probes`, which reads it back a few times: the driver's memory does
    not grow with the number of samples.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8", newline="\n")

    def add(self, item: ProbeItem) -> None:
        self._handle.write(json.dumps(
            [item.id, item.split, item.task, item.episode_id, item.scenario,
             item.options, item.gold, item.candidates, item.images],
            separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ProbeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ProbeItem]:
        if not self._handle.closed:
            self._handle.flush()
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                id_, split, task, episode, scenario, options, gold, candidates, images = \
                    json.loads(line)
                yield ProbeItem(id_, split, task, episode, scenario, tuple(options), gold,
                                None if candidates is None else tuple(candidates), images)


def leak_message(report: Mapping[str, Any]) -> str:
    """One line naming each leaking probe and its numbers."""
    parts = []
    for name in report["leaks"]:
        task, probe = name.split("/")
        r = report["tasks"][task]["probes"][probe]
        parts.append(f"{task}: {probe} answers {r['accuracy']:.1%} (95% interval "
                     f"{r['low']:.1%}-{r['high']:.1%}) of {r['n']} samples without looking, "
                     f"against {r['chance']:.1%} by chance")
    return ("shortcut probes: " + "; ".join(parts) +
            f" (more than probes.max_lift={report['max_lift']} above chance); "
            "see docs/building.md, 'Data that needs the images'")


def probe_rows(report: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(task, probe, result) for every probe of a report, leaks first."""
    rows = [(task, name, result) for task, t in sorted(report.get("tasks", {}).items())
            for name, result in t.get("probes", {}).items()]
    return sorted(rows, key=lambda r: not r[2].get("leaks"))


def verdict(result: Mapping[str, Any]) -> str:
    """``leak``, ``reference`` (always None), ``at chance`` or ``above chance`` (not enough
    items or lift to fail the build)."""
    if result.get("leaks"):
        return "leak"
    if result.get("reference"):
        return "reference"
    return "at chance" if result.get("within") else "above chance"


def probes_markdown(report: Mapping[str, Any]) -> str:
    """A table of every probe: accuracy, its 95% interval, chance, and the verdict."""
    lines = ["| task | probe | reads | n | accuracy | 95% interval | chance | verdict |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for task, name, r in probe_rows(report):
        said = verdict(r)
        lines.append(f"| {task} | {name} | {r['reads']} | {r['n']} | {r['accuracy']:.1%} | "
                     f"{r['low']:.1%}-{r['high']:.1%} | {r['chance']:.1%} | "
                     f"{'**LEAK**' if said == 'leak' else said} |")
    tv = [f"{task} {t['own_episode_tv']:.2f}" for task, t in
          sorted(report.get("tasks", {}).items()) if "own_episode_tv" in t]
    if tv:
        lines += ["", "Own-episode candidates, positives against negatives (total variation): "
                  + ", ".join(tv) + "."]
    return "\n".join(lines) + "\n"
