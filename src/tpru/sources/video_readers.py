"""Opening videos, and the video file read last, kept open for the next read of it.

The builder reads frames episode by episode (`tpru.sources.base.load_frames`),
and several episodes often lie in one video: a LeRobot v3.0 mp4 packs many
episodes, a COIN or EPIC-KITCHENS video holds many steps. Opening the file
for each of them reads its header and index again and starts a new decoder
(an AV1 decoder starts its threads), which costs as much as decoding the few
frames an episode wants. So `READERS` keeps the one file read last open in
this process, and the next read of that file takes it instead of opening it
again: a packed file is opened once per worker, not once per episode.

- One file at a time: reading another file closes it, so memory and open
  files do not grow with the dataset; a build closes it at the end of its
  first pass (`tpru.builder.pipeline`).
- A file taken is the caller's until it gives it back; a second reader of
  the same file at the same time opens its own.
- A file changed on disk since it was opened (size, time, inode) is opened
  afresh.
- Before this process forks (a local build's worker pool), the file held is
  closed: its decoder's threads would not exist in the child, which could
  then never close its copy.

PyAV is imported when a video is first opened, so that this module (and a
build's `READERS.close()`) works without the ``data`` extra.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

Opened = tuple["InputContainer", "VideoStream"]
_Key = tuple[str, int, int, int]


class UnreadableVideo(Exception):
    """A video that cannot be opened or decoded; the message names the file."""


def open_video(path: str) -> tuple[InputContainer, VideoStream]:
    """The container at `path` and its first video stream, set to decode with threads.

    Raises:
        UnreadableVideo: the file has no video stream; PyAV's errors pass through.
    """
    import av

    container = av.open(path)
    if not container.streams.video:
        container.close()
        raise UnreadableVideo(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


class VideoReaders:
    """Opens videos with `open`, holding the last one given back (see the module docstring).

    Args:
        open: opens a video file; its errors pass through `take`.

    Example (what `tpru.sources.video_decode.decode_at_times` does)::

        container, stream, reused = READERS.take(path)
        ...  # seek when reused, decode
        READERS.give_back(path, container, stream)  # or close it after an error
    """

    def __init__(self, open: Callable[[str], Opened]) -> None:
        self._open = open
        self._held: tuple[_Key, InputContainer, VideoStream] | None = None
        self._lock = threading.Lock()
        self._fork_hook = False
        self.opens = 0
        """Files this process has opened through these readers (for stats and tests)."""

    @property
    def held(self) -> str | None:
        """The path of the file held open, if any."""
        return self._held[0][0] if self._held is not None else None

    def take(self, path: str) -> tuple[InputContainer, VideoStream, bool]:
        """The open file at `path` and whether it was held open (so it is not at its start:
        seek before decoding). Another file held is closed.

        Raises:
            OSError: `path` cannot be looked at; and whatever `open` raises.
        """
        key = _key(path)
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            if held[0] == key:
                return held[1], held[2], True
            held[1].close()
        if not self._fork_hook:
            os.register_at_fork(before=self.close)
            self._fork_hook = True
        container, stream = self._open(path)
        self.opens += 1
        return container, stream, False

    def give_back(self, path: str, container: InputContainer, stream: VideoStream) -> None:
        """Hold `container` (from `take`) open for the next read of `path`.

        A caller that met an error decoding it closes it instead.
        """
        try:
            key = _key(path)
        except OSError:  # gone meanwhile: nothing to keep it for
            container.close()
            return
        with self._lock:
            held, self._held = self._held, (key, container, stream)
        if held is not None:
            held[1].close()

    def close(self) -> None:
        """Close the file held, if any (a build's end; before a fork)."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            held[1].close()


def _key(path: str) -> _Key:
    stat = os.stat(path)
    return path, stat.st_ino, stat.st_size, stat.st_mtime_ns


READERS = VideoReaders(open_video)
"""The video `tpru.sources.video_decode.decode_at_times` read last, held open for the next
episode in the same file."""
