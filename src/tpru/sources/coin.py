"""Episodes from COIN: one episode per video, one frame per annotated step.

``coin:PATH`` names COIN's annotation file (``COIN.json``)::

    {"database": {"<youtube id>": {"annotation": [{"segment": [start, end],
        "label": "take out the old battery", "id": "..."}, ...],
        "class": "ReplaceBatteryOnKeyToCar", "subset": "training", "recipe_type": 11,
        "video_url": "...", "start": ..., "end": ..., "duration": ...}}}

The video of ``<id>`` is ``<video_root>/<id>.mp4`` (or ``.webm``, ``.mkv``), or the
same inside a ``<recipe_type>/`` folder, as COIN's download script saves them;
``video_root`` defaults to the JSON's folder. Steps are the segments' labels in
time order; the description is the task class in words, as a process
("ReplaceBatteryOnKeyToCar": "replacing battery on key to car"), the raw class
kept in ``meta.class`` with COIN's ``subset`` (``training``/``testing``), which
``subset`` may restrict the episodes to. Frames are chosen as in
`tpru.sources.segments` (``frame``: ``end``, ``middle`` or ``keyframe``).

A file that is not JSON or has no ``database`` object stops with an error
naming it; a video entry of the wrong shape is counted as ``bad_field``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem
from tpru.schema import Episode
from tpru.sources.segments import FrameChoice, Procedure, Segment, StepFrames, made, number
from tpru.sources.text import process_phrase

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv")
_META_KEYS = ("subset", "recipe_type", "video_url", "url", "start", "end", "duration")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def class_words(name: str) -> str:
    """COIN's CamelCase task class in lower-case words.

    Example:
        >>> class_words("ReplaceBatteryOnKeyToCar")
        'replace battery on key to car'
        >>> class_words("MakeRJ45Cable")
        'make rj45 cable'
    """
    if " " in name.strip():
        return name.strip()
    return _CAMEL.sub(" ", name).replace("_", " ").lower()


class COINSource:
    """Episodes from COIN's ``COIN.json`` (see the module docstring).

    Args:
        path: the annotation JSON.
        skips: where bad entries and missing or unreadable videos are counted.
        video_root: the folder of the videos (default: the JSON's folder).
        subset: only videos of this COIN subset (``training`` or ``testing``); all when None.
        frame: which frame stands for a step: ``end``, ``middle`` or ``keyframe``.
        change_threshold: for ``keyframe``, the smallest change (0-1) that counts.

    Raises:
        InputError: the file is missing, not JSON, or has no ``database`` object, or no
            video is of `subset`.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 video_root: str | None = None, subset: str | None = None,
                 frame: FrameChoice = "end", change_threshold: float = 0.03) -> None:
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not self.path.is_file():
            raise InputError(f"{path}: no such COIN annotation file (COIN.json)")
        self.root = (Path(os.path.abspath(Path(video_root).expanduser()))
                     if video_root else self.path.parent)
        if not self.root.is_dir():
            raise InputError(f"{video_root}: no such video folder (video_root)")
        self.skips = skips
        self.subset = subset
        self.steps = StepFrames(skips, frame=frame, change_threshold=change_threshold)
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            where = (f"{self.path}:{err.lineno}:{err.colno}"
                     if isinstance(err, json.JSONDecodeError) else str(self.path))
            raise InputError(f"{where}: not valid JSON ({json_problem(err)})") from None
        if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
            raise InputError(f"{self.path}: not COIN's annotation file (no 'database' object)")
        self.database: dict[str, Any] = data["database"]
        subsets = {e.get("subset") for e in self.database.values() if isinstance(e, dict)}
        if subset is not None and subset not in subsets:
            names = ", ".join(sorted(repr(s) for s in subsets if isinstance(s, str)))
            raise InputError(f"{self.path}: no video of subset {subset!r} (its subsets: "
                             f"{names or 'none'})")

    def iter_episodes(self) -> Iterator[Episode]:
        """One episode per video, in the file's order."""
        return self.admit(self.open_episode(key) for key in self.episode_keys())

    # A split source (`tpru.sources.base.SplitSource`): listing reads the annotation file;
    # opening a procedure reads its video on a build's workers.
    def episode_keys(self) -> Iterator[Procedure]:
        """The procedures of the videos wanted, in the file's order; a bad entry is counted."""
        for video_id, entry in self.database.items():
            if self.subset is not None and isinstance(entry, dict) \
                    and entry.get("subset") != self.subset:
                continue
            procedure = self._procedure(video_id, entry)
            if procedure is not None:
                yield procedure

    def open_episode(self, key: Procedure) -> Episode | None:
        """The episode of procedure `key`, or None (counted) when its video cannot be read."""
        return self.steps.episode(key)

    def admit(self, opened: Iterable[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order."""
        return made(opened)

    def _procedure(self, video_id: str, entry: Any) -> Procedure | None:
        where = f"{self.path}, video {video_id!r}"
        problem = _entry_problem(entry)
        if problem is not None:
            self.skips.skip("bad_field", f"{where}: {problem}")
            return None
        steps = sorted(entry["annotation"], key=lambda a: float(a["segment"][0]))
        return Procedure(
            id=video_id, video=self._video(video_id, entry.get("recipe_type")), where=where,
            source="coin", scenario="coin",
            description=process_phrase(class_words(entry["class"])),
            segments=tuple(Segment(float(a["segment"][0]), float(a["segment"][1]),
                                   a["label"]) for a in steps),
            meta={"video_id": video_id, "class": entry["class"],
                  "step_ids": [a.get("id") for a in steps],
                  **{key: entry[key] for key in _META_KEYS if key in entry}})

    def _video(self, video_id: str, recipe_type: object) -> Path:
        """The first video found for `video_id` (or where the first was looked for)."""
        folders = [self.root] + ([self.root / str(recipe_type)] if recipe_type is not None
                                 else [])
        candidates = [folder / f"{video_id}{suffix}" for folder in folders
                      for suffix in VIDEO_SUFFIXES]
        return next((c for c in candidates if c.is_file()), candidates[0])


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one video's entry, or None."""
    if not isinstance(entry, dict):
        return f"an entry must be an object, not {type(entry).__name__}"
    if not isinstance(entry.get("class"), str) or not entry["class"].strip():
        return "'class' must be the task's name (a string)"
    annotation = entry.get("annotation")
    if not isinstance(annotation, list):
        return "'annotation' must be a list of {segment: [start, end], label}"
    for i, step in enumerate(annotation):
        segment = step.get("segment") if isinstance(step, dict) else None
        if not (isinstance(segment, list) and len(segment) == 2
                and all(number(t) is not None for t in segment)
                and isinstance(step.get("label"), str)):
            return f"annotation {i + 1} must be {{segment: [start, end], label: string}}"
    return None
