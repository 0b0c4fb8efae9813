"""Where pass 1's shards run: local worker processes, or the nodes of a Ray cluster.

An engine maps a function over shards of items and gives the results back in
the items' order, so the driver writes ``work/episodes.jsonl`` in episode
order whichever worker finished first: the same config and seed give the same
bytes on one process, on ``--workers 8`` or on a cluster of any size.

- ``local`` (the default): ``--workers`` processes on this machine, one item
  per task; ``--workers 1`` runs everything in this process.
- ``ray`` (`tpru.builder.ray_engine`, the ``tpru[ray]`` extra): tasks over
  shards of about ``ray.frames_per_task`` frames (default 128) on every node of
  a Ray cluster; a task lost with its node is retried elsewhere.

Example:
    >>> def double(items: list[int]) -> list[int]:
    ...     return [2 * i for i in items]
    >>> with LocalEngine(workers=1) as engine:
    ...     [result for result, _node in engine.map(double, iter([1, 2, 3]))]
    [2, 4, 6]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from tpru.builder.config import BuildConfig

T = TypeVar("T")
R = TypeVar("R")

Results = Generator[tuple[R, str], None, None]
"""Each item's result with the name of the node that made it, in the items' order."""

LOCAL_NODE = "local"
"""The node name the local engine gives every result."""


class Engine(Protocol):
    """Runs shards of items on workers; see the module docstring."""

    name: str
    cpus: int
    """How many shards it runs at once."""

    def map(self, fn: Callable[..., list[R]], items: Iterable[T], *args: Any,
            weight: Callable[[T], int] | None = None) -> Results[R]:
        """``fn(shard, *args)`` over shards of `items`, each item's result in order.

        Items are read lazily, a bounded number ahead of the results taken;
        closing the generator drops the work still in flight.

        Args:
            fn: a module-level function (workers import it by name) taking a list
                of items and returning one result per item.
            weight: an item's cost (frames); engines that group items make shards
                of about the same weight. Default: every item its own shard.
        """
        ...

    def record(self) -> dict[str, Any] | None:
        """What ``build.json`` says about the engine; None for the local one (nothing)."""
        ...

    def free_cpus(self) -> int:
        """CPUs free for its tasks now (on a cluster, others may hold some: model actors)."""
        ...

    def describe(self) -> str:
        """Where it runs, in a few words, for the person watching."""
        ...

    def __enter__(self) -> Engine:
        ...

    def __exit__(self, *exc: object) -> None:
        ...

    def close(self) -> None:
        ...


class LocalEngine:
    """``workers`` processes on this machine (none for one: it all runs here)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.cpus = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, fn: Callable[..., list[R]], items: Iterable[T], *args: Any,
            weight: Callable[[T], int] | None = None) -> Results[R]:
        if self.workers == 1:
            for item in items:
                yield fn([item], *args)[0], LOCAL_NODE
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        window: deque[Future[list[R]]] = deque()
        try:
            for item in items:
                window.append(self._pool.submit(fn, [item], *args))
                if len(window) >= 4 * self.workers:
                    yield window.popleft().result()[0], LOCAL_NODE
            while window:
                yield window.popleft().result()[0], LOCAL_NODE
        finally:
            for future in window:
                future.cancel()

    def record(self) -> dict[str, Any] | None:
        return None

    def free_cpus(self) -> int:
        return self.workers

    def describe(self) -> str:
        return f"{self.workers} processes on this machine"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


SHARD_WEIGHT = 128
"""Frames per shard a grouping engine aims for by default (``ray.frames_per_task``): enough
work to hide a task's overhead (at 32, Ray's pass 1 ran at 0.73-0.81 of the local engine's
on 2 quiet cores; at 128, at 1.18-1.26: bench/RESULTS.md), few enough that every CPU of a
small cluster gets some."""


def shards(items: Iterable[T], weight: Callable[[T], int] | None,
           target: int = SHARD_WEIGHT) -> Iterator[list[T]]:
    """Consecutive items grouped until their weight reaches `target` (one each by default).

    Example:
        >>> list(shards([10, 30, 5, 5, 40], weight=lambda n: n, target=32))
        [[10, 30], [5, 5, 40]]
    """
    shard: list[T] = []
    total = 0
    for item in items:
        shard.append(item)
        total += weight(item) if weight is not None else target
        if total >= target:
            yield shard
            shard, total = [], 0
    if shard:
        yield shard


def open_engine(config: BuildConfig) -> Engine:
    """The engine `config` asks for (``engine``, ``ray.address``, ``workers``).

    Raises:
        InputError: Ray is not installed, or its cluster cannot be reached or has no CPUs.
    """
    if config.engine == "ray":
        from tpru.builder.ray_engine import RayEngine

        return RayEngine(config.ray.address, workers=config.workers,
                         frames_per_task=config.ray.frames_per_task)
    return LocalEngine(config.workers)


def tally(nodes: Sequence[str], frames: Sequence[int]) -> dict[str, dict[str, int]]:
    """Episodes and frames per node, nodes sorted by name.

    Example:
        >>> tally(["b", "a", "b"], [4, 5, 6])
        {'a': {'episodes': 1, 'frames': 5}, 'b': {'episodes': 2, 'frames': 10}}
    """
    counts: dict[str, dict[str, int]] = {}
    for node, n in zip(nodes, frames, strict=True):
        entry = counts.setdefault(node, {"episodes": 0, "frames": 0})
        entry["episodes"] += 1
        entry["frames"] += n
    return dict(sorted(counts.items()))
