"""Ordering option sets: close orders, and no member stands out as the truth."""

from __future__ import annotations

import random
from collections import Counter
from itertools import permutations

import pytest

from tpru.builder.orders import order_options, order_template
from tpru.builder.probe_rules import kendall_distance


@pytest.mark.parametrize(("n", "k"), [(3, 4), (4, 4), (5, 6), (8, 4)])
def test_templates_are_distinct_close_orders(n: int, k: int) -> None:
    rng = random.Random(n)
    for _ in range(50):
        template = order_template(n, k, rng)
        assert len(set(template)) == k
        for i, order in enumerate(template[1:], start=1):
            # Each later member is one adjacent swap from an earlier one: the set is a
            # connected cluster of close orders, the hard distractors the task wants.
            assert min(kendall_distance([str(x) for x in order], [str(x) for x in other])
                       for other in template[:i]) == 1


@pytest.mark.parametrize("include_truth", [True, False])
def test_the_truth_is_in_the_set_only_when_asked(include_truth: bool) -> None:
    rng = random.Random(1)
    for truth in permutations(range(4)):
        options = order_options(truth, 4, include_truth=include_truth, rng=rng)
        assert (truth in options) == include_truth
        assert len(set(options)) == 4
        assert all(sorted(o) == [0, 1, 2, 3] for o in options)


def test_every_member_is_the_truth_equally_often() -> None:
    """For one fixed set shape, which member the truth is does not depend on the shape."""
    rng = random.Random(5)
    truth = (2, 0, 3, 1)
    # A set built around the truth puts it at the centre (the smallest summed Kendall
    # distance to the others); here the centre is the truth 1 time in 4.
    central: Counter[bool] = Counter()
    for _ in range(4000):
        options = order_options(truth, 4, include_truth=True, rng=rng)
        words = [[str(x) for x in o] for o in options]
        sums = [sum(kendall_distance(w, v) for v in words) for w in words]
        best = [o for o, s in zip(options, sums, strict=True) if s == min(sums)]
        central[truth in best] += 1 / len(best)
    assert abs(central[True] / 4000 - 0.25) < 0.03


def test_too_few_orders_is_an_error() -> None:
    with pytest.raises(ValueError, match="fewer than 6 wrong orders"):
        order_options((0, 1, 2), 6, include_truth=False, rng=random.Random(0))
    with pytest.raises(ValueError, match="fewer than 7 orders"):
        order_template(3, 7, random.Random(0))
