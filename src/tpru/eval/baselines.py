"""The accuracies a run is read against: chance, and always answering "None".

A score means little without them. Chance is what a uniform random answer
gets: ``1/len(options)`` for a choice (the None option counts as one) and
``1/k!`` for a letter ordering of k images. "Always None" is what a model
gets by answering "None of the choices provided" to everything: the share of
items whose gold is that option. On a dataset whose negatives make up a third
of the items, a model that always says None scores 33%, whatever it sees.

Both are read from what every results line holds (``options``, ``answer``,
``question``); a line that cannot say (no options and a one-letter answer, as
a line from an older runner may be) is left out of both.

Example:
    >>> chance(("x", "y", "None of the choices provided"), "C", "Which? <image>")
    0.3333333333333333
    >>> chance(None, "CABD", "Order: <image> <image> <image> <image>") == 1 / 24
    True
    >>> gold_is_none(("x", "y", "None of the choices provided"), "C")
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tpru.schema import IMAGE_PLACEHOLDER, NONE_OPTION


class Scored(Protocol):
    """What the baselines read from an item or a result."""

    @property
    def options(self) -> tuple[str, ...] | None: ...

    @property
    def answer(self) -> str: ...

    @property
    def question(self) -> str: ...


def chance(options: Sequence[str] | None, answer: str, question: str) -> float | None:
    """The accuracy of a uniform random answer, as a fraction; None where unknown.

    A one-letter answer picks among `options`; a longer one orders k letters,
    the options' (LEGO-Puzzles' sort) or else the question's images.
    """
    if options is not None and len(answer) == 1:
        return 1.0 / len(options) if options else None
    if options is None and len(answer) == 1:
        return None  # no options to choose among: a line that does not say
    k = len(options) if options is not None else question.count(IMAGE_PLACEHOLDER)
    return 1.0 / math.factorial(k) if k >= 1 else None


def gold_is_none(options: Sequence[str] | None, answer: str) -> bool | None:
    """Whether the gold is the None option; None where the line cannot say."""
    if options is None:
        return None if len(answer) == 1 else False
    if len(answer) != 1:
        return False  # an ordering: the gold is a sequence, never the None option
    index = ord(answer) - ord("A")
    return 0 <= index < len(options) and is_none_option(options[index])


def is_none_option(option: str) -> bool:
    """The option meaning "none of the above", as tpru and MuirBench's twins write it."""
    return option.strip().rstrip(".").lower() == NONE_OPTION.lower()


@dataclass(frozen=True)
class Baselines:
    """A group's reference accuracies in percent; None where no item could say.

    Attributes:
        chance: the mean chance of the items that say.
        always_none: the share of items whose gold is the None option, among
            the items that say; None as well when no item offers that option.
    """

    chance: float | None
    always_none: float | None


def baselines(items: Iterable[Scored]) -> Baselines:
    """`Baselines` of `items` (results or benchmark items)."""
    chances: list[float] = []
    golds: list[bool] = []
    offered = False
    for item in items:
        level = chance(item.options, item.answer, item.question)
        if level is not None:
            chances.append(level)
        gold = gold_is_none(item.options, item.answer)
        if gold is not None:
            golds.append(gold)
        offered = offered or any(is_none_option(o) for o in item.options or ())
    return Baselines(
        chance=100.0 * sum(chances) / len(chances) if chances else None,
        always_none=100.0 * sum(golds) / len(golds) if golds and offered else None)
