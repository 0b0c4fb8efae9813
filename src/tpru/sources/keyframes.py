"""Change-based keyframes and even thinning, shared by the video, LeRobot and RLDS sources.

Nothing here needs a video decoder: a frame is offered as a small grey
thumbnail (`grey_thumb` of a PIL image, or of a PyAV frame the video source
decoded), so sources of stored images use it without PyAV.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

REF_PRECISION = 0.0005
"""Refs carry milliseconds: a frame this much before a requested time still matches it."""

_THUMB = (32, 24)


def spread(items: list[float], limit: int) -> list[float]:
    """At most `limit` of `items`, evenly spaced, keeping the first and last."""
    if len(items) <= limit:
        return items
    if limit == 1:
        return items[:1]
    last = len(items) - 1
    return [items[(j * last) // (limit - 1)] for j in range(limit)]


class KeyframePicker:
    """Change-based keyframes over one run of frames, fed in time order.

    Kept apart from the decoding loop so that a file holding several episodes
    (LeRobot v3.0) can run one picker per episode while decoding the file once.
    """

    def __init__(self, *, fps: float, change_threshold: float) -> None:
        self.fps = fps
        self.change_threshold = change_threshold
        self.times: list[float] = []
        self._last_kept: np.ndarray | None = None
        self._next_candidate = float("-inf")
        self._first: float | None = None

    def is_candidate(self, t: float) -> bool:
        """Whether a frame at `t` falls on the scan grid (so its thumbnail is worth making)."""
        return t >= self._next_candidate - REF_PRECISION

    def offer(self, t: float, thumb: np.ndarray) -> None:
        """Look at a candidate frame (`grey_thumb`) and keep it if the picture changed."""
        # Candidates sit on a grid from the first frame, so they do not drift.
        self._first = t if self._first is None else self._first
        self._next_candidate = self._first + (
            math.floor((t - self._first) * self.fps + 1e-6) + 1) / self.fps
        if self._last_kept is None or \
                float(np.abs(thumb - self._last_kept).mean()) > self.change_threshold:
            self.times.append(t)
            self._last_kept = thumb


def grey_thumb(frame: VideoFrame | Image.Image) -> np.ndarray:
    """A small grey thumbnail (0-1) of a decoded frame or an image, for change detection."""
    if isinstance(frame, Image.Image):
        small = np.asarray(frame.convert("L").resize(_THUMB, Image.Resampling.BILINEAR))
        return small.astype(np.float32) / 255.0
    reformatted = frame.reformat(width=_THUMB[0], height=_THUMB[1], format="gray")
    return reformatted.to_ndarray().astype(np.float32)[: _THUMB[1], : _THUMB[0]] / 255.0
