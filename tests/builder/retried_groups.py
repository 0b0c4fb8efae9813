"""Pass 2's worker function run twice on each group, as a task retried after its node was
lost may run (`test_partitions`): module level, so worker processes import it by name."""

from __future__ import annotations

from typing import Any

from tpru.builder import partitions

_FORMULATE = partitions.formulate_groups
"""The worker function itself, whatever a test puts in its place in `partitions`."""


def formulate_twice(groups: list[partitions.Group], *args: Any) -> list[dict[str, Any]]:
    _FORMULATE(groups, *args)
    return _FORMULATE(groups, *args)
