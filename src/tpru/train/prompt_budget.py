"""How long a prompt is in EasyR1, images counted, against ``data.max_prompt_length``.

EasyR1 drops or cuts a prompt longer than ``data.max_prompt_length`` once its
images are counted, and then fails late with "image features and image tokens
do not match", the error its users report most. `measure_prompts` builds
every sample's prompt as EasyR1 would and returns the longest as a
`PromptBudget`, whose `PromptBudget.check` refuses a run before anything is
written. Image tokens are exact for Qwen2.5-VL (`image_tokens`); text is
counted with the model's tokenizer when it is a local folder, else estimated
(`estimate_text_tokens`). The config lookups are `tpru.train.recipes`'.

Example:
    >>> image_tokens(640, 480, None, None)
    393
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.common import make_formatter, problem_text
from tpru.schema import IMAGE_PLACEHOLDER, Sample
from tpru.train.recipes import get, integer

log = logging.getLogger("tpru.train")

PATCH = 28
"""Qwen2.5-VL: one visual token per 28 x 28 pixels (14-pixel patches merged 2 x 2)."""

PROCESSOR_PIXELS = (56 * 56, 28 * 28 * 1280)
"""The pixel bounds of Qwen2.5-VL's image processor, after EasyR1's own resize."""

CHARS_PER_TOKEN = 3
"""ASCII characters per token in the estimate: Qwen2's tokenizer averages about 4 on
English, so 3 leaves a margin; every other character counts as one token."""

TEMPLATE_TOKENS = 32
"""Tokens of the chat template around a prompt (system turn, role markers; 19 for
Qwen2.5-VL's template), with a margin, in the estimate."""

DEFAULT_SCAFFOLD = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n")
"""Qwen2.5-VL's chat template around one user turn, counted exactly with a tokenizer."""


def image_tokens(width: int, height: int, min_pixels: int | None, max_pixels: int | None,
                 processor_pixels: tuple[int, int] = PROCESSOR_PIXELS) -> int:
    """Visual tokens of one image in EasyR1 with Qwen2.5-VL, start and end markers included.

    EasyR1 first scales the image into ``[min_pixels, max_pixels]`` (the
    data config), truncating the sides; Qwen2.5-VL's processor then rounds
    each side to a multiple of 28 within its own bounds; each 28 x 28 block
    is one token, between a vision-start and a vision-end token.
    """
    if max_pixels is not None and width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        width, height = int(width * scale), int(height * scale)
    if min_pixels is not None and width * height < min_pixels:
        scale = (min_pixels / (width * height)) ** 0.5
        width, height = int(width * scale), int(height * scale)
    low, high = processor_pixels
    h_bar, w_bar = round(height / PATCH) * PATCH, round(width / PATCH) * PATCH
    if h_bar * w_bar > high:
        beta = (height * width / high) ** 0.5
        h_bar = max(PATCH, math.floor(height / beta / PATCH) * PATCH)
        w_bar = max(PATCH, math.floor(width / beta / PATCH) * PATCH)
    elif h_bar * w_bar < low:
        beta = (low / (height * width)) ** 0.5
        h_bar, w_bar = (math.ceil(height * beta / PATCH) * PATCH,
                        math.ceil(width * beta / PATCH) * PATCH)
    return (h_bar // PATCH) * (w_bar // PATCH) + 2


def estimate_text_tokens(text: str) -> int:
    """Tokens of `text` without a tokenizer: ASCII / `CHARS_PER_TOKEN`, other characters 1 each."""
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    return math.ceil(ascii_chars / CHARS_PER_TOKEN) + len(text) - ascii_chars


@dataclass(frozen=True)
class PromptBudget:
    """The longest prompt of a dataset, in tokens, against the config's limits."""

    limit: int
    longest: int
    sample_id: str
    split: str
    images: int
    image_tokens: int
    text_tokens: int
    max_images: int
    max_images_id: str
    limit_images: int
    counter: str
    samples: int = 0
    over_limit: int = 0
    """How many of the `samples` measured need more than `limit` tokens."""

    def check(self) -> None:
        """Refuse a prompt over ``data.max_prompt_length`` or over the images per prompt."""
        if self.longest > self.limit:
            raise InputError(
                f"{self.over_limit} of {self.samples} samples are over the prompt budget; "
                f"sample {self.sample_id!r} ({self.split}) needs about {self.longest} prompt "
                f"tokens ({self.images} images: {self.image_tokens}, text: {self.text_tokens}) "
                f"but data.max_prompt_length is {self.limit}; EasyR1 would drop or cut it "
                "('image features and image tokens do not match'): raise "
                "data.max_prompt_length or lower data.max_pixels")
        if 0 < self.limit_images < self.max_images:
            raise InputError(f"sample {self.max_images_id!r} has {self.max_images} images but "
                             f"worker.rollout.limit_images is {self.limit_images}; raise it")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measure_prompts(dataset: Dataset, splits: Sequence[str], template: str,
                    config: Mapping[str, Any]) -> PromptBudget:
    """Measure every sample's prompt as EasyR1 would build it for the model in `config`.

    Each sample is measured on its own, so a dataset mixing 3- and 16-frame
    sequences is judged by its longest prompt, and the count of samples over
    ``data.max_prompt_length`` is reported with it.

    Image tokens are exact for Qwen2.5-VL given each image's size (read from
    its header). Text is counted with the model's tokenizer when the model is
    a local folder with a ``tokenizer.json`` (its processor's pixel bounds
    are used too), else estimated with `estimate_text_tokens` plus
    `TEMPLATE_TOKENS`.
    """
    model = Path(str(get(config, "worker.actor.model.model_path")))
    count_text, scaffold, counter, processor_pixels = _text_counter(model)
    formatter = make_formatter(template.strip())  # EasyR1 strips the template before use
    min_pixels, max_pixels = get(config, "data.min_pixels"), get(config, "data.max_pixels")
    sizes: dict[str, int] = {}
    longest: tuple[int, int, int, Sample, str] | None = None  # total, visual, text, sample, split
    most: Sample | None = None
    limit = integer(config, "data.max_prompt_length")
    measured = over = 0
    for split in splits:
        for sample in dataset.samples(split):
            pieces = formatter(problem_text(sample)).split(IMAGE_PLACEHOLDER)
            text = sum(count_text(piece) for piece in pieces if piece) + scaffold
            visual = 0
            for relative in sample.images:
                if relative not in sizes:
                    width, height = _image_size(dataset.image_path(relative))
                    sizes[relative] = image_tokens(width, height, min_pixels, max_pixels,
                                                   processor_pixels)
                visual += sizes[relative]
            measured += 1
            over += text + visual > limit
            if longest is None or text + visual > longest[0]:
                longest = (text + visual, visual, text, sample, split)
            if most is None or len(sample.images) > len(most.images):
                most = sample
    if longest is None or most is None:
        raise InputError(f"{dataset.root}: no samples in {', '.join(splits)}")
    total, visual, text, sample, split = longest
    return PromptBudget(limit=limit, longest=total,
                        sample_id=sample.id, split=split, images=len(sample.images),
                        image_tokens=visual, text_tokens=text, max_images=len(most.images),
                        max_images_id=most.id,
                        limit_images=integer(config, "worker.rollout.limit_images"),
                        counter=counter, samples=measured, over_limit=over)


def _text_counter(model: Path) -> tuple[Callable[[str], int], int, str,
                                         tuple[int, int]]:
    """Count text with the local model's tokenizer if there is one, else estimate."""
    tokenizer_file = model / "tokenizer.json"
    if tokenizer_file.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            log.info("tokenizers is not installed: estimating prompt lengths")
        else:
            tokenizer = Tokenizer.from_file(str(tokenizer_file))

            def count(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False).ids)

            return (count, count(DEFAULT_SCAFFOLD), f"the tokenizer of {model}",
                    _processor_pixels(model))
    return (estimate_text_tokens, TEMPLATE_TOKENS,
            f"an estimate of {CHARS_PER_TOKEN} ASCII characters per token", PROCESSOR_PIXELS)


def _processor_pixels(model: Path) -> tuple[int, int]:
    """A local model's image processor pixel bounds, else Qwen2.5-VL's.

    Hub models keep them in ``preprocessor_config.json``; transformers 5 saves
    ``processor_config.json`` with an ``image_processor`` section.
    """
    for name, section in (("preprocessor_config.json", None),
                          ("processor_config.json", "image_processor")):
        try:
            data = json.loads((model / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = data.get(section) or {} if section else data
        size = data.get("size") or {}
        low = data.get("min_pixels") or size.get("shortest_edge") or PROCESSOR_PIXELS[0]
        high = data.get("max_pixels") or size.get("longest_edge") or PROCESSOR_PIXELS[1]
        return int(low), int(high)
    return PROCESSOR_PIXELS


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read image ({err})") from None
