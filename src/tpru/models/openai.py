"""A backend for any OpenAI-compatible Chat Completions server.

One class, `OpenAIBackend`, talks to the OpenAI API, vLLM's ``vllm serve``,
SGLang, LM Studio, tpru's own `tpru.models.serve`, or anything else that speaks
``POST /v1/chat/completions``. Images travel as base64 data URLs in
``image_url`` content parts, interleaved with the text at the ``<image>``
placeholders, so the model sees each image where the prompt puts it.

Why the retry rules are what they are: rate limits (429) and server trouble
(5xx, timeouts, dropped connections) pass with time, so those are retried with
exponential backoff and full jitter (a random wait between 0 and the growing
cap, so many clients do not retry in lockstep), and a server's ``Retry-After``
is honoured. Any other 4xx means the request itself is wrong and would fail
the same way again, so it fails at once. A request that still fails after the
last retry comes back as a `Response` with `error` set; `generate` never
raises for one bad item, so an evaluation run records it and moves on. (A
server that fails every request, a wrong URL or key, is the caller's to
notice: the evaluation runner stops after a run of failed items.)

Several servers of one model (one vLLM server per GPU node) are one backend:
give ``base_url`` a list and the requests are spread over them, a failed
attempt retried on another server, a server that keeps failing dropped (see
`tpru.models.openai_pool`).

The API key is read from an environment variable (never passed as an
argument, so it cannot end up in ``run.json`` with the other options) and is
redacted from every error message, in case a server echoes it back.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import email.utils
import json
import logging
import mimetypes
import os
import random
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tpru.diagnostics import InputError
from tpru.models.base import Request, Response
from tpru.models.openai_pool import Attempt, ServerPool, spread
from tpru.schema import IMAGE_PLACEHOLDER

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_RETRY_STATUS = frozenset({408, 429})
"""4xx statuses worth retrying: rate limits, and 408, a timeout by another name."""

_SNIFF: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)

T = TypeVar("T")


def image_data_url(path: str | Path) -> str:
    """Read an image file and return it as a ``data:<mime>;base64,...`` URL.

    The MIME type comes from the file's first bytes (extensions lie, e.g. a
    PNG saved as ``.jpg``), falling back to the extension.

    Raises:
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    mime = _sniff_mime(data) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _sniff_mime(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _SNIFF:
        if data.startswith(magic):
            return mime
    return None


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """The Chat Completions ``messages`` for one request.

    The prompt is split at its ``<image>`` placeholders; each image becomes an
    ``image_url`` part between the text parts around it. A prompt without
    images stays a plain string, which every compatible server accepts.

    Example:
        >>> chat_messages(Request(id="1", prompt="Hi"))
        [{'role': 'user', 'content': 'Hi'}]
    """
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if not request.images:
        messages.append({"role": "user", "content": request.prompt})
        return messages
    parts: list[dict[str, Any]] = []
    pieces = request.prompt.split(IMAGE_PLACEHOLDER)
    for index, text in enumerate(pieces):
        if text:
            parts.append({"type": "text", "text": text})
        if index < len(request.images):
            url = image_data_url(request.images[index])
            parts.append({"type": "image_url", "image_url": {"url": url}})
    messages.append({"role": "user", "content": parts})
    return messages


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long a server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date; a value that parses to
    neither is ignored (None), as is a negative one.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    if "retry-after-ms" in lower:
        try:
            value = float(lower["retry-after-ms"]) / 1000.0
            return value if value >= 0 else None
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        value = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, value)
    return value if value >= 0 else None


class OpenAIBackend:
    """Chat Completions over HTTP with bounded concurrency and retries.

    Args:
        model: the model name the server expects (``gpt-4o``, or the name a
            local server was started with).
        base_url: the API root ending in ``/v1``; default ``$OPENAI_BASE_URL``
            or the OpenAI API. A list of API roots (servers of the same model)
            spreads the requests over them (`tpru.models.openai_pool`).
        api_key_env: the environment variable holding the key; when it is unset
            no ``Authorization`` header is sent (local servers need none), except
            that the OpenAI API itself is refused up front.
        concurrency: most requests in flight at once, per server.
        timeout: seconds per HTTP phase (connect, write, read) before an attempt
            counts as timed out.
        max_retries: retries after the first attempt.
        backoff: the first retry waits up to this many seconds; the cap doubles
            with each retry.
        max_backoff: the longest single wait, ``Retry-After`` included.
        extra_body: more JSON fields for every request (``top_p``, ...).
        rng: the generator for retry jitter; by default one seeded from the OS,
            because clients that share a seed retry in lockstep.

    Example:
        >>> backend = OpenAIBackend("tiny", base_url="http://127.0.0.1:8000/v1")
        >>> backend.name
        'openai:tiny'
    """

    def __init__(self, model: str, *, base_url: str | Sequence[str] | None = None,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 120, max_retries: int = 6, backoff: float = 1.0,
                 max_backoff: float = 60.0, extra_body: Mapping[str, Any] | None = None,
                 rng: random.Random | None = None) -> None:
        if not model:
            raise InputError("openai backend: a model name is required (openai:MODEL)")
        if concurrency < 1:
            raise InputError(f"openai backend: concurrency must be at least 1, got {concurrency}")
        if max_retries < 0 or timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise InputError("openai backend: timeout must be positive and max_retries, "
                             "backoff and max_backoff not negative")
        self.model = model
        self.name = f"openai:{model}"
        self.base_urls = _base_urls(base_url)
        self.base_url = self.base_urls[0]
        self._pool = ServerPool(self.base_urls) if len(self.base_urls) > 1 else None
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.extra_body = dict(extra_body or {})
        self._rng = rng or random.Random()
        # The key itself is read when requests are sent and never kept on the
        # object, so nothing that saves or prints the backend can reveal it.
        if not os.environ.get(api_key_env) and DEFAULT_BASE_URL in self.base_urls:
            raise InputError(f"openai backend: set the environment variable {api_key_env} "
                             f"to your API key, or pass base_url for a local server")

    def __repr__(self) -> str:
        # Spelled out so that no default repr ever shows the key.
        urls = self.base_url if self._pool is None else list(self.base_urls)
        return (f"OpenAIBackend(model={self.model!r}, base_url={urls!r}, "
                f"concurrency={self.concurrency})")

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer every request, at most `concurrency` at a time per server, in request order.

        Raises:
            InputError: with several servers, when every one of them has been dropped.
        """
        return _run(self.agenerate(requests))

    async def agenerate(self, requests: Sequence[Request]) -> list[Response]:
        """`generate` for callers that already run an event loop."""
        if not requests:
            return []
        key = os.environ.get(self.api_key_env) or None
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        slots = self.concurrency * len(self.base_urls)
        limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout),
                                     limits=limits) as client:
            if self._pool is not None:
                return await spread(self, self._pool, client, requests, key)
            semaphore = asyncio.Semaphore(self.concurrency)

            async def one(request: Request) -> Response:
                # Held across retries and their waits: the images of at most
                # `concurrency` requests are encoded in memory at once.
                async with semaphore:
                    return await self._answer(client, request, key)

            return list(await asyncio.gather(*(one(request) for request in requests)))

    async def _answer(self, client: httpx.AsyncClient, request: Request,
                      key: str | None) -> Response:
        """One request with retries; every failure becomes a Response with `error`."""
        try:
            payload = self.payload(request)
        except OSError as err:
            return Response(id=request.id, text="", error=f"cannot read image: {err}")
        started = time.monotonic()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            outcome = await self.attempt(client, self.base_url, request, payload, key,
                                         attempt, started)
            if outcome.response is not None:
                return outcome.response
            if not outcome.retry or attempt + 1 == attempts:
                break
            await self.wait_to_retry(request, outcome, attempt, key)
        return self.failed(request, outcome, attempt, key)

    async def attempt(self, client: httpx.AsyncClient, base_url: str, request: Request,
                      payload: Mapping[str, Any], key: str | None, attempt: int,
                      started: float) -> Attempt:
        """Send `payload` once to the server at `base_url` and say how it went."""
        url = f"{base_url}/chat/completions"
        try:
            reply = await client.post(url, json=payload)
        except httpx.TimeoutException as err:
            return Attempt(url, f"timed out after {self.timeout:g} s ({type(err).__name__})",
                           retry=True, server_fault=True)
        except httpx.TransportError as err:
            return Attempt(url, f"connection failed: {type(err).__name__}: {err}",
                           retry=True, server_fault=True)
        if reply.status_code == 200:
            return Attempt(url, response=self._parse(request, reply, attempt + 1, started,
                                                     key))
        error = f"HTTP {reply.status_code}: {_error_message(reply)}"
        if reply.status_code < 500 and reply.status_code not in _RETRY_STATUS:
            return Attempt(url, error)
        return Attempt(url, error, retry=True, server_fault=reply.status_code >= 500,
                       wait=retry_after_seconds(reply.headers))

    async def wait_to_retry(self, request: Request, outcome: Attempt, attempt: int,
                            key: str | None) -> None:
        """Log the failed attempt and wait before the next (see `_delay`)."""
        delay = self._delay(attempt, outcome.wait)
        log.warning("request %s: %s; retry %d of %d in %.2f s", request.id,
                    _redact(outcome.error, key), attempt + 1, self.max_retries, delay)
        await asyncio.sleep(delay)

    def failed(self, request: Request, outcome: Attempt, attempt: int,
               key: str | None) -> Response:
        """The error response of a request whose last attempt was `outcome`."""
        message = _redact(f"{outcome.error} (after {attempt + 1} attempt"
                          f"{'s' if attempt else ''} to {outcome.url})", key)
        log.error("request %s failed: %s", request.id, message)
        return Response(id=request.id, text="", error=message,
                        usage={"attempts": attempt + 1})

    def payload(self, request: Request) -> dict[str, Any]:
        """The request body: the chat messages with the images read and encoded.

        Raises:
            OSError: an image cannot be read.
        """
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(request),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            payload["seed"] = request.seed
        payload.update(self.extra_body)
        return payload

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter under a doubling cap, or what the server asked for; never over the cap."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        cap = min(self.max_backoff, self.backoff * (2 ** attempt))
        return self._rng.uniform(0.0, cap)

    def _parse(self, request: Request, reply: httpx.Response, attempts: int,
               started: float, key: str | None) -> Response:
        try:
            body = reply.json()
            message = body["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("the message is not an object")
        except (ValueError, KeyError, IndexError, TypeError):
            error = (f"HTTP 200 without a chat completion from {reply.url} (is it an "
                     f"OpenAI-compatible /v1 API?): {reply.text[:200]!r}")
            return Response(id=request.id, text="", error=_redact(error, key),
                            usage={"attempts": attempts})
        usage: dict[str, Any] = {}
        raw_usage = body.get("usage")
        if isinstance(raw_usage, dict):
            usage.update({key: value for key, value in raw_usage.items()
                          if isinstance(value, (int, float, dict))})
        usage["attempts"] = attempts
        usage["seconds"] = round(time.monotonic() - started, 3)
        return Response(id=request.id, text=_content_text(message.get("content")), usage=usage)


def _base_urls(base_url: str | Sequence[str] | None) -> tuple[str, ...]:
    """The servers' API roots, checked: `base_url`, its list, or the default."""
    if base_url is None or isinstance(base_url, str):
        urls = [base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
    else:
        urls = list(base_url)
        if not urls:
            raise InputError("openai backend: base_url is an empty list; give one URL or more")
    roots: list[str] = []
    for url in urls:
        if not isinstance(url, str):
            raise InputError(f"openai backend: base_url {url!r} is not an http(s) URL")
        root = url.rstrip("/")
        try:
            scheme = httpx.URL(root).scheme
        except httpx.InvalidURL:
            scheme = ""
        if scheme not in ("http", "https"):
            raise InputError(f"openai backend: base_url {root!r} is not an http(s) URL")
        if root in roots:
            raise InputError(f"openai backend: base_url lists {root!r} twice")
        roots.append(root)
    return tuple(roots)


def _redact(text: str, key: str | None) -> str:
    """`text` with the API key blanked out, in case a server echoed it back."""
    return text.replace(key, "[redacted]") if key else text


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return ""


def _error_message(reply: httpx.Response) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message"}}``), kept short."""
    try:
        body = reply.json()
    except ValueError:
        return reply.text.strip()[:300] or reply.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if body.get("detail"):
            return str(body["detail"])[:300]
    return json.dumps(body)[:300]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # A running loop (a notebook, an async caller) cannot be re-entered: use a thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
