"""Pass 2's worker function behind the gate of `gated_embedding` (`test_ray_engine`).

A test puts `formulate_gated` in the place of `tpru.builder.partitions.formulate_groups`;
the driver hands it to the Ray tasks by name, so the cluster's workers import this module
(on their ``PYTHONPATH``) and each group's task waits at the gate, leaving a marker
``started/group<N>.<node>...``, before it formulates: a test can remove a node that
provably holds pass-2 work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gated_embedding import GATE_ENV, wait_at

from tpru.builder import partitions

_FORMULATE = partitions.formulate_groups
"""The worker function itself, whatever a test puts in its place in `partitions`."""


def formulate_gated(groups: list[partitions.Group], *args: Any) -> list[dict[str, Any]]:
    gate = os.environ.get(GATE_ENV)
    if gate:
        wait_at(Path(gate), f"group{groups[0].number}")
    return _FORMULATE(groups, *args)
