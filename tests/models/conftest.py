"""Fixtures for the model tests: the tiny offline Qwen2.5-VL and a few small images."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread in these tests when torch is loaded.

    The tiny model's operations are too small to share out: on a busy two-core
    machine a second thread mostly spins, and a generation takes ten times longer.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2.5-VL model folder (random weights, real tokenizer, processor and
    chat template), built once per session by `make_tiny_qwen25_vl` with seed 0."""
    from tpru.models.tiny import make_tiny_qwen25_vl

    return make_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen25-vl") / "model")


IMAGE_SIZES = ((56, 56), (112, 56), (112, 112), (56, 112), (84, 56), (56, 84), (84, 84))
"""Width x height of `images`; multiples of 28, so each gives an exact number of image
tokens with the tiny processor (one token per 28x28 square)."""


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Seven PNG files of different sizes and colours."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, (width, height) in enumerate(IMAGE_SIZES):
        image = Image.new("RGB", (width, height), (37 * i % 256, 90 + 20 * i, 250 - 30 * i))
        for x in range(0, width, 7):  # a stripe pattern per image, so the pixels differ inside
            for y in range(height):
                if (x // 7 + y // (3 + i)) % 2:
                    image.putpixel((x, y), (255 - 30 * i, 10 * i, 128))
        path = folder / f"image{i}.png"
        image.save(path)
        paths.append(str(path))
    return paths
