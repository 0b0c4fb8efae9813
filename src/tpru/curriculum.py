"""A sample's length and difficulty, and the orders samples are written and trained in.

The builder records, in every sample's ``meta``:

- ``frames``: how many frames the sequence shows (3..16);
- ``difficulty``: ``{"frames", "negative", "distractor_similarity", "gap", "score"}``,
  with ``score`` in [0, 1] (0: easiest).

Datasets built before either existed are still read: without ``meta.frames``
a sample's length is the number of its question images, and without a score
its difficulty bucket is ``unknown`` (a curriculum cannot be made from it).

Orders (``tpru export --order``, ``data.order`` of ``tpru train grpo``):

- ``dataset``: as the dataset stores them (episode by episode); the default of
  an export, whose files are byte for byte what they were before orders existed;
- ``shuffled``: a seeded permutation;
- ``curriculum``: easy to hard by ``meta.difficulty.score``; samples with the
  same score in a seeded order, so one seed always gives the same file.

Example:
    >>> from tpru.schema import Sample
    >>> s = Sample(id="s", task="ordering", scenario="robot", episode_id="e",
    ...            question="<image> <image> <image>", options=None, answer="BCA",
    ...            images=("a.jpg", "b.jpg", "c.jpg"), meta={"difficulty": {"score": 0.5}})
    >>> sample_frames(s), difficulty_score(s.meta), difficulty_bucket(0.5)
    (3, 0.5, 'medium')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tpru.diagnostics import InputError
from tpru.schema import Sample

ORDERS = ("dataset", "shuffled", "curriculum")
"""The sample orders an export or a training run can use; the first is an export's default."""

BUCKETS = ("easy", "medium", "hard", "unknown")
"""Difficulty buckets, easiest first: score < 1/3, < 2/3, the rest, and no score."""

UNKNOWN = "unknown"


def sample_frames(sample: Sample) -> int:
    """The number of frames `sample` shows: ``meta.frames``, else its question images."""
    frames = sample.meta.get("frames")
    if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0:
        return frames
    return len(sample.question_images)


def difficulty_score(meta: Mapping[str, Any]) -> float | None:
    """``meta.difficulty.score`` when it is a number in [0, 1], else None."""
    difficulty = meta.get("difficulty")
    if not isinstance(difficulty, Mapping):
        return None
    score = difficulty.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        return None
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        return None
    return float(score)


def difficulty_bucket(score: float | None) -> str:
    """``easy`` below 1/3, ``medium`` below 2/3, ``hard`` above, ``unknown`` without a score."""
    if score is None:
        return UNKNOWN
    if score < 1 / 3:
        return "easy"
    return "medium" if score < 2 / 3 else "hard"


def check_order(order: str) -> str:
    """`order` if it is one of `ORDERS`; a one-line error otherwise."""
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r} (orders: {', '.join(ORDERS)})")
    return order


def curriculum_positions(scores: Sequence[float | None], *, seed: int, where: str,
                         ids: Sequence[str] | None = None) -> list[int]:
    """Indices of `scores` from the lowest score to the highest; ties in a seeded order.

    Args:
        scores: one difficulty score per sample.
        seed: seeds the order of samples with the same score.
        where: what the samples are, for the error (a file, a dataset).
        ids: the samples' ids, to name one without a score.

    Raises:
        InputError: a sample has no score; the message names `where` and the sample.
    """
    missing = [i for i, score in enumerate(scores) if score is None]
    if missing:
        name = repr(ids[missing[0]]) if ids is not None else f"number {missing[0] + 1}"
        raise InputError(f"{where}: {len(missing)} of {len(scores)} samples have no difficulty "
                         f"score (the first: sample {name}); a curriculum needs "
                         "meta.difficulty.score on every sample: rebuild the dataset with "
                         "this tpru, or use another order")
    ranks = np.random.default_rng(seed).permutation(len(scores))
    return sorted(range(len(scores)), key=lambda i: (scores[i], int(ranks[i])))


def ordered_samples(samples: Iterable[Sample], order: str, *, seed: int,
                    where: str) -> Iterable[Sample]:
    """`samples` in `order`; ``dataset`` streams them, the other orders read them all first.

    Raises:
        InputError: an unknown order, or (curriculum) a sample without a
            difficulty score; the message names `where`.
    """
    check_order(order)
    if order == "dataset":
        return samples
    listed = list(samples)
    if order == "shuffled":
        return [listed[i] for i in np.random.default_rng(seed).permutation(len(listed))]
    positions = curriculum_positions([difficulty_score(s.meta) for s in listed], seed=seed,
                                     where=where, ids=[s.id for s in listed])
    return [listed[i] for i in positions]
