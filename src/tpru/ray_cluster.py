"""Reaching a Ray cluster: what the build's Ray engine and the ``ray:`` model backend share."""

from __future__ import annotations

import socket

from tpru.diagnostics import InputError

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a cluster's address to answer before giving up."""


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing listens at ``HOST:PORT`` (Ray itself would
    wait minutes). Other forms (``auto``, ``ray://...``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise InputError(f"cannot reach the Ray cluster at {address}: "
                         f"{err.strerror or err} (is `ray start --head` running there, and "
                         "is that its address?)") from None
