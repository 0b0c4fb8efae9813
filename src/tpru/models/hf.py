"""Hugging Face transformers backend: any image-text-to-text model, Qwen2.5-VL first.

The model and processor load with ``AutoModelForImageTextToText`` and
``AutoProcessor`` from a local folder or a hub id (the hub's own cache and
offline settings apply). Each request becomes one user turn whose content
interleaves ``{"type": "image"}`` entries with the text at the prompt's
``<image>`` placeholders, rendered by the model's own chat template.

Decoding. Requests are generated in batches of `batch_size`, left padded, in
the order given. Every row is decoded by argmax; a row with temperature > 0
first has its logits divided by the temperature and Gumbel noise added from
its own generator, seeded by the request's seed (or, without one, by its id).
Argmax of logits/T plus Gumbel noise is a draw from softmax(logits/T), and
because each row draws from its own generator, a sampled answer does not
depend on which other requests share its batch. Other settings of the model's
generation config (e.g. a repetition penalty) are kept; its sampling settings
(temperature, top_p, top_k) are not used. In float32, a batch gives the same
greedy text as its requests one by one (tested on the tiny model); in lower
precision, padding can change rounding and, rarely, flip a near tie.

Example:
    >>> backend = HFBackend("Qwen/Qwen2.5-VL-7B-Instruct", device="cuda")  # doctest: +SKIP
    >>> backend.generate([Request("q1", "What is shown? <image>", ("a.jpg",))])  # doctest: +SKIP
    [Response(id='q1', text='A cat on a mat.', error=None, usage={...})]
"""

from __future__ import annotations

import copy
import logging
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from tpru.diagnostics import InputError, first_line
from tpru.models._torchvision import import_transformers
from tpru.models.base import Request, Response
from tpru.schema import IMAGE_PLACEHOLDER

log = logging.getLogger("tpru.models")

DTYPES = ("auto", "float32", "float16", "bfloat16")

HUB_ID_PATTERN = re.compile(r"(?:[A-Za-z0-9_](?:[\w.-]{0,94}[\w])?/)?"
                            r"[A-Za-z0-9_](?:[\w.-]{0,94}[\w])?")
"""A Hugging Face hub id: ``name`` or ``namespace/name`` (the hub also forbids ``--``, ``..``)."""


def to_messages(request: Request) -> list[dict[str, Any]]:
    """The chat messages for `request`: an optional system turn, then one user turn.

    The user content lists text pieces and ``{"type": "image"}`` entries in the
    order of the prompt, one image entry per ``<image>`` placeholder.

    Example:
        >>> to_messages(Request("q", "Is <image> before <image>?", ("a.png", "b.png")))[0]
        {'role': 'user', 'content': [{'type': 'text', 'text': 'Is '}, {'type': 'image'}, \
{'type': 'text', 'text': ' before '}, {'type': 'image'}, {'type': 'text', 'text': '?'}]}
    """
    content: list[dict[str, Any]] = []
    pieces = request.prompt.split(IMAGE_PLACEHOLDER)
    for i, piece in enumerate(pieces):
        if piece:
            content.append({"type": "text", "text": piece})
        if i < len(pieces) - 1:
            content.append({"type": "image"})
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    messages.append({"role": "user", "content": content})
    return messages


def sampling_seed(request: Request) -> int:
    """The request's seed, or a stable one derived from its id (not Python's salted hash)."""
    return request.seed if request.seed is not None else zlib.crc32(request.id.encode("utf-8"))


class SeededSampling:
    """A logits processor that turns greedy decoding into per-row seeded sampling.

    Rows with temperature 0 are left alone (greedy). For the others, the scores
    become ``scores / T + Gumbel noise``, the noise drawn from the row's own
    generator, so that the argmax the decoder takes is a sample from
    ``softmax(scores / T)`` that is the same whatever else is in the batch.
    """

    def __init__(self, temperatures: Sequence[float], seeds: Sequence[int]) -> None:
        if len(temperatures) != len(seeds):
            raise ValueError(f"{len(temperatures)} temperatures for {len(seeds)} seeds")
        self.temperatures = list(temperatures)
        self.seeds = list(seeds)
        self.generators: list[torch.Generator | None] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.generators is None:
            # Made on the device of the scores: with a model spread over several
            # GPUs, that is the last one's, not the model's first.
            self.generators = [
                torch.Generator(device=scores.device).manual_seed(seed) if t > 0 else None
                for t, seed in zip(self.temperatures, self.seeds, strict=True)]
        scores = scores.clone()  # type: ignore[assignment]
        tiny = torch.finfo(torch.float32).tiny
        for row, generator in enumerate(self.generators):
            if generator is None:
                continue
            uniform = torch.rand(scores.shape[1], generator=generator, device=scores.device,
                                 dtype=torch.float32)
            gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny, max=1.0 - 1e-7)))
            scores[row] = (scores[row].float() / self.temperatures[row] + gumbel).to(scores.dtype)
        return scores


class HFBackend:
    """A transformers image-text-to-text model behind the `Backend` protocol.

    Args:
        model: a local model folder or a hub id.
        dtype: "auto" (the checkpoint's), "float32", "float16" or "bfloat16".
        device: "auto" (all GPUs via accelerate when there is one, else the
            CPU), "cpu", "cuda", "cuda:1", ...
        batch_size: requests per forward pass.
        max_pixels, min_pixels: bounds on each image's size after resizing
            (Qwen2-VL-style processors); None keeps the processor's own.
        trust_remote_code: allow model code from the hub repository.
    """

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto",
                 batch_size: int = 8, max_pixels: int | None = None,
                 min_pixels: int | None = None, trust_remote_code: bool = False) -> None:
        if dtype not in DTYPES:
            raise InputError(f"hf: unknown dtype {dtype!r} (dtypes: {', '.join(DTYPES)})")
        if batch_size < 1:
            raise InputError(f"hf: batch_size must be at least 1, not {batch_size}")
        device = str(device)
        _check_device(device)
        local = _check_model_name(model)
        transformers = import_transformers()
        self.name = f"hf:{model}"
        self.batch_size = batch_size
        load: dict[str, Any] = {"trust_remote_code": trust_remote_code,
                                "dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        cuda = torch.cuda.is_available()
        if device == "auto" and cuda:
            load["device_map"] = "auto"
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(
                model, trust_remote_code=trust_remote_code)
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(model, **load)
        except (OSError, ValueError) as err:
            reason = first_line(err)
            where = "" if local else "no such local model folder, and as a hub id: "
            raise InputError(f"hf: cannot load model {model!r}: {where}{reason}") from None
        if "device_map" not in load:
            self.model.to("cpu" if device == "auto" else device)
        self.model.eval()
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:  # some chat models ship without one
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_token_id: int | None = getattr(self.processor, "image_token_id", None)
        self._image_size = _image_size(self.processor, min_pixels, max_pixels, model)
        log.info("loaded %s on %s (%s)", model, self.model.device, self.model.dtype)

    def encode(self, requests: Sequence[Request]) -> Mapping[str, torch.Tensor]:
        """The model inputs for `requests` as one left-padded batch (what `generate` feeds).

        Raises:
            OSError: an image file cannot be read.
        """
        return self._encode(requests, [load_images(r) for r in requests])

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order; unreadable images or a failed batch give errors."""
        responses: list[Response] = []
        for chunk in _chunks(requests, self.batch_size):
            answered: dict[int, Response] = {}
            ready: list[int] = []
            images: list[list[Image.Image]] = []
            for i, request in enumerate(chunk):
                try:
                    images.append(load_images(request))
                    ready.append(i)
                except (OSError, Image.DecompressionBombError) as err:
                    answered[i] = Response(request.id, "", error=f"image: {err}")
            generated = self._generate_or_split([chunk[i] for i in ready], images)
            answered.update(zip(ready, generated, strict=True))
            responses.extend(answered[i] for i in range(len(chunk)))
        return responses

    def _generate_or_split(self, requests: list[Request],
                           images: list[list[Image.Image]]) -> list[Response]:
        """Generate a batch; when it fails (memory, a bad item), retry its requests one by one."""
        if not requests:
            return []
        try:
            return self._generate_batch(requests, images)
        except (RuntimeError, ValueError) as err:
            if len(requests) == 1:
                log.warning("request %s failed: %s", requests[0].id, err)
                reason = (str(err).strip().splitlines() or [""])[0]
                return [Response(requests[0].id, "", error=f"{type(err).__name__}: {reason}")]
            log.warning("batch of %d failed (%s); retrying one by one", len(requests), err)
            return [response for request, imgs in zip(requests, images, strict=True)
                    for response in self._generate_or_split([request], [imgs])]

    def _encode(self, requests: Sequence[Request],
                images: Sequence[list[Image.Image]]) -> Mapping[str, torch.Tensor]:
        texts = [self.processor.apply_chat_template(to_messages(r), tokenize=False,
                                                    add_generation_prompt=True) for r in requests]
        flat = [image for per_request in images for image in per_request]
        inputs: Mapping[str, torch.Tensor] = self.processor(
            text=texts, images=flat or None, padding=True, return_tensors="pt", **self._image_size)
        return inputs

    @torch.inference_mode()
    def _generate_batch(self, requests: Sequence[Request],
                        images: Sequence[list[Image.Image]]) -> list[Response]:
        transformers = import_transformers()
        device = self.model.device
        inputs = {k: v.to(device) for k, v in self._encode(requests, images).items()}
        config = copy.deepcopy(self.model.generation_config)
        config.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_beams=1,
                      max_new_tokens=max(r.max_new_tokens for r in requests),
                      pad_token_id=self.tokenizer.pad_token_id)
        processors = transformers.LogitsProcessorList()
        if any(r.temperature > 0 for r in requests):
            processors.append(SeededSampling([r.temperature for r in requests],
                                             [sampling_seed(r) for r in requests]))
        output = self.model.generate(**inputs, generation_config=config,
                                     logits_processor=processors)
        prompt_length = inputs["input_ids"].shape[1]
        eos = config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        responses = []
        for row, request in enumerate(requests):
            new = output[row, prompt_length:prompt_length + request.max_new_tokens].tolist()
            end = next((i + 1 for i, token in enumerate(new) if token in stops), len(new))
            usage = {"prompt_tokens": int(inputs["attention_mask"][row].sum()),
                     "completion_tokens": end}
            if self.image_token_id is not None:
                usage["image_tokens"] = int((inputs["input_ids"][row] == self.image_token_id).sum())
            text = self.tokenizer.decode(new[:end], skip_special_tokens=True)
            responses.append(Response(request.id, text, usage=usage))
        return responses


def _check_device(device: str) -> None:
    """Refuse a device that is not "auto", "cpu", "cuda[:N]" or "mps", or that this machine
    lacks, before the model is loaded (torch's own errors come after, as tracebacks)."""
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"hf: unknown device {device!r} (devices: auto, cpu, cuda, cuda:N, mps)")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"hf: device {device} requested but torch.cuda.is_available() is "
                             "False (use device=cpu, or a torch built with CUDA)")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(f"hf: device {device} requested but there are only "
                             f"{torch.cuda.device_count()} CUDA devices")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"hf: device {device} requested but torch.backends.mps.is_available() "
                         "is False")


def _check_model_name(model: str) -> bool:
    """Whether `model` is a local folder; refuse a file, or a path that is neither a folder
    nor a hub id (transformers would report the hub id's form instead)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return True
    if path.exists():
        raise InputError(f"hf: {model}: is a file, not a model folder")
    if not HUB_ID_PATTERN.fullmatch(model) or "--" in model or ".." in model:
        raise InputError(f"hf: {model}: no such local model folder, and not a hub id "
                         "(like Qwen/Qwen2.5-VL-7B-Instruct)")
    return False


def _image_size(processor: Any, min_pixels: int | None, max_pixels: int | None,
                model: str) -> dict[str, Any]:
    """The processor-call keyword that bounds image sizes, from min/max pixels ({} for none).

    Qwen2-VL-style processors state the bounds as ``size={"shortest_edge": min pixels,
    "longest_edge": max pixels}``; a bound not given keeps the processor's own.
    """
    if min_pixels is None and max_pixels is None:
        return {}
    size = dict(getattr(getattr(processor, "image_processor", None), "size", None) or {})
    if "longest_edge" not in size or "shortest_edge" not in size:
        raise InputError(f"hf: max_pixels/min_pixels apply to Qwen2-VL-style image processors; "
                         f"{model!r} sizes images by {size or 'nothing known'}")
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
    if size["shortest_edge"] > size["longest_edge"]:
        raise InputError(f"hf: min_pixels {size['shortest_edge']} is above "
                         f"max_pixels {size['longest_edge']}")
    return {"size": size}


def load_images(request: Request) -> list[Image.Image]:
    """The request's images, decoded to RGB (the file is closed after reading)."""
    images = []
    for path in request.images:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def _chunks(items: Sequence[Request], size: int) -> Iterator[Sequence[Request]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
