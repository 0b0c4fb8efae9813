"""What every scenario shares: colours, seeded picks, geometry, and the episode plan.

A scenario module turns a generator, a frame count, a canvas size and a task
into a `Plan`: the texts of one episode and a function that renders any of
its frames. The helpers here keep those modules about their scenes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import numpy as np
from PIL import Image, ImageFont

RGB = tuple[int, int, int]
Point = tuple[float, float]
T = TypeVar("T")

COLOURS: dict[str, RGB] = {
    "red": (210, 40, 40), "orange": (240, 130, 30), "yellow": (235, 200, 30),
    "green": (40, 155, 60), "blue": (35, 85, 205), "purple": (125, 55, 170),
    "pink": (235, 105, 165), "cyan": (30, 175, 200),
}
NAMES = tuple(COLOURS)
VIVID = tuple(c for c in NAMES if c != "yellow")
"""Colours that stand out from light backgrounds in grey too (thumbnails, hashes)."""
DARK = ("red", "green", "blue", "purple")
WHITE: RGB = (255, 255, 255)
INK: RGB = (35, 38, 45)


@dataclass(frozen=True)
class Plan:
    """One episode before it is written: texts, and a renderer per frame index."""

    task: str
    description: str
    """A gerund phrase ("stacking the ..."), lower case, no final full stop."""
    steps: tuple[str, ...]
    render: Callable[[int], Image.Image]
    look: str
    """The name of the backdrop, lighting or theme drawn from the scenario's shared pool
    (``LOOKS`` or ``THEMES`` of its module), recorded in the episode's meta."""


Planner = Callable[[np.random.Generator, int, tuple[int, int], str], Plan]
"""``planner(rng, frames, canvas size, task)``: one episode of a scenario."""


# ---- seeded choices -----------------------------------------------------------------


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One of `items`."""
    return items[int(rng.integers(len(items)))]


def sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    """`k` different items of `items`, in random order."""
    return [items[int(i)] for i in rng.permutation(len(items))[:k]]


def between(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in [low, high]."""
    return int(rng.integers(low, high + 1))


# ---- progress over the frames ---------------------------------------------------------


def count_shown(i: int, n: int, total: int) -> int:
    """How many of `total` things frame `i` of `n` shows: strictly rising when total >= n."""
    return ((i + 1) * total) // n


# ---- colours and pixels -----------------------------------------------------------------


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """The colour a fraction `t` of the way from `a` to `b`."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def darker(c: RGB) -> RGB:
    """The outline colour of a shape filled with `c`."""
    return mix(c, (0, 0, 0), 0.45)


@cache
def default_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at `size` pixels, where Pillow has FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> np.ndarray:
    """(height, width, 3) float pixels fading from `top` to `bottom`."""
    t = np.linspace(0.0, 1.0, size[1])[:, None, None]
    column = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.broadcast_to(column, (size[1], size[0], 3)).copy()


def to_image(pixels: np.ndarray) -> Image.Image:
    """An RGB image of float pixels, clipped to 0-255."""
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# ---- geometry -------------------------------------------------------------------------


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def path_length(points: Sequence[Point]) -> float:
    """The length of a polyline."""
    return sum(math.dist(p, q) for p, q in itertools.pairwise(points))


def along(points: Sequence[Point], t: float) -> Point:
    """The point a fraction `t` (0-1) of the way along a polyline, by length."""
    lengths = [math.dist(p, q) for p, q in itertools.pairwise(points)]
    left = t * sum(lengths)
    for (p, q), length in zip(itertools.pairwise(points), lengths, strict=True):
        if left <= length and length > 0:
            r = left / length
            return lerp(p[0], q[0], r), lerp(p[1], q[1], r)
        left -= length
    return points[-1]
