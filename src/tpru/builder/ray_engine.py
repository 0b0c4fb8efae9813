"""The Ray engine: pass 1's shards as Ray tasks on every node of a cluster.

``tpru build --engine ray --ray-address HOST:PORT`` connects to a running
cluster (``ray start --head`` on one node, ``ray start --address HOST:PORT``
on the others; see docs/scaling.md); without an address it starts a Ray
instance on this machine with ``--workers`` CPUs. The driver (the process
running ``tpru build``) lists episodes, takes the results in episode order and
writes ``work/episodes.jsonl``; the tasks read, decode, filter, hash and embed
frames and write the staged images straight into the build folder, which
must be on a filesystem every node sees.

A task lost with its node is retried on another (`MAX_RETRIES`); since a
task is a pure function of its shard and images are written once under
their content hash, a retry changes nothing in the output.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tpru.builder.engine import SHARD_WEIGHT, Results, shards
from tpru.diagnostics import InputError, first_line
from tpru.ray_cluster import check_reachable

log = logging.getLogger("tpru")

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "--engine ray needs Ray: pip install 'tpru[ray]'"

MAX_RETRIES = 5
"""Times a task lost with its node (or its worker process) is run again elsewhere."""

SETTLE_S = 10.0
"""How long the driver lets the tasks it no longer needs finish before it cancels them."""


def check_cpus(resources: dict[str, float], address: str) -> int:
    """The cluster's CPUs; an error when it has none (every task would wait forever)."""
    cpus = int(resources.get("CPU", 0))
    if cpus < 1:
        raise InputError(f"the Ray cluster at {address} has no CPUs for the build "
                         "(start its nodes with CPUs: ray start ... --num-cpus N)")
    return cpus


def _run_shard(fn: Callable[..., list[Any]], shard: list[Any],
               *args: Any) -> tuple[str, list[Any] | None, str | None]:
    """The task: ``fn(shard, *args)`` with the node that ran it, or the input error it met."""
    import ray as ray_module

    ray: Any = ray_module  # untyped in parts
    node = f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"
    try:
        return node, fn(shard, *args), None
    except InputError as err:  # bad input stops the build: raised on the driver, in order
        return node, None, str(err)


class RayEngine:
    """Runs shards as Ray tasks; see the module docstring.

    Args:
        address: a cluster's ``HOST:PORT`` (or ``auto``, or ``ray://HOST:PORT``);
            None starts Ray on this machine with `workers` CPUs.
        workers: CPUs of the Ray started here (ignored with an address).
    """

    name = "ray"

    def __init__(self, address: str | None, *, workers: int = 1,
                 frames_per_task: int = SHARD_WEIGHT) -> None:
        try:
            import ray as ray_module
        except ImportError:
            raise InputError(INSTALL_HINT) from None
        ray: Any = ray_module  # untyped in parts
        self._ray = ray
        self.address = address
        self.frames_per_task = frames_per_task
        where = address or "this machine"
        self._owned = not ray.is_initialized()
        if self._owned:
            if address:
                check_reachable(address)
            try:
                ray.init(address=address, num_cpus=None if address else workers,
                         include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"cannot connect to the Ray cluster at {where}: "
                                 f"{first_line(err)}") from None
        try:
            self.cpus = check_cpus(ray.cluster_resources(), where)
        except InputError:
            self.close()
            raise
        self.nodes = len([node for node in ray.nodes() if node.get("Alive")])
        self._task = ray.remote(_run_shard).options(max_retries=MAX_RETRIES,
                                                    retry_exceptions=False, num_cpus=1)
        log.debug("ray: %d nodes, %d CPUs at %s", self.nodes, self.cpus, where)

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, fn: Callable[..., list[R]], items: Iterable[T], *args: Any,
            weight: Callable[[T], int] | None = None) -> Results[R]:
        ray = self._ray
        stored = [ray.put(arg) for arg in args]  # once per map, not once per task
        window: deque[Any] = deque()
        limit = 2 * self.cpus + 2

        def take() -> tuple[str, list[R]]:
            try:
                node, results, error = ray.get(window.popleft())
            except ray.exceptions.RayTaskError:
                raise
            except ray.exceptions.RayError as err:
                raise InputError(f"the Ray cluster lost a task {MAX_RETRIES + 1} times "
                                 f"({first_line(err)}); run the same command with --resume "
                                 "to continue") from None
            if error is not None:
                raise InputError(error)
            return node, results

        try:
            for shard in shards(items, weight, self.frames_per_task):
                window.append(self._task.remote(fn, shard, *stored))
                if len(window) >= limit:
                    node, results = take()
                    for result in results:
                        yield result, node
            while window:
                node, results = take()
                for result in results:
                    yield result, node
        finally:
            if window:
                # The tasks in flight may finish first: one interrupted or killed where it
                # stands (as it is when the driver leaves) would leave half its work behind,
                # a simulator's unfinished render folder. What is left after a while is cancelled.
                _, running = ray.wait(list(window), num_returns=len(window),
                                      timeout=SETTLE_S)
                # Only those still running: cancelling a finished task can trip Ray's own
                # check ("Tried to complete task that was not pending") and end the driver.
                for ref in running:
                    ray.cancel(ref)

    def free_cpus(self) -> int:
        """The cluster's free CPUs, once all are free or after `SETTLE_S`: tasks just
        finished may still hold theirs a moment in Ray's view of its resources."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            free = int(self._ray.available_resources().get("CPU", 0))
            if free >= self.cpus or time.monotonic() > deadline:
                return free
            time.sleep(0.2)

    def record(self) -> dict[str, Any] | None:
        return {"name": self.name, "address": self.address or "local", "cpus": self.cpus}

    def describe(self) -> str:
        return f"{self.nodes} nodes, {self.cpus} CPUs at {self.address or 'this machine'}"

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
