"""Option sets of orders that do not give the true order away.

An ordering question in the option form shows ``k`` orders of the images
("1 3 4 2", ...) and "None of the choices provided". If the wrong orders are
built around the truth (each one swap away from it, say), the truth is the
centre of the set, and a rule that reads only the option texts finds it: on
an earlier design, "the order with the most others one swap away" answered
34-40% of such questions against 20% by chance.

Here the set's shape is drawn first and placed onto the truth afterwards:

1. A *template* of ``k`` distinct orders of ``0..n-1`` that are close to one
   another: starting from one order, each next member is a random member
   with two adjacent items swapped (so every member is one adjacent swap
   from another, and the wrong orders stay hard).
2. A *relabelling* of the images maps the template onto the option set.
   With the truth among the options, one member is drawn uniformly and
   the relabelling sends it to the truth; without it (a ``missing``
   negative), the relabelling is uniform among those that keep the truth
   out of the set.

Why no text-only rule can find the truth: the true order is uniform over
all orders (the images are shuffled uniformly), so the relabelling is
uniform and independent of the template and of the member chosen, and the
set it gives is independent of which member is the truth; given the set,
every member is the truth with probability ``1/k``. And because a uniform
truth falls outside any fixed set with the same probability, the sets of
``missing`` negatives have the same distribution as those of positives.
Whatever a rule computes from the option texts (distances, centres, swaps,
option length), it is right on a positive ``1/k`` of the time and cannot
tell a positive from a ``missing`` negative. ``tpru.builder.probes`` measures
this on every build.
"""

from __future__ import annotations

import math
import random

MAX_DRAWS = 1000
"""Relabellings tried before giving up on keeping the truth out (never reached for n >= 3)."""


def order_template(n: int, k: int, rng: random.Random) -> list[tuple[int, ...]]:
    """`k` distinct orders of ``range(n)``, each one adjacent swap from an earlier one.

    Raises:
        ValueError: `k` is more than the ``n!`` orders there are.
    """
    if k > math.factorial(n):
        raise ValueError(f"{n} items have fewer than {k} orders")
    members = [tuple(range(n))]
    seen = set(members)
    while len(members) < k:
        base = list(rng.choice(members))
        i = rng.randrange(n - 1)
        base[i], base[i + 1] = base[i + 1], base[i]
        order = tuple(base)
        if order not in seen:
            seen.add(order)
            members.append(order)
    return members


def order_options(truth: tuple[int, ...], k: int, *, include_truth: bool,
                  rng: random.Random) -> list[tuple[int, ...]]:
    """`k` orders shown as options: the truth among them iff `include_truth`.

    Args:
        truth: the true order, a permutation of ``range(n)``.
        k: orders in the set.
        include_truth: False for a ``missing`` negative.

    Returns:
        The orders in a random sequence (the caller places them in slots).

    Example:
        >>> rng = random.Random(0)
        >>> options = order_options((2, 0, 3, 1), 4, include_truth=True, rng=rng)
        >>> (2, 0, 3, 1) in options, len(set(options))
        (True, 4)
    """
    n = len(truth)
    if include_truth and k > math.factorial(n):
        raise ValueError(f"{n} items have fewer than {k} orders")
    if not include_truth and k >= math.factorial(n):
        raise ValueError(f"{n} items have fewer than {k} wrong orders")
    template = order_template(n, k, rng)
    if include_truth:
        member = rng.choice(template)
        # relabel[member[i]] = truth[i]: the chosen member becomes the truth.
        relabel = [0] * n
        for a, b in zip(member, truth, strict=True):
            relabel[a] = b
        options = [tuple(relabel[x] for x in order) for order in template]
    else:
        for _ in range(MAX_DRAWS):
            relabel = list(range(n))
            rng.shuffle(relabel)
            options = [tuple(relabel[x] for x in order) for order in template]
            if truth not in options:
                break
        else:  # pragma: no cover - k < n! makes this vanishingly unlikely
            raise ValueError(f"could not keep the true order out of {k} options")
    rng.shuffle(options)
    return options

