"""Episode folders on disk for the builder's tests.

Frames are real image files: a blocky random texture per episode (sharp, and
unlike any other episode's) with a white square that moves a step to the
right in each frame, so consecutive frames differ clearly. Helpers write the
bad inputs the builder must count: corrupt and truncated files, tiny and
blurred frames, duplicates, static and short episodes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SCENARIOS = ("robot", "lego", "gui", "nav")
SIZE = (96, 80)


def frame_image(seed: int, step: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """Frame `step` of the episode drawn from `seed`."""
    width, height = size
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((blocks.shape[1] * 8, blocks.shape[0] * 8),
                                           Image.Resampling.NEAREST).crop((0, 0, width, height))
    side = width // 4
    x = (step * width // 7) % (width - side)
    y = height // 4
    image.paste((255, 255, 255), (x, y, x + side, y + side))
    return image


def encode(image: Image.Image, suffix: str) -> bytes:
    buffer = io.BytesIO()
    if suffix == ".png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_image(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(image, path.suffix.lower()))
    return path


def write_episode(folder: Path, seed: int, *, frames: int = 6, suffix: str = ".jpg",
                  scenario: str | None = None, description: str | None = None,
                  size: tuple[int, int] = SIZE) -> list[Path]:
    """An episode folder of `frames` frames (``000.jpg`` ...) and its episode.json."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_image(folder / f"{step:03d}{suffix}", frame_image(seed, step, size))
             for step in range(frames)]
    info = {k: v for k, v in (("scenario", scenario), ("description", description)) if v}
    if info:
        (folder / "episode.json").write_text(json.dumps(info), encoding="utf-8")
    return paths


DESCRIPTIONS = ("stacking the {c} block on the tower", "opening the {c} drawer",
                "pressing the {c} button", "walking to the {c} door",
                "sorting the {c} tiles", "folding the {c} towel")
COLOURS = ("red", "blue", "green", "yellow", "white", "black", "orange", "purple")


def write_episodes(root: Path, episodes: int, *, frames: int = 6, seed: int = 0,
                   scenarios: Sequence[str] = SCENARIOS, size: tuple[int, int] = SIZE) -> Path:
    """`episodes` episode folders under `root`, scenarios in turn, each described differently."""
    for e in range(episodes):
        description = DESCRIPTIONS[e % len(DESCRIPTIONS)].format(
            c=COLOURS[(e // len(DESCRIPTIONS)) % len(COLOURS)]) + f" number {e}"
        write_episode(root / f"ep{e:03d}", seed * 10_000 + e, frames=frames,
                      scenario=scenarios[e % len(scenarios)], description=description,
                      size=size)
    return root


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(6))


def write_video(path: Path, seed: int, *, seconds: int = 8, fps: int = 4,
                size: tuple[int, int] = (160, 128), faststart: bool = False) -> Path:
    """An H.264 video whose picture changes once a second (one episode step per second)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_image(frame_image(seed, i // fps, size))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, keep: float) -> Path:
    """Cut `path` to the first `keep` share of its bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
