"""The benchmark's frame set: generated 640x480 JPEG episodes in the ``frames:`` layout.

``ROOT/<scenario>/<episode>/000.jpg`` plus ``episode.json`` (id, scenario,
description). Each episode has a smooth multi-scale noise background with film
grain and a slow camera pan, and a few shapes that move every step, so its
frames pass the builder's blur, near-duplicate and static filters and decode
like photographs rather than like white noise. Every episode draws from its own
generator seeded by (seed, episode number): the same arguments give the same
files. Used by ``build_speed.py``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 640, 480
QUALITY = 90
GENERATOR_VERSION = 1
"""Bump when the generated frames change, so cached sets are regenerated."""
MARKER = ".bench-frames.json"
SCENARIOS = ("kitchen", "assembly", "garden", "workshop", "desk", "warehouse", "lab", "street")
VERBS = ("slides to the left", "moves towards the camera", "is pushed across the table",
         "drifts to the right", "is lifted and set down", "rolls past the others")


def episode_plan(frames: int, seed: int) -> list[tuple[str, str, int]]:
    """(scenario, episode name, frame count) for episodes of 10-20 frames totalling `frames`."""
    rng = np.random.default_rng(seed)
    plan: list[tuple[str, str, int]] = []
    total = 0
    while total < frames:
        n = min(int(rng.integers(10, 21)), frames - total)
        if n < 6 and plan:  # fold a short tail into the episode before
            scenario, name, last = plan[-1]
            plan[-1] = (scenario, name, last + n)
        else:
            i = len(plan)
            plan.append((SCENARIOS[i % len(SCENARIOS)], f"ep{i // len(SCENARIOS):05d}", n))
        total += n
    return plan


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Multi-scale value noise (float32 HxWx3, about 0-255): a plausible photo background."""
    w, h = size
    out = np.zeros((h, w, 3), np.float32)
    for cells, amplitude in ((4, 90.0), (12, 40.0), (40, 20.0), (120, 12.0), (320, 10.0)):
        small = rng.random((max(2, cells * h // w), cells, 3)).astype(np.float32)
        grid = Image.fromarray((small * 255).astype(np.uint8))
        out += np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), np.float32) \
            * (amplitude / 255.0)
    gradient = np.linspace(-30, 30, h, dtype=np.float32)[:, None, None]
    base = rng.uniform(40, 140, size=3).astype(np.float32)
    return out + gradient + base - out.mean()


def _bounce(position: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Fold a straight path back into [0, bounds], as if the shape bounced off the edges."""
    folded = np.mod(position, 2 * bounds)
    return np.where(folded > bounds, 2 * bounds - folded, folded)


def write_episode(args: tuple[Path, int, str, str, int, int]) -> int:
    """Render one episode's frames and its episode.json; returns the frame count."""
    root, index, scenario, name, count, seed = args
    rng = np.random.default_rng([seed, index])
    folder = root / scenario / name
    folder.mkdir(parents=True, exist_ok=True)
    pad = 100
    canvas = _smooth_noise(rng, (WIDTH + 2 * pad, HEIGHT + 2 * pad))
    grain = [rng.normal(0, 3.0, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(3)]
    pan = rng.uniform(2, 5, size=2) * rng.choice([-1, 1], size=2)
    shapes = []
    for _ in range(int(rng.integers(3, 7))):
        shapes.append({
            "kind": rng.choice(["ellipse", "rectangle", "polygon"]),
            "pos": rng.uniform([60, 60], [WIDTH - 60, HEIGHT - 60]),
            "vel": rng.uniform(12, 30, size=2) * rng.choice([-1, 1], size=2),
            "size": rng.uniform(60, 170, size=2),
            "fill": tuple(int(c) for c in rng.integers(20, 236, size=3)),
            "edge": tuple(int(c) for c in rng.integers(0, 256, size=3)),
        })
    for step in range(count):
        ox, oy = (np.clip(pad + pan * step, 0, 2 * pad)).astype(int)
        pixels = canvas[oy:oy + HEIGHT, ox:ox + WIDTH] + grain[step % 3]
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for s in shapes:
            x, y = _bounce(s["pos"] + s["vel"] * step, np.array([WIDTH, HEIGHT]))
            w, h = s["size"]
            box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
            if s["kind"] == "ellipse":
                draw.ellipse(box, fill=s["fill"], outline=s["edge"], width=3)
            elif s["kind"] == "rectangle":
                draw.rectangle(box, fill=s["fill"], outline=s["edge"], width=3)
            else:
                draw.polygon([(x, y - h / 2), (x + w / 2, y + h / 2), (x - w / 2, y + h / 2)],
                             fill=s["fill"], outline=s["edge"])
        image.save(folder / f"{step:03d}.jpg", "JPEG", quality=QUALITY)
    info = {"id": f"{scenario}/{name}", "scenario": scenario,
            "description": f"In the {scenario}, the {shapes[0]['kind']} "
                           f"{VERBS[int(rng.integers(len(VERBS)))]}."}
    (folder / "episode.json").write_text(json.dumps(info))
    return count


def ensure_frames(root: Path, frames: int, seed: int) -> list[tuple[str, str, int]]:
    """Generate the frame set in `root` unless the marker says it is already there."""
    plan = episode_plan(frames, seed)
    wanted = {"frames": frames, "seed": seed, "generator": GENERATOR_VERSION,
              "size": [WIDTH, HEIGHT], "quality": QUALITY}
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"frames: reusing {frames} frames in {root}")
        return plan
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    start = time.perf_counter()
    with mp.Pool(os.cpu_count()) as pool:
        jobs = [(root, i, s, n, c, seed) for i, (s, n, c) in enumerate(plan)]
        made = sum(pool.imap_unordered(write_episode, jobs, chunksize=4))
    marker.write_text(json.dumps(wanted))
    print(f"frames: generated {made} frames in {len(plan)} episodes "
          f"in {time.perf_counter() - start:.0f} s")
    return plan


def quarter_root(root: Path, plan: list[tuple[str, str, int]], target: int) -> tuple[Path, int]:
    """A folder of symlinks to the first episodes, about `target` frames in every scenario."""
    quarter = root.with_name(root.name + "-quarter")
    if quarter.exists():
        shutil.rmtree(quarter)
    total = 0
    for scenario, name, count in plan:  # the plan interleaves scenarios, so this keeps them all
        if total >= target:
            break
        (quarter / scenario).mkdir(parents=True, exist_ok=True)
        (quarter / scenario / name).symlink_to(root / scenario / name)
        total += count
    return quarter, total


def frame_paths(root: Path, plan: list[tuple[str, str, int]]) -> list[str]:
    return [str(root / s / n / f"{i:03d}.jpg") for s, n, c in plan for i in range(c)]
