"""One backend's requests spread over Ray actors, each holding its own copy of a model.

``ray:<another spec>`` (say ``ray:hf:Qwen/Qwen2.5-VL-7B-Instruct`` with
``actors=4, gpus_per_actor=1``) starts `actors` Ray actors on a cluster; each
opens ``open_backend(<another spec>, **options)`` once, on its own GPU, and
answers the slices of requests it is sent. A cluster of GPU nodes so runs an
``hf:`` or ``vllm:`` model without a server to stand up per node (the other way
to spread one model: ``openai:`` with a list of ``base_url``, `openai_pool`).

`generate` cuts the requests into contiguous slices, one per live actor, and
puts the answers back together in request order, so a caller that writes them
in that order writes the same bytes however many actors answered (for a model
that answers a question the same way every time).

Why the failure rules are what they are: an actor dies with its node, and a
model reloaded elsewhere costs minutes, so a dead actor is not restarted; the
slice it held goes to the least busy live actor (a slice is a pure function of
its requests, so answering it twice changes nothing). When every actor is dead,
`generate` stops with `ActorsDown`, one line. If the actors were stopped
(`close`, which frees their GPUs and CPUs) or Ray itself was shut down since
they started (``tpru build --engine ray`` ends its Ray with the build's passes,
before the audit asks the same backend), the next `generate` connects again,
to the same cluster if it is still up, and starts new actors.

The actors hold their CPUs and GPUs until closed: on a cluster that also runs
other tasks (the build engine's), leave it room (``cpus_per_actor=0`` for an
actor that waits on a server or a GPU).

Requests carry image *paths*: the actors read them where they run, so the
images must be on a filesystem every node sees (a build's work folder already
is, under ``--engine ray``), and every node needs the same tpru and model files.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ray as ray_module  # the tpru[ray] extra; missing, `tpru.registry.load` says so

from tpru.diagnostics import InputError, first_line
from tpru.models.base import Request, Response
from tpru.ray_cluster import check_reachable

log = logging.getLogger(__name__)

ray: Any = ray_module  # untyped in parts

REJOIN_TIMEOUT_S = 2.0
"""How long to wait for the cluster joined before to answer, after its Ray was shut down."""


class ActorsDown(InputError):
    """Every actor of a ``ray:`` backend has died."""


class _Holder:
    """The body of one actor: a backend opened once, answering slices of requests."""

    def __init__(self, spec: str, options: Mapping[str, Any]) -> None:
        from tpru.models import open_backend

        self.backend: Any = None
        self.error: str | None = None
        self.served = 0
        try:
            self.backend = open_backend(spec, **options)
        except InputError as err:  # sent back by `ready`, as the driver's one-line error
            self.error = str(err)

    def ready(self) -> tuple[str, str | None]:
        """The backend's name, or ("", why it could not be opened)."""
        return ("", self.error) if self.backend is None else (self.backend.name, None)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.served += len(requests)
        responses: list[Response] = self.backend.generate(requests)
        return responses

    def count(self) -> int:
        """How many requests this actor has answered."""
        return self.served


class RayActorsBackend:
    """`spec`'s backend on `actors` Ray actors; see the module docstring.

    Args:
        spec: the backend each actor opens, e.g. ``hf:PATH``.
        options: that backend's options (passed unchanged).
        actors: how many copies of the model run at once.
        gpus_per_actor: GPUs Ray reserves per actor (1 for a model on a GPU;
            a fraction packs several actors on one GPU).
        cpus_per_actor: CPUs Ray reserves per actor.
        ray_address: a running cluster's ``HOST:PORT`` (or ``auto``, or
            ``ray://HOST:PORT``); None: the cluster in ``RAY_ADDRESS`` if that
            is set, else a Ray started on this machine. A Ray already running
            in this process (``tpru build --engine ray``'s) is used as it is.

    Raises:
        InputError: a bad option value, a cluster that cannot be reached or
            has too few CPUs or GPUs for the actors, or the wrapped backend's
            own error (a missing model, say), as the first actor met it.
    """

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None, *,
                 actors: int = 1, gpus_per_actor: float = 0.0, cpus_per_actor: float = 1.0,
                 ray_address: str | None = None) -> None:
        if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
            raise InputError(f"backend 'ray:{spec}': option actors must be a whole number of "
                             f"at least 1, not {actors!r}")
        for option, value in (("gpus_per_actor", gpus_per_actor),
                              ("cpus_per_actor", cpus_per_actor)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputError(f"backend 'ray:{spec}': option {option} must be a number "
                                 f"of at least 0, not {value!r}")
        self.spec = spec
        self.options = dict(options or {})
        self.actors = actors
        self.gpus_per_actor = float(gpus_per_actor)
        self.cpus_per_actor = float(cpus_per_actor)
        self.ray_address = ray_address
        self.handles: list[Any] = []
        """The actors, live or dead, in the order they were started."""
        self._alive: list[int] = []
        self._owned = False
        self._job: str | None = None
        self._joined: str | None = None
        """The address of the Ray this process was already running when the actors started."""
        self.last_error = ""
        """Why the actor that died last died."""
        self.name = f"ray({actors}x {spec})"  # for messages until the actors say their name
        self.name = f"ray({actors}x {self._start()})"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order; see the module docstring for failures.

        Raises:
            ActorsDown: every actor has died (now or in an earlier call).
            InputError: the wrapped backend's own input error, as an actor met it.
        """
        if not requests:
            return []
        if not self._running():
            log.info("%s: the actors were stopped (closed, or their Ray shut down); "
                     "starting them again", self.name)
            self._start()
        if not self._alive:
            raise self._down()
        size = math.ceil(len(requests) / len(self._alive))
        slices = [list(requests[i:i + size]) for i in range(0, len(requests), size)]
        answers: list[list[Response] | None] = [None] * len(slices)
        pending: dict[Any, tuple[int, int]] = {}  # a call's ref -> (its slice, its actor)

        def send(index: int) -> None:
            busy = [actor for _, actor in pending.values()]
            actor = min(self._alive, key=busy.count)
            pending[self.handles[actor].generate.remote(slices[index])] = (index, actor)

        for index in range(len(slices)):
            send(index)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(done)
            try:
                answers[index] = ray.get(done)
            except ray.exceptions.RayActorError as err:
                self._lost(actor, err)
                if not self._alive:
                    raise self._down() from None
                send(index)
            except ray.exceptions.RayTaskError as err:
                if isinstance(err.cause, InputError):
                    raise InputError(str(err.cause)) from None
                raise
        return [response for answer in answers if answer is not None for response in answer]

    def served(self) -> list[int]:
        """Requests answered by each live actor, in the order of `handles` (dead ones left out)."""
        counts: list[int] = ray.get([self.handles[actor].count.remote() for actor in self._alive])
        return counts

    def close(self) -> None:
        """Stop the actors (and the Ray this backend started, if it did), freeing their GPUs;
        a later `generate` starts them again."""
        if self._running():
            for handle in self.handles:
                ray.kill(handle)
            if self._owned:
                ray.shutdown()
        self.handles, self._alive, self._job = [], [], None

    def __enter__(self) -> RayActorsBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> str:
        """Connect to Ray (unless this process already has), start the actors, wait until
        each has opened its backend; its name. On an error, nothing is left running."""
        self._connect()
        try:
            self._check_resources()
            holder = ray.remote(_Holder).options(
                num_cpus=self.cpus_per_actor, num_gpus=self.gpus_per_actor,
                max_restarts=0, max_task_retries=0)
            self.handles = [holder.remote(self.spec, self.options) for _ in range(self.actors)]
            self._alive = list(range(self.actors))
            log.info("%s: waiting for %d actors to open %s", self.name, self.actors, self.spec)
            try:
                ready = ray.get([handle.ready.remote() for handle in self.handles])
            except ray.exceptions.RayError as err:
                raise InputError(f"{self.name}: an actor failed to start: "
                                 f"{first_line(err)}") from None
            errors = [error for _, error in ready if error is not None]
            if errors:
                raise InputError(errors[0])
        except BaseException:
            self.close()
            raise
        name: str = ready[0][0]
        return name

    def _connect(self) -> None:
        self._owned = not ray.is_initialized()
        if self._owned:
            address = self.ray_address or os.environ.get("RAY_ADDRESS") or "local"
            if address == "local" and self._joined:
                # The cluster whose Ray this process ran before (the build engine's, which
                # disconnected): join it again if it is still up.
                try:
                    check_reachable(self._joined, timeout=REJOIN_TIMEOUT_S)
                    address = self._joined
                except InputError:
                    pass
            if address != "local":
                check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"{self.name}: cannot start or reach Ray at {address}: "
                                 f"{first_line(err)}") from None
        else:
            self._joined = ray.get_runtime_context().gcs_address
        self._job = ray.get_runtime_context().get_job_id()

    def _running(self) -> bool:
        """Whether the Ray the actors were started in is still this process's Ray."""
        return bool(ray.is_initialized()) and ray.get_runtime_context().get_job_id() == self._job

    def _check_resources(self) -> None:
        """An error, rather than actors that wait for ever, when the cluster is too small."""
        have = ray.cluster_resources()
        for resource, option, each in (("CPU", "cpus_per_actor", self.cpus_per_actor),
                                       ("GPU", "gpus_per_actor", self.gpus_per_actor)):
            need = each * self.actors
            if need > have.get(resource, 0) + 1e-9:
                raise InputError(
                    f"{self.name}: {self.actors} actors of {each:g} {resource} need {need:g} "
                    f"{resource}s; the Ray cluster has {have.get(resource, 0):g} (fewer actors, "
                    f"a lower {option}, or more nodes)")

    def _lost(self, actor: int, err: BaseException) -> None:
        self._alive.remove(actor)
        self.last_error = first_line(err)
        log.warning("%s: actor %d died (%s); %d of %d actors left", self.name, actor,
                    self.last_error, len(self._alive), len(self.handles))

    def _down(self) -> ActorsDown:
        return ActorsDown(f"{self.name}: every actor has died (the last: {self.last_error}); "
                          "run the same command again once the cluster's nodes are back")
