"""Serve any Backend over an OpenAI-compatible HTTP API.

`serve(backend)` starts a small standard-library HTTP server on a thread and
returns a `Server` with its ``url`` (ending in ``/v1``). It answers:

- ``POST /v1/chat/completions``: OpenAI Chat Completions, one choice, no
  streaming. Text parts become the prompt; each ``image_url`` part (a base64
  ``data:`` URL) is written to a temporary folder and becomes an ``<image>``
  placeholder at its place in the text, so the backend sees the same
  `Request` a direct caller would build.
- ``GET /v1/models``: the one model served.

Why it exists: to put a local model (``hf:PATH``) behind the same API as a
hosted one, and to test `OpenAIBackend` against a real server. For tests the
server injects faults on request (429 with ``Retry-After``, 500, 503, 400, or
a stall longer than the client's timeout) and counts what it receives
(`ServerStats`: attempts, statuses, most requests in flight at once).

From the command line::

    python -m tpru.models.serve --model hf:path/to/model --port 8000

Remote image URLs are refused: the server never fetches anything.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import logging
import mimetypes
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError
from tpru.models.base import IMAGE_PLACEHOLDER, Backend, Request

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024 * 1024


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


class _BadRequest(Exception):
    """A request the server refuses; the message goes back to the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
        except _BadRequest as err:
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
        data = json.dumps(payload).encode("utf-8")
        if self.counting:
            self.server.stats.answered(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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


def request_from_chat(body: Mapping[str, Any], image_dir: Path, *, request_id: str) -> Request:
    """Turn a Chat Completions body into a `Request`, writing its images into `image_dir`.

    System (and developer) messages become `Request.system`; user messages
    become the prompt, joined by newlines, with ``<image>`` where each image
    part was. Multi-turn chats, streaming and ``n > 1`` are refused.

    Raises:
        _BadRequest: the body is not a request this server can answer.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list")
    if body.get("stream"):
        raise _BadRequest("streaming is not supported")
    if body.get("n", 1) != 1:
        raise _BadRequest("only n=1 is supported")
    system: list[str] = []
    prompt: list[str] = []
    images: list[str] = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _BadRequest(f"messages[{number}] is not an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_only(message.get("content"), number))
        elif role == "user":
            prompt.append(_user_content(message.get("content"), number, image_dir, images))
        else:
            raise _BadRequest(f"messages[{number}]: role {role!r} is not served "
                              f"(single-turn system and user messages only)")
    if not prompt:
        raise _BadRequest("no user message")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 1024))
    temperature = body.get("temperature", 1.0)
    seed = body.get("seed")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _BadRequest(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise _BadRequest(f"temperature must be a number >= 0, got {temperature!r}")
    if seed is not None and not isinstance(seed, int):
        raise _BadRequest(f"seed must be an integer, got {seed!r}")
    text = "\n".join(prompt)
    if text.count(IMAGE_PLACEHOLDER) != len(images):
        raise _BadRequest(f"the text itself contains {IMAGE_PLACEHOLDER!r}; "
                          f"send images as image_url parts")
    return Request(id=request_id, prompt=text, images=tuple(images), max_new_tokens=max_tokens,
                   temperature=float(temperature), seed=seed,
                   system="\n".join(system) or None)


def _text_only(content: Any, number: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if all(isinstance(text, str) for text in texts) and len(texts) == len(content):
            return "".join(str(text) for text in texts)
    raise _BadRequest(f"messages[{number}]: a system message takes text only")


def _user_content(content: Any, number: int, image_dir: Path, images: list[str]) -> str:
    """The prompt text of one user message; its images are saved and appended to `images`."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _BadRequest(f"messages[{number}]: content must be a string or a list of parts")
    text: list[str] = []
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{number}].content[{position}]"
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str):
                raise _BadRequest(f"{where}: image_url without a url")
            images.append(str(_save_data_url(url, image_dir / f"{len(images):03d}", where)))
            text.append(IMAGE_PLACEHOLDER)
        else:
            raise _BadRequest(f"{where}: unsupported part type {kind!r} (text and image_url)")
    return "".join(text)


def _save_data_url(url: str, stem: Path, where: str) -> Path:
    """Decode a base64 ``data:`` URL into a file named `stem` plus the type's extension."""
    header, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not header.endswith(";base64"):
        shown = url if len(url) < 60 else url[:60] + "..."
        raise _BadRequest(f"{where}: only base64 data: URLs are accepted, got {shown!r}")
    mime = header[len("data:"):-len(";base64")]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest(f"{where}: the data URL is not valid base64") from None
    extension = mimetypes.guess_extension(mime) or ".img"
    path = stem.with_suffix(".jpg" if extension in (".jpe", ".jpeg") else extension)
    path.write_bytes(blob)
    return path


def completion_body(text: str, usage: Mapping[str, Any], model: str,
                    max_tokens: int) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for one answer."""
    counts = {key: usage[key] for key in ("prompt_tokens", "completion_tokens")
              if isinstance(usage.get(key), int)}
    if len(counts) == 2:
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    finish = "length" if counts.get("completion_tokens", 0) >= max_tokens else "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": counts,
    }


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
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
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
