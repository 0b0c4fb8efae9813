"""Files on disk for the source tests: small images, and H.264 videos written with PyAV.

The videos show one solid colour per second (`SCENE_COLOURS`, in order) with a
small white square moving inside each second, so a test can tell which
second a decoded frame comes from and change-based keyframes fall on whole
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpru.diagnostics import Skips
from tpru.sources.base import LoadedFrame

SCENE_COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200))

VideoWriter = Callable[..., Path]
ImageWriter = Callable[..., Path]


@pytest.fixture
def skips() -> Skips:
    return Skips()


@pytest.fixture
def write_image() -> ImageWriter:
    """``write_image(path, colour=(r, g, b))``: a small image file (format from the suffix)."""

    def write(path: Path, colour: tuple[int, int, int] = (120, 60, 30)) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), colour).save(path)
        return path

    return write


@pytest.fixture
def scene_of() -> Callable[[LoadedFrame], int]:
    """``scene_of(frame)``: which second of a test video a decoded frame shows."""

    def scene(frame: LoadedFrame) -> int:
        assert frame.image is not None, frame.message
        mean = np.asarray(frame.image, dtype=float).reshape(-1, 3).mean(axis=0)
        return int(np.argmin([np.abs(mean - np.array(c)).sum() for c in SCENE_COLOURS]))

    return scene


@pytest.fixture
def write_video() -> VideoWriter:
    """``write_video(path, seconds=3, fps=10, faststart=False)``: an H.264 video file."""
    av = pytest.importorskip("av")

    def write(path: Path, *, seconds: int = 3, fps: int = 10, size: tuple[int, int] = (64, 48),
              faststart: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"movflags": "faststart"} if faststart and path.suffix == ".mp4" else {}
        with av.open(str(path), "w", options=options) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            for i in range(seconds * fps):
                pixels = np.empty((size[1], size[0], 3), np.uint8)
                pixels[:] = SCENE_COLOURS[(i // fps) % len(SCENE_COLOURS)]
                x = (i % fps) * 3
                pixels[4:8, x:x + 4] = 255
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path

    return write


@pytest.fixture
def truncate() -> Callable[[Path, float], Path]:
    """``truncate(path, keep)``: cut `path` to the first `keep` share of its bytes."""

    def cut(path: Path, keep: float) -> Path:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return cut
