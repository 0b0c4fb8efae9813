"""A tiny Qwen2.5-VL, built offline, for tests and demos that need a real model.

Nothing here downloads: the tokenizer is a byte-level BPE trained on a few KB
of task-like text, and the weights are random (seeded). The model is useless
as a model and exact as a format: the same config classes, chat template,
image and video processors and special tokens as Qwen2.5-VL, so every code
path that loads, prompts, batches, generates or trains a Qwen2.5-VL runs on it
in about a second on a CPU. It is the one place that makes a tiny model;
tests get it through the ``tiny_model_dir`` fixture.

Example:
    >>> path = make_tiny_qwen25_vl(Path("/tmp/tiny-qwen"))  # doctest: +SKIP
    >>> HFBackend(str(path)).name  # doctest: +SKIP
    'hf:/tmp/tiny-qwen'

From the shell: ``python -m tpru.models.tiny OUT_DIR [--seed N]``.
"""

from __future__ import annotations

import argparse
import importlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tpru.models._torchvision import import_transformers

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""Qwen2.5-VL's special tokens, given ids 0..6 in this order."""

VOCAB_SIZE = 512
MAX_PIXELS = 112 * 112
"""Images are resized to at most this many pixels: 16 patches, 4 image tokens each."""

MIN_PIXELS = 56 * 56

INIT_STD = 0.1
"""Weight init std, about 1/sqrt(hidden): with the usual 0.02 the random model says much
the same whatever the images, and a test could not tell a mixed-up batch from a good one."""

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL's chat template: a default system turn, images as vision_start/pad/end."""

_CORPUS = (
    "These photos show the process of {action}.",
    "Below are {n} images in random order, labeled as 1, 2, 3, and 4. "
    "What is the correct sequence of these images?",
    "The images are labeled as A, B, C and D. Answer with the labels in chronological order.",
    "The 1st step is <image>, followed by step 2 <image>. Select the correct option of "
    "step 3, which can reach the final step 4 <image>.",
    "The 2nd screen is step 2 <image>, followed by step 3 <image>, and the final screen is "
    "step 4 <image>. Please select the option of step 1.",
    "A. 1 3 4 2\nB. 4 3 2 1\nC. 3 2 1 4\nD. 4 2 3 1\nE. None of the choices provided",
    "A. <image>\nB. <image>\nC. None of the choices provided\nD. <image>",
    "<think>The robot first reaches for the {thing}, then lifts it.</think><answer>B</answer>",
    "<think>Step {n} comes after the {thing} is placed.</think><answer>CABD</answer>",
    "Answer with the option's letter from the given choices directly.",
    "The answer is {letter}. The correct sequence is {letter}ADB.",
)
_FILLERS = {
    "action": ("stacking the red block on the blue block", "opening the drawer",
               "building a small lego car", "sending a message in the chat app",
               "walking to the kitchen and turning left"),
    "thing": ("cup", "block", "brick", "button", "door"),
    "n": ("2", "3", "4", "5", "6"),
    "letter": ("A", "B", "C", "D", "E"),
}


def training_text(seed: int, repeats: int = 24) -> list[str]:
    """A few KB of prompt-like lines for the tokenizer, drawn with a seeded generator."""
    rng = random.Random(seed)
    lines = []
    for _ in range(repeats):
        for template in _CORPUS:
            lines.append(template.format(**{k: rng.choice(v) for k, v in _FILLERS.items()}))
    rng.shuffle(lines)
    return lines


def _train_tokenizer(lines: Sequence[str], split_pattern: str) -> Any:
    """Byte-level BPE with Qwen2's pre-tokenizer, special tokens first (ids 0..6)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    # The same normalizer, pre-tokenizer and decoder as Qwen2Tokenizer builds, so
    # that reloading from vocab and merges tokenizes exactly as trained.
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, min_frequency=1, show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


MROPE_SECTIONS = {4: [2, 3, 3], 2: [4, 6, 6], 1: [8, 12, 12]}
"""Text attention heads -> mrope sections (they add up to half the head size, 64 / heads)."""


def make_tiny_qwen25_vl(path: Path, *, seed: int = 0, heads: int = 4) -> Path:
    """Write a complete, tiny Qwen2.5-VL model folder at `path` and return `path`.

    The folder holds the weights (safetensors), config, generation config,
    tokenizer, image and video processor configs and chat template, and loads
    offline with ``AutoProcessor.from_pretrained`` and
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained``. The same seed gives
    the same files. Text model: hidden 64, 2 layers, 4 heads, 2 kv heads, vocab
    512, mrope sections [2, 3, 3]; vision tower: depth 2, hidden 64, output 64.

    Args:
        path: the folder to write (created; existing files of the same names
            are overwritten).
        seed: seeds the tokenizer's training text and the weights; the global
            torch random state is left as it was.
        heads: text attention heads (4, 2 or 1; half as many kv heads, at least
            one). vLLM's CPU attention needs a head size of at least 32: ``heads=2``.
    """
    if heads not in MROPE_SECTIONS:
        raise ValueError(f"heads must be one of {sorted(MROPE_SECTIONS)}, not {heads}")
    transformers = import_transformers()

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # Qwen2's own split pattern, so the trained tokenizer pre-tokenizes as Qwen2's does.
    qwen2 = importlib.import_module("transformers.models.qwen2.tokenization_qwen2")
    tokenizer = transformers.Qwen2TokenizerFast(
        tokenizer_object=_train_tokenizer(training_text(seed), qwen2.PRETOKENIZE_REGEX),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None,
        model_max_length=4096,
    )
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    if list(ids.values()) != list(range(len(SPECIAL_TOKENS))):
        raise AssertionError(f"tiny tokenizer: special token ids are {ids}, expected 0..6")

    pixels = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    processor = transformers.Qwen2_5_VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(**pixels),
        video_processor=transformers.Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)

    config = transformers.Qwen2_5_VLConfig(
        text_config={
            "vocab_size": VOCAB_SIZE, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 2),
            "max_position_embeddings": 4096, "initializer_range": INIT_STD,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0,
                                "mrope_section": MROPE_SECTIONS[heads]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4,
            "out_hidden_size": 64, "initializer_range": INIT_STD, "fullatt_block_indexes": [1],
            "window_size": 56, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], do_sample=False,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tpru.models.tiny OUT_DIR [--seed N]``."""
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m tpru.models.tiny",
                                     description="Write a tiny random Qwen2.5-VL model folder.")
    parser.add_argument("out", type=Path, help="the model folder to write")
    parser.add_argument("--seed", type=int, default=0, help="seeds tokenizer and weights")
    parser.add_argument("--heads", type=int, default=4, choices=sorted(MROPE_SECTIONS),
                        help="text attention heads (default 4; 2 for vLLM on a CPU, whose "
                             "attention needs a head size of at least 32)")
    args = parser.parse_args(argv)
    path = make_tiny_qwen25_vl(args.out, seed=args.seed, heads=args.heads)
    Console(stderr=True).print(f"wrote a tiny Qwen2.5-VL to {path}")


if __name__ == "__main__":
    main()
