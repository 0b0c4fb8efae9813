"""Spreading one `OpenAIBackend`'s requests over several servers of the same model.

Give ``base_url`` a list (one vLLM or ``tpru.models.serve`` server per GPU
node, say) and each request goes to a server with a free slot, the least busy
one first: every server takes up to ``concurrency`` requests at a time, and a
free server takes the next request, so a fast server does more of the work and
none waits for a slow one.

Why the failure rules are what they are: a failed attempt (a dropped
connection, a timeout, a 5xx, a 429) is retried under the backend's own retry
policy (``max_retries``, backoff with jitter, ``Retry-After``), on another
server when there is one, since the next attempt at a sick server would likely
fail too. A server that fails `DROP_AFTER` attempts in a row (connections,
timeouts, 5xx: the server's trouble, not the request's) is dropped for the rest
of the backend's life, with a warning, so a node that died costs a few
attempts, not a timeout per request. When every server has been dropped,
`generate` stops with an `InputError` naming each server's last error.

Which server answered never shows in the results: answers come back in
request order, so a caller that writes them in that order writes the same
bytes however the requests were spread (for a model that answers a question
the same way every time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from tpru.diagnostics import InputError
from tpru.models.base import Request, Response

if TYPE_CHECKING:
    from tpru.models.openai import OpenAIBackend

log = logging.getLogger(__name__)

DROP_AFTER = 3
"""A server is dropped after this many failed attempts in a row."""


@dataclass(frozen=True)
class Attempt:
    """How one HTTP attempt of a request went.

    Attributes:
        url: the URL the request was sent to.
        error: what went wrong ("" when `response` is set).
        response: the request's final response (a chat completion, or an answer
            that is not one), or None when the attempt failed.
        retry: whether another attempt may succeed (rate limits, server trouble).
        server_fault: whether the failure is the server's (a connection, a
            timeout, a 5xx), which counts towards dropping it.
        wait: seconds the server asked to wait (``Retry-After``), if it did.
    """

    url: str
    error: str = ""
    response: Response | None = None
    retry: bool = False
    server_fault: bool = False
    wait: float | None = None


class ServersDown(InputError):
    """Every server of a backend has been dropped."""


@dataclass
class _Server:
    url: str
    failures: int = 0
    """Failed attempts in a row."""
    dropped: bool = False
    last_error: str = ""


class ServerPool:
    """The servers of one backend and their health, kept from one `generate` to the next."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.servers = [_Server(url) for url in urls]

    def alive(self) -> list[_Server]:
        return [server for server in self.servers if not server.dropped]

    def succeeded(self, server: _Server) -> None:
        server.failures = 0

    def failed(self, server: _Server, error: str) -> None:
        """Count a failed attempt of `server`; drop it after `DROP_AFTER` in a row."""
        server.failures += 1
        server.last_error = error
        if server.dropped or server.failures < DROP_AFTER:
            return
        server.dropped = True
        left = len(self.alive())
        log.warning("dropping the server %s after %d failed attempts in a row (%s); "
                    "%d of %d servers left", server.url, server.failures, error, left,
                    len(self.servers))

    def down(self, name: str) -> ServersDown:
        errors = "; ".join(f"{s.url}: {s.last_error}" for s in self.servers)
        return ServersDown(f"{name}: every server failed {DROP_AFTER} attempts in a row and "
                           f"was dropped ({errors})")


class _Slots:
    """Free request slots per live server, during one `spread` (in its event loop)."""

    def __init__(self, pool: ServerPool, concurrency: int) -> None:
        self.pool = pool
        self.concurrency = concurrency
        self.busy = {server.url: 0 for server in pool.servers}
        self.changed = asyncio.Condition()

    async def take(self, avoid: _Server | None) -> _Server | None:
        """The least busy live server with a free slot, other than `avoid` if another is
        alive (waiting for one to free up); None when every server is dropped."""
        async with self.changed:
            while alive := self.pool.alive():
                others = len(alive) > 1
                free = [s for s in alive if self.busy[s.url] < self.concurrency
                        and not (others and s is avoid)]
                if free:
                    server = min(free, key=lambda s: self.busy[s.url])
                    self.busy[server.url] += 1
                    return server
                await self.changed.wait()
            return None

    async def give_back(self, server: _Server) -> None:
        async with self.changed:
            self.busy[server.url] -= 1
            self.changed.notify_all()


async def spread(backend: OpenAIBackend, pool: ServerPool, client: httpx.AsyncClient,
                 requests: Sequence[Request], key: str | None) -> list[Response]:
    """Answer `requests` in order, spread over the live servers of `pool`.

    Raises:
        ServersDown: every server has been dropped (now or by an earlier call).
    """
    if not pool.alive():
        raise pool.down(backend.name)
    slots = _Slots(pool, backend.concurrency)
    # Held across retries and their waits: the images of at most as many requests as
    # there are slots are encoded in memory at once.
    admitted = asyncio.Semaphore(backend.concurrency * len(pool.servers))

    async def one(request: Request) -> Response:
        async with admitted:
            try:
                payload = backend.payload(request)
            except OSError as err:
                return Response(id=request.id, text="", error=f"cannot read image: {err}")
            started = time.monotonic()
            attempts = backend.max_retries + 1
            server: _Server | None = None
            for attempt in range(attempts):
                server = await slots.take(avoid=server)
                if server is None:
                    raise pool.down(backend.name)
                try:
                    outcome = await backend.attempt(client, server.url, request, payload, key,
                                                    attempt, started)
                    if outcome.server_fault:
                        pool.failed(server, outcome.error)
                    else:
                        pool.succeeded(server)
                finally:
                    await slots.give_back(server)
                if outcome.response is not None:
                    return outcome.response
                if not outcome.retry or attempt + 1 == attempts:
                    break
                await backend.wait_to_retry(request, outcome, attempt, key)
            return backend.failed(request, outcome, attempt, key)

    tasks = [asyncio.ensure_future(one(request)) for request in requests]
    try:
        return list(await asyncio.gather(*tasks))
    except ServersDown:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
