"""The shortcut probes' rules (`tpru.builder.probes` scores them): what each reads of a
choice sample, never its images, and how it answers."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Protocol

from tpru.schema import NONE_OPTION, Sample

Picks = frozenset[int]
"""Option indexes a probe picks among uniformly; empty when it does not apply."""

Rule = Callable[["ProbeItem"], Picks]


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
    images: int = 0
    """The number of images the question shows (its ``<image>`` placeholders): a text
    fact, which must say nothing about the answer when lengths are mixed."""

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
                   ord(sample.answer) - ord("A"), candidates, len(sample.question_images))

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


class Learner(Protocol):
    """A learned rule in the making: fed the items it learns from one at a time, so the
    items can be read back from a file instead of held in memory."""

    def add(self, item: ProbeItem) -> None: ...

    def rule(self) -> Rule: ...


class _MajorityLetter:
    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def add(self, item: ProbeItem) -> None:
        self.counts[item.gold] += 1

    def rule(self) -> Rule:
        if not self.counts:
            return lambda item: frozenset()
        top = max(self.counts.values())
        letters = frozenset(g for g, c in self.counts.items() if c == top)
        return lambda item: frozenset(g for g in letters if g < len(item.options))


def majority_letter(fit: Iterable[ProbeItem]) -> Rule:
    """The letter most often gold in `fit`, answered wherever the item has it."""
    return _learn(_MajorityLetter(), fit)


def _learn(learner: Learner, fit: Iterable[ProbeItem]) -> Rule:
    for item in fit:
        learner.add(item)
    return learner.rule()


def own_episode_count(item: ProbeItem) -> int | None:
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


def _question_images(item: ProbeItem) -> int | None:
    return item.images or None


class _ByFeature:
    """Per value of a feature: negatives and items with a None option seen."""

    def __init__(self, feature: Callable[[ProbeItem], int | None]) -> None:
        self.feature = feature
        self.seen: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # value -> [neg, all]

    def add(self, item: ProbeItem) -> None:
        value = self.feature(item)
        if value is not None and item.none is not None:
            self.seen[value][0] += int(item.negative)
            self.seen[value][1] += 1

    def rule(self) -> Rule:
        feature, seen = self.feature, self.seen
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


def by_feature(feature: Callable[[ProbeItem], int | None]) -> Callable[[], Learner]:
    """A learned rule: per value of `feature`, None where it is the better guess."""
    return lambda: _ByFeature(feature)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Probe:
    name: str
    reads: str
    """``options`` (the option texts), ``answers`` (other samples' gold letters),
    ``provenance`` (where the image candidates came from) or ``question`` (what the
    question's text shows: its number of images)."""
    rule: Rule | None = None
    """The rule of a probe that learns nothing."""
    learner: Callable[[], Learner] | None = None
    """A new learner, for a learned probe."""
    reference: bool = False
    """Reported as a reference line, never failing the build."""

    @property
    def learned(self) -> bool:
        return self.learner is not None


PROBES: tuple[Probe, ...] = (
    Probe("transposition_centre", "options", transposition_centre),
    Probe("kendall_centre", "options", kendall_centre),
    Probe("longest_option", "options", longest_option),
    Probe("majority_letter", "answers", learner=_MajorityLetter),
    Probe("always_none", "options", always_none, reference=True),
    Probe("own_episode_count", "provenance", learner=by_feature(own_episode_count)),
    Probe("candidate_episodes", "provenance", learner=by_feature(_candidate_episodes)),
    Probe("other_scenario_count", "provenance", learner=by_feature(_other_scenario_count)),
    Probe("question_images", "question", learner=by_feature(_question_images)),
)
