"""Sequence lengths and candidate counts: one number, or a choice per window or per task.

``tasks.frames_per_sample`` is one length (every window has it), a list of lengths
(each window draws one uniformly) or a mapping of length to weight (``{3: 1, 4: 2}``:
a window is 4 frames long twice as often as 3). ``tasks.candidates`` is one count for
every task or a mapping of task to count. This module reads both forms; the build
config (`tpru.builder.config.TaskConfig`) checks them with it at load.

A window's length is drawn from its own seeded generator, so a plain number draws
nothing and builds exactly what it built before lengths could vary. An episode with
fewer kept frames than a drawn length cannot hold it: its windows draw only among
the lengths that fit, with their weights (see `window_lengths`).

Example:
    >>> length_weights({4: 2, 3: 1})
    {3: 1.0, 4: 2.0}
    >>> window_lengths({3: 1.0, 8: 1.0}, n_frames=5, count=2, rng=random.Random(0))
    ([3, 3], True)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

MIN_LENGTH = 3
"""The fewest frames a window has: next-frame prediction needs two around the gap."""
MAX_LENGTH = 16
"""The most frames a window has (the letter form of ordering labels them A to P)."""
MIN_CANDIDATES = 2
MAX_CANDIDATES = 8

FramesSpec = int | tuple[int, ...] | dict[int, float]
"""What ``tasks.frames_per_sample`` holds: a length, a list of lengths or length -> weight."""
CandidatesSpec = int | dict[str, int]
"""What ``tasks.candidates`` holds: a count, or task -> count."""


def length_weights(spec: Any) -> dict[int, float]:
    """Length -> weight of a ``tasks.frames_per_sample`` value, sorted by length.

    Raises:
        ValueError: a length outside 3-16, a repeated length in a list, a weight that
            is not a positive number, or an empty list or mapping.
    """
    name = "tasks.frames_per_sample"
    if isinstance(spec, int) and not isinstance(spec, bool):
        _check_length(spec)
        return {spec: 1.0}
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(set(spec)) != len(spec):
            raise ValueError(f"{name} lists a length twice; list each length once, or give "
                             "weights as a mapping such as {3: 1, 4: 2}")
        pairs = [(length, 1.0) for length in spec]
    else:
        raise ValueError(f"{name} must be a number, a list of numbers or a mapping of "
                         f"number to weight, got {spec!r}")
    if not pairs:
        raise ValueError(f"{name} is an empty list or mapping")
    weights: dict[int, float] = {}
    for length, weight in sorted(pairs):
        if not isinstance(length, int) or isinstance(length, bool):
            raise ValueError(f"{name}: {length!r} is not a whole number of frames")
        _check_length(length)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"{name}: the weight of {length} frames must be a positive "
                             f"number, got {weight!r}")
        weights[length] = float(weight)
    return weights


def _check_length(length: int) -> None:
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"tasks.frames_per_sample must be between {MIN_LENGTH} and "
                         f"{MAX_LENGTH}, got {length}")


def candidate_counts(spec: Any, tasks: Sequence[str], known: Sequence[str]) -> dict[str, int]:
    """Task -> candidates of a ``tasks.candidates`` value, for each of `tasks`.

    Args:
        spec: a count for every task, or a mapping of task name to count.
        tasks: the tasks the build makes (each needs a count).
        known: every task name there is (a mapping may name tasks the build skips).

    Raises:
        ValueError: a count outside 2-8, an unknown task, or a task without a count.
    """
    name = "tasks.candidates"
    if isinstance(spec, int) and not isinstance(spec, bool):
        counts = {task: spec for task in tasks}
    elif isinstance(spec, Mapping):
        unknown = [t for t in spec if t not in known]
        if unknown:
            raise ValueError(f"{name}: unknown task {unknown[0]!r} (known: "
                             f"{', '.join(known)})")
        absent = [t for t in tasks if t not in spec]
        if absent:
            raise ValueError(f"{name} gives no count for {', '.join(absent)}; name every "
                             "task of tasks.tasks, or give one number for all")
        counts = {task: spec[task] for task in tasks}
    else:
        raise ValueError(f"{name} must be a number or a mapping of task to number, "
                         f"got {spec!r}")
    for task, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or \
                not MIN_CANDIDATES <= count <= MAX_CANDIDATES:
            raise ValueError(f"{name} must be between {MIN_CANDIDATES} and {MAX_CANDIDATES}"
                             f"{'' if isinstance(spec, int) else f' (for {task})'}, "
                             f"got {count!r}")
    return counts


def window_lengths(weights: Mapping[int, float], n_frames: int, count: int,
                   rng: random.Random) -> tuple[list[int], bool]:
    """The lengths of an episode's `count` windows, and whether its length limited them.

    One length (a plain ``frames_per_sample``) is every window's, drawn from nothing.
    Otherwise each window draws a length by weight from `rng`, among the lengths the
    episode's `n_frames` kept frames can hold: a 5-frame episode under ``{3: 1, 4: 1,
    8: 1}`` draws 3 and 4 equally often. The flag is True when that left a length out
    (the build counts such windows). An episode shorter than every length has no
    windows (it was dropped as ``too_few_frames`` already).
    """
    if len(weights) == 1:
        (length,) = weights
        return ([length] * count if n_frames >= length else []), False
    fitting = [(length, weight) for length, weight in sorted(weights.items())
               if length <= n_frames]
    if not fitting:
        return [], False
    lengths = [length for length, _ in fitting]
    drawn = rng.choices(lengths, weights=[w for _, w in fitting], k=count)
    return drawn, len(fitting) < len(weights)
