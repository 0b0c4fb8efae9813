"""A difficulty record per sample (``meta.difficulty``), for curricula and reports.

The record says what makes a question hard, measured as the build makes it, and
sums it up in one score in [0, 1]:

- ``frames``: the number of frames in the sequence the question is about (its
  window; also ``meta.frames``).
- ``negative``: None, ``"mismatch"`` or ``"missing"`` (the sample's negative kind).
- ``distractor_similarity``: the cosine similarity, in the build's image embedding,
  of the distractor most similar to the true frame; None for ordering, whose
  choices are orders, not images.
- ``gap``: the mean step between consecutive frames of the window, in frame
  positions of the source episode (1: adjacent source frames; dropped frames
  count). Always frame positions, never seconds: the build does not carry frame
  times into its second pass. From a ``video:`` source in ``time`` mode a step is
  ``1/video.fps`` seconds (unless ``video.max_frames`` thinned the frames out).
- ``score``: `difficulty_score` of the above.

The record is only in ``meta``: the question, options and images are what they
would be without it, and the shortcut probes (`tpru.builder.probes`) read texts,
options and provenance, never it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tpru.builder.lengths import MAX_LENGTH, MIN_LENGTH

WEIGHTS = {"length": 0.4, "similarity": 0.25, "negative": 0.15, "closeness": 0.2}
"""The weights of `difficulty_score`'s terms (they sum to 1)."""


def difficulty_score(frames: int, negative: str | None, similarity: float | None,
                     gap: float) -> float:
    """One number in [0, 1] for how hard a sample is: a weighted mean of four terms.

    - length ``(frames - 3) / 13``: 0 for 3 frames, 1 for 16 (weight 0.4);
    - similarity ``clip(distractor_similarity, 0, 1)``: the hardest distractor's
      likeness to the truth (weight 0.25; left out for ordering, the other weights
      then scaled up to sum to 1);
    - negative: 1 for a negative (the answer is "None of the choices provided"),
      0 otherwise (weight 0.15);
    - closeness ``1 / gap``: 1 when the window's frames are adjacent in their
      source episode, 1/2 when they are two frames apart on average, and so on:
      the less changes between two shown frames, the harder they are to order
      (weight 0.2).

    Example:
        >>> difficulty_score(16, "missing", 1.0, gap=1.0)
        1.0
        >>> difficulty_score(4, None, 0.5, gap=2.0)
        0.2558
        >>> difficulty_score(4, None, None, gap=2.0)  # ordering: no similarity term
        0.1744
    """
    terms = {"length": (frames - MIN_LENGTH) / (MAX_LENGTH - MIN_LENGTH),
             "negative": float(negative is not None),
             "closeness": 1.0 / max(gap, 1.0)}
    if similarity is not None:
        terms["similarity"] = similarity
    total = sum(WEIGHTS[name] for name in terms)
    score = sum(WEIGHTS[name] * min(max(value, 0.0), 1.0) for name, value in terms.items())
    return round(score / total, 4)


def difficulty_record(window: Sequence[int], negative: str | None,
                      similarity: float | None) -> dict[str, Any]:
    """The ``meta.difficulty`` of a sample.

    Args:
        window: the window's frame positions in its source episode, in order.
        negative: the sample's negative kind, None for a positive.
        similarity: the hardest distractor's cosine similarity to the truth, None
            for a task without image candidates.

    Example:
        >>> difficulty_record([0, 2, 3, 7], "mismatch", None)["gap"]
        2.3333
    """
    n = len(window)
    gap = (window[-1] - window[0]) / (n - 1)  # the mean of the steps between neighbours
    return {"frames": n, "negative": negative,
            "distractor_similarity": None if similarity is None else round(similarity, 4),
            "gap": round(gap, 4),
            "score": difficulty_score(n, negative, similarity, gap)}
