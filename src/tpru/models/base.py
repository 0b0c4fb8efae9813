"""The Backend protocol: prompts with images in, text out.

Every model tpru talks to (a Hugging Face model, a vLLM engine, an
OpenAI-compatible server, a baseline) is a `Backend`. The evaluation runner,
the audit and the model-in-the-loop data stages only ever call
`Backend.generate`.

A `Request` holds one prompt: text with one ``<image>`` placeholder per
image, in order, and the image files. Chat formatting (roles, special image
tokens, base64 for an API) is the backend's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tpru.schema import IMAGE_PLACEHOLDER


@dataclass(frozen=True)
class Request:
    """One prompt.

    Attributes:
        id: the caller's key (e.g. a benchmark item id), echoed in the response.
        prompt: text with one ``<image>`` per image, in the order of `images`.
        images: image file paths.
        max_new_tokens: generation budget.
        temperature: 0 means greedy.
        seed: for sampling backends that take one.
        system: optional system message.
    """

    id: str
    prompt: str
    images: tuple[str, ...] = ()
    max_new_tokens: int = 1024
    temperature: float = 0.0
    seed: int | None = None
    system: str | None = None

    def __post_init__(self) -> None:
        count = self.prompt.count(IMAGE_PLACEHOLDER)
        if count != len(self.images):
            raise ValueError(f"request {self.id}: {count} <image> placeholders for "
                             f"{len(self.images)} images")


@dataclass(frozen=True)
class Response:
    """What a backend answered to one request.

    Attributes:
        id: the request's id.
        text: the generated text ("" when `error` is set).
        error: why no text came back (after the backend's own retries), or None.
        usage: token counts or timings the backend knows (prompt_tokens, ...).
    """

    id: str
    text: str
    error: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A model that answers requests; `generate` keeps the order of `requests`."""

    name: str
    """A short description for reports, e.g. ``hf:Qwen/Qwen2.5-VL-7B-Instruct``."""

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order. Failures are responses with `error` set."""
        ...
