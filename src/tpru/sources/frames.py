"""Episodes from folders of image files, one folder per episode.

Layout (``frames:DIR`` on the command line)::

    DIR/
      pick_cube/            one episode: id "pick_cube"
        frame1.jpg          frames sorted naturally: frame2 before frame10
        frame2.jpg
        episode.json        optional: id, scenario, description, steps, meta, frames
      kitchen/open_door/    nested folders work too: id "kitchen/open_door"

Any folder that directly holds images (or an ``episode.json``) is an episode,
and so is a folder with neither images nor subfolders (it is then reported as
empty). A ``DIR`` that holds images itself and has no subfolders is one
episode, whose id is the folder's name.

Defaults when ``episode.json`` does not say otherwise: the id is the folder's
path relative to ``DIR`` (posix form) and the scenario is ``DIR``'s own name,
so ``frames:data/lego`` yields scenario ``lego``. A ``DIR`` of scenario
folders (every episode folder two or more levels down, ``DIR/robot/ep1``,
``DIR/nav/ep1``) keeps them: the first level names the scenario. Frames are
listed by absolute path and never decoded here; the builder reads them later.
``frames`` in ``episode.json`` names the frame files in order (default: every
image in the folder, sorted naturally).

tpru's own simulator output reads back as it was made: ``frames:DIR`` on the
``out`` folder of ``sim:`` (or the ``frames/`` of a demo folder) finds its
``<simulator>/<W>x<H>-f<N>/<seed>-<task>/`` folders, whose ``episode.json``
also holds the simulator's cache ``key``; from it come the scenario (the
simulator), the id the ``sim:`` source gives (`sim_episode_id`) and the
simulator, task and seed in ``meta``.

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

_INFO_KEYS = frozenset({"id", "scenario", "description", "steps", "meta", "frames", "key"})
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
    ``frames`` names the episode's frame files in order (frame folders only).
    """

    id: str | None = None
    scenario: str | None = None
    description: str | None = None
    steps: tuple[str, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    frames: tuple[str, ...] | None = None


def sim_episode_id(simulator: str, task: str, seed: int) -> str:
    """The id of a simulator's episode, the same from ``sim:`` and from its frames folder.

    Example:
        >>> sim_episode_id("nav", "maze", 7)
        'sim-nav-maze-000007'
    """
    return f"sim-{simulator}-{task}-{seed:06d}"


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
    steps, frames = data.get("steps"), data.get("frames")
    key = data.get("key") or {}
    sim = _sim_key(key)
    meta = dict(data.get("meta") or {})
    if sim is not None:
        meta.update(simulator=sim[0], task=sim[1], seed=sim[2])
    return EpisodeInfo(
        id=data.get("id") or (sim_episode_id(*sim) if sim else None),
        scenario=data.get("scenario") or (sim[0] if sim else None),
        description=data.get("description"),
        steps=None if steps is None else tuple(steps),
        meta=meta,
        frames=None if frames is None else tuple(frames),
    )


def _sim_key(key: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """(simulator, task, seed) from a simulator's cache key, or None if it is not one."""
    simulator, task, seed = key.get("simulator"), key.get("task"), key.get("seed")
    if isinstance(simulator, str) and isinstance(task, str) and isinstance(seed, int) \
            and not isinstance(seed, bool) and simulator and task:
        return simulator, task, seed
    return None


def check_info(data: Mapping[str, Any]) -> str | None:
    """The first problem with the fields of an episode metadata object, if any."""
    for key in ("id", "scenario"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            return f"field '{key}' should be non-empty text, got {value!r}"
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        return f"field 'description' should be text, got {type(description).__name__}"
    for key in ("steps", "frames"):
        items = data.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            return f"field '{key}' should be a list of texts, got {type(items).__name__}"
        for i, item in enumerate(items):
            if not isinstance(item, str):
                return f"field '{key}': item {i} should be text, got {type(item).__name__}"
    for name in data.get("frames") or ():
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            return f"field 'frames': {name!r} should be the name of a file in the folder"
    for key in ("meta", "key"):
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            return f"field '{key}' should be an object, got {type(value).__name__}"
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
        found = list(self._episode_folders())
        # DIR/<scenario>/<episode>: every episode two or more levels down
        by_scenario = bool(found) and all(
            len(folder.relative_to(self.root).parts) >= 2 for folder, _ in found)
        for folder, images in found:
            episode = self._episode(folder, images, by_scenario)
            if episode is None:
                continue
            if episode.id in seen:
                self.skips.skip("duplicate_id", f"{folder}: episode id {episode.id!r} is "
                                f"already used by {seen[episode.id]}")
                continue
            seen[episode.id] = folder
            yield episode

    def _episode(self, folder: Path, images: list[Path], by_scenario: bool) -> Episode | None:
        info_path = folder / EPISODE_FILE
        info = read_episode_info(info_path, self.skips)
        if info is None:
            return None
        if info.frames is not None:
            listed = self._listed_frames(info_path, info.frames)
            if listed is None:
                return None
            images = listed
        if not images:
            self.skips.skip("empty_episode", f"{folder}: no image files "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            return None
        if info.steps is not None and len(info.steps) != len(images):
            self.skips.skip("steps_count", f"{info_path}: {len(info.steps)} steps for "
                            f"{len(images)} frames")
            return None
        relative = folder.relative_to(self.root)
        default_id = relative.as_posix()
        return Episode(
            id=info.id or (self.root.name if default_id == "." else default_id),
            scenario=info.scenario or (relative.parts[0] if by_scenario else self.root.name),
            source="frames",
            frames=tuple(str(image) for image in images),
            steps=info.steps,
            description=info.description,
            meta=dict(info.meta),
        )

    def _listed_frames(self, info_path: Path, names: tuple[str, ...]) -> list[Path] | None:
        """The frame files ``episode.json`` names, or None (counted) when one is not there."""
        frames = [info_path.parent / name for name in names]
        for frame in frames:
            if not frame.exists() and not frame.is_symlink():
                self.skips.skip("missing_file", f"{info_path}: frame {frame.name!r} is not in "
                                "the folder")
                return None
            if not self._is_frame_file(frame):
                return None
        return frames

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
