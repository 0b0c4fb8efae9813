"""What pass 2's formulation works with: kept episodes, partitions, windows, drafts.

A `KeptEpisode` is an episode as pass 2 sees it (its frames are rows of the
`tpru.builder.candidates.FrameTable`). Episodes fall into *partitions*: a
split, a scenario and a chunk of `CHUNK_EPISODES` of that split and
scenario's episodes in order (`episode_chunks`); what carries over from one
episode to the next in `tpru.builder.formulate.Formulator` is kept per
partition. `choose_windows` picks an episode's windows, and a `Draft` is a
window's sample before its task's formulator runs.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tpru.builder.tasks import Header

CHUNK_EPISODES = 512
"""Episodes of one split and scenario, in order, that share a partition (see the module
docstring): few enough that a large scenario splits over many workers, enough that the
letter blocks stay balanced within each."""


def episode_chunks(split_of: Sequence[str], scenarios: Sequence[str],
                   size: int = CHUNK_EPISODES) -> np.ndarray:
    """Each episode's chunk: its rank among the earlier episodes of its split and
    scenario, divided by `size` (see the module docstring).

    Example:
        >>> episode_chunks(["train", "test", "train", "train"], ["a", "a", "a", "b"], 1)
        array([0, 0, 1, 0], dtype=int32)
    """
    seen: Counter[tuple[str, str]] = Counter()
    chunks = np.zeros(len(split_of), np.int32)
    for e, key in enumerate(zip(split_of, scenarios, strict=True)):
        chunks[e] = seen[key] // size
        seen[key] += 1
    return chunks


def seeded(seed: int, *parts: object) -> random.Random:
    """A generator that depends only on the seed and `parts` (e.g. an episode id)."""
    return random.Random(hashlib.sha256(repr((seed, *parts)).encode()).digest())


@dataclass
class KeptEpisode:
    """A kept episode as pass 2 sees it: its frames are rows of the `FrameTable`."""

    id: str
    scenario: str
    description: str | None
    rows: range
    captions: dict[int, str] = field(default_factory=dict)
    """The model's caption by frame position (describe stage), if any."""
    negative: str | None = None
    """A model-written description these frames do not show (describe stage), if any."""
    paraphrases: tuple[str, ...] = ()
    """Model paraphrases of `description` (describe stage)."""


class Episodes(Protocol):
    """The kept episodes by index: a list, or the columns in files pass 2 reads them from
    (`tpru.builder.episodes.EpisodeTable`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, e: int) -> KeptEpisode: ...


@dataclass(frozen=True)
class Draft:
    """A window's sample before its task's formulator runs: what every task kind shares."""

    task: str
    split: str
    partition: tuple[str, str, int]
    """The episode's split, scenario and chunk (see the module docstring)."""
    header: Header
    frames: list[str]
    """The window's images, in chronological order."""
    intro: str
    """The description sentence the question starts with ("" for none)."""
    wording: int
    meta: dict[str, Any]


@dataclass(frozen=True)
class Twin:
    """The positive twin due for a negative: its id and its own generator."""

    id: str
    rng: random.Random


def choose_windows(n_frames: int, lengths: Sequence[int], rng: random.Random
                   ) -> list[list[int]]:
    """Up to ``len(lengths)`` distinct sorted windows of frame positions, the k-th
    ``lengths[k]`` long.

    The first spans the episode evenly (first and last frame included), so
    the whole described process is shown; the others are seeded draws.
    """
    count = len(lengths)
    if not lengths or n_frames < max(lengths):
        return []
    length = lengths[0]
    even = [round(i * (n_frames - 1) / (length - 1)) for i in range(length)]
    windows = [even]
    attempts = 0
    while len(windows) < count and attempts < 20 * count:
        attempts += 1
        draw = sorted(rng.sample(range(n_frames), lengths[len(windows)]))
        if draw not in windows:
            windows.append(draw)
    return windows
