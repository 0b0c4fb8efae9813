"""Episodes from video files: each video is one episode.

``video:PATH`` names a video file or a folder searched (recursively) for
``.mp4 .m4v .mkv .webm .avi .mov .ts`` files, taken in natural order of their relative
paths. An episode's id is the video's path relative to the folder (its file
name when ``PATH`` is a file) and its scenario is ``"video"``, unless a
sidecar file says otherwise: ``clip.mp4.json`` (or ``clip.json``) with the
optional keys of an ``episode.json`` (id, scenario, description, steps, meta).

Frames are references ``"/abs/clip.mp4#t=12.500"``: the time, in seconds on
the video stream's clock, of a frame the builder decodes later through
`decode_at_times`. Two ways to choose them:

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

import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
import numpy as np
from PIL import Image

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.base import VIDEO_TIME_MARK, LoadedFrame, unique_ids
from tpru.sources.frames import EpisodeInfo, natural_key, read_episode_info

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".ts"})
"""File name endings (compared in lower case) that count as videos: containers PyAV
(FFmpeg) opens, ``.ts`` being MPEG transport streams (camera and screen recorders)."""

MODES = ("time", "keyframes")

REF_PRECISION = 0.0005
"""Refs carry milliseconds: a frame this much before a requested time still matches it."""

_SEEK_AFTER = 1.0
"""Seek only when the first wanted time is this far in; decoding a second is cheaper."""

_THUMB = (32, 24)


class UnreadableVideo(Exception):
    """A video that cannot be opened or decoded; the message names the file."""


def video_ref(path: str, seconds: float) -> str:
    """The frame reference for `seconds` into video `path` (three decimals)."""
    return f"{path}{VIDEO_TIME_MARK}{seconds:.3f}"


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
    videos = find_videos(root)
    if not videos:
        skips.skip("empty_episode", no_videos_message(root))
    found = ((video, episode(video)) for video in videos)
    yield from unique_ids(((v, e) for v, e in found if e is not None), skips)


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


class VideoSource:
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

    def iter_episodes(self) -> Iterator[Episode]:
        """One episode per readable video, in natural order of relative paths."""
        return video_episodes(self.path, self._episode, self.skips)

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


def spread(items: list[float], limit: int) -> list[float]:
    """At most `limit` of `items`, evenly spaced, keeping the first and last."""
    if len(items) <= limit:
        return items
    if limit == 1:
        return items[:1]
    last = len(items) - 1
    return [items[(j * last) // (limit - 1)] for j in range(limit)]


def open_video(path: str) -> tuple[InputContainer, VideoStream]:
    container = av.open(path)
    if not container.streams.video:
        container.close()
        raise UnreadableVideo(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def decoded_frames(container: InputContainer,
                   stream: VideoStream) -> Generator[VideoFrame, None, None]:
    """The stream's frames in presentation order, passing over packets the decoder rejects.

    A damaged packet (a cut or corrupt stretch) costs its own frames, not the
    rest of the video; the decoder picks up again at the next keyframe. Errors
    reading the file itself still raise.
    """
    rejected = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as err:
            rejected += 1
            log.debug("%s: packet at pts %s rejected: %s", container.name, packet.pts, err)
            continue
        yield from frames
    if rejected:
        log.info("%s: %d damaged packets passed over", container.name, rejected)


def video_problem(path: str, err: Exception) -> str:
    return f"{path}: {type(err).__name__}: {err}"


def sample_times(path: str, *, fps: float) -> list[float]:
    """Times of one frame every ``1/fps`` seconds, from the first frame to the end.

    Reads the header and decodes the first frame only, so that a video that
    cannot be decoded at all is found here rather than at build time.

    Raises:
        UnreadableVideo: the video cannot be opened or has no decodable frame.
    """
    first, end = _first_and_end(path)
    times: list[float] = []
    step = 1.0 / fps
    while (t := first + len(times) * step) < end or not times:
        times.append(t)
    return times


def video_span(path: str) -> tuple[float, float]:
    """``(first, length)``: the first decodable frame's time, and the seconds after it.

    Raises:
        UnreadableVideo: the video cannot be opened or has no decodable frame.
    """
    first, end = _first_and_end(path)
    return first, end - first


def _first_and_end(path: str) -> tuple[float, float]:
    try:
        container, stream = open_video(path)
        with container:
            decoded = decoded_frames(container, stream)
            first = next((f.time for f in decoded if f.time is not None), None)
            decoded.close()  # before stream_end may read the packets again
            if first is None:
                raise UnreadableVideo(f"{path}: no decodable frame")
            return first, stream_end(container, stream)
    except UnreadableVideo:
        raise
    except Exception as err:  # decoders raise many kinds; all mean "unreadable"
        raise UnreadableVideo(video_problem(path, err)) from err


def stream_end(container: InputContainer, stream: VideoStream) -> float:
    """When the stream ends, in seconds: from the header, else from the packets."""
    base = stream.time_base
    start = float(stream.start_time * base) if stream.start_time is not None and base else 0.0
    if stream.duration is not None and base:
        return start + float(stream.duration * base)
    if container.duration is not None:
        return start + container.duration / av.time_base
    end = start
    container.seek(0)
    for packet in container.demux(stream):
        if packet.pts is not None and base:
            end = max(end, float((packet.pts + (packet.duration or 0)) * base))
    return end


def keyframe_times(path: str, *, fps: float, change_threshold: float) -> list[float]:
    """Times of the frames where the picture changed (see the module docstring).

    Raises:
        UnreadableVideo: the video cannot be opened or decoded to its end.
    """
    picker = KeyframePicker(fps=fps, change_threshold=change_threshold)
    try:
        container, stream = open_video(path)
        with container:
            for frame in decoded_frames(container, stream):
                if frame.time is not None and picker.is_candidate(frame.time):
                    picker.offer(frame.time, grey_thumb(frame))
    except UnreadableVideo:
        raise
    except Exception as err:  # decoders raise many kinds; all mean "unreadable"
        raise UnreadableVideo(video_problem(path, err)) from err
    return picker.times


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


def _rgb(frame: VideoFrame) -> Image.Image:
    # VideoFrame.to_image is untyped in PyAV's stubs; this is the same conversion.
    return Image.fromarray(frame.to_ndarray(format="rgb24"))


def grey_thumb(frame: VideoFrame | Image.Image) -> np.ndarray:
    """A small grey thumbnail (0-1) of a decoded frame or an image, for change detection."""
    if isinstance(frame, Image.Image):
        small = np.asarray(frame.convert("L").resize(_THUMB, Image.Resampling.BILINEAR))
        return small.astype(np.float32) / 255.0
    reformatted = frame.reformat(width=_THUMB[0], height=_THUMB[1], format="gray")
    return reformatted.to_ndarray().astype(np.float32)[: _THUMB[1], : _THUMB[0]] / 255.0


def decode_at_times(path: str, times: Sequence[float], *,
                    refs: Sequence[str] | None = None) -> Iterator[LoadedFrame]:
    """Decode the frames of one video at `times` (seconds), in the order asked.

    The container is opened once; decoding starts at the first wanted time
    (seeking to the keyframe before it) and runs forward. Each time gets the
    first frame at or after it (refs carry milliseconds, so a frame up to
    half a millisecond earlier counts), or the last frame when the time falls
    within a frame's duration after it. Nothing raises: a missing file gives
    ``missing_file`` frames, and every frame that a truncated or corrupt
    video could not deliver comes back with ``error="unreadable_video"`` and
    a message naming the file.

    Args:
        path: the video file.
        times: seconds on the stream's clock, in any order.
        refs: the references to put in the frames (default: `video_ref` of
            each time); pass the episode's own to get them back unchanged.
    """
    labels = list(refs) if refs is not None else [video_ref(path, t) for t in times]
    if len(labels) != len(times):
        raise ValueError(f"{len(labels)} refs for {len(times)} times")
    order = sorted(range(len(times)), key=lambda i: times[i])
    wanted = [(times[i], labels[i]) for i in order]
    ready: dict[int, LoadedFrame] = {}
    next_out = 0
    # Decode in time order but hand frames out in the order asked, holding only
    # those that are ready early (none when `times` is already sorted).
    for position, frame in enumerate(_decode_sorted(path, wanted)):
        ready[order[position]] = frame
        while next_out in ready:
            yield ready.pop(next_out)
            next_out += 1


def _decode_sorted(path: str, wanted: list[tuple[float, str]]) -> Iterator[LoadedFrame]:
    """One frame per entry of `wanted` (sorted by time), in that order."""
    if not wanted:
        return
    if not os.path.exists(path):
        for _, ref in wanted:
            yield LoadedFrame(ref, error="missing_file", message=f"{path}: no such file")
        return
    done = 0
    problem = "the video ends before this time"
    try:
        container, stream = open_video(path)
        with container:
            rate = stream.average_rate
            after_last = 1.5 / float(rate) if rate else 0.1
            if wanted[0][0] > _SEEK_AFTER and stream.time_base:
                container.seek(int(wanted[0][0] / stream.time_base), stream=stream,
                               backward=True, any_frame=False)
            last: tuple[float, VideoFrame] | None = None
            for frame in decoded_frames(container, stream):
                t = frame.time
                if t is None:
                    continue
                while done < len(wanted) and t >= wanted[done][0] - REF_PRECISION:
                    yield LoadedFrame(wanted[done][1], image=_rgb(frame))
                    done += 1
                if done == len(wanted):
                    return
                last = (t, frame)
            while last is not None and done < len(wanted) \
                    and wanted[done][0] - last[0] <= after_last:
                yield LoadedFrame(wanted[done][1], image=_rgb(last[1]))
                done += 1
    except Exception as err:  # decoders raise many kinds; none may stop a build
        problem = (str(err).removeprefix(f"{path}: ") if isinstance(err, UnreadableVideo)
                   else f"{type(err).__name__}: {err}")
        log.debug("%s: decoding stopped: %s", path, problem)
    for time, ref in wanted[done:]:
        yield LoadedFrame(ref, error="unreadable_video",
                          message=f"{path}: no frame at {time:.3f}s ({problem})")
