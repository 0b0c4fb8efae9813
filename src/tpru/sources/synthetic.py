"""tpru's own sample episodes: small procedural scenes with visible progress.

`write_synthetic_episodes` draws episodes for four scenarios, each with three
kinds of task, and writes them as frame folders that `FrameFolderSource`
reads (``root/<scenario>/ep000/000.jpg ... episode.json``):

- ``robot`` (side view): a gripper stacks blocks on a base block, puts them
  into a tray, or takes a tower apart into a row;
- ``lego`` (side view): bricks added one step at a time to a tower, a wall or
  a pyramid on a baseplate;
- ``gui``: an app window where a form is filled in and submitted, a to-do list
  grows, or settings switches are turned on;
- ``nav``: walking down a corridor towards a coloured door (first person),
  crossing a maze to a goal, or collecting items in a room (top down).

Every episode shows monotonic progress (no two frames alike, the last far
from the first), has a description precise enough to tell it from the other
episodes (colours, counts, names, targets; duplicates within a scenario are
redrawn) and one step text per frame. A fixed per-episode noise texture keeps
the frames sharp for blur checks without making unchanged pixels differ.

Everything is drawn from ``numpy.random.default_rng([seed, scenario, episode])``,
so the same seed writes byte-identical files, and adding episodes or
scenarios does not change the others.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

SCENARIOS = ("robot", "lego", "gui", "nav")
TASKS: dict[str, tuple[str, ...]] = {
    "robot": ("stack", "tray", "unstack"),
    "lego": ("tower", "wall", "pyramid"),
    "gui": ("form", "todo", "settings"),
    "nav": ("corridor", "maze", "collect"),
}
MIN_FRAMES, MAX_FRAMES = 3, 12
"""Frames per episode that every task can show as distinct steps."""

RGB = tuple[int, int, int]
COLOURS: dict[str, RGB] = {
    "red": (210, 40, 40), "orange": (240, 130, 30), "yellow": (235, 200, 30),
    "green": (40, 155, 60), "blue": (35, 85, 205), "purple": (125, 55, 170),
    "pink": (235, 105, 165), "cyan": (30, 175, 200),
}
NAMES = tuple(COLOURS)
T = TypeVar("T")
Draw = ImageDraw.ImageDraw


@dataclass(frozen=True)
class _Plan:
    """One episode before it is written: texts, and a renderer per frame index."""

    task: str
    description: str
    steps: tuple[str, ...]
    render: Callable[[int], Image.Image]


def write_synthetic_episodes(root: Path, *, episodes: int, frames: int = 6, seed: int,
                             size: tuple[int, int] = (320, 240),
                             scenarios: Sequence[str] = SCENARIOS) -> list[Path]:
    """Write `episodes` episodes per scenario as frame folders under `root`.

    Args:
        root: output folder; episodes go to ``root/<scenario>/ep<NNN>/``.
            Earlier frames and ``episode.json`` there are replaced.
        episodes: episodes per scenario.
        frames: frames per episode, `MIN_FRAMES` to `MAX_FRAMES`.
        seed: the only source of randomness (a non-negative integer).
        size: (width, height) of the frames, at least 160x120.
        scenarios: which of `SCENARIOS` to write.

    Returns:
        The episode folders, scenario by scenario.

    Example:
        >>> import tempfile
        >>> paths = write_synthetic_episodes(Path(tempfile.mkdtemp()), episodes=1,
        ...                                  seed=0, scenarios=["lego"])
        >>> sorted(p.name for p in paths[0].iterdir())[:2]
        ['000.jpg', '001.jpg']
    """
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be {MIN_FRAMES} to {MAX_FRAMES}, got {frames}")
    if size[0] < 160 or size[1] < 120:
        raise ValueError(f"size must be at least 160x120, got {size[0]}x{size[1]}")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})")
    written: list[Path] = []
    for scenario in scenarios:
        seen: set[str] = set()
        for index in range(episodes):
            rng = np.random.default_rng([seed, SCENARIOS.index(scenario), index])
            plan = _PLANNERS[scenario](rng, frames, size)
            for _ in range(50):  # redraw the rare episode described like an earlier one
                if plan.description not in seen:
                    break
                plan = _PLANNERS[scenario](rng, frames, size)
            seen.add(plan.description)
            folder = root / scenario / f"ep{index:03d}"
            noise = np.round(rng.normal(0.0, 6.0, (size[1], size[0], 1))).astype(np.int16)
            _write(folder, scenario, plan, frames, noise, seed)
            written.append(folder)
    log.info("wrote %d synthetic episodes under %s", len(written), root)
    return written


def _write(folder: Path, scenario: str, plan: _Plan, frames: int, noise: np.ndarray,
           seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if re.fullmatch(r"\d{3}\.jpg", old.name):
            old.unlink()
    for i in range(frames):
        pixels = np.asarray(plan.render(i), dtype=np.int16) + noise
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:03d}.jpg", "JPEG", quality=90)
    info = {"scenario": scenario, "description": plan.description, "steps": list(plan.steps),
            "meta": {"task": plan.task, "generator": "tpru.sources.synthetic", "seed": seed}}
    (folder / "episode.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")


# ---- small helpers ---------------------------------------------------------------


def _pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def _sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    return [items[int(i)] for i in rng.permutation(len(items))[:k]]


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in [low, high]."""
    return int(rng.integers(low, high + 1))


def _count(i: int, n: int, total: int) -> int:
    """How many of `total` things frame `i` of `n` shows: strictly rising when total >= n."""
    return ((i + 1) * total) // n


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def _dark(c: RGB) -> RGB:
    return _mix(c, (0, 0, 0), 0.45)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size[1])[:, None, None]
    column = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.broadcast_to(column, (size[1], size[0], 3)).copy()


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


