"""Fault injection and request counts for `tpru.models.serve`, to test clients against it.

A test of a client (`OpenAIBackend`, the build stages that call one) gives
`serve` a `FaultPlan` saying which requests get which `Fault`, and then reads
what the server received from its `ServerStats`. They live apart from the HTTP
handling so that serve.py reads as a server; `Fault`, `Call`, `FaultPlan` and
`ServerStats` stay importable from `tpru.models.serve`, part of `serve`'s API;
the server also shows its `ServerStats` at ``GET /metrics``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fault:
    """What the server does to one request instead of (or before) answering it.

    Attributes:
        status: an HTTP error status to answer with; 0 answers normally.
        retry_after: the ``Retry-After`` header value to send, if any.
        stall: seconds to wait before answering (longer than the client's
            timeout makes the client give up on this attempt).
        message: the error message in the body.
    """

    status: int = 0
    retry_after: str | None = None
    stall: float = 0.0
    message: str = "injected fault"


NAMED_FAULTS: dict[str, Fault] = {
    "429": Fault(429, retry_after="0", message="rate limit reached (injected)"),
    "500": Fault(500, message="internal error (injected)"),
    "503": Fault(503, retry_after="0", message="overloaded (injected)"),
    "400": Fault(400, message="bad request (injected)"),
    "stall": Fault(stall=5.0),
}
"""Fault shorthands; "stall" waits `stall_seconds` (see `serve`)."""


@dataclass(frozen=True)
class Call:
    """One chat-completion request as the server received it, for a fault plan to judge.

    Attributes:
        index: 0 for the first POST the server received, then 1, 2, ...
        headers: the request headers.
        body: the parsed JSON body, or None when it was not JSON.
    """

    index: int
    headers: Mapping[str, str]
    body: Mapping[str, Any] | None


FaultPlan = Sequence[Fault | str | None] | Callable[[Call], Fault | str | None]
"""Per request, a fault or none: a list indexed by `Call.index` (past its end, none),
or a function of the `Call`."""


@dataclass
class ServerStats:
    """What the server received, counted under a lock (handlers run on many threads)."""

    calls: int = 0
    """POSTs to /v1/chat/completions, retries included."""
    statuses: Counter[int] = field(default_factory=Counter)
    """How often each status was answered."""
    in_flight: int = 0
    max_in_flight: int = 0
    """The most chat-completion requests being handled at one time."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self) -> int:
        """Count a new call; return its index."""
        with self.lock:
            index = self.calls
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return index

    def answered(self, status: int) -> None:
        """Count a status, before it is sent, so a client that has it sees it counted."""
        with self.lock:
            self.statuses[status] += 1

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def prometheus(self) -> str:
        """The counts in Prometheus' text exposition format (``GET /metrics``)."""
        with self.lock:
            statuses = sorted(self.statuses.items())
            lines = [
                "# HELP tpru_serve_requests_total Chat completion requests received, "
                "retries included.",
                "# TYPE tpru_serve_requests_total counter",
                f"tpru_serve_requests_total {self.calls}",
                "# HELP tpru_serve_responses_total Chat completion answers by HTTP status.",
                "# TYPE tpru_serve_responses_total counter",
                *(f'tpru_serve_responses_total{{status="{status}"}} {count}'
                  for status, count in statuses),
                "# HELP tpru_serve_requests_in_flight Chat completion requests being "
                "answered now.",
                "# TYPE tpru_serve_requests_in_flight gauge",
                f"tpru_serve_requests_in_flight {self.in_flight}",
            ]
        return "\n".join(lines) + "\n"
