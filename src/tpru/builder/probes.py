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
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from tpru.diagnostics import InputError
from tpru.schema import NONE_OPTION, Sample

Picks = frozenset[int]
"""Option indexes a probe picks among uniformly; empty when it does not apply."""

Rule = Callable[["ProbeItem"], Picks]

Z95 = 1.959963984540054


class ShortcutError(InputError):
    """A probe answers a task far above chance without the images; the message says which."""


@dataclass(frozen=True)
class ProbeItem:
    """What the probes may read of one choice sample (never its images)."""

    id: str
    split: str
    task: str
    episode_id: str
    scenario: str
    options: tuple[str, ...]
    gold: int
    candidates: tuple[Mapping[str, Any] | None, ...] | None
    """Provenance per option (``meta.candidates``), None where the sample has none."""

    @classmethod
    def from_sample(cls, sample: Sample, split: str | None = None) -> ProbeItem | None:
        """The item of a choice sample; None for a sample without options."""
        if not sample.options or len(sample.answer) != 1:
            return None
        recorded = sample.meta.get("candidates")
        candidates = tuple(recorded) if isinstance(recorded, list) and \
            len(recorded) == len(sample.options) else None
        return cls(sample.id, split or str(sample.meta.get("split", "")), sample.task,
                   sample.episode_id, sample.scenario, tuple(sample.options),
                   ord(sample.answer) - ord("A"), candidates)

    @property
    def none(self) -> int | None:
        """Index of the None option, if there is one."""
        return self.options.index(NONE_OPTION) if NONE_OPTION in self.options else None

    @property
    def negative(self) -> bool:
        return self.gold == self.none

    def others(self) -> Picks:
        """Every option but None."""
        return frozenset(i for i in range(len(self.options)) if i != self.none)


# ---------------------------------------------------------------- rules over option texts


def _orders(item: ProbeItem) -> dict[int, tuple[str, ...]] | None:
    """The options that are orders ("1 3 4 2"), by index; None unless every one is."""
    orders = {i: tuple(o.split()) for i, o in enumerate(item.options) if i != item.none}
    lengths = {len(o) for o in orders.values()}
    if len(lengths) != 1 or any(sorted(o) != sorted(next(iter(orders.values())))
                                for o in orders.values()):
        return None
    return orders if len(next(iter(orders.values()))) > 1 else None


def _best(scores: Mapping[int, float]) -> Picks:
    top = max(scores.values())
    return frozenset(i for i, s in scores.items() if s == top)


def transposition_centre(item: ProbeItem) -> Picks:
    orders = _orders(item)
    if orders is None:
        return frozenset()
    neighbours = {i: sum(1 for j, other in orders.items() if j != i and
                         sum(a != b for a, b in zip(order, other, strict=True)) == 2)
                  for i, order in orders.items()}
    if max(neighbours.values()) == 0:
        return frozenset() if item.none is None else frozenset({item.none})
    return _best(neighbours)


def kendall_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Pairs of items that `a` and `b` put in opposite orders."""
    where = {x: i for i, x in enumerate(b)}
    ranks = [where[x] for x in a]
    return sum(1 for i, j in combinations(range(len(ranks)), 2) if ranks[i] > ranks[j])


def kendall_centre(item: ProbeItem) -> Picks:
    orders = _orders(item)
    if orders is None:
        return frozenset()
    return _best({i: -sum(kendall_distance(order, other) for j, other in orders.items()
                          if j != i) for i, order in orders.items()})


def longest_option(item: ProbeItem) -> Picks:
    others = item.others()
    return _best({i: len(item.options[i]) for i in others}) if others else frozenset()


def always_none(item: ProbeItem) -> Picks:
    return frozenset() if item.none is None else frozenset({item.none})


# ---------------------------------------------------------------- learned rules


def majority_letter(fit: Sequence[ProbeItem]) -> Rule:
    counts = Counter(item.gold for item in fit)
    if not counts:
        return lambda item: frozenset()
    top = max(counts.values())
    letters = frozenset(g for g, c in counts.items() if c == top)
    return lambda item: frozenset(g for g in letters if g < len(item.options))


def _own_episode_count(item: ProbeItem) -> int | None:
    if item.candidates is None:
        return None
    return sum(1 for c in item.candidates if c and c.get("episode") == item.episode_id)


def _candidate_episodes(item: ProbeItem) -> int | None:
    if item.candidates is None:
        return None
    return len({c.get("episode") for c in item.candidates if c})


def _other_scenario_count(item: ProbeItem) -> int | None:
    if item.candidates is None:
        return None
    return sum(1 for c in item.candidates if c and c.get("scenario") != item.scenario)


def by_feature(feature: Callable[[ProbeItem], int | None]) -> Callable[[Sequence[ProbeItem]],
                                                                        Rule]:
    """A learned rule: per value of `feature`, None where it is the better guess."""

    def fit(items: Sequence[ProbeItem]) -> Rule:
        seen: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # value -> [negatives, all]
        for item in items:
            value = feature(item)
            if value is not None and item.none is not None:
                seen[value][0] += int(item.negative)
                seen[value][1] += 1
        total = [sum(v[0] for v in seen.values()), sum(v[1] for v in seen.values())]

        def rule(item: ProbeItem) -> Picks:
            value = feature(item)
            if value is None or item.none is None or not total[1]:
                return frozenset()
            negatives, n = seen.get(value, total)
            others = item.others()
            # None is right with chance negatives/n; any other option with (n - negatives)/n/k.
            if negatives * len(others) > n - negatives:
                return frozenset({item.none})
            return others

        return rule

    return fit


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Probe:
    name: str
    reads: str
    """``options`` (the option texts), ``answers`` (other samples' gold letters) or
    ``provenance`` (where the image candidates came from)."""
    fit: Callable[[Sequence[ProbeItem]], Rule]
    learned: bool = False
    reference: bool = False
    """Reported as a reference line, never failing the build."""


def _fixed(rule: Rule) -> Callable[[Sequence[ProbeItem]], Rule]:
    return lambda items: rule


PROBES: tuple[Probe, ...] = (
    Probe("transposition_centre", "options", _fixed(transposition_centre)),
    Probe("kendall_centre", "options", _fixed(kendall_centre)),
    Probe("longest_option", "options", _fixed(longest_option)),
    Probe("majority_letter", "answers", majority_letter, learned=True),
    Probe("always_none", "options", _fixed(always_none), reference=True),
    Probe("own_episode_count", "provenance", by_feature(_own_episode_count), learned=True),
    Probe("candidate_episodes", "provenance", by_feature(_candidate_episodes), learned=True),
    Probe("other_scenario_count", "provenance", by_feature(_other_scenario_count),
          learned=True),
)


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


def _folds(items: Sequence[ProbeItem]) -> list[tuple[list[ProbeItem], list[ProbeItem]]]:
    """(learn from, answer on): train and the rest, or two halves of the episodes."""
    train = [i for i in items if i.split == "train"]
    rest = [i for i in items if i.split != "train"]
    if train and rest:
        return [(train, rest)]
    halves: tuple[list[ProbeItem], list[ProbeItem]] = ([], [])
    for item in items:
        halves[hashlib.sha256(item.episode_id.encode()).digest()[0] % 2].append(item)
    return [(halves[0], halves[1]), (halves[1], halves[0])]


def score_probe(probe: Probe, items: Sequence[ProbeItem], negative_share: float
                ) -> dict[str, Any] | None:
    """Accuracy, chance and interval of one probe on one task's items; None if it never
    applies."""
    folds = _folds(items) if probe.learned else [(list(items), list(items))]
    n = 0
    right = 0.0
    chance = 0.0
    for fit, answer_on in folds:
        rule = probe.fit(fit)
        for item in answer_on:
            picked = rule(item)
            if not picked:
                continue
            n += 1
            right += (item.gold in picked) / len(picked)
            chance += sum(_prior(item, i, negative_share) for i in picked) / len(picked)
    if n == 0:
        return None
    low, high = wilson(right, n)
    accuracy, chance = right / n, chance / n
    return {"n": n, "accuracy": round(accuracy, 4), "chance": round(chance, 4),
            "low": round(low, 4), "high": round(high, 4), "lift": round(accuracy - chance, 4),
            "within": low <= chance, "reads": probe.reads, "reference": probe.reference}


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

    Returns:
        ``{"max_lift", "min_samples", "leaks": ["task/probe", ...], "tasks": {task:
        {"n", "negative_share", "own_episode_tv", "probes": {name: {"n", "accuracy",
        "chance", "low", "high", "lift", "within", "reads", "reference"}}}}}``.
        ``own_episode_tv`` is the total variation distance between the numbers
        of own-episode candidates of positives and of negatives.
    """
    by_task: dict[str, list[ProbeItem]] = defaultdict(list)
    for item in items:
        by_task[item.task].append(item)
    tasks: dict[str, Any] = {}
    leaks: list[str] = []
    for task in sorted(by_task):
        task_items = by_task[task]
        with_none = [i for i in task_items if i.none is not None]
        share = sum(i.negative for i in with_none) / len(with_none) if with_none else 0.0
        report: dict[str, Any] = {"n": len(task_items), "negative_share": round(share, 4),
                                  "probes": {}}
        own: dict[bool, Counter[int]] = {True: Counter(), False: Counter()}
        for item in task_items:
            count = _own_episode_count(item)
            if count is not None:
                own[item.negative][count] += 1
        if own[True] or own[False]:
            report["own_episode_tv"] = round(total_variation(own[True], own[False]), 4)
        for probe in PROBES:
            result = score_probe(probe, task_items, share)
            if result is None:
                continue
            result["leaks"] = bool(
                not probe.reference and max_lift is not None and len(task_items) >= min_samples
                and result["lift"] > max_lift and not result["within"])
            if result["leaks"]:
                leaks.append(f"{task}/{probe.name}")
            report["probes"][probe.name] = result
        tasks[task] = report
    return {"max_lift": max_lift, "min_samples": min_samples, "leaks": leaks, "tasks": tasks}


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
