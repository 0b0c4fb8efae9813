"""Episodes listed in a JSONL manifest, one Episode record per line.

Each line is an object in the `tpru.schema.Episode` JSON shape::

    {"id": "ep1", "scenario": "robot", "frames": ["ep1/0.jpg", "clip.mp4#t=1.5"],
     "steps": ["...", "..."], "description": "...", "meta": {}}

(``source`` defaults to ``"manifest"``; ``schema_version``, when given, must
be the current one.) A frame is a path relative to the manifest's folder, or
an absolute path inside it, or a video frame ``clip.mp4#t=SECONDS``. The
manifest's folder is the root of everything it may name: a frame whose path
leaves it (``../x.jpg``, an absolute path elsewhere, a symlink pointing out)
is refused, because a manifest from elsewhere must not make the builder read
and republish arbitrary files.

Frames come out as absolute paths with symlinks resolved; video times are
written with three decimals (``/data/clip.mp4#t=1.500``), the form that
`tpru.sources.video.decode_at_times` gives back in its frames' ``ref``.

Bad lines (not JSON, fields of the wrong type, an empty frame list, an id
already used, a path escaping the root, a frame that is a FIFO or a device
rather than a file) are skipped and counted, with a message naming the
manifest and the line; a line that is not JSON is named ``FILE:LINE:COLUMN``
(the column in characters from 1, as editors count), so an editor or a
terminal can jump to it. A byte-order mark before the first line is ignored.
A key the record does not know (``descripton``) is ignored with a warning
that suggests the key meant; each unknown key is shown for its first few
lines and then only counted.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from tpru.diagnostics import InputError, Skips, warn_unknown_keys
from tpru.schema import Episode, RecordError
from tpru.sources.base import VIDEO_TIME_MARK, split_video_ref

RECORD_KEYS = frozenset({f.name for f in fields(Episode)} | {"schema_version"})
"""The keys a manifest record may have."""


class PathEscapesRoot(ValueError):
    """A frame path that resolves outside the folder it must stay in."""


def resolve_frame(ref: str, root: Path) -> str:
    """The absolute, symlink-resolved form of frame `ref` relative to `root`.

    Args:
        ref: an image path or a video frame ``path#t=SECONDS``, relative to
            `root` or absolute.
        root: an absolute, resolved folder.

    Raises:
        PathEscapesRoot: the path resolves outside `root`.

    Example:
        >>> resolve_frame("a/../b.jpg", Path("/data"))
        '/data/b.jpg'
    """
    video = split_video_ref(ref)
    part = ref if video is None else video[0]
    resolved = (root / part).resolve()  # an absolute `part` replaces `root`
    if not resolved.is_relative_to(root):
        raise PathEscapesRoot(f"frame {ref!r} resolves to {resolved}, outside {root}")
    if video is None:
        return str(resolved)
    return f"{resolved}{VIDEO_TIME_MARK}{video[1]:.3f}"


T = TypeVar("T")


def unique_lines(path: Path, parse: Callable[[bytes, int], T | None], id_of: Callable[[T], str],
                 skips: Skips, *, hint: str = "") -> Iterator[T]:
    """What `parse` makes of each non-blank line of the JSONL file `path` (given the raw
    line and its number; None for a line it counted as bad), in line order; a record whose
    id (`id_of`) an earlier line gave is counted as ``duplicate_id`` naming both lines, the
    message ending in `hint`."""
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record = parse(raw, number)
            if record is None:
                continue
            found = id_of(record)
            if found in first_line:
                skips.skip("duplicate_id", f"{path}, line {number}: episode id {found!r} "
                           f"already used on line {first_line[found]}{hint}")
                continue
            first_line[found] = number
            yield record


class ManifestSource:
    """Episodes from a JSONL manifest (see the module docstring).

    Args:
        path: the manifest file; its folder is the root of all frame paths.
        skips: where bad lines are counted.

    Raises:
        InputError: `path` is not a file.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips) -> None:
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not self.path.is_file():
            raise InputError(f"{path}: is a folder, not a manifest file (frames:{path} reads "
                             "a folder of episode folders)" if self.path.is_dir()
                             else f"{path}: no such manifest file")
        self.root = self.path.parent.resolve()
        self.skips = skips

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in the order of the manifest's lines."""
        return unique_lines(self.path, self._parse, lambda episode: episode.id, self.skips)

    def _where(self, number: int) -> str:
        return f"{self.path}, line {number}"

    def _parse(self, raw: bytes, number: int) -> Episode | None:
        # Without its line end: json counts the newline, and a record cut short
        # ('{"id": ') would be reported at column 1 of a next line that is not there.
        raw = raw.rstrip(b"\r\n")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            # The bytes before the bad one decode: count their characters.
            column = len(raw[:err.start].decode("utf-8", errors="replace")) + 1
            self.skips.skip("invalid_json", f"{self.path}:{number}:{column}: not UTF-8 "
                            f"(byte 0x{raw[err.start]:02x})")
            return None
        except json.JSONDecodeError as err:
            self.skips.skip("invalid_json", f"{self.path}:{number}:{err.colno}: not valid "
                            f"JSON ({err.msg.removesuffix(' at')})")
            return None
        try:
            episode = Episode.from_dict(data)
        except RecordError as err:
            located = RecordError(err.reason, path=self.path, line=number,
                                  field_name=err.field_name)
            self.skips.skip(_record_reason(err, data), str(located))
            return None
        if not episode.frames:
            self.skips.skip("empty_episode", f"{self._where(number)}: episode "
                            f"{episode.id!r} has no frames")
            return None
        warn_unknown_keys(self.skips, data, RECORD_KEYS, self._where(number))
        try:
            frames = tuple(resolve_frame(ref, self.root) for ref in episode.frames)
        except PathEscapesRoot as err:
            self.skips.skip("path_escapes_root", f"{self._where(number)}: {err}")
            return None
        for frame in frames:
            problem = _not_a_file(frame)
            if problem:
                self.skips.skip("unreadable_file", f"{self._where(number)}: {problem}")
                return None
        return replace(episode, frames=frames)


def _not_a_file(frame: str) -> str | None:
    """Why frame `frame` must not be read (reading a FIFO would block the build), or None.

    A missing file is not a problem here: the builder counts it as a dropped frame.
    """
    video = split_video_ref(frame)
    path = frame if video is None else video[0]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):  # a folder fails to read, harmlessly
        return None
    return f"frame {path} is not a regular file (a FIFO, socket or device)"


def _record_reason(err: RecordError, data: Any) -> str:
    """The skip reason for a record error: a steps/frames mismatch has its own."""
    if (err.field_name == "steps" and isinstance(data, dict)
            and isinstance(data.get("steps"), list) and isinstance(data.get("frames"), list)
            and len(data["steps"]) != len(data["frames"])):
        return "steps_count"
    return "bad_field"
