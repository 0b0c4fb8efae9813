"""An embedding plugged in by name that waits at a gate the test holds (`test_ray_engine`).

``embed.name=gated_embedding:histogram`` runs inside pass 1's tasks, so a test
that keeps the gate shut knows that every task which has started is still in
flight: it can remove a node that provably holds work, or kill the driver
while some episodes are recorded and the rest provably are not. With no gate
folder set (``TPRU_TEST_GATE``), once its ``open`` file exists, or for an
episode whose fingerprint the test let through (`let_through`), it is the
colour histogram of `custom_embedding`.

Each call leaves a marker ``<gate>/started/<fingerprint>.<node>.<pid>.<ns>``:
the fingerprint of the episode's first frame (so a retry of the same work is
recognised) and the Ray node id the task ran on (``local`` outside Ray).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from custom_embedding import histogram as plain_histogram
from PIL import Image

GATE_ENV = "TPRU_TEST_GATE"
"""The environment variable naming the gate folder; set before the cluster starts, so that
every process of the cluster sees it."""

WAIT_S = 120.0
"""How long a call waits for the gate before failing its task (a test that forgot to open it)."""


def histogram(images: Sequence[Image.Image]) -> np.ndarray:
    gate = os.environ.get(GATE_ENV)
    if gate and images:
        wait_at(Path(gate), fingerprint(images[0]))
    return plain_histogram(images)


def fingerprint(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()[:16]


def wait_at(gate: Path, print_: str) -> None:
    started = gate / "started"
    started.mkdir(parents=True, exist_ok=True)
    (started / f"{print_}.{node_id()}.{os.getpid()}.{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + WAIT_S
    while not ((gate / "open").exists() or (gate / "through" / print_).exists()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{gate}: the test never opened the gate")
        time.sleep(0.02)


def node_id() -> str:
    """The Ray node this process belongs to, or ``local`` when it is not a Ray worker."""
    ray: Any = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return "local"
    return str(ray.get_runtime_context().get_node_id())


def reset(gate: Path, *, opened: bool) -> None:
    """Forget every call and every episode let through; the gate open or shut."""
    shutil.rmtree(gate, ignore_errors=True)
    gate.mkdir(parents=True)
    if opened:
        (gate / "open").touch()


def let_through(gate: Path, fingerprints: Iterable[str]) -> None:
    """Let the episodes of `fingerprints` pass the shut gate."""
    (gate / "through").mkdir(exist_ok=True)
    for print_ in fingerprints:
        (gate / "through" / print_).touch()


def starts(gate: Path) -> list[tuple[str, str]]:
    """``(fingerprint, node)`` of every call that reached the gate, in the order they did
    (the monotonic clock is the machine's, the same in every process)."""
    folder = gate / "started"
    names = [p.name.split(".") for p in folder.iterdir()] if folder.is_dir() else []
    return [(parts[0], parts[1]) for parts in sorted(names, key=lambda parts: int(parts[3]))]
