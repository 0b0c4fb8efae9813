"""Episodes from stop-motion LEGO assembly videos: one frame per building step.

``lego-video:PATH`` names a video file or a folder searched recursively for
videos (``.mp4 .mkv .webm .avi .mov``, natural order of relative paths), as
`tpru.sources.video.VideoSource` does. A stop-motion assembly video holds
each state of the model still for a while and changes it in jumps (a brick
appears, sometimes with a hand passing through). Steps are found by change
detection on small colour thumbnails (`THUMB_SIZE`) taken every ``1/fps``
seconds, the difference of two thumbnails being the share of their pixels
whose colour changed clearly (`changed_share`):

- the picture is *settled* once consecutive thumbnails have differed by at
  most ``still_threshold`` for ``settle`` seconds;
- a settled picture that differs from the last step's by more than
  ``change_threshold``, at least ``min_gap`` seconds after it, is a new step,
  and its frame is the first frame of that still period (the settled result
  of the change, not the motion that led to it);
- the first settled picture is the first step (the starting state).

A hand that passes and leaves the model as it was makes no step, and neither
does a change that never settles. At most ``max_frames`` steps are kept,
spread evenly. Frames are video references ``/abs/clip.mp4#t=12.500``.

Text comes from a sidecar file ``clip.mp4.json`` (or ``clip.json``) with the
keys of an ``episode.json`` (id, scenario, description, steps, meta) plus
``name`` (or ``model``): the model's name, giving the description "building
a LEGO <name>". Without a description or name, the name is the file's
(``millennium_falcon.mp4``: "building a LEGO millennium falcon"). Sidecar
``steps`` become the per-frame steps when their number equals the number of
steps detected; otherwise they are kept in ``meta["sidecar_steps"]``.

Unreadable videos (``unreadable_video``), bad sidecars (``invalid_json``,
``bad_field``) and videos without a settled picture (``empty_episode``) are
skipped and counted, naming the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tpru.diagnostics import Skips
from tpru.schema import Episode
from tpru.sources.frames import check_info
from tpru.sources.video import (
    REF_PRECISION,
    UnreadableVideo,
    VideoFiles,
    check_video_options,
    decoded_frames,
    open_video,
    sidecar_path,
    spread,
    video_problem,
    video_ref,
    video_root,
)

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

log = logging.getLogger(__name__)

THUMB_SIZE = (64, 48)
"""Width and height of the thumbnails compared (a brick must cover a few of their pixels)."""

PIXEL_DELTA = 0.08
"""A thumbnail pixel has changed when a colour channel moved by more than this (0-1)."""

_SIDECAR_KEYS = frozenset({"id", "scenario", "description", "steps", "meta", "name", "model"})


def thumbnails(path: str, *, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time, colour thumbnail, values 0-1) of one frame every ``1/fps`` seconds of `path`.

    Raises:
        UnreadableVideo: the video cannot be opened or decoded to its end.
    """
    first: float | None = None
    next_candidate = float("-inf")
    try:
        container, stream = open_video(path)
        with container:
            for frame in decoded_frames(container, stream):
                t = frame.time
                if t is None or t < next_candidate - REF_PRECISION:
                    continue
                # Candidates sit on a grid from the first frame, so they do not drift.
                first = t if first is None else first
                next_candidate = first + (math.floor((t - first) * fps + 1e-6) + 1) / fps
                yield t, _colour_thumb(frame)
    except UnreadableVideo:
        raise
    except Exception as err:  # decoders raise many kinds; all mean "unreadable"
        raise UnreadableVideo(video_problem(path, err)) from err


def _colour_thumb(frame: VideoFrame) -> np.ndarray:
    # Colour, not grey as in the video source: a red brick on a green plate changes
    # the hue far more than the brightness.
    width, height = THUMB_SIZE
    small = frame.reformat(width=width, height=height, format="rgb24")
    return small.to_ndarray().astype(np.float32)[:height, :width] / 255.0


def settled_steps(samples: Iterable[tuple[float, np.ndarray]], *, change_threshold: float,
                  still_threshold: float, settle: float, min_gap: float) -> list[float]:
    """Times of the building steps in (time, thumbnail) `samples` (see the module docstring).

    Example:
        >>> flat = [np.zeros((2, 2, 3)), np.ones((2, 2, 3))]
        >>> samples = [(t / 10, flat[t >= 12]) for t in range(24)]
        >>> settled_steps(samples, change_threshold=0.5, still_threshold=0.1, settle=0.3,
        ...               min_gap=0.5)
        [0.0, 1.2]
    """
    steps: list[float] = []
    reference: np.ndarray | None = None
    previous: np.ndarray | None = None
    run: list[float] = []  # times of the current still period
    run_thumb: np.ndarray | None = None
    for t, thumb in samples:
        if previous is None or changed_share(thumb, previous) > still_threshold:
            run, run_thumb = [], thumb  # movement: a still period may start here
        run.append(t)
        previous = thumb
        if run_thumb is None or t - run[0] < settle - 1e-6:
            continue
        if reference is None:
            steps.append(run[0])
            reference = run_thumb
            continue
        if run[0] <= steps[-1] or changed_share(run_thumb, reference) <= change_threshold:
            continue
        # Every frame of a still period shows the same state: take the first one
        # far enough from the last step.
        when = next((r for r in run if r >= steps[-1] + min_gap - 1e-6), None)
        if when is not None:
            steps.append(when)
            reference = run_thumb
    return steps


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share of thumbnail pixels whose colour differs by more than `PIXEL_DELTA`.

    A share rather than a mean difference: one brick changes a small patch a
    lot, which a mean over the whole picture would dilute below the noise of
    a large, slow change.
    """
    return float((np.abs(a - b).max(axis=-1) > PIXEL_DELTA).mean())


@dataclass(frozen=True)
class _Sidecar:
    id: str | None = None
    scenario: str | None = None
    description: str | None = None
    name: str | None = None
    steps: tuple[str, ...] | None = None
    meta: dict[str, Any] | None = None


class LegoVideoSource(VideoFiles):
    """Episodes from stop-motion LEGO videos (see the module docstring).

    Args:
        path: a video file, or a folder searched recursively for videos.
        skips: where unreadable videos and bad sidecars are counted.
        fps: thumbnails scanned per second.
        change_threshold: the share of thumbnail pixels (0-1) that must have
            changed since the last step for a settled picture to be a new step.
        still_threshold: the largest share of pixels changed between consecutive
            thumbnails that still counts as no movement.
        settle: seconds a picture must stay still to count as settled.
        min_gap: fewest seconds between two steps.
        max_frames: at most this many steps per video, spread evenly.

    Raises:
        InputError: `path` is neither a video file nor a folder.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips, fps: float = 10.0,
                 change_threshold: float = 0.01, still_threshold: float = 0.005,
                 settle: float = 0.3, min_gap: float = 0.5, max_frames: int = 64) -> None:
        check_video_options(fps=fps, max_frames=max_frames, change_threshold=change_threshold,
                            still_threshold=still_threshold)
        if settle < 0 or min_gap < 0:
            raise ValueError("settle and min_gap must not be negative")
        self.path = video_root(path)
        self.skips = skips
        self.fps = fps
        self.change_threshold = change_threshold
        self.still_threshold = still_threshold
        self.settle = settle
        self.min_gap = min_gap
        self.max_frames = max_frames

    # Opening an episode (on a build's worker) decodes the video to find its steps.
    def _episode(self, video: Path) -> Episode | None:
        sidecar_file = sidecar_path(video)
        sidecar = _read_sidecar(sidecar_file, self.skips)
        if sidecar is None:
            return None
        try:
            times = settled_steps(thumbnails(str(video), fps=self.fps),
                                  change_threshold=self.change_threshold,
                                  still_threshold=self.still_threshold,
                                  settle=self.settle, min_gap=self.min_gap)
        except UnreadableVideo as err:
            self.skips.skip("unreadable_video", str(err))
            return None
        times = spread(times, self.max_frames)
        if not times:
            self.skips.skip("empty_episode", f"{video}: the picture never settles "
                            f"(still_threshold {self.still_threshold}, settle {self.settle}s)")
            return None
        meta: dict[str, Any] = {"video": video.name, "step_times": [round(t, 3) for t in times]}
        name = sidecar.name or _name_from_file(video)
        meta["name"] = name
        steps = sidecar.steps
        if steps is not None and len(steps) != len(times):
            log.warning("%s: %d steps given for %d steps detected in %s; keeping them in "
                        "meta only", sidecar_file, len(steps), len(times), video.name)
            meta["sidecar_steps"] = list(steps)
            steps = None
        meta.update(sidecar.meta or {})
        default_id = video.name if video == self.path else video.relative_to(self.path).as_posix()
        return Episode(
            id=sidecar.id or default_id,
            scenario=sidecar.scenario or "lego",
            source="lego-video",
            frames=tuple(video_ref(str(video), t) for t in times),
            steps=steps,
            description=sidecar.description or _building(name),
            meta=meta,
        )


def _building(name: str) -> str:
    """``"building a LEGO <name>"``, without saying LEGO twice."""
    return f"building a {name}" if name.lower().startswith("lego ") else f"building a LEGO {name}"


def _name_from_file(video: Path) -> str:
    """``millennium_falcon-2.mp4`` -> ``millennium falcon 2``."""
    return " ".join(re.split(r"[\s_\-.]+", video.stem)).strip() or video.stem


def _read_sidecar(path: Path, skips: Skips) -> _Sidecar | None:
    """The sidecar's fields; empty when there is none, None (counted) when it is bad."""
    if not path.is_file():
        return _Sidecar()
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        skips.skip("unreadable_file", f"{path}: cannot read ({err.strerror or err})")
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        skips.skip("invalid_json", f"{path}: not valid JSON ({err})")
        return None
    if not isinstance(data, dict):
        skips.skip("bad_field", f"{path}: expected a JSON object, got {type(data).__name__}")
        return None
    unknown = sorted(set(data) - _SIDECAR_KEYS)
    if unknown:
        log.warning("%s: ignoring unknown keys %s (known: %s)", path, ", ".join(unknown),
                    ", ".join(sorted(_SIDECAR_KEYS)))
    name = data.get("name", data.get("model"))
    problem = check_info(data) or (
        None if name is None or (isinstance(name, str) and name.strip())
        else f"field 'name' should be non-empty text, got {name!r}")
    if problem:
        skips.skip("bad_field", f"{path}: {problem}")
        return None
    steps = data.get("steps")
    return _Sidecar(id=data.get("id"), scenario=data.get("scenario"),
                    description=data.get("description"), name=name and name.strip(),
                    steps=None if steps is None else tuple(steps), meta=data.get("meta"))
