"""The Source protocol and the one way frames are read.

A source turns some on-disk layout into `Episode` records. It never decodes
the frames it lists unless it must (a video's change-based keyframes); the
builder reads them later through `load_frames`, which understands every kind
of frame reference a source may produce:

- a path to an image file (``/data/ep1/003.jpg``);
- a frame inside a video, ``/data/clip.mp4#t=12.500`` (seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tpru.diagnostics import Skips
from tpru.schema import Episode

if TYPE_CHECKING:
    from PIL import Image

VIDEO_TIME_MARK = "#t="
"""Separates a video path from a time in seconds in a frame reference."""


class Source(Protocol):
    """Anything that yields episodes.

    Sources report bad input (an unreadable ``episode.json``, a manifest line
    of the wrong type, an empty episode) through the `tpru.diagnostics.Skips`
    given to their constructor, and carry on with the next episode.
    """

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in a stable order (the same input gives the same order)."""
        ...


@dataclass
class LoadedFrame:
    """One frame as read from disk: raw file bytes, or an already decoded image.

    Exactly one of ``data``, ``image`` and ``error`` is set. ``error`` is a
    short reason key (``missing_file``, ``unreadable_video``, ...) and
    ``message`` says what happened, naming the file.
    """

    ref: str
    data: bytes | None = None
    image: Image.Image | None = None
    error: str | None = None
    message: str = ""


def unique_ids(found: Iterable[tuple[object, Episode]], skips: Skips) -> Iterator[Episode]:
    """The episodes of ``(where, episode)`` pairs, skipping (and counting) a repeated id.

    `where` names the file an episode came from, for the message.
    """
    seen: set[str] = set()
    for where, episode in found:
        if episode.id in seen:
            skips.skip("duplicate_id", f"{where}: episode id {episode.id!r} is already used")
            continue
        seen.add(episode.id)
        yield episode


def split_video_ref(ref: str) -> tuple[str, float] | None:
    """``("clip.mp4", 12.5)`` for ``clip.mp4#t=12.5``; None for a plain file."""
    path, mark, time = ref.rpartition(VIDEO_TIME_MARK)
    if not mark:
        return None
    try:
        return path, float(time)
    except ValueError:
        return None


def load_frames(refs: Sequence[str]) -> Iterator[LoadedFrame]:
    """Read frames in order; a video is opened once for all its frames."""
    i = 0
    while i < len(refs):
        video = split_video_ref(refs[i])
        if video is None:
            yield _read_file(refs[i])
            i += 1
            continue
        path = video[0]
        j = i
        times: list[float] = []
        while j < len(refs):
            other = split_video_ref(refs[j])
            if other is None or other[0] != path:
                break
            times.append(other[1])
            j += 1
        from tpru.sources.video import decode_at_times

        yield from decode_at_times(path, times, refs=refs[i:j])
        i = j


def _read_file(ref: str) -> LoadedFrame:
    try:
        return LoadedFrame(ref, data=Path(ref).read_bytes())
    except FileNotFoundError:
        return LoadedFrame(ref, error="missing_file", message=f"{ref}: no such file")
    except OSError as err:
        return LoadedFrame(ref, error="unreadable_file",
                           message=f"{ref}: cannot read ({err.strerror or err})")
