"""Episodes from video files: each video is one episode.

``video:PATH`` names a video file or a folder searched (recursively) for
``.mp4 .m4v .mkv .webm .avi .mov .ts`` files, taken in natural order of their relative
paths. An episode's id is the video's path relative to the folder (its file
name when ``PATH`` is a file) and its scenario is ``"video"``, unless a
sidecar file says otherwise: ``clip.mp4.json`` (or ``clip.json``) with the
optional keys of an ``episode.json`` (id, scenario, description, steps, meta).

Frames are references ``"/abs/clip.mp4#t=12.500"``: the time, in seconds on
the video stream's clock, of a frame the builder decodes later through
`decode_at_times` (`tpru.sources.video_decode`, which also reads what this
module learns of each video). Two ways to choose them:

- ``mode="time"``: one frame every ``1/fps`` seconds. Only the container's
  header and first frame are read here.
- ``mode="keyframes"``: the video is decoded, a candidate taken every
  ``1/fps`` seconds, and a candidate kept when its small grey thumbnail
  differs from the last kept one by more than ``change_threshold`` (mean
  absolute difference, 0-1); the first frame is always kept. This follows
  the process rather than the clock: a long pause gives no frames.

Either way at most ``max_frames`` frames are kept, spread evenly over those
chosen. A video that cannot be opened or decoded is skipped and counted as
``unreadable_video``, with a message naming the file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.base import VIDEO_TIME_MARK, unique_ids
from tpru.sources.frames import EpisodeInfo, natural_key, read_episode_info

# Change detection lives apart from PyAV (the rlds source uses it without video); re-exported.
from tpru.sources.keyframes import REF_PRECISION as REF_PRECISION
from tpru.sources.keyframes import KeyframePicker as KeyframePicker
from tpru.sources.keyframes import grey_thumb as grey_thumb
from tpru.sources.keyframes import spread as spread

# Reading frames out of a video (PyAV) lives apart from this source; re-exported for the
# sources built on it (LeRobot, segments, lego-video).
from tpru.sources.video_decode import decode_at_times as decode_at_times
from tpru.sources.video_decode import decoded_frames as decoded_frames
from tpru.sources.video_decode import keyframe_times as keyframe_times
from tpru.sources.video_decode import sample_times as sample_times
from tpru.sources.video_decode import stream_end as stream_end
from tpru.sources.video_decode import video_problem as video_problem
from tpru.sources.video_decode import video_ref as video_ref
from tpru.sources.video_decode import video_span as video_span

# Opening videos, and the one held open between reads, live apart from PyAV's import.
from tpru.sources.video_readers import UnreadableVideo as UnreadableVideo
from tpru.sources.video_readers import open_video as open_video

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".ts"})
"""File name endings (compared in lower case) that count as videos: containers PyAV
(FFmpeg) opens, ``.ts`` being MPEG transport streams (camera and screen recorders)."""

MODES = ("time", "keyframes")

def find_videos(path: Path) -> list[Path]:
    """`path` itself if it is a file, else the videos below it (hidden ones left out),
    in natural order of their relative paths."""
    if path.is_file():
        return [path]
    found = [p for p in path.rglob("*")
             if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    return sorted(found, key=lambda p: [natural_key(part) for part in p.relative_to(path).parts])


def check_video_options(*, fps: float, max_frames: int, **shares: float) -> None:
    """Refuse a non-positive `fps`, `max_frames` below 1, or a share outside 0..1.

    Raises:
        ValueError: naming the option and its value.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    for name, value in shares.items():
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")


def video_root(path: str | os.PathLike[str]) -> Path:
    """`path` made absolute, checked to be a video file or a folder (InputError if not)."""
    root = Path(os.path.abspath(Path(path).expanduser()))
    if not (root.is_dir() or root.is_file()):
        raise InputError(f"{path}: no such video file or folder")
    return root


def video_episodes(root: Path, episode: Callable[[Path], Episode | None],
                   skips: Skips) -> Iterator[Episode]:
    """`episode` of every video under `root` in natural order, skipping the Nones and
    counting repeated ids. A folder without videos is counted as an ``empty_episode``
    whose message names the suffixes accepted (and those it has instead)."""
    return admit_videos((episode(Path(key)) for key in video_keys(root, skips)), skips)


def video_keys(root: Path, skips: Skips) -> Iterator[str]:
    """The paths of the videos under `root`, in natural order: the cheap keys of a source
    split so that workers read the videos (`tpru.sources.base.SplitSource`). A folder
    without videos is counted as `video_episodes` says."""
    videos = find_videos(root)
    if not videos:
        skips.skip("empty_episode", no_videos_message(root))
    yield from (str(video) for video in videos)


def admit_videos(opened: Iterable[Episode | None], skips: Skips) -> Iterator[Episode]:
    """The episodes made from `video_keys` in order, the Nones left out and a repeated id
    counted (naming the video the repeat came from)."""
    made = (episode for episode in opened if episode is not None)
    return unique_ids(((e.frames[0].rpartition(VIDEO_TIME_MARK)[0], e) for e in made), skips)


def no_videos_message(folder: Path) -> str:
    """Why `folder` gives no episode: the suffixes accepted, and the ones found instead.

    Example: ``/data/clips: no video files (.avi, .m4v, .mkv, .mov, .mp4, .ts, .webm);
    it has .flv (3), .txt (1)``.
    """
    others = Counter(p.suffix.lower() or "(no suffix)" for p in folder.rglob("*")
                     if p.is_file() and p.suffix.lower() not in VIDEO_SUFFIXES
                     and p.suffix.lower() != ".json"
                     and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    has = "; it has " + ", ".join(f"{s} ({n})" for s, n in sorted(others.items())) \
        if others else ""
    return f"{folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}){has}"


class VideoFiles:
    """A source with one episode per video file under ``self.path``, split so that a
    build's workers read the videos (`tpru.sources.base.SplitSource`): listing finds the
    files, opening one (``self._episode``) reads it. Shared by `VideoSource` and
    `tpru.sources.lego_video.LegoVideoSource`."""

    path: Path
    skips: Skips

    def _episode(self, video: Path) -> Episode | None:
        raise NotImplementedError

    def iter_episodes(self) -> Iterator[Episode]:
        """One episode per readable video, in natural order of relative paths."""
        return self.admit(self.open_episode(key) for key in self.episode_keys())

    def episode_keys(self) -> Iterator[str]:
        """The videos' paths, in natural order of relative paths."""
        return video_keys(self.path, self.skips)

    def open_episode(self, key: str) -> Episode | None:
        """The episode of video `key`, or None (counted) when it cannot be used."""
        return self._episode(Path(key))

    def admit(self, opened: Iterator[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order; a repeated id is counted and skipped."""
        return admit_videos(opened, self.skips)


class VideoSource(VideoFiles):
    """Episodes from a video file or a folder of videos (see the module docstring).

    Args:
        path: a video file, or a folder searched recursively for videos.
        skips: where unreadable videos and bad sidecar files are counted.
        fps: frames per second taken (``time``) or scanned (``keyframes``).
        mode: ``"time"`` or ``"keyframes"``.
        change_threshold: in ``keyframes`` mode, the mean absolute thumbnail
            difference (0-1) from the last kept frame that keeps a candidate.
        max_frames: at most this many frames per episode, spread evenly.

    Raises:
        InputError: `path` is neither a video file nor a folder.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips, fps: float = 1.0,
                 mode: Literal["time", "keyframes"] = "time", change_threshold: float = 0.03,
                 max_frames: int = 64) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        check_video_options(fps=fps, max_frames=max_frames, change_threshold=change_threshold)
        self.path = video_root(path)
        self.skips = skips
        self.fps = fps
        self.mode = mode
        self.change_threshold = change_threshold
        self.max_frames = max_frames

    # Opening an episode (on a build's worker) reads the video's header and first frame,
    # or decodes all of it in keyframes mode.
    def _episode(self, video: Path) -> Episode | None:
        info_path = sidecar_path(video)
        info = read_episode_info(info_path, self.skips)
        if info is None:
            return None
        try:
            if self.mode == "time":
                times = sample_times(str(video), fps=self.fps)
            else:
                times = keyframe_times(str(video), fps=self.fps,
                                       change_threshold=self.change_threshold)
        except UnreadableVideo as err:
            self.skips.skip("unreadable_video", str(err))
            return None
        times = spread(times, self.max_frames)
        if not times:
            self.skips.skip("empty_episode", f"{video}: no frames")
            return None
        if info.steps is not None and len(info.steps) != len(times):
            self.skips.skip("steps_count", f"{info_path}: {len(info.steps)} steps for "
                            f"{len(times)} frames sampled from {video.name} "
                            f"(mode {self.mode}, fps {self.fps})")
            return None
        return self._make(video, times, info)

    def _make(self, video: Path, times: list[float], info: EpisodeInfo) -> Episode:
        default_id = video.name if video == self.path else video.relative_to(self.path).as_posix()
        return Episode(
            id=info.id or default_id,
            scenario=info.scenario or "video",
            source="video",
            frames=tuple(video_ref(str(video), t) for t in times),
            steps=info.steps,
            description=info.description,
            meta=dict(info.meta),
        )


def sidecar_path(video: Path) -> Path:
    """``clip.mp4.json`` if present, else ``clip.json``."""
    full = video.with_name(video.name + ".json")
    return full if full.is_file() else video.with_suffix(".json")
