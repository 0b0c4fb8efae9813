"""Serve any Backend over an OpenAI-compatible HTTP API.

`serve(backend)` starts a small standard-library HTTP server on a thread and
returns a `Server` with its ``url`` (ending in ``/v1``). It answers:

- ``POST /v1/chat/completions``: OpenAI Chat Completions, one choice, no
  streaming. Text parts become the prompt; each ``image_url`` part (a base64
  ``data:`` URL) is written to a temporary folder and becomes an ``<image>``
  placeholder at its place in the text, so the backend sees the same
  `Request` a direct caller would build (`tpru.models.serve_chat` holds
  this translation, both ways).
- ``GET /v1/models``: the one model served.
- ``GET /metrics``: what the server has received so far (chat completions,
  answers by status, requests in flight), in Prometheus' text format, to
  watch a server, or several behind one build, at work.

Why it exists: to put a local model (``hf:PATH``) behind the same API as a
hosted one, and to test `OpenAIBackend` against a real server. For tests the
server injects faults on request (429 with ``Retry-After``, 500, 503, 400, or
a stall longer than the client's timeout) and counts what it receives
(`ServerStats`: attempts, statuses, most requests in flight at once); both
are in `tpru.models.serve_faults` and importable from here.

From the command line::

    python -m tpru.models.serve --model hf:path/to/model --port 8000

Remote image URLs are refused: the server never fetches anything.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError
from tpru.models.base import Backend
from tpru.models.serve_chat import BadRequest, completion_body, request_from_chat
from tpru.models.serve_faults import NAMED_FAULTS, Call, Fault, FaultPlan, ServerStats

__all__ = ["MAX_BODY_BYTES", "Call", "Fault", "FaultPlan", "Server", "ServerStats", "main",
           "serve"]

log = logging.getLogger(__name__)

MAX_PORT = 65535
"""The largest TCP port number."""

MAX_BODY_BYTES = 256 * 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    """The listening socket plus everything the handlers share."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, backend: Backend, model_name: str,
                 faults: FaultPlan | None, stall_seconds: float, api_key: str | None,
                 serialize: bool, image_root: Path) -> None:
        super().__init__(address, _Handler)
        self.backend = backend
        self.model_name = model_name
        self.faults = faults
        self.stall_seconds = stall_seconds
        self.api_key = api_key
        self.backend_lock: threading.Lock | None = threading.Lock() if serialize else None
        self.image_root = image_root
        self.stats = ServerStats()
        self.stopping = threading.Event()

    def fault_for(self, call: Call) -> Fault | None:
        plan = self.faults
        if plan is None:
            return None
        chosen = plan(call) if callable(plan) else (
            plan[call.index] if call.index < len(plan) else None)
        if chosen is None or isinstance(chosen, Fault):
            return chosen
        if chosen not in NAMED_FAULTS:
            raise ValueError(f"unknown fault {chosen!r} (known: {', '.join(NAMED_FAULTS)})")
        fault = NAMED_FAULTS[chosen]
        return replace(fault, stall=self.stall_seconds) if chosen == "stall" else fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    counting = False
    """True while answering a chat completion, whose status the stats count."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._json(200, {"object": "list", "data": [{
                "id": self.server.model_name, "object": "model", "created": 0,
                "owned_by": "tpru"}]})
        elif path == "/metrics":
            self._text(200, self.server.stats.prometheus())
        else:
            self._error(404, f"no route GET {path}", "not_found")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/chat/completions":
            self._read_body()
            self._error(404, f"no route POST {path}", "not_found")
            return
        stats = self.server.stats
        raw = self._read_body()
        body = _parse_json(raw)
        index = stats.enter()
        self.counting = True
        try:
            self._chat(Call(index, dict(self.headers.items()), body), raw is None)
        finally:
            self.counting = False
            stats.leave()

    def _chat(self, call: Call, too_large: bool) -> None:
        """Answer one chat completion, or its injected fault."""
        server = self.server
        if server.api_key is not None:
            presented = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(presented.encode(), server.api_key.encode()):
                return self._error(401, "invalid or missing API key", "invalid_api_key")
        try:
            fault = server.fault_for(call)
        except ValueError as err:  # a fault plan that names no known fault
            return self._error(500, str(err), "server_error")
        if fault is not None:
            if fault.stall > 0 and server.stopping.wait(fault.stall):
                self.close_connection = True  # closing down: leave without an answer
                return
            if fault.status:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._error(fault.status, fault.message, "injected", headers)
        if too_large:
            return self._error(413, f"the body needs a Content-Length of at most "
                                    f"{MAX_BODY_BYTES} bytes", "too_large")
        if call.body is None:
            return self._error(400, "the request body is not a JSON object", "invalid_json")
        folder = Path(tempfile.mkdtemp(prefix=f"call{call.index}-", dir=server.image_root))
        try:
            request = request_from_chat(call.body, folder, request_id=f"call-{call.index}")
            if server.backend_lock is None:
                response = server.backend.generate([request])[0]
            else:
                with server.backend_lock:
                    response = server.backend.generate([request])[0]
        except BadRequest as err:
            return self._error(err.status, str(err), "invalid_request_error")
        except Exception as err:  # a backend bug must not kill the server thread silently
            log.exception("backend failed on call %d", call.index)
            return self._error(500, f"backend failed: {type(err).__name__}: {err}",
                               "server_error")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if response.error:
            return self._error(500, f"backend error: {response.error}", "server_error")
        model = str(call.body.get("model") or server.model_name)
        self._json(200, completion_body(response.text, response.usage, model,
                                        request.max_new_tokens))

    def _read_body(self) -> bytes | None:
        """The request body; None when it is too large or of unknown length (left unread)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _error(self, status: int, message: str, kind: str,
               headers: Mapping[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "code": status}},
                          headers)

    def _json(self, status: int, payload: Mapping[str, Any],
              headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")

    def _send(self, status: int, data: bytes, content_type: str,
              headers: Mapping[str, str] | None = None) -> None:
        if self.counting:
            self.server.stats.answered(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up (e.g. timed out during a stall); nothing to answer.
            self.close_connection = True


def _parse_json(raw: bytes | None) -> Mapping[str, Any] | None:
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


class Server:
    """A running server; stop it with `close` (or use it as a context manager).

    Attributes:
        url: the API root, ``http://HOST:PORT/v1``, to give a client as base_url.
        stats: what the server has received so far.
    """

    def __init__(self, http: _HTTPServer, image_root: Path) -> None:
        self._http = http
        self._image_root = image_root
        host, port = http.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}/v1"
        self.stats = http.stats
        # A short poll interval lets close() return quickly.
        self._thread = threading.Thread(target=http.serve_forever, args=(0.05,),
                                        name=f"tpru-serve-{port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening, end stalled requests, and remove the temporary images."""
        self._http.stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
        shutil.rmtree(self._image_root, ignore_errors=True)

    def wait(self) -> None:
        """Block until the server stops (e.g. on Ctrl-C in the command-line tool)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(backend: Backend, host: str = "127.0.0.1", port: int = 0, *,
          model_name: str | None = None, faults: FaultPlan | None = None,
          stall_seconds: float = 5.0, api_key: str | None = None,
          serialize: bool = True) -> Server:
    """Start serving `backend` on a background thread and return the running `Server`.

    Args:
        backend: any `Backend`.
        host: the address to listen on; the default is reachable from this machine only.
        port: 0 picks a free port (read it back from ``server.url``).
        model_name: the name in ``/v1/models`` and in answers; default ``backend.name``.
        faults: a fault plan (see `FaultPlan`) for tests: per request, a `Fault` or
            one of ``"429"``, ``"500"``, ``"503"``, ``"400"``, ``"stall"``.
        stall_seconds: how long a ``"stall"`` fault waits before answering.
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>``.
        serialize: call the backend from one request at a time (local models are
            rarely thread-safe); requests still arrive and wait concurrently.

    Example:
        >>> from tpru.models.baselines import RandomBackend  # doctest: +SKIP
        >>> with serve(RandomBackend(seed=0)) as server:  # doctest: +SKIP
        ...     OpenAIBackend("random", base_url=server.url).generate(requests)
    """
    if not 0 <= port <= MAX_PORT:
        raise InputError(f"port must be between 0 and {MAX_PORT}, got {port}")
    image_root = Path(tempfile.mkdtemp(prefix="tpru-serve-"))
    try:
        http = _HTTPServer((host, port), backend=backend,
                           model_name=model_name or backend.name, faults=faults,
                           stall_seconds=stall_seconds, api_key=api_key,
                           serialize=serialize, image_root=image_root)
    except OSError as err:
        shutil.rmtree(image_root, ignore_errors=True)
        raise InputError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    server = Server(http, image_root)
    log.info("serving %s at %s", http.model_name, server.url)
    return server


def _port(text: str) -> int:
    """An argparse ``type``: a TCP port number (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_PORT}, got {port}")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tpru.models.serve --model hf:PATH --port N``: serve until Ctrl-C."""
    from rich.console import Console

    parser = argparse.ArgumentParser(
        prog="python -m tpru.models.serve",
        description="Serve a tpru backend as an OpenAI-compatible Chat Completions API.")
    parser.add_argument("--model", required=True,
                        help="the backend to serve, e.g. hf:PATH_OR_HUB_ID, vllm:..., random")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8000,
                        help=f"port, 0 to {MAX_PORT} (default 8000; 0: any free)")
    parser.add_argument("--name", default=None,
                        help="model name clients use (default: the --model spec)")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="require clients to present the key held in this environment "
                             "variable (default: no key)")
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    try:
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise InputError(f"--api-key-env: the environment variable "
                                 f"{args.api_key_env} is not set")
        from tpru.models import open_backend

        backend = open_backend(args.model)
        server = serve(backend, args.host, args.port, model_name=args.name or args.model,
                       api_key=api_key)
    except InputError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return 2
    err.print(f"Serving {args.model} at {server.url} (Ctrl-C stops)", markup=False,
              highlight=False, soft_wrap=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
