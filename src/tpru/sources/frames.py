"""Episodes from folders of image files, one folder per episode.

Layout (``frames:DIR`` on the command line)::

    DIR/
      pick_cube/            one episode: id "pick_cube"
        frame1.jpg          frames sorted naturally: frame2 before frame10
        frame2.jpg
        episode.json        optional: id, scenario, description, steps, meta
      kitchen/open_door/    nested folders work too: id "kitchen/open_door"

Any folder that directly holds images (or an ``episode.json``) is an episode,
and so is a folder with neither images nor subfolders (it is then reported as
empty). A ``DIR`` that holds images itself and has no subfolders is one
episode, whose id is the folder's name.

Defaults when ``episode.json`` does not say otherwise: the id is the folder's
path relative to ``DIR`` (posix form) and the scenario is ``DIR``'s own name,
so ``frames:data/lego`` yields scenario ``lego``. Frames are listed by
absolute path and never decoded here; the builder reads them later.

Bad input (``episode.json`` that is not valid JSON or has a field of the
wrong type, a ``steps`` list whose length differs from the number of frames,
an episode without images, two episodes with one id, a file named like an
image that is not a regular file: a broken symlink, a symlink loop, a FIFO)
is skipped and counted in the `Skips` given to the source, with a message
naming the file. An unknown key in ``episode.json`` (``descripton``) is
ignored with a warning that suggests the key meant.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem, warn_unknown_keys
from tpru.schema import Episode

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
"""File name endings (compared in lower case) that count as frames."""

EPISODE_FILE = "episode.json"
"""The optional per-episode metadata file."""

_INFO_KEYS = frozenset({"id", "scenario", "description", "steps", "meta"})
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[tuple[str, int], ...], str]:
    """Sort key that orders numbers inside names by value.

    Text parts compare case-insensitively; the name itself breaks ties, so
    ``"a01"`` and ``"a1"`` still have a fixed order.

    Example:
        >>> sorted(["frame10", "frame2", "Frame1"], key=natural_key)
        ['Frame1', 'frame2', 'frame10']
    """
    parts = _DIGITS.split(name)
    # split() alternates text, digits, text, ...: pair each text with the
    # number after it (-1 when none), so every key has the same shape.
    pairs = tuple((parts[i].casefold(), int(parts[i + 1]) if i + 1 < len(parts) else -1)
                  for i in range(0, len(parts), 2))
    return pairs, name


@dataclass(frozen=True)
class EpisodeInfo:
    """What an ``episode.json`` (or a video's sidecar ``.json``) may say.

    Every field is optional; None means "use the source's default".
    """

    id: str | None = None
    scenario: str | None = None
    description: str | None = None
    steps: tuple[str, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def read_episode_info(path: Path, skips: Skips) -> EpisodeInfo | None:
    """Read and validate an episode metadata file.

    Returns an empty `EpisodeInfo` when `path` does not exist, and None when it
    exists but is bad (the reason is counted in `skips`, naming the file), so
    that the caller skips the episode rather than guess.
    """
    if not path.is_file():
        return EpisodeInfo()
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        skips.skip("invalid_json", f"{path}: not valid JSON ({json_problem(err)})")
        return None
    except OSError as err:
        skips.skip("unreadable_file", f"{path}: cannot read ({err.strerror or err})")
        return None
    if not isinstance(data, dict):
        skips.skip("bad_field", f"{path}: expected a JSON object, got {type(data).__name__}")
        return None
    warn_unknown_keys(skips, data, _INFO_KEYS, str(path))
    problem = check_info(data)
    if problem:
        skips.skip("bad_field", f"{path}: {problem}")
        return None
    steps = data.get("steps")
    return EpisodeInfo(
        id=data.get("id"),
        scenario=data.get("scenario"),
        description=data.get("description"),
        steps=None if steps is None else tuple(steps),
        meta=data.get("meta") or {},
    )


def check_info(data: Mapping[str, Any]) -> str | None:
    """The first problem with the fields of an episode metadata object, if any."""
    for key in ("id", "scenario"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            return f"field '{key}' should be non-empty text, got {value!r}"
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        return f"field 'description' should be text, got {type(description).__name__}"
    steps = data.get("steps")
    if steps is not None:
        if not isinstance(steps, list):
            return f"field 'steps' should be a list of texts, got {type(steps).__name__}"
        for i, step in enumerate(steps):
            if not isinstance(step, str):
                return f"field 'steps': item {i} should be text, got {type(step).__name__}"
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return f"field 'meta' should be an object, got {type(meta).__name__}"
    return None


class FrameFolderSource:
    """Episodes from a folder of episode folders (see the module docstring).

    Args:
        path: the root folder.
        skips: where bad input is counted.

    Raises:
        InputError: `path` is not a folder.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips) -> None:
        self.root = Path(os.path.abspath(Path(path).expanduser()))
        if not self.root.is_dir():
            raise InputError(f"{path}: not a folder of episode folders")
        self.skips = skips

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in natural order of their folders' relative paths."""
        seen: dict[str, Path] = {}
        for folder, images in self._episode_folders():
            episode = self._episode(folder, images)
            if episode is None:
                continue
            if episode.id in seen:
                self.skips.skip("duplicate_id", f"{folder}: episode id {episode.id!r} is "
                                f"already used by {seen[episode.id]}")
                continue
            seen[episode.id] = folder
            yield episode

    def _episode(self, folder: Path, images: list[Path]) -> Episode | None:
        info_path = folder / EPISODE_FILE
        info = read_episode_info(info_path, self.skips)
        if info is None:
            return None
        if not images:
            self.skips.skip("empty_episode", f"{folder}: no image files "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            return None
        if info.steps is not None and len(info.steps) != len(images):
            self.skips.skip("steps_count", f"{info_path}: {len(info.steps)} steps for "
                            f"{len(images)} frames")
            return None
        default_id = folder.relative_to(self.root).as_posix()
        return Episode(
            id=info.id or (self.root.name if default_id == "." else default_id),
            scenario=info.scenario or self.root.name,
            source="frames",
            frames=tuple(str(image) for image in images),
            steps=info.steps,
            description=info.description,
            meta=dict(info.meta),
        )

    def _is_frame_file(self, path: Path) -> bool:
        """Whether `path` (named like an image) is a regular file; if not, count why.

        A broken symlink, a symlink loop, a FIFO or a device named ``*.jpg`` is a
        skipped frame, never a silent one, and is not read: reading a FIFO would
        wait forever.
        """
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            self.skips.skip("missing_file", f"{path}: no such file (a broken symlink)")
            return False
        except OSError as err:
            self.skips.skip("unreadable_file", f"{path}: cannot read ({err.strerror or err})")
            return False
        if stat.S_ISREG(mode):
            return True
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) \
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"
        self.skips.skip("unreadable_file", f"{path}: not a regular file ({kind})")
        return False

    def _episode_folders(self) -> Iterator[tuple[Path, list[Path]]]:
        """(folder, its images) for each episode folder, depth first, natural order."""
        visited: set[Path] = set()
        pending = [self.root]
        while pending:
            folder = pending.pop()
            real = folder.resolve()
            if real in visited:  # a symlink loop, or two links to one folder
                continue
            visited.add(real)
            try:
                entries = sorted((e for e in folder.iterdir() if not e.name.startswith(".")),
                                 key=lambda e: natural_key(e.name))
            except OSError as err:
                self.skips.skip("unreadable_folder",
                                f"{folder}: cannot list ({err.strerror or err})")
                continue
            subfolders = [e for e in entries if e.is_dir()]
            images = [e for e in entries if e.suffix.lower() in IMAGE_SUFFIXES
                      and not e.is_dir() and self._is_frame_file(e)]
            if images or (folder / EPISODE_FILE).is_file() or not subfolders:
                yield folder, images
            pending.extend(reversed(subfolders))
