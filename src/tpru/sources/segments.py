"""Episodes from procedure-annotated videos: one frame per annotated step.

Datasets such as COIN and EPIC-KITCHENS annotate a video with *segments*, a
start and end time and a text per step. Each such run of steps is an
episode whose frames are one frame per segment and whose steps are the
segments' texts. Which frame stands for a segment is the ``frame`` option:

- ``end`` (the default): the step's result, `END_MARGIN` seconds before the
  segment ends (at most half the segment), so the frame is still inside it;
- ``middle``: the frame halfway through the segment;
- ``keyframe``: the frame right after the biggest change of the picture
  inside the segment (mean absolute difference of small grey thumbnails of
  consecutive frames); when nothing changes by more than ``change_threshold``,
  the ``end`` frame.

``segments:FILE.jsonl`` is the generic form, one video per line::

    {"video": "clips/tea.mp4", "description": "making tea",
     "segments": [{"start": 0.0, "end": 4.5, "text": "boil the water"}, ...]}

with optional ``id`` (default: the video's path), ``scenario`` (default
``video``) and ``meta``. The video path is relative to the file and must stay
inside its folder (as a manifest's frames must). `tpru.sources.coin` and
`tpru.sources.epic_kitchens` read their datasets' own annotation files into
the same `Procedure` records and share `StepFrames`.

Segment times are seconds from the video's first frame. Frames are video
references ``/abs/clip.mp4#t=12.500`` that the builder decodes later, each
video opened once for an episode's frames and decoded forward in time
order. Only ``keyframe`` decodes here: one container per episode, a seek to
each segment's start and decoding to its end, so memory does not depend on
the video's length or the dataset's size.

Bad input is counted and skipped, naming the file and episode: a line that
is not JSON (``FILE:LINE:COLUMN``), a missing video (``missing_file``), a
segment that ends where it starts or before (``bad_segment``), segments that
overlap (``overlapping_segments``), a segment starting after the video ends
or ending more than `END_TOLERANCE` seconds after it (``segment_past_end``;
within the tolerance the segment is cut at the video's end), and a video
that cannot be decoded (``unreadable_video``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tpru.diagnostics import InputError, Skips, json_problem, warn_unknown_keys
from tpru.schema import Episode
from tpru.sources.manifest import PathEscapesRoot, resolve_frame, unique_lines
from tpru.sources.video import (
    REF_PRECISION,
    UnreadableVideo,
    decoded_frames,
    grey_thumb,
    open_video,
    video_problem,
    video_ref,
    video_span,
)

FrameChoice = Literal["end", "middle", "keyframe"]
FRAME_CHOICES: tuple[FrameChoice, ...] = ("end", "middle", "keyframe")

END_MARGIN = 0.1
"""Seconds before a segment's end taken as its ``end`` frame: annotated boundaries often
fall on the first frame of the next step, and the frame must show this one's result."""

END_TOLERANCE = 0.5
"""Seconds a segment may end after the video (annotations are rounded); cut to the end."""

@dataclass(frozen=True)
class Segment:
    """One annotated step: seconds from the video's first frame, and its text."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Procedure:
    """An episode before its frames are chosen: a video and its steps.

    ``where`` names the annotation (``FILE, line 3``, ``FILE, video abc``) in messages.
    """

    id: str
    video: Path
    segments: tuple[Segment, ...]
    where: str
    source: str
    scenario: str
    description: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def segment_problem(segments: Sequence[Segment]) -> tuple[str, str] | None:
    """``(reason, message)`` for reversed or overlapping segments, None when they are fine.

    Example:
        >>> segment_problem([Segment(0, 2, "a"), Segment(1, 3, "b")])
        ('overlapping_segments', 'segment 2 (1.000-3.000s) starts before segment 1 ends (2.000s)')
    """
    for i, seg in enumerate(segments):
        if not (math.isfinite(seg.start) and math.isfinite(seg.end)) or seg.end <= seg.start:
            return "bad_segment", (f"segment {i + 1} ends at {seg.end:.3f}s, not after its "
                                   f"start {seg.start:.3f}s")
        if seg.start < 0:
            return "bad_segment", f"segment {i + 1} starts before 0 ({seg.start:.3f}s)"
        if i and seg.start < segments[i - 1].end - REF_PRECISION:
            return "overlapping_segments", (
                f"segment {i + 1} ({seg.start:.3f}-{seg.end:.3f}s) starts before segment "
                f"{i} ends ({segments[i - 1].end:.3f}s)")
    return None


def check_frame_options(frame: str, change_threshold: float) -> None:
    """Refuse an unknown ``frame`` or a threshold outside 0..1 (ValueError naming it)."""
    if frame not in FRAME_CHOICES:
        raise ValueError(f"frame must be one of {', '.join(FRAME_CHOICES)}, got {frame!r}")
    if not 0 <= change_threshold <= 1:
        raise ValueError(f"change_threshold must be between 0 and 1, got {change_threshold}")


class StepFrames:
    """Turns `Procedure` records into episodes, one frame per segment.

    The last video's span is remembered, so the many episodes of one long
    video (EPIC-KITCHENS) read its header once.
    """

    def __init__(self, skips: Skips, *, frame: FrameChoice = "end",
                 change_threshold: float = 0.03) -> None:
        check_frame_options(frame, change_threshold)
        self.skips = skips
        self.frame = frame
        self.change_threshold = change_threshold
        self._span: tuple[Path, tuple[float, float]] | None = None

    def episode(self, procedure: Procedure) -> Episode | None:
        """The episode of `procedure`, or None (counted) when it cannot be read."""
        where = f"{procedure.where}: episode {procedure.id!r}"
        if not procedure.segments:
            self.skips.skip("empty_episode", f"{where}: no segments")
            return None
        problem = segment_problem(procedure.segments)
        if problem is not None:
            self.skips.skip(problem[0], f"{where}: {problem[1]}")
            return None
        if not procedure.video.is_file():
            self.skips.skip("missing_file", f"{where}: video {procedure.video}: no such file")
            return None
        try:
            first, length = self._video_span(procedure.video)
        except UnreadableVideo as err:
            self.skips.skip("unreadable_video", f"{where}: {err}")
            return None
        spans = []
        for i, seg in enumerate(procedure.segments):
            if seg.start >= length or seg.end > length + END_TOLERANCE:
                self.skips.skip("segment_past_end", f"{where}: segment {i + 1} "
                                f"({seg.start:.3f}-{seg.end:.3f}s) is past the end of "
                                f"{procedure.video} ({length:.3f}s)")
                return None
            spans.append((first + seg.start, first + min(seg.end, length)))
        try:
            times = self._times(str(procedure.video), spans)
        except UnreadableVideo as err:
            self.skips.skip("unreadable_video", f"{where}: {err}")
            return None
        return Episode(
            id=procedure.id, scenario=procedure.scenario, source=procedure.source,
            frames=tuple(video_ref(str(procedure.video), t) for t in times),
            steps=tuple(seg.text for seg in procedure.segments),
            description=procedure.description,
            meta={**procedure.meta, "frame": self.frame,
                  "segments": [[seg.start, seg.end] for seg in procedure.segments]})

    def _video_span(self, video: Path) -> tuple[float, float]:
        """The first frame's time and the length in seconds after it."""
        if self._span is None or self._span[0] != video:
            self._span = (video, video_span(str(video)))
        return self._span[1]

    def _times(self, path: str, spans: list[tuple[float, float]]) -> list[float]:
        if self.frame == "middle":
            return [(a + b) / 2 for a, b in spans]
        ends = [end_time(a, b) for a, b in spans]
        if self.frame == "end":
            return ends
        return keyframe_times(path, spans, ends, change_threshold=self.change_threshold)


def made(opened: Iterable[Episode | None]) -> Iterator[Episode]:
    """The episodes of `opened`, the Nones (procedures skipped and counted) left out."""
    return (episode for episode in opened if episode is not None)


def end_time(start: float, end: float) -> float:
    """The time of a segment's ``end`` frame: `END_MARGIN` before its end, inside it."""
    return end - min(END_MARGIN, (end - start) / 2)


def keyframe_times(path: str, spans: Sequence[tuple[float, float]], fallbacks: Sequence[float],
                   *, change_threshold: float) -> list[float]:
    """Per span (sorted, absolute times), the time of the frame after its biggest change.

    A span whose biggest change is at most `change_threshold` gets the time of
    its last frame at or before its fallback (its ``end`` time). The video is
    opened once; each span is reached by a seek to the keyframe before it.

    Raises:
        UnreadableVideo: the video cannot be opened, or a span has no decodable frame.
    """
    times: list[float] = []
    try:
        container, stream = open_video(path)
        with container:
            for (start, end), fallback in zip(spans, fallbacks, strict=True):
                if stream.time_base:
                    container.seek(int(start / stream.time_base), stream=stream,
                                   backward=True, any_frame=False)
                decoded = decoded_frames(container, stream)
                best: tuple[float, float] | None = None  # (change, time)
                before: float | None = None
                last: np.ndarray | None = None
                for frame in decoded:
                    t = frame.time
                    if t is None or t < start - REF_PRECISION:
                        continue
                    if t > end + REF_PRECISION:
                        break
                    if before is None or t <= fallback + REF_PRECISION:
                        before = t
                    thumb = grey_thumb(frame)
                    if last is not None:
                        change = float(np.abs(thumb - last).mean())
                        if best is None or change > best[0]:
                            best = (change, t)
                    last = thumb
                decoded.close()
                if before is None:
                    raise UnreadableVideo(f"{path}: no frame between {start:.3f}s and "
                                          f"{end:.3f}s")
                keep = best is not None and best[0] > change_threshold
                times.append(best[1] if best is not None and keep else before)
    except UnreadableVideo:
        raise
    except Exception as err:  # decoders raise many kinds; all mean "unreadable"
        raise UnreadableVideo(video_problem(path, err)) from err
    return times


def number(value: Any) -> float | None:
    """`value` as seconds when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


LINE_KEYS = frozenset({"video", "segments", "description", "id", "scenario", "meta"})
SEGMENT_KEYS = frozenset({"start", "end", "text"})


class SegmentsSource:
    """Episodes from a JSONL file of annotated videos (see the module docstring).

    Args:
        path: the JSONL file; video paths are relative to its folder.
        skips: where bad lines and unreadable videos are counted.
        frame: which frame stands for a segment: ``end``, ``middle`` or ``keyframe``.
        change_threshold: for ``keyframe``, the smallest change (0-1) that counts.

    Raises:
        InputError: `path` is not a file.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 frame: FrameChoice = "end", change_threshold: float = 0.03) -> None:
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not self.path.is_file():
            raise InputError(f"{path}: no such segments file (one JSON object per line)")
        self.root = self.path.parent.resolve()
        self.skips = skips
        self.steps = StepFrames(skips, frame=frame, change_threshold=change_threshold)

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in the order of the file's lines; a repeated id is counted and skipped."""
        return self.admit(self.open_episode(key) for key in self.episode_keys())

    # A split source (`tpru.sources.base.SplitSource`): listing reads the annotation file;
    # opening a procedure reads its video (all of each segment for ``frame=keyframe``) on a
    # build's workers.
    def episode_keys(self) -> Iterator[Procedure]:
        """The file's procedures, in line order; a repeated id is counted and skipped."""
        return unique_lines(self.path, self._parse, lambda procedure: procedure.id, self.skips,
                            hint=" (give each line an 'id')")

    def open_episode(self, key: Procedure) -> Episode | None:
        """The episode of procedure `key`, or None (counted) when it cannot be read."""
        return self.steps.episode(key)

    def admit(self, opened: Iterable[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order."""
        return made(opened)

    def _parse(self, raw: bytes, line: int) -> Procedure | None:
        where = f"{self.path}, line {line}"
        raw = raw.rstrip(b"\r\n")
        if line == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            column = f":{err.colno}" if isinstance(err, json.JSONDecodeError) else ""
            self.skips.skip("invalid_json", f"{self.path}:{line}{column}: not valid JSON "
                            f"({json_problem(err, line=False)})")
            return None
        problem = _line_problem(data)
        if problem is not None:
            self.skips.skip("bad_field", f"{where}: {problem}")
            return None
        warn_unknown_keys(self.skips, data, LINE_KEYS, where)
        for i, seg in enumerate(data["segments"]):
            warn_unknown_keys(self.skips, seg, SEGMENT_KEYS, f"{where}, segment {i + 1}")
        try:
            video = Path(resolve_frame(data["video"], self.root))
        except PathEscapesRoot as err:
            self.skips.skip("path_escapes_root", f"{where}: video {err}")
            return None
        return Procedure(
            id=data.get("id") or data["video"], video=video, where=where, source="segments",
            scenario=data.get("scenario") or "video", description=data.get("description"),
            segments=tuple(Segment(float(s["start"]), float(s["end"]), s["text"])
                           for s in data["segments"]),
            meta={**data.get("meta", {}), "video": data["video"]})


def _line_problem(data: Any) -> str | None:
    """What is wrong with a line's fields, or None."""
    if not isinstance(data, dict):
        return f"a line must be a JSON object, not {type(data).__name__}"
    if not isinstance(data.get("video"), str) or not data["video"]:
        return "'video' must be a path (a non-empty string)"
    for key in ("id", "scenario", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key!r} must be a string, not {type(data[key]).__name__}"
    if not isinstance(data.get("meta", {}), dict):
        return "'meta' must be an object"
    segments = data.get("segments")
    if not isinstance(segments, list):
        return "'segments' must be a list of {start, end, text}"
    for i, seg in enumerate(segments):
        if not (isinstance(seg, dict) and number(seg.get("start")) is not None
                and number(seg.get("end")) is not None and isinstance(seg.get("text"), str)):
            return f"segment {i + 1} must be {{start: seconds, end: seconds, text: string}}"
    return None
