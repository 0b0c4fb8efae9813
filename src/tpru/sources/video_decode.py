"""Reading a video's frames with PyAV: what sources learn of a video, and what the builder decodes.

- For the sources: `sample_times` (one frame every ``1/fps`` seconds, from
  the header and the first frame), `keyframe_times` (decoding the video to
  keep the frames where the picture changed), `video_span`, `stream_end`.
- For the builder: `decode_at_times` decodes the frames that references
  ``/abs/clip.mp4#t=12.500`` (`video_ref`) name; `video_frames` is what
  `tpru.sources.base.load_frames` calls for a run of them.
- `decoded_frames`: a stream's frames, passing over damaged packets and,
  when told the next time wanted, not decoding what shows before it.

Opening files, and the one held open between reads, is `tpru.sources.video_readers`;
change detection is `tpru.sources.keyframes`. `tpru.sources.video` (the
``video:`` source) re-exports what other sources use from here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING

import av
from PIL import Image

from tpru.sources.base import VIDEO_TIME_MARK, LoadedFrame, split_video_ref
from tpru.sources.keyframes import REF_PRECISION, KeyframePicker, grey_thumb
from tpru.sources.video_readers import READERS, UnreadableVideo, open_video

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

_SEEK_AFTER = 1.0
"""Seek only when the first wanted time is this far in; decoding a second is cheaper."""


def video_ref(path: str, seconds: float) -> str:
    """The frame reference for `seconds` into video `path` (three decimals)."""
    return f"{path}{VIDEO_TIME_MARK}{seconds:.3f}"


def decoded_frames(container: InputContainer, stream: VideoStream, *,
                   next_wanted: Callable[[], float | None] | None = None,
                   ) -> Generator[VideoFrame, None, None]:
    """The stream's frames in presentation order, passing over packets the decoder rejects.

    A damaged packet (a cut or corrupt stretch) costs its own frames, not the
    rest of the video; the decoder picks up again at the next keyframe. Errors
    reading the file itself still raise.

    Args:
        next_wanted: when given, the time of the next frame the caller wants
            (None: none), asked before each packet. A packet that shows before
            that time is then held back, not decoded, and the packets held are
            dropped when a keyframe at or before that time arrives; they are
            decoded (in order) as soon as a packet reaches the time wanted. So
            only the stretch from the last keyframe before a wanted frame to
            that frame is decoded: a LeRobot video has a keyframe every 2
            frames, and sampling it at 1 fps would otherwise decode 30 frames
            for each one kept. Frames before the time wanted may be left out;
            none at or after it is.
    """
    base = float(stream.time_base or 0)  # a float: Fraction arithmetic per packet is slow
    held: list[av.Packet[VideoStream]] = []  # packets since the last keyframe, not decoded
    fed = False  # whether the decoder has been given packets since it was last reset
    rejected = 0
    for packet in container.demux(stream):
        target = next_wanted() if next_wanted is not None else None
        if target is not None and packet.pts is not None and base:
            start = packet.pts * base
            if packet.is_keyframe and start <= target + REF_PRECISION:
                # The frames before this keyframe all show before `target`.
                if fed:
                    stream.codec_context.flush_buffers()
                held, fed = [], False
            if start < target - REF_PRECISION:
                held.append(packet)
                continue
        batch, held = [*held, packet], []
        for item in batch:
            try:
                frames = item.decode()
            except av.error.FFmpegError as err:
                rejected += 1
                log.debug("%s: packet at pts %s rejected: %s", container.name, item.pts, err)
                continue
            fed = True
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


def _rgb(frame: VideoFrame) -> Image.Image:
    # VideoFrame.to_image is untyped in PyAV's stubs; this is the same conversion.
    return Image.fromarray(frame.to_ndarray(format="rgb24"))


def video_frames(path: str, refs: Sequence[str]) -> Iterator[LoadedFrame]:
    """The frames of video `path` that `refs` (``path#t=SECONDS``) name, in order: what
    `tpru.sources.base.load_frames` calls for a run of references into one video."""
    times = [where[1] if (where := split_video_ref(ref)) is not None else 0.0 for ref in refs]
    return decode_at_times(path, times, refs=refs)


def decode_at_times(path: str, times: Sequence[float], *,
                    refs: Sequence[str] | None = None) -> Iterator[LoadedFrame]:
    """Decode the frames of one video at `times` (seconds), in the order asked.

    The container is opened once, and held open afterwards for the next call
    on the same file (`READERS`: the episodes of a LeRobot v3.0 mp4 are read
    one after another); decoding starts at the first wanted time (seeking to
    the keyframe before it) and runs forward, decoding only from the last
    keyframe before each wanted time (`decoded_frames`). Each time gets the
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
    opened: tuple[InputContainer, VideoStream] | None = None
    decoded: Generator[VideoFrame, None, None] | None = None
    failed = False
    try:
        opened = container, stream = _open_at(path, wanted[0][0])
        rate = stream.average_rate
        after_last = 1.5 / float(rate) if rate else 0.1
        last: tuple[float, VideoFrame] | None = None

        def next_wanted() -> float | None:
            return wanted[done][0] if done < len(wanted) else None

        decoded = decoded_frames(container, stream, next_wanted=next_wanted)
        for frame in decoded:
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
        failed = True
        problem = (str(err).removeprefix(f"{path}: ") if isinstance(err, UnreadableVideo)
                   else f"{type(err).__name__}: {err}")
        log.debug("%s: decoding stopped: %s", path, problem)
    finally:
        if decoded is not None:
            decoded.close()
        if opened is not None and failed:  # the next read opens the file afresh
            opened[0].close()
        elif opened is not None:  # kept open for the next episode in this file
            READERS.give_back(path, *opened)
    for time, ref in wanted[done:]:
        yield LoadedFrame(ref, error="unreadable_video",
                          message=f"{path}: no frame at {time:.3f}s ({problem})")


def _open_at(path: str, first: float) -> tuple[InputContainer, VideoStream]:
    """The video at `path` (the one `READERS` holds, or opened), ready to decode from the
    keyframe before `first` seconds on; from its start when `first` is near it."""
    container, stream, reused = READERS.take(path)
    try:
        if first > _SEEK_AFTER and stream.time_base:
            container.seek(int(first / stream.time_base), stream=stream, backward=True,
                           any_frame=False)
        elif reused:  # wherever the last read left it: back to the start
            container.seek(0)
    except Exception:
        container.close()
        if not reused:
            raise
        return _open_at(path, first)  # held no more, so opened afresh
    return container, stream
