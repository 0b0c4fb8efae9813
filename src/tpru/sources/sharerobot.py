"""Episodes from ShareRobot's planning annotations (RoboBrain, CVPR 2025).

``sharerobot:PATH`` names a JSON file (a list of entries), a JSONL file (one
entry per line), or a folder searched recursively for both. The release ships
one file per question type (``planning_task.json``,
``future_prediction_task.json``, ...), and one episode's entries are spread
over those files, so all files under a folder are read together. On the hub
the planning annotations are ``planning/{train,test,jsons}/*.json``, where
``jsons/`` holds train and test again: an entry listed twice (the same id,
question type, step, conversation and images) is read once, and one log line
says how many repeats were passed over. An entry, as the dataset's README
shows it::

    {"id": ".../rtx_frames_success_42/62_robo_set#episode_1570",
     "task": "Future_Prediction_Task",
     "selected_step": 3,
     "conversations": [
        {"from": "human", "value": "<image 0-25> After <move the grasped banana towards
                                    the mug>, what's the most probable next event?"},
        {"from": "gpt", "value": "<place the banana into the mug>"}],
     "image": ["/path/to/image_0", ..., "/path/to/image_25"]}

One episode per source episode: entries are grouped by the episode part of
``id``, which is also the episode's id.
``rtx_frames_success_42/62_robo_set#episode_1570`` is episode 1570 of shard
62 of the source dataset ``robo_set``, in the release's frame folder
``rtx_frames_success_42`` (also kept in ``meta["frames_folder"]``). The
folder stays in the id because episode numbers repeat across those folders:
``rtx_frames_success_13/49_bridge#episode_7`` and
``rtx_frames_success_14/49_bridge#episode_7`` are different episodes. An
``id`` without ``#episode_<k>`` is taken whole as the episode key. The frames
are the union of the entries' images (a planning episode has 30), in natural
order of their paths.

Text. The README's ``task`` names the question type (RoboVQA's ten types),
not the robot's task; the long-horizon goal is quoted in ``<...>`` inside the
planning questions ("The objective is <put the banana in the mug>, ..."). The
description is that goal, or ``task`` itself when it is free text (a variant
some conversions use), turned into a gerund phrase where its first word is a
known imperative verb (`process_phrase`). The dataset documents no plan
format; the plan is read from numbered items in the conversations ("1. pick
up the banana", "1-<pick up the banana>"): a numbered answer, or the numbered
steps already done in a planning-with-context question followed by its
answer (`tpru.sources.sharerobot_plans`). The longest plan of the episode's
entries is kept in ``meta["plan"]``; plan steps are not frames, so per-frame
``steps`` are set only when the counts happen to match.

Image paths are relative to ``image_root`` (default: the folder of PATH, or
PATH itself when it is a folder). The published paths are absolute paths on
the authors' machines: such a path is re-rooted by finding its longest tail
under ``image_root``, and the prefix dropped is remembered for the next
frames. A frame must lie inside ``image_root`` (as for manifests: annotation
files from elsewhere must not make the builder republish arbitrary files).

Bad input is skipped and counted, naming the file and entry: a file that is
not JSON (``invalid_json``), an entry or field of the wrong type
(``bad_field``), an episode with a missing frame (``missing_file``) or none
(``empty_episode``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem
from tpru.schema import Episode
from tpru.sources.frames import natural_key
from tpru.sources.sharerobot_plans import goal_of, plan_of
from tpru.sources.text import process_phrase

ANNOTATION_SUFFIXES = frozenset({".json", ".jsonl"})
"""File name endings read as annotation files."""

_EPISODE_KEY = re.compile(r"(?:(?P<folder>rtx_frames_success_\d+)/)?"
                          r"(?P<name>(?:(?P<shard>\d+)_)?(?P<source>[^/#]+)#episode_\d+)")

log = logging.getLogger("tpru")


@dataclass
class _Group:
    """What the entries of one episode say, gathered as the files are read."""

    where: str
    source_dataset: str | None
    shard: str | None
    frames_folder: str | None
    images: dict[str, None] = field(default_factory=dict)  # ordered set
    task_text: str | None = None
    goal: str | None = None
    plan: list[str] = field(default_factory=list)
    selected_steps: set[int] = field(default_factory=set)
    question_types: set[str] = field(default_factory=set)
    entries: int = 0


class ShareRobotSource:
    """Episodes from ShareRobot planning annotations (see the module docstring).

    Args:
        path: an annotation file (``.json`` or ``.jsonl``) or a folder of them.
        skips: where bad files, entries and episodes are counted.
        image_root: the folder image paths are relative to (default: the
            folder of `path`, or `path` when it is a folder).

    Raises:
        InputError: `path` or `image_root` does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 image_root: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not (self.path.is_file() or self.path.is_dir()):
            raise InputError(f"{path}: no such ShareRobot annotation file or folder")
        root = Path(image_root).expanduser() if image_root is not None else (
            self.path if self.path.is_dir() else self.path.parent)
        if not root.is_dir():
            raise InputError(f"{image_root}: image_root is not a folder")
        self.image_root = root.resolve()
        self.skips = skips
        self._dropped_prefix: str | None = None

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes in the order their first entry appears (files in natural order)."""
        groups: dict[str, _Group] = {}
        first_seen: dict[bytes, str] = {}
        repeats = 0
        example = ""
        for where, entry in self._entries():
            digest = _fingerprint(entry)
            if digest in first_seen:
                repeats += 1
                example = example or f"{where} repeats {first_seen[digest]}"
                continue
            first_seen[digest] = where
            self._add(groups, where, entry)
        if repeats:
            log.info("%s: passed over %s repeated %s, each read once already (e.g. %s; "
                     "the hub's planning/jsons/ holds train/ and test/ again)", self.path,
                     f"{repeats:,}", "entry" if repeats == 1 else "entries", example)
        for key, group in groups.items():
            episode = self._episode(key, group)
            if episode is not None:
                yield episode

    # ------------------------------------------------------------ reading

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        found = [p for p in self.path.rglob("*")
                 if p.suffix.lower() in ANNOTATION_SUFFIXES and p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(self.path).parts)]
        return sorted(found, key=lambda p: [natural_key(part)
                                            for part in p.relative_to(self.path).parts])

    def _entries(self) -> Iterator[tuple[str, Any]]:
        """(where, entry) for every entry of every file; bad files and lines counted."""
        for file in self._files():
            try:
                data = file.read_bytes()
            except OSError as err:
                self.skips.skip("unreadable_file", f"{file}: cannot read ({err.strerror or err})")
                continue
            if file.suffix.lower() == ".jsonl":
                for number, line in enumerate(data.splitlines(), start=1):
                    if line.strip():
                        parsed = _parse_json(line, f"{file}, line {number}", self.skips)
                        if parsed is not _BAD:
                            yield f"{file}, line {number}", parsed
                continue
            parsed = _parse_json(data, str(file), self.skips)
            if parsed is _BAD:
                continue
            if not isinstance(parsed, list):
                self.skips.skip("bad_field", f"{file}: expected a JSON list of entries, "
                                f"got {type(parsed).__name__}")
                continue
            for index, entry in enumerate(parsed):
                yield f"{file}, entry {index}", entry

    def _add(self, groups: dict[str, _Group], where: str, entry: Any) -> None:
        problem = _check_entry(entry)
        if problem:
            self.skips.skip("bad_field", f"{where}: {problem}")
            return
        entry_id: str = entry["id"]
        match = _EPISODE_KEY.search("/".join(entry_id.rsplit("/", 2)[-2:]))
        key = entry_id if match is None else "/".join(
            part for part in match.group("folder", "name") if part)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(where, match.group("source") if match else None,
                                         match.group("shard") if match else None,
                                         match.group("folder") if match else None)
        images = entry["image"]
        for image in [images] if isinstance(images, str) else images:
            group.images.setdefault(image, None)
        group.entries += 1
        if entry.get("selected_step") is not None:
            group.selected_steps.add(entry["selected_step"])
        task = (entry.get("task") or "").strip()
        question_type = None
        if task and not any(c.isspace() for c in task):
            question_type = task
            group.question_types.add(task)
        elif task and group.task_text is None:
            group.task_text = task
        for question, answer in _pairs(entry.get("conversations") or []):
            if group.goal is None and "planning" in (question_type or "").lower():
                group.goal = goal_of(question)
            plan = plan_of(question_type, question, answer)
            if len(plan) > len(group.plan):
                group.plan = plan

    # ------------------------------------------------------------ episodes

    def _episode(self, key: str, group: _Group) -> Episode | None:
        if not group.images:
            self.skips.skip("empty_episode", f"{group.where}: episode {key!r} lists no images")
            return None
        frames: list[str] = []
        for image in group.images:
            resolved = self._resolve(image)
            if resolved is None:
                self.skips.skip("missing_file", f"{group.where}: episode {key!r}: frame "
                                f"{image!r} not found under {self.image_root} (set image_root "
                                "to the folder holding ShareRobot's frames)")
                return None
            frames.append(resolved)
        frames.sort(key=natural_key)
        text = group.task_text or group.goal
        meta: dict[str, Any] = {"dataset": "ShareRobot", "entries": group.entries}
        if group.source_dataset:
            meta["source_dataset"] = group.source_dataset
        if group.shard:
            meta["shard"] = int(group.shard)
        if group.frames_folder:
            meta["frames_folder"] = group.frames_folder
        if group.selected_steps:
            meta["selected_steps"] = sorted(group.selected_steps)
        if group.question_types:
            meta["question_types"] = sorted(group.question_types)
        if text:
            meta["task"] = text
        if group.plan:
            meta["plan"] = list(group.plan)
        return Episode(
            id=key,
            scenario="robot",
            source="sharerobot",
            frames=tuple(frames),
            steps=tuple(group.plan) if group.plan and len(group.plan) == len(frames) else None,
            description=process_phrase(text) if text else None,
            meta=meta,
        )

    def _resolve(self, image: str) -> str | None:
        """The absolute path of `image` inside ``image_root``, or None when not found there."""
        candidates = []
        pure = PurePath(image)
        if not pure.is_absolute():
            candidates.append(self.image_root / pure)
        else:
            candidates.append(Path(pure))
            if self._dropped_prefix and image.startswith(self._dropped_prefix + "/"):
                candidates.append(self.image_root / image[len(self._dropped_prefix) + 1:])
        for candidate in candidates:
            found = _inside(candidate, self.image_root)
            if found is not None:
                return found
        if not pure.is_absolute():
            return None
        parts = pure.parts
        for k in range(1, len(parts)):  # longest tail first
            found = _inside(self.image_root.joinpath(*parts[k:]), self.image_root)
            if found is not None:
                self._dropped_prefix = str(PurePath(*parts[:k]))
                return found
        return None


_BAD = object()


def _fingerprint(entry: Any) -> bytes:
    """A digest of an entry's whole content, to read an entry listed twice once."""
    text = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _parse_json(data: bytes, where: str, skips: Skips) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        skips.skip("invalid_json", f"{where}: not UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        skips.skip("invalid_json", f"{where}: not valid JSON ({json_problem(err)})")
    return _BAD


def _check_entry(entry: Any) -> str | None:
    """The first problem with an entry's fields, if any."""
    if not isinstance(entry, dict):
        return f"expected an object, got {type(entry).__name__}"
    if not isinstance(entry.get("id"), str) or not entry["id"].strip():
        return f"field 'id' should be non-empty text, got {entry.get('id')!r}"
    images = entry.get("image")
    if not isinstance(images, str) and not (
            isinstance(images, list) and all(isinstance(i, str) and i for i in images)):
        return "field 'image' should be a path or a list of paths"
    task = entry.get("task")
    if task is not None and not isinstance(task, str):
        return f"field 'task' should be text, got {type(task).__name__}"
    step = entry.get("selected_step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        return f"field 'selected_step' should be an integer, got {step!r}"
    turns = entry.get("conversations")
    if turns is not None:
        if not isinstance(turns, list):
            return f"field 'conversations' should be a list, got {type(turns).__name__}"
        for i, turn in enumerate(turns):
            if not (isinstance(turn, dict) and isinstance(turn.get("from"), str)
                    and isinstance(turn.get("value"), str)):
                return f"field 'conversations': item {i} should be {{from: text, value: text}}"
    return None


def _pairs(turns: list[dict[str, str]]) -> Iterator[tuple[str, str]]:
    """(question, answer) for each human turn and the gpt turns that follow it."""
    question: str | None = None
    for turn in turns:
        if turn["from"] in ("human", "user"):
            question = turn["value"]
        elif question is not None:
            yield question, turn["value"]
            question = None


def _inside(candidate: Path, root: Path) -> str | None:
    """`candidate` resolved, if it is a file inside `root`."""
    try:
        resolved = candidate.resolve()
    except OSError:
        return None
    if resolved.is_relative_to(root) and resolved.is_file():
        return str(resolved)
    return None
