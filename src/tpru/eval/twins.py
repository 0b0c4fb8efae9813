"""Twin pairs and pair accuracy: a pair counts as right only when both items are.

Some benchmarks pair each item with a twin that differs in one thing:
MuirBench pairs an answerable item with an unanswerable one, and a tpru
dataset pairs a negative sample (gold: "None of the choices provided") with
its positive twin from the same window. A model that always answers None, or
never does, gets one of each pair right; only one that reads the images gets
both. Results link twins by ``counterpart`` (in one direction or both).

Example:
    >>> from tpru.records import ResultLine
    >>> a = ResultLine(id="a", correct=True, answer="A", task="next_frame", counterpart="b")
    >>> b = ResultLine(id="b", correct=False, answer="D", task="next_frame", negative=True)
    >>> found, unpaired = pairs([a, b])
    >>> [(x.id, y.id) for x, y in found], unpaired
    ([('a', 'b')], 0)
    >>> {key: len(members) for key, members in pair_groups(found).items()}
    {('pairs', 'both twins right'): 1, ('pairs_by_task', 'next_frame'): 1}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from tpru.records import ResultLine

PAIRS_GROUP = "both twins right"
"""The one group of the ``pairs`` breakdown: every pair of the run."""

Pair: TypeAlias = "tuple[ResultLine, ResultLine]"
"""Two twins: the answerable / positive one first."""


def pairs(results: Sequence[ResultLine]) -> tuple[list[Pair], int]:
    """Twin pairs linked by ``counterpart`` in either or both directions, each once, the
    answerable/positive twin first; and how many items name a twin absent from the run."""
    by_id = {r.id: r for r in results}
    seen: set[frozenset[str]] = set()
    found: list[Pair] = []
    unpaired = 0
    for result in results:
        if result.counterpart is None:
            continue
        twin = by_id.get(result.counterpart)
        if twin is None or twin.id == result.id:
            unpaired += 1
            continue
        key = frozenset((result.id, twin.id))
        if key not in seen:
            seen.add(key)
            found.append((twin, result) if _second(result) else (result, twin))
    return found, unpaired


def _second(result: ResultLine) -> bool:
    """The unanswerable (MuirBench) or negative (tpru) twin, listed second."""
    return result.answerable is False or result.negative is True


def pair_groups(found: Sequence[Pair]) -> dict[tuple[str, str], list[Pair]]:
    """The pairs by (breakdown, group): all of them under ``("pairs", PAIRS_GROUP)``,
    and by task under ``pairs_by_task`` (a pair's task is its first twin's)."""
    groups: dict[tuple[str, str], list[Pair]] = {}
    if found:
        groups[("pairs", PAIRS_GROUP)] = list(found)
    for pair in found:
        if pair[0].task:
            groups.setdefault(("pairs_by_task", pair[0].task), []).append(pair)
    return groups
