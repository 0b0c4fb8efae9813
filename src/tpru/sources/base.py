"""The Source protocol and the one way frames are read.

A source turns some on-disk layout into `Episode` records. It never decodes
the frames it lists unless it must (a video's change-based keyframes); the
builder reads them later through `load_frames`, which understands every kind
of frame reference a source may produce:

- a path to an image file (``/data/ep1/003.jpg``);
- a frame inside another file, ``PATH#KEY=...``, read by the function
  `FRAME_READERS` gives for ``KEY``: a video frame ``/data/clip.mp4#t=12.500``
  (seconds), an image stored in a TFRecord shard's record or in a parquet
  cell (`tpru.sources.stored_images`).

A reference is a plain string, so an episode pickles to a worker (or a Ray
node) and is read there; nothing is copied out of a dataset's files first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tpru.diagnostics import Skips
from tpru.registry import load
from tpru.schema import Episode

if TYPE_CHECKING:
    from PIL import Image

VIDEO_TIME_MARK = "#t="
"""Separates a video path from a time in seconds in a frame reference."""

FRAME_READERS: dict[str, tuple[str, str]] = {
    "t": ("tpru.sources.video_decode:video_frames", "data"),
    "record": ("tpru.sources.stored_images:record_frames", "rlds"),
    "episode_index": ("tpru.sources.stored_images:parquet_frames", "data"),
}
"""Frames inside other files, by the first key of the reference's ``#`` part:
``("module:function", extra)``. The function is called as ``function(path, refs)``
for a run of consecutive references into one file and gives one `LoadedFrame`
per reference, in order, never raising for bad input (an ``error`` instead)."""


class Source(Protocol):
    """Anything that yields episodes.

    Sources report bad input (an unreadable ``episode.json``, a manifest line
    of the wrong type, an empty episode) through the `tpru.diagnostics.Skips`
    given to their constructor, and carry on with the next episode.
    """

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in a stable order (the same input gives the same order)."""
        ...


Opened = Episode | list[Episode] | None
"""What `SplitSource.open_episode` gives for one key."""


def flatten(opened: Iterable[Opened]) -> Iterator[Episode | None]:
    """The episodes of each key's `Opened`, in order: a list's one by one, None as it is.

    Example:
        >>> list(flatten([None, []]))
        [None]
    """
    for made in opened:
        if isinstance(made, list):
            yield from made
        else:
            yield made


@runtime_checkable
class SplitSource(Source, Protocol):
    """A source whose episodes are costly to make, split so that workers make them.

    Most sources list episodes cheaply (paths, JSON, table rows) and leave the
    costly reading of frames to the build's workers through `load_frames`.
    A source whose listing itself is costly (a simulator renders each
    episode; a video source reads each video, or decodes it to find
    keyframes) lists cheap, picklable keys instead; a worker re-opens the
    source from its ``KIND:PATH`` and options (`tpru.builder.worker`) and
    makes the episode of each key, and the build's driver admits the made
    episodes in key order. ``iter_episodes`` must give exactly
    ``admit(flatten(open_episode(k) for k in episode_keys()))``, so that a
    build is the same whichever way it runs.

    A key may stand for several episodes made together (an RLDS record's
    cameras, the episodes a LeRobot file packs): `open_episode` then gives
    them as a list, and `flatten` puts them in the stream `admit` reads. A key
    may also carry only a problem the listing found, which `open_episode`
    counts in its place (so skips are counted in input order however far
    ahead the listing runs) and gives None for.
    """

    def episode_keys(self) -> Iterator[Any]:
        """Picklable keys of the episodes that may be made, in order; cheap."""
        ...

    def open_episode(self, key: Any) -> Opened:
        """The episode of `key` (the costly part; runs on a worker), the episodes of a key
        that holds several, or None if skipped."""
        ...

    def admit(self, opened: Iterator[Episode | None]) -> Iterator[Episode]:
        """The episodes kept of those made, in key order (rules that need the ones before).

        Stops reading `opened` once it has all it wants.
        """
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


def frame_reader_key(ref: str) -> tuple[str, str | None]:
    """``(path, key)``: the file `ref` reads from and its `FRAME_READERS` key; None for a
    plain file (a ``#`` part naming no known key, or a video time that is not a number).

    Example:
        >>> frame_reader_key("/d/clip.mp4#t=1.5"), frame_reader_key("/d/a#b.jpg")
        (('/d/clip.mp4', 't'), ('/d/a#b.jpg', None))
    """
    path, mark, fragment = ref.rpartition("#")
    key = fragment.partition("=")[0]
    if not mark or key not in FRAME_READERS or (key == "t" and split_video_ref(ref) is None):
        return ref, None
    return path, key


def load_frames(refs: Sequence[str]) -> Iterator[LoadedFrame]:
    """Read frames in order; a run of frames inside one file is read with one call of its
    reader (a video opened once, a TFRecord record read once)."""
    i = 0
    while i < len(refs):
        path, key = frame_reader_key(refs[i])
        if key is None:
            yield _read_file(refs[i])
            i += 1
            continue
        j = i + 1
        while j < len(refs) and frame_reader_key(refs[j]) == (path, key):
            j += 1
        target, extra = FRAME_READERS[key]
        read = load(target, what=f"reading {refs[i]}", extra=extra)
        yield from read(path, refs[i:j])
        i = j


def _read_file(ref: str) -> LoadedFrame:
    try:
        return LoadedFrame(ref, data=Path(ref).read_bytes())
    except FileNotFoundError:
        return LoadedFrame(ref, error="missing_file", message=f"{ref}: no such file")
    except OSError as err:
        return LoadedFrame(ref, error="unreadable_file",
                           message=f"{ref}: cannot read ({err.strerror or err})")
