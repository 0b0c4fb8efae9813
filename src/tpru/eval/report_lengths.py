"""Accuracy by sequence length and by difficulty: the groups a report adds for them.

Every item counts under the number of frames it shows: the ``frames`` its
results line records (a tpru dataset's ``meta.frames``), else the number of
``<image>`` placeholders in its question (any benchmark, and runs written
before frames were recorded); an item with neither is ``unknown``. Items of a
run where some item has a difficulty score count under its bucket (`BUCKETS`:
easy below 1/3, medium below 2/3, hard), those without one under ``unknown``;
a run without any score (a benchmark such as MuirBench) has no difficulty
groups at all. Both are reported overall and per task; a per-task group is
named ``"<task> / <group>"``.

Example:
    >>> from tpru.records import ResultLine
    >>> line = ResultLine(id="a", correct=True, answer="A", task="ordering",
    ...                   question="<image> <image> <image>", difficulty=0.8)
    >>> length_groups(line, scored=True)  # doctest: +NORMALIZE_WHITESPACE
    [('frames', '3'), ('frames_by_task', 'ordering / 3'), ('difficulty', 'hard'),
     ('difficulty_by_task', 'ordering / hard')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tpru.curriculum import BUCKETS, UNKNOWN, difficulty_bucket
from tpru.schema import IMAGE_PLACEHOLDER

if TYPE_CHECKING:
    from tpru.records import ResultLine

LENGTH_BREAKDOWNS = ("frames", "frames_by_task", "difficulty", "difficulty_by_task")
"""The breakdowns of this module, in report order."""

BY_TASK = {"frames_by_task": "frames", "difficulty_by_task": "difficulty"}
"""A per-task breakdown -> the breakdown it splits by task."""

TASK_SEPARATOR = " / "


def item_frames(result: ResultLine) -> int | None:
    """The frames the item shows: recorded, else its question's images; None if neither."""
    if result.frames is not None and result.frames > 0:
        return result.frames
    return result.question.count(IMAGE_PLACEHOLDER) or None


def length_groups(result: ResultLine, *, scored: bool) -> list[tuple[str, str]]:
    """The (breakdown, group) cells `result` counts in; difficulty only when `scored`
    (some item of its run has a difficulty score)."""
    frames = item_frames(result)
    values = [("frames", UNKNOWN if frames is None else str(frames))]
    if scored:
        values.append(("difficulty", difficulty_bucket(result.difficulty)))
    cells = []
    for breakdown, group in values:
        cells.append((breakdown, group))
        if result.task:
            cells.append((f"{breakdown}_by_task", f"{result.task}{TASK_SEPARATOR}{group}"))
    return cells


def group_key(breakdown: str, group: str) -> tuple[object, ...]:
    """How groups sort: frames by number, difficulty easy to hard, ``unknown`` last; the
    per-task groups by task, then so."""
    if breakdown in BY_TASK:
        task, _, inner = group.rpartition(TASK_SEPARATOR)
        return (task, *group_key(BY_TASK[breakdown], inner))
    if breakdown == "difficulty":
        return (BUCKETS.index(group) if group in BUCKETS else len(BUCKETS), group)
    if breakdown == "frames":
        return (0, int(group), "") if group.isdigit() else (1, 0, group)
    return (group,)


def split_group(breakdown: str, group: str) -> tuple[str, ...]:
    """A group's name as table cells: ``(task, value)`` for a per-task group, else ``(group,)``."""
    if breakdown in BY_TASK:
        task, _, inner = group.rpartition(TASK_SEPARATOR)
        return task, inner
    return (group,)
