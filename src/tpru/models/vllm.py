"""A backend on vLLM's offline engine, for fast batched evaluation on a GPU.

`VLLMBackend` loads a model once into ``vllm.LLM`` and answers a whole list of
requests in one ``LLM.chat`` call, so vLLM batches them itself. Each request
becomes an OpenAI-style conversation whose user message interleaves text
parts with ``image_url`` parts pointing at the image files (``file://`` URLs),
which vLLM renders through the model's own chat template, the same way its
OpenAI-compatible server would.

vLLM runs only on a machine with a CUDA GPU and is imported only when a
`VLLMBackend` is made; without it, that raises `InputError` with the install
hint. The message building (`vllm_messages`, `sampling_options`,
`engine_options`) is plain data and works without vLLM.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError
from tpru.models.base import Request, Response
from tpru.schema import IMAGE_PLACEHOLDER

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tpru[vllm]' on a machine with a CUDA GPU"


def vllm_messages(request: Request) -> list[dict[str, Any]]:
    """The conversation for one request, in the OpenAI message format vLLM's ``chat`` takes.

    Images are ``file://`` URLs of their absolute paths, placed where the
    prompt's ``<image>`` placeholders were.

    Example:
        >>> vllm_messages(Request(id="1", prompt="Steps <image> then?", images=("/d/a.png",)))
        ... # doctest: +NORMALIZE_WHITESPACE
        [{'role': 'user', 'content': [{'type': 'text', 'text': 'Steps '},
          {'type': 'image_url', 'image_url': {'url': 'file:///d/a.png'}},
          {'type': 'text', 'text': ' then?'}]}]
    """
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    parts: list[dict[str, Any]] = []
    for index, text in enumerate(request.prompt.split(IMAGE_PLACEHOLDER)):
        if text:
            parts.append({"type": "text", "text": text})
        if index < len(request.images):
            url = Path(request.images[index]).absolute().as_uri()
            parts.append({"type": "image_url", "image_url": {"url": url}})
    messages.append({"role": "user", "content": parts})
    return messages


def sampling_options(request: Request) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` from one request (temperature 0: greedy)."""
    options: dict[str, Any] = {"temperature": request.temperature,
                               "max_tokens": request.max_new_tokens}
    if request.seed is not None:
        options["seed"] = request.seed
    return options


def engine_options(model: str, *, tensor_parallel_size: int = 1, dtype: str = "auto",
                   max_model_len: int | None = None, gpu_memory_utilization: float = 0.9,
                   limit_images: int = 8, max_pixels: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` (see `VLLMBackend` for what each means)."""
    options: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "gpu_memory_utilization": gpu_memory_utilization,
        "limit_mm_per_prompt": {"image": limit_images},
        # Requests name image files anywhere on this machine, and the engine is
        # local and offline, so every local path is allowed.
        "allowed_local_media_path": "/",
    }
    if max_model_len is not None:
        options["max_model_len"] = max_model_len
    if max_pixels is not None:
        options["mm_processor_kwargs"] = {"max_pixels": max_pixels}
    return options


def import_vllm() -> Any:
    """The ``vllm`` module, or `InputError` with the install hint."""
    try:
        return importlib.import_module("vllm")
    except ImportError as err:
        raise InputError(f"the vllm backend needs the vllm package ({err}); "
                         f"{INSTALL_HINT}") from None


class VLLMBackend:
    """A model in vLLM's offline engine; one `generate` call is one batched ``LLM.chat``.

    Args:
        model: a local path or a hub id.
        tensor_parallel_size: GPUs to split the model over.
        dtype: weights and activations (``auto``, ``bfloat16``, ``float16``).
        max_model_len: context length; default the model's.
        gpu_memory_utilization: share of GPU memory vLLM may take.
        limit_images: most images per prompt (vLLM reserves memory for them);
            a request with more comes back with `error` set.
        max_pixels: an image-size cap for the model's processor (Qwen-VL's
            ``max_pixels``); default the model's.
    """

    def __init__(self, model: str, *, tensor_parallel_size: int = 1, dtype: str = "auto",
                 max_model_len: int | None = None, gpu_memory_utilization: float = 0.9,
                 limit_images: int = 8, max_pixels: int | None = None) -> None:
        if not model:
            raise InputError("vllm backend: a model path or hub id is required (vllm:MODEL)")
        if limit_images < 1:
            raise InputError(f"vllm backend: limit_images must be at least 1, got {limit_images}")
        self.name = f"vllm:{model}"
        self.limit_images = limit_images
        self.options = engine_options(
            model, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
            max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
            limit_images=limit_images, max_pixels=max_pixels)
        self._vllm = import_vllm()
        log.info("loading %s into vLLM", model)
        self._llm = self._vllm.LLM(**self.options)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer all requests in one batch; a request vLLM rejects gets an error response."""
        responses: dict[int, Response] = {}
        ready: list[int] = []
        for index, request in enumerate(requests):
            problem = self._check(request)
            if problem:
                responses[index] = Response(id=request.id, text="", error=problem)
            else:
                ready.append(index)
        if ready:
            try:
                responses.update(zip(ready, self._chat([requests[i] for i in ready]),
                                     strict=True))
            except Exception as err:  # one bad prompt fails vLLM's whole batch
                log.warning("vLLM batch of %d failed (%s); retrying one by one", len(ready), err)
                for index in ready:
                    responses[index] = self._one(requests[index])
        return [responses[index] for index in range(len(requests))]

    def _check(self, request: Request) -> str | None:
        if len(request.images) > self.limit_images:
            return (f"{len(request.images)} images, over limit_images={self.limit_images} "
                    f"(raise it in the backend options)")
        missing = [path for path in request.images if not Path(path).is_file()]
        return f"image not found: {missing[0]}" if missing else None

    def _one(self, request: Request) -> Response:
        try:
            return self._chat([request])[0]
        except Exception as err:
            return Response(id=request.id, text="", error=f"vLLM failed: {type(err).__name__}: "
                                                          f"{err}")

    def _chat(self, requests: Sequence[Request]) -> list[Response]:
        params = [self._vllm.SamplingParams(**sampling_options(r)) for r in requests]
        outputs = self._llm.chat([vllm_messages(r) for r in requests], sampling_params=params,
                                 use_tqdm=False)
        responses = []
        for request, output in zip(requests, outputs, strict=True):
            completion = output.outputs[0]
            usage = {"prompt_tokens": len(output.prompt_token_ids or ()),
                     "completion_tokens": len(completion.token_ids or ())}
            responses.append(Response(id=request.id, text=completion.text, usage=usage))
        return responses
