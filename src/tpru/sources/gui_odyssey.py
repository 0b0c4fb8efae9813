"""Episodes from GUI Odyssey (OpenGVLab/GUI-Odyssey): cross-app phone navigation.

``gui-odyssey:PATH`` names the release's ``data`` folder (or the folder that
holds ``data/``), laid out as the project's README describes::

    data/
      annotations/<episode_id>.json   one episode each
      screenshots/*.png               every step's screenshot (the hub copy keeps
                                      them in subfolders until preprocessing.py
                                      flattens them: both layouts are read)
      splits/random_split.json        {"train": [...], "test": [...]}; also
             task_split.json, device_split.json, app_split.json

An annotation (see the project's introduction.md)::

    {"episode_id": "8143471486515003",
     "device_info": {"product": ..., "release_version": ..., "sdk_version": ...,
                     "h": 2400, "w": 1080, "device_name": "Pixel 7 Pro"},
     "task_info": {"category": "Multi_Apps", "app": ["DuckDuckGo", "TickTick"],
                   "meta_task": "...", "task": "...", "instruction": "..."},
     "step_length": 12,
     "steps": [{"step": 0, "screenshot": "8143471486515003_0.png",
                "action": "CLICK", "info": [[512, 300]], "ps": ""}, ...]}

Newer copies add ``low_level_instruction`` and ``sam2_bbox`` to the steps.

One episode per annotation: its frames are the steps' screenshots in step
order, its description the instruction (else the task) as a gerund phrase
(`tpru.sources.text.process_phrase`), and its per-frame steps the
step's ``low_level_instruction`` where a newer release gives one, else text
built from the action (`action_text`: "CLICK at (512, 300)", "SCROLL UP from
(500, 800) to (500, 200)", "TYPE 'hello'", "PRESS_BACK", "COMPLETE").
Coordinates are on the release's 0-1000 grid. The documentation names the
typing action TYPE and the release's own converter reads TEXT; both are
accepted, as is INCOMPLETE for IMPOSSIBLE. A step's other fields
(``low_level_instruction``, ``ps``, ``sam2_bbox``, and any the release adds)
are kept as they are, one object per frame, in ``meta["step_meta"]``. The
episode's membership in each split file is kept in ``meta["splits"]``
(``{"random_split": "train", ...}``).

Options ``split_file`` (a path, or a name in ``splits/``: ``random_split.json``,
``random_split`` or ``random``) and ``split`` (``train`` or ``test``) keep
only the episodes listed on that side; a listed episode without an
annotation file is counted as ``missing_file``. Split lists name annotation
files, which equal episode ids, with or without ``.json``.

Bad input is skipped and counted, naming the file: an annotation that is not
JSON (``invalid_json``), a field of the wrong type or repeated step numbers
(``bad_field``), a missing screenshot (``missing_file``), no steps
(``empty_episode``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem
from tpru.schema import Episode
from tpru.sources.frames import natural_key
from tpru.sources.text import process_phrase

STEP_FIELDS = frozenset({"step", "screenshot", "action", "info"})
"""The step fields that make a frame and its action text; the rest go to ``step_meta``."""

_KEYS = {"KEY_HOME": "PRESS_HOME", "KEY_BACK": "PRESS_BACK", "KEY_APPSELECT": "PRESS_RECENT",
         "KEY_RECENT": "PRESS_RECENT"}


def action_text(action: str, info: Any) -> str:
    """A short text for one GUI Odyssey action.

    Example:
        >>> action_text("CLICK", [[512, 300]])
        'CLICK at (512, 300)'
        >>> action_text("TEXT", "hello")
        "TYPE 'hello'"
        >>> action_text("SCROLL", [[500, 800], [500, 200]])
        'SCROLL UP from (500, 800) to (500, 200)'
    """
    action = action.strip().upper()
    points = _points(info)
    if action in ("CLICK", "LONG_PRESS"):
        if isinstance(info, str) and info.strip().upper() in _KEYS:
            return _KEYS[info.strip().upper()]
        if points:
            return f"{action} at {_point(points[0])}"
    elif action == "SCROLL" and len(points) >= 2:
        (x1, y1), (x2, y2) = points[0], points[-1]
        dx, dy = x2 - x1, y2 - y1
        direction = ("LEFT" if dx < 0 else "RIGHT") if abs(dx) > abs(dy) else (
            "UP" if dy < 0 else "DOWN")
        return f"SCROLL {direction} from {_point(points[0])} to {_point(points[-1])}"
    elif action in ("TYPE", "TEXT"):
        return f"TYPE '{info}'" if isinstance(info, str) else "TYPE"
    elif action in ("HOME", "BACK", "RECENT"):
        return f"PRESS_{action}"
    elif action == "INCOMPLETE":
        return "IMPOSSIBLE"
    if info in ("", None, []):
        return action
    return f"{action} {info if isinstance(info, str) else json.dumps(info)}"


def _points(info: Any) -> list[tuple[float, float]]:
    """``[[x, y], ...]`` or ``[x, y]`` as points; anything else as none."""
    if not isinstance(info, list):
        return []
    if len(info) == 2 and all(_is_number(v) for v in info):
        return [(float(info[0]), float(info[1]))]
    points = []
    for item in info:
        if not (isinstance(item, list | tuple) and len(item) == 2
                and all(_is_number(v) for v in item)):
            return []
        points.append((float(item[0]), float(item[1])))
    return points


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _point(point: tuple[float, float]) -> str:
    return "(" + ", ".join(str(int(v)) if v.is_integer() else f"{v:g}" for v in point) + ")"


class GUIOdysseySource:
    """Episodes from a GUI Odyssey ``data`` folder (see the module docstring).

    Args:
        path: the ``data`` folder, or the folder holding it.
        skips: where bad annotations and missing screenshots are counted.
        split_file: keep only one side of this split file (needs `split`).
        split: ``train`` or ``test`` (or any side the split file has).

    Raises:
        InputError: `path` is not a GUI Odyssey folder, or the split file or
            side cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 split_file: str | os.PathLike[str] | None = None,
                 split: str | None = None) -> None:
        root = Path(os.path.abspath(Path(path).expanduser()))
        if not root.is_dir():
            raise InputError(f"{path}: no such GUI Odyssey folder")
        data = next((d for d in (root, root / "data") if (d / "annotations").is_dir()), None)
        if data is None:
            raise InputError(f"{path}: no annotations/ folder (expected GUI Odyssey's data/ "
                             "folder with annotations/, screenshots/ and splits/)")
        if (split_file is None) != (split is None):
            raise InputError("gui-odyssey: give both split_file and split, or neither")
        self.data = data
        self.screenshots = (data / "screenshots").resolve()
        self.skips = skips
        self.memberships: dict[str, dict[str, str]] = {}
        self.only: dict[str, None] | None = None
        self.split_file: Path | None = None
        self._by_name: dict[str, Path] | None = None
        for file in sorted((data / "splits").glob("*.json"), key=lambda p: natural_key(p.name)):
            sides = self._read_split(file, strict=False)
            for side, ids in (sides or {}).items():
                for episode_id in ids:
                    self.memberships.setdefault(episode_id, {})[file.stem] = side
        if split_file is not None and split is not None:
            file = self._find_split_file(split_file)
            sides = self._read_split(file, strict=True) or {}
            if split not in sides:
                raise InputError(f"{file}: no split {split!r} (it has: "
                                 f"{', '.join(sorted(sides)) or 'none'})")
            self.only = dict.fromkeys(sides[split])
            self.split_file = file

    def iter_episodes(self) -> Iterator[Episode]:
        """One episode per annotation file, in natural order of file names."""
        files = sorted((self.data / "annotations").glob("*.json"),
                       key=lambda p: natural_key(p.name))
        seen: set[str] = set()
        for file in files:
            if self.only is not None and file.stem not in self.only:
                continue
            seen.add(file.stem)
            episode = self._episode(file)
            if episode is not None:
                yield episode
        for episode_id in self.only or ():
            if episode_id not in seen:
                self.skips.skip("missing_file", f"{self.split_file}: episode {episode_id!r} "
                                f"has no annotation {self.data / 'annotations' / episode_id}.json")

    # ------------------------------------------------------------ splits

    def _find_split_file(self, name: str | os.PathLike[str]) -> Path:
        given = Path(name).expanduser()
        folder = self.data / "splits"
        stem = str(name).removesuffix(".json")
        for candidate in (given, folder / given, folder / f"{stem}.json",
                          folder / f"{stem}_split.json"):
            if candidate.is_file():
                return candidate
        raise InputError(f"{name}: no such split file (looked in {folder})")

    def _read_split(self, file: Path, *, strict: bool) -> dict[str, list[str]] | None:
        """``{side: [episode ids]}``; a bad file raises when `strict`, else is counted."""
        problem: tuple[str, str] | None = None
        data: Any = None
        try:
            data = json.loads(file.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = ("invalid_json", f"{file}: not a readable JSON split file ({err})")
        if problem is None and not (isinstance(data, dict) and all(
                isinstance(ids, list) and all(isinstance(i, str | int) for i in ids)
                for ids in data.values())):
            problem = ("bad_field", f"{file}: expected {{split: [episode ids]}}")
        if problem is not None:
            if strict:
                raise InputError(problem[1])
            self.skips.skip(*problem)
            return None
        return {side: [str(i).removesuffix(".json") for i in ids] for side, ids in data.items()}

    # ------------------------------------------------------------ episodes

    def _episode(self, file: Path) -> Episode | None:
        try:
            data = json.loads(file.read_bytes().decode("utf-8"))
        except OSError as err:
            self.skips.skip("unreadable_file", f"{file}: cannot read ({err.strerror or err})")
            return None
        except UnicodeDecodeError as err:
            self.skips.skip("invalid_json", f"{file}: not UTF-8 at byte {err.start}")
            return None
        except json.JSONDecodeError as err:
            self.skips.skip("invalid_json", f"{file}: not valid JSON ({json_problem(err)})")
            return None
        problem = _check_annotation(data)
        if problem:
            self.skips.skip("bad_field", f"{file}: {problem}")
            return None
        steps = _ordered_steps(data["steps"])
        if steps is None:
            self.skips.skip("bad_field", f"{file}: step numbers repeat")
            return None
        if not steps:
            self.skips.skip("empty_episode", f"{file}: no steps")
            return None
        frames = []
        for step in steps:
            screenshot = self._screenshot(step["screenshot"])
            if screenshot is None:
                self.skips.skip("missing_file", f"{file}: screenshot {step['screenshot']!r} "
                                f"not found in {self.screenshots}")
                return None
            frames.append(screenshot)
        actions = [action_text(step["action"], step.get("info")) for step in steps]
        texts = [step.get("low_level_instruction") or actions[i] for i, step in enumerate(steps)]
        episode_id = str(data.get("episode_id", file.stem))
        task_info: Mapping[str, Any] = data.get("task_info") or {}
        text = task_info.get("instruction") or task_info.get("task")
        return Episode(
            id=episode_id,
            scenario="gui",
            source="gui-odyssey",
            frames=tuple(frames),
            steps=tuple(texts),
            description=process_phrase(text) if text else None,
            meta=self._meta(data, task_info, episode_id, file.stem, actions, texts, steps),
        )

    def _meta(self, data: Mapping[str, Any], task_info: Mapping[str, Any], episode_id: str,
              stem: str, actions: list[str], texts: list[str],
              steps: list[dict[str, Any]]) -> dict[str, Any]:
        device: Mapping[str, Any] = data.get("device_info") or {}
        meta: dict[str, Any] = {"dataset": "GUI Odyssey"}
        for key, value in (("device", device.get("device_name")),
                           ("screen", [device["w"], device["h"]] if _is_number(device.get("w"))
                            and _is_number(device.get("h")) else None),
                           ("app", task_info.get("app")),
                           ("category", task_info.get("category")),
                           ("meta_task", task_info.get("meta_task")),
                           ("task", task_info.get("task")),
                           ("instruction", task_info.get("instruction")),
                           ("step_length", data.get("step_length"))):
            if value is not None:
                meta[key] = value
        if texts != actions:
            meta["actions"] = actions
        step_meta = [{k: v for k, v in step.items() if k not in STEP_FIELDS} for step in steps]
        if any(step_meta):
            meta["step_meta"] = step_meta
        splits = self.memberships.get(stem) or self.memberships.get(episode_id)
        if splits:
            meta["splits"] = dict(splits)
        return meta

    def _screenshot(self, name: str) -> str | None:
        """The screenshot's absolute path inside ``screenshots/``, or None."""
        candidate = (self.screenshots / name).resolve()
        if candidate.is_relative_to(self.screenshots) and candidate.is_file():
            return str(candidate)
        if self._by_name is None:  # the unflattened layout: screenshots/<part>/<name>
            self._by_name = {}
            if self.screenshots.is_dir():
                for path in sorted(self.screenshots.rglob("*")):
                    if path.is_file() and path.resolve().is_relative_to(self.screenshots):
                        self._by_name.setdefault(path.name, path)
        found = self._by_name.get(Path(name).name)
        return None if found is None else str(found.resolve())


def _check_annotation(data: Any) -> str | None:
    """The first problem with an annotation's fields, if any."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    episode_id = data.get("episode_id")
    if episode_id is not None and (isinstance(episode_id, bool)
                                   or not isinstance(episode_id, str | int)):
        return f"field 'episode_id' should be text, got {episode_id!r}"
    for key in ("device_info", "task_info"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"field '{key}' should be an object, got {type(data[key]).__name__}"
    for key in ("instruction", "task", "category"):
        value = (data.get("task_info") or {}).get(key)
        if value is not None and not isinstance(value, str):
            return f"field 'task_info.{key}' should be text, got {type(value).__name__}"
    steps = data.get("steps")
    if not isinstance(steps, list):
        return f"field 'steps' should be a list, got {type(steps).__name__}"
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            return f"steps[{i}] should be an object, got {type(step).__name__}"
        for key in ("screenshot", "action"):
            if not isinstance(step.get(key), str) or not step[key]:
                return f"steps[{i}].{key} should be non-empty text, got {step.get(key)!r}"
        number = step.get("step")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            return f"steps[{i}].step should be an integer, got {number!r}"
        low = step.get("low_level_instruction")
        if low is not None and not isinstance(low, str):
            return f"steps[{i}].low_level_instruction should be text, got {type(low).__name__}"
    return None


def _ordered_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Steps by their ``step`` number (list order when any lacks one); None on a repeat."""
    if any(step.get("step") is None for step in steps):
        return list(steps)
    numbers = [step["step"] for step in steps]
    if len(set(numbers)) != len(numbers):
        return None
    return sorted(steps, key=lambda step: int(step["step"]))
