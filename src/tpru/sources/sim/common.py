"""The simulator interface, and small helpers the simulators share.

A simulator renders one episode of one of its tasks from a seed::

    class RobotSim:
        name = "robot"
        tasks = ("pick_place", "push", ...)

        def render_episode(self, task: str, seed: int, frames_dir: Path, *,
                           frames: int, size: tuple[int, int]) -> EpisodeSpec: ...

`render_episode` writes exactly ``frames`` image files (PNG or JPEG) into
``frames_dir`` (which exists and is empty), earliest first, and returns what
it wrote and what the episode shows: a gerund description precise enough to
tell this process from any other (objects, colours, targets, order), one
step text per frame, and meta (the task, the engine, the layout drawn). It
raises `SimError` when this seed cannot give a valid episode (a grasp that
slipped, a goal the planner cannot reach); `tpru.sources.sim.SimSource`
counts that as a skip and goes on. Every random choice comes from
`episode_rng`, so the same (task, seed, frames, size) writes byte-identical
files. The engine is imported by the simulator's module, so a missing
engine is an ``ImportError`` there, which the source turns into an install
hint (see ``REQUIREMENTS`` in the package); a missing program or data
folder is `EngineMissing`, raised by the constructor or by `render_episode`
(either stops the build with that message). A simulator that keeps an
engine running between episodes (a browser) may also have ``close()``,
which `SimSource` calls when it has yielded its episodes; it must start the
engine again if asked for more.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

JPEG_QUALITY = 92
"""Quality of JPEG frames: renders have hard edges, so keep them crisp."""

MIN_DIFF = 0.02
"""Least mean absolute difference (0-1) of 16x16 grey thumbnails between consecutive
frames that `pick_distinct` aims for: twice the builder's default near-duplicate limit
(``FilterConfig.dup_pixel_diff``), so that no kept frame is dropped as a near-duplicate."""


class SimError(Exception):
    """This task and seed cannot give a valid episode; the message says why."""


class EngineMissing(Exception):
    """The engine a simulator needs is not installed; the message says what to install.

    Raised by a simulator's constructor for what an import cannot detect (a
    system program, a data folder); a missing Python package is simply an
    ``ImportError`` when the simulator's module is imported.
    """


@dataclass(frozen=True)
class EpisodeSpec:
    """What `Simulator.render_episode` wrote and what the episode shows.

    Attributes:
        description: the whole process as a lower-case gerund phrase without a
            final full stop ("stacking the red cube on the blue cube, then ..."),
            since the builder writes "These photos show the process of <it>".
        steps: one sentence per frame saying what that frame shows.
        frames: file names inside ``frames_dir``, earliest first.
        meta: what else is known (task, engine, objects, camera, ...); JSON types only.
    """

    description: str
    steps: tuple[str, ...]
    frames: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.frames):
            raise ValueError(f"{len(self.steps)} steps for {len(self.frames)} frames")
        if not self.description:
            raise ValueError("an episode needs a description")


class Simulator(Protocol):
    """A class that renders episodes of a few task types; see the module docstring."""

    @property
    def name(self) -> str:
        """The simulator's name, also the episodes' scenario (``robot``, ``nav``, ...)."""
        ...

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task types it renders, taken in turn by seed."""
        ...

    def render_episode(self, task: str, seed: int, frames_dir: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        """Write ``frames`` frames of one `task` episode drawn from `seed` into `frames_dir`."""
        ...


def episode_rng(name: str, task: str, seed: int) -> np.random.Generator:
    """The generator every random choice of one episode draws from.

    Seeded with the seed and stable checksums of the simulator and task names,
    so episodes of different simulators or tasks never share a stream.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(task.encode())])


def frame_name(index: int, ext: str = "jpg") -> str:
    """``000.jpg``, ``001.jpg``, ...: names that sort in frame order."""
    return f"{index:03d}.{ext}"


def save_frame(pixels: np.ndarray | Image.Image, path: Path) -> None:
    """Write an RGB frame as JPEG or PNG (from the suffix), byte-reproducibly.

    Args:
        pixels: (H, W, 3) or (H, W, 4) uint8 (alpha is dropped), or a PIL image.
        path: ``.jpg``/``.jpeg`` or ``.png``.
    """
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(
        np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8)[..., :3]))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, "JPEG", quality=JPEG_QUALITY)
    elif path.suffix.lower() == ".png":
        image.save(path, "PNG", optimize=False)
    else:
        raise ValueError(f"{path}: frames are written as .jpg or .png")


def spread(total: int, count: int) -> list[int]:
    """`count` indices out of ``range(total)``, evenly spaced, first and last included.

    Example:
        >>> spread(10, 4)
        [0, 3, 6, 9]
    """
    if count < 1 or total < count:
        raise ValueError(f"cannot pick {count} of {total}")
    if count == 1:
        return [0]
    last = total - 1
    return [round(j * last / (count - 1)) for j in range(count)]


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    """A (16, 16) grey thumbnail (float, 0-1) of an RGB frame, as the builder compares them."""
    image = Image.fromarray(np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8)[..., :3]))
    small = np.asarray(image.resize((32, 32), Image.Resampling.BILINEAR, reducing_gap=2.0),
                       dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    result: np.ndarray = small.reshape(16, 2, 16, 2).mean(axis=(1, 3)) / 255.0
    return result


def pick_distinct(thumbs: Sequence[np.ndarray], count: int, *,
                  min_diff: float = MIN_DIFF) -> list[int]:
    """`count` indices of candidate frames, first and last included, that look different.

    Among the choices whose consecutive frames differ by at least `min_diff`
    (mean absolute thumbnail difference), the one closest to an even spread
    over the candidates; when there is none, the largest such limit that
    some choice meets. Simulators render a few more candidate frames than
    asked (after each sub-action) and keep these, so that a step that moved
    little (a gripper closing far from the camera) does not give two frames
    the builder would drop as near-duplicates.

    Example:
        >>> flat = [np.full((16, 16), v) for v in (0.0, 0.005, 0.3, 0.31, 0.6)]
        >>> pick_distinct(flat, 3)
        [0, 2, 4]
    """
    n = len(thumbs)
    if count < 2 or n < count:
        raise ValueError(f"cannot pick {count} of {n} frames")
    stack = np.stack([np.asarray(t, dtype=np.float32).ravel() for t in thumbs])
    diff = np.abs(stack[:, None, :] - stack[None, :, :]).mean(axis=2)
    later = np.triu(np.ones((n, n), dtype=bool), 1)
    chosen = _spread_path(later & (diff >= min_diff), count)
    if chosen is not None:
        return chosen
    limits = np.unique(diff[later])
    low, high = 0, len(limits) - 1       # limits[0] is always met: find the largest that is
    while low < high:
        mid = (low + high + 1) // 2
        if _spread_path(later & (diff >= limits[mid]), count) is None:
            high = mid - 1
        else:
            low = mid
    best = _spread_path(later & (diff >= limits[low]), count)
    assert best is not None
    return best


def _spread_path(allowed: np.ndarray, count: int) -> list[int] | None:
    """The increasing path 0 -> n-1 of `count` nodes over `allowed` edges nearest an even spread."""
    n = len(allowed)
    ideal = np.linspace(0, n - 1, count)
    index = np.arange(n)
    cost = np.where(index == 0, 0.0, np.inf)
    back = []
    for k in range(1, count):
        through = np.where(allowed, cost[:, None], np.inf)     # [from, to]
        came = np.argmin(through, axis=0)
        cost = through[came, index] + (index - ideal[k]) ** 2
        back.append(came)
    if not np.isfinite(cost[n - 1]):
        return None
    path = [n - 1]
    for came in reversed(back):
        path.append(int(came[path[-1]]))
    return path[::-1]


def check_request(sim: Simulator, task: str, frames: int, size: tuple[int, int]) -> None:
    """Raise ValueError for a task the simulator lacks, or a frame count or size out of range."""
    if task not in sim.tasks:
        raise ValueError(f"simulator {sim.name!r} has no task {task!r} "
                         f"(tasks: {', '.join(sim.tasks)})")
    if frames < 2:
        raise ValueError(f"an episode needs at least 2 frames, got {frames}")
    if len(size) != 2 or min(size) < 16 or max(size) > 4096:
        raise ValueError(f"frame size must be 16 to 4096 pixels a side, got {size}")


@contextmanager
def silenced(*fds: int) -> Iterator[None]:
    """Send what is written to file descriptors `fds` (default: 1, stdout) to /dev/null meanwhile.

    Engines print banners from C (PyBullet's build time on import, ``argv[0]=``
    on connect; MiniWorld's frame-buffer notes), which Python-level
    redirection cannot catch and which would break a progress display or a
    command's output.
    """
    fds = fds or (1,)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "wb") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
