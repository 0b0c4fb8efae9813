"""Chat Completions bodies in and out of `tpru.models.serve`: parsing and answering.

`request_from_chat` turns an OpenAI Chat Completions request body into the
`Request` a direct caller of a `Backend` would build, saving its base64
images to files; `completion_body` wraps a backend's answer as a
``chat.completion`` object. They hold the OpenAI format, apart from the HTTP
server that carries it, so each can be read (and tested) alone.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpru.models.base import Request
from tpru.schema import IMAGE_PLACEHOLDER


class BadRequest(Exception):
    """A request the server refuses; the message goes back to the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def request_from_chat(body: Mapping[str, Any], image_dir: Path, *, request_id: str) -> Request:
    """Turn a Chat Completions body into a `Request`, writing its images into `image_dir`.

    System (and developer) messages become `Request.system`; user messages
    become the prompt, joined by newlines, with ``<image>`` where each image
    part was. Multi-turn chats, streaming and ``n > 1`` are refused.

    Raises:
        BadRequest: the body is not a request this server can answer.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    if body.get("stream"):
        raise BadRequest("streaming is not supported")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    system: list[str] = []
    prompt: list[str] = []
    images: list[str] = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{number}] is not an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_only(message.get("content"), number))
        elif role == "user":
            prompt.append(_user_content(message.get("content"), number, image_dir, images))
        else:
            raise BadRequest(f"messages[{number}]: role {role!r} is not served "
                              f"(single-turn system and user messages only)")
    if not prompt:
        raise BadRequest("no user message")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 1024))
    temperature = body.get("temperature", 1.0)
    seed = body.get("seed")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise BadRequest(f"temperature must be a number >= 0, got {temperature!r}")
    if seed is not None and not isinstance(seed, int):
        raise BadRequest(f"seed must be an integer, got {seed!r}")
    text = "\n".join(prompt)
    if text.count(IMAGE_PLACEHOLDER) != len(images):
        raise BadRequest(f"the text itself contains {IMAGE_PLACEHOLDER!r}; "
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
    raise BadRequest(f"messages[{number}]: a system message takes text only")


def _user_content(content: Any, number: int, image_dir: Path, images: list[str]) -> str:
    """The prompt text of one user message; its images are saved and appended to `images`."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"messages[{number}]: content must be a string or a list of parts")
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
                raise BadRequest(f"{where}: image_url without a url")
            images.append(str(_save_data_url(url, image_dir / f"{len(images):03d}", where)))
            text.append(IMAGE_PLACEHOLDER)
        else:
            raise BadRequest(f"{where}: unsupported part type {kind!r} (text and image_url)")
    return "".join(text)


def _save_data_url(url: str, stem: Path, where: str) -> Path:
    """Decode a base64 ``data:`` URL into a file named `stem` plus the type's extension."""
    header, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not header.endswith(";base64"):
        shown = url if len(url) < 60 else url[:60] + "..."
        raise BadRequest(f"{where}: only base64 data: URLs are accepted, got {shown!r}")
    mime = header[len("data:"):-len(";base64")]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: the data URL is not valid base64") from None
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
