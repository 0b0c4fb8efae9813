"""Writing synthetic episodes: one frame folder with episode.json per episode."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tpru.sources.synthetic import gui, lego, nav, robot
from tpru.sources.synthetic.draw import Plan, Planner

log = logging.getLogger(__name__)

PLANNERS: dict[str, Planner] = {
    "robot": robot.plan, "lego": lego.plan, "gui": gui.plan, "nav": nav.plan,
}
SCENARIOS = tuple(PLANNERS)
EPISODE_TASKS_BY_SCENARIO: dict[str, tuple[str, ...]] = {
    "robot": robot.EPISODE_TASKS, "lego": lego.EPISODE_TASKS, "gui": gui.EPISODE_TASKS,
    "nav": nav.EPISODE_TASKS,
}
"""Scenario -> the kinds of episode its module draws (recorded as ``meta.task``), in turn."""
MIN_FRAMES, MAX_FRAMES = 3, 12
"""Frames per episode that every task can show as distinct steps."""


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
        size: (width, height) of the frames, at least 64x64. Scenes are drawn
            on the smallest canvas of at least 320x240 with the same aspect
            ratio and resized, so every size shows the same layout.
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
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if min(size) < 64 or max(size) > 4 * min(size):
        raise ValueError(f"size must be at least 64x64 and at most 4:1, got {size[0]}x{size[1]}")
    canvas = _canvas(size)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})")
    written: list[Path] = []
    for scenario in scenarios:
        seen: set[str] = set()
        for index in range(episodes):
            rng = np.random.default_rng([seed, SCENARIOS.index(scenario), index])
            # Tasks take turns, so any three episodes in a row cover all three.
            tasks = EPISODE_TASKS_BY_SCENARIO[scenario]
            task = tasks[(seed + index) % len(tasks)]
            plan = PLANNERS[scenario](rng, frames, canvas, task)
            for _ in range(50):  # redraw the rare episode described like an earlier one
                if plan.description not in seen:
                    break
                plan = PLANNERS[scenario](rng, frames, canvas, task)
            seen.add(plan.description)
            folder = root / scenario / f"ep{index:03d}"
            noise = np.round(rng.normal(0.0, 6.0, (size[1], size[0], 1))).astype(np.int16)
            _write(folder, scenario, plan, frames, noise, seed)
            written.append(folder)
    log.info("wrote %d synthetic episodes under %s", len(written), root)
    return written


def _write(folder: Path, scenario: str, plan: Plan, frames: int, noise: np.ndarray,
           seed: int) -> None:
    """Render, resize to the noise's size, add the noise, and write frames and episode.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if re.fullmatch(r"\d{3}\.jpg", old.name):
            old.unlink()
    size = (noise.shape[1], noise.shape[0])
    for i in range(frames):
        drawn = plan.render(i)
        if drawn.size != size:
            drawn = drawn.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(drawn, dtype=np.int16) + noise
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:03d}.jpg", "JPEG", quality=90)
    info = {"scenario": scenario, "description": plan.description, "steps": list(plan.steps),
            "meta": {"task": plan.task, "look": plan.look, "generator": "tpru.sources.synthetic",
                     "seed": seed}}
    (folder / "episode.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")


def _canvas(size: tuple[int, int]) -> tuple[int, int]:
    """The smallest size of at least 320x240 with the aspect ratio of `size`."""
    w, h = size
    scale = max(320 / w, 240 / h)
    return round(w * scale), round(h * scale)
