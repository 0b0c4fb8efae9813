"""Fixtures for the model tests: a few small images (the tiny model is in tests/conftest.py)."""

from __future__ import annotations

import pytest
from PIL import Image

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
