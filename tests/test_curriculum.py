"""A sample's length and difficulty as read from its meta, buckets, and the sample orders."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tpru.curriculum import (
    difficulty_bucket,
    difficulty_score,
    ordered_samples,
    sample_frames,
)
from tpru.diagnostics import InputError
from tpru.schema import Sample


def _sample(sample_id: str, meta: dict[str, Any], n: int = 4) -> Sample:
    return Sample(id=sample_id, task="ordering", scenario="robot", episode_id="e",
                  question=" ".join(["<image>"] * n), options=None, answer="ABCD"[:n],
                  images=tuple(f"{sample_id}-{k}.jpg" for k in range(n)), meta=meta)


def test_frames_fall_back_to_the_question_images() -> None:
    assert sample_frames(_sample("a", {"frames": 16})) == 16
    assert sample_frames(_sample("b", {})) == 4  # built before meta.frames
    assert sample_frames(_sample("c", {"frames": [0, 2, 3, 1]})) == 4  # an older meta.frames
    assert sample_frames(_sample("d", {"frames": True})) == 4


@pytest.mark.parametrize("difficulty, score", [
    ({"score": 0.25}, 0.25), ({"score": 1}, 1.0), ({"score": 0}, 0.0), ({}, None),
    ({"score": 1.5}, None), ({"score": float("nan")}, None), ({"score": "0.3"}, None),
    ({"score": True}, None), (0.3, None)])
def test_only_a_number_in_0_1_is_a_score(difficulty: Any, score: float | None) -> None:
    assert difficulty_score({"difficulty": difficulty}) == score


def test_buckets_at_their_boundaries() -> None:
    assert [difficulty_bucket(s) for s in (0.0, 0.333, 1 / 3, 0.66, 2 / 3, 1.0, None)] == [
        "easy", "easy", "medium", "medium", "hard", "hard", "unknown"]


def test_orders() -> None:
    samples = [_sample(name, {"difficulty": {"score": score}})
               for name, score in (("a", 0.9), ("b", 0.1), ("c", 0.5), ("d", 0.1), ("e", 0.5))]
    assert list(ordered_samples(samples, "dataset", seed=0, where="x")) == samples
    curriculum = [s.id for s in ordered_samples(samples, "curriculum", seed=0, where="x")]
    assert curriculum[0] in "bd" and curriculum[2] in "ce" and curriculum[-1] == "a"
    again = [s.id for s in ordered_samples(samples, "curriculum", seed=0, where="x")]
    assert again == curriculum
    shuffled = [s.id for s in ordered_samples(samples, "shuffled", seed=4, where="x")]
    assert sorted(shuffled) == list("abcde")
    unscored = [*samples, replace(samples[0], id="f", meta={})]
    with pytest.raises(InputError, match="x: 1 of 6 samples have no difficulty score "
                                         r"\(the first: sample 'f'\)"):
        ordered_samples(unscored, "curriculum", seed=0, where="x")
    with pytest.raises(InputError, match="unknown order 'random'"):
        ordered_samples(samples, "random", seed=0, where="x")
