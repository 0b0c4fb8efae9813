"""Episodes from VLN-CE navigation records (R2R, RxR) with frames rendered beforehand.

VLN-CE (jacobkrantz/VLN-CE) stores no images: its episodes are start poses,
instructions and reference paths in Matterport3D scenes, and observations
come from rendering them with habitat-sim. This source reads the records and
the frames a user rendered for them (e.g. by replaying each episode's
ground-truth actions in habitat-sim and saving the RGB sensor). Layout
(``habitat:PATH``; PATH is the dataset folder, one split folder, or one
records file)::

    R2R_VLNCE_v1-3_preprocessed/
      embeddings.json.gz           GloVe vectors for the instruction tokens: not read
      val_seen/
        val_seen.json.gz           {"episodes": [...]}  (RxR: val_seen_guide.json.gz, ...)
        val_seen_gt.json.gz        optional: {"<episode_id>": {"actions": [...],
                                                               "locations": [...]}}
        frames/<episode_id>/000.jpg, 001.jpg, ...   rendered beforehand

Only split records are read: in a folder, a ``.json.gz`` file whose name
starts with the name of the folder it is in (``val_seen/val_seen.json.gz``,
RxR's ``val_seen/val_seen_guide.json.gz``), other than a ``_gt`` file. Other
``.json.gz`` files (the release's ``embeddings.json.gz`` beside the split
folders) are not episode records and are left alone, named in one log line;
a records file named directly as PATH is read whatever its name.

An episode record has ``episode_id``, ``trajectory_id``, ``scene_id``,
``instruction.instruction_text`` (a plain string is accepted too),
``reference_path`` and, for RxR, ``instruction.language`` and
``instruction.instruction_id``. VLN-CE prescribes no place for rendered
frames, so this source looks beside the records file, first match wins:
``frames/<stem>/<episode_id>/``, ``frames/<episode_id>/``,
``rgb/<stem>/<episode_id>/``, ``rgb/<episode_id>/``, ``images/<episode_id>/``
(``<stem>`` is the records file's name without ``.json.gz``, which keeps
RxR's guide and follower frames apart); the ``frames_dir`` option names
another folder of ``<episode_id>/`` (or ``<stem>/<episode_id>/``) folders.
Frames in a folder are taken in natural order of their names.

Episodes: id ``<stem>/<episode_id>``, scenario ``nav``, description the
instruction as a gerund phrase (`tpru.sources.text.process_phrase`).
Ground-truth actions (habitat-sim's codes: 0 stop, 1 move forward, 2 turn
left, 3 turn right, 4 look up, 5 look down; names are accepted too) go into
``meta["actions"]``, and become the per-frame steps when there is exactly one
frame per action (the observation each action was taken from).

An episode whose frames are missing is skipped and counted as
``frames_not_rendered``. A split is usually rendered all or not at all, so
one warning per records file gives the count, the folder the frames were
expected in and a few episode ids, rather than a warning per episode (the
examples kept for ``build.json`` still say where each was looked for).
Records files that are not gzip-compressed JSON (``invalid_json``) and fields
of the wrong type (``bad_field``) are counted too, naming the file.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError, Skips, json_problem
from tpru.schema import Episode
from tpru.sources.base import unique_ids
from tpru.sources.frames import IMAGE_SUFFIXES, natural_key
from tpru.sources.text import process_phrase

RECORDS_SUFFIX = ".json.gz"
GT_SUFFIX = "_gt.json.gz"
SHOWN_IDS = 5
"""Episode ids named in the one warning about a records file's unrendered episodes."""

log = logging.getLogger("tpru")

ACTION_NAMES = ("stop", "move forward", "turn left", "turn right", "look up", "look down")
"""habitat-sim's discrete navigation actions, by code."""


def action_name(action: Any) -> str | None:
    """``"turn left"`` for 2 or ``"TURN_LEFT"``; None for anything else."""
    if isinstance(action, int) and not isinstance(action, bool) \
            and 0 <= action < len(ACTION_NAMES):
        return ACTION_NAMES[action]
    if isinstance(action, str) and action.strip():
        return action.strip().lower().replace("_", " ")
    return None


class HabitatSource:
    """Episodes from VLN-CE records and their rendered frames (see the module docstring).

    Args:
        path: a VLN-CE dataset folder, one split folder, or one ``.json.gz`` records file.
        skips: where bad records and unrendered episodes are counted.
        frames_dir: a folder of ``<episode_id>/`` frame folders to use instead of
            the folders beside the records.

    Raises:
        InputError: `path` (or `frames_dir`) does not exist, or holds no records file.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 frames_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not (self.path.is_file() or self.path.is_dir()):
            raise InputError(f"{path}: no such VLN-CE records file or folder")
        self.frames_dir = None if frames_dir is None else Path(
            os.path.abspath(Path(frames_dir).expanduser()))
        if self.frames_dir is not None and not self.frames_dir.is_dir():
            raise InputError(f"{frames_dir}: frames_dir is not a folder")
        self.records = self._records_files()
        if not self.records:
            raise InputError(f"{path}: no VLN-CE records (<split>/<split>{RECORDS_SUFFIX}, "
                             f"e.g. val_seen/val_seen{RECORDS_SUFFIX})")
        self.skips = skips

    def iter_episodes(self) -> Iterator[Episode]:
        """Episodes file by file (natural order of paths), in each file's order."""
        yield from unique_ids(((records, episode) for records in self.records
                               for episode in self._read(records)), self.skips)

    def _records_files(self) -> list[Path]:
        """The split records under `path` (see the module docstring), in natural order."""
        if self.path.is_file():
            return [self.path]
        found = [p for p in self.path.rglob(f"*{RECORDS_SUFFIX}")
                 if p.is_file() and not p.name.endswith(GT_SUFFIX)
                 and not any(part.startswith(".") for part in p.relative_to(self.path).parts)]
        records = [p for p in found if is_split_records(p)]
        others = sorted(str(p.relative_to(self.path)) for p in found if not is_split_records(p))
        if others:
            named = ", ".join(others[:SHOWN_IDS]) + (
                f" and {len(others) - SHOWN_IDS} more" if len(others) > SHOWN_IDS else "")
            if not records:
                raise InputError(f"{self.path}: no VLN-CE split records (named <split>/<split>"
                                 f"{RECORDS_SUFFIX}); found only {named}: name a records "
                                 "file itself to read it")
            log.info("%s: not reading %s (not a split's episode records, which are named "
                     "<split>/<split>%s)", self.path, named, RECORDS_SUFFIX)
        return sorted(records, key=lambda p: [natural_key(part)
                                              for part in p.relative_to(self.path).parts])

    def _read(self, records: Path) -> Iterator[Episode]:
        data = _load_gzip_json(records, self.skips)
        if data is None:
            return
        episodes = data.get("episodes") if isinstance(data, dict) else None
        if not isinstance(episodes, list):
            self.skips.skip("bad_field", f"{records}: expected an object with a list "
                            "'episodes'")
            return
        stem = records.name.removesuffix(RECORDS_SUFFIX)
        gt_path = records.with_name(stem + GT_SUFFIX)
        truth = (gt_path, self._ground_truth(gt_path))
        unrendered: list[str] = []
        for index, record in enumerate(episodes):
            where = f"{records}, episode {index}"
            problem = _check_record(record)
            if problem:
                self.skips.skip("bad_field", f"{where}: {problem}")
                continue
            episode = self._episode(records, stem, record, truth, where)
            if episode is None:
                unrendered.append(str(record["episode_id"]))
            else:
                yield episode
        if unrendered:
            self._warn_unrendered(records, stem, unrendered, len(episodes))

    def _ground_truth(self, path: Path) -> Mapping[str, Any]:
        """The ``_gt`` file's entries by episode id; empty when absent or bad (counted)."""
        if not path.is_file():
            return {}
        data = _load_gzip_json(path, self.skips)
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.skips.skip("bad_field", f"{path}: expected an object keyed by episode id")
            return {}
        return data

    def _episode(self, records: Path, stem: str, record: Mapping[str, Any],
                 truth: tuple[Path, Mapping[str, Any]], where: str) -> Episode | None:
        episode_id = str(record["episode_id"])
        folders = self._frame_folders(records.parent, stem, episode_id)
        frames = next((images for images in map(_images, folders) if images), None)
        if frames is None:
            # Counted per episode, logged once per file by _warn_unrendered.
            self.skips.skip("frames_not_rendered", f"{where}: no rendered frames for episode "
                            f"{episode_id!r} (looked in {', '.join(map(str, folders))}); "
                            "VLN-CE stores no images: render each episode with habitat-sim "
                            "first", quiet=True)
            return None
        actions = self._actions(truth, episode_id)
        instruction = record["instruction"]
        text: str = instruction if isinstance(instruction, str) \
            else instruction["instruction_text"]
        meta: dict[str, Any] = {"dataset": "VLN-CE", "split": stem, "episode_id": episode_id}
        if record.get("trajectory_id") is not None:
            meta["trajectory_id"] = str(record["trajectory_id"])
        if record.get("scene_id"):
            meta["scene_id"] = record["scene_id"]
        if isinstance(instruction, dict):
            for key in ("instruction_id", "language"):
                if instruction.get(key) is not None:
                    meta[key] = instruction[key]
        meta["instruction"] = text
        if isinstance(record.get("reference_path"), list):
            meta["reference_path_points"] = len(record["reference_path"])
        if actions is not None:
            meta["actions"] = actions
        return Episode(
            id=f"{stem}/{episode_id}",
            scenario="nav",
            source="habitat",
            frames=tuple(str(frame) for frame in frames),
            steps=tuple(actions) if actions is not None and len(actions) == len(frames)
            else None,
            description=process_phrase(text) if text.strip() else None,
            meta=meta,
        )

    def _warn_unrendered(self, records: Path, stem: str, ids: list[str], total: int) -> None:
        """One warning for all of a records file's episodes without frames."""
        base = self.frames_dir or records.parent
        main = (self.frames_dir or records.parent / "frames") / "<episode_id>"
        others = [str(p.relative_to(base)) + "/"
                  for p in self._frame_folders(records.parent, stem, "<episode_id>") if p != main]
        shown = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
        log.warning("skipped: %s: %s of %s episodes have no rendered frames (episodes %s): "
                    "expected in %s/ (or %s); VLN-CE stores no images: render each episode "
                    "with habitat-sim first, or set source_options.habitat.frames_dir",
                    records, f"{len(ids):,}", f"{total:,}", shown, main, ", ".join(others))

    def _frame_folders(self, beside: Path, stem: str, episode_id: str) -> list[Path]:
        if self.frames_dir is not None:
            return [self.frames_dir / stem / episode_id, self.frames_dir / episode_id]
        return [beside / "frames" / stem / episode_id, beside / "frames" / episode_id,
                beside / "rgb" / stem / episode_id, beside / "rgb" / episode_id,
                beside / "images" / episode_id]

    def _actions(self, truth: tuple[Path, Mapping[str, Any]], episode_id: str
                 ) -> list[str] | None:
        entry = truth[1].get(episode_id)
        if entry is None:
            return None
        raw = entry.get("actions") if isinstance(entry, dict) else None
        names = [action_name(a) for a in raw] if isinstance(raw, list) else [None]
        if not all(names):
            self.skips.skip("bad_field", f"{truth[0]}: episode {episode_id!r}: "
                            "'actions' should be a list of action codes or names; its actions "
                            "are ignored")
            return None
        return [name for name in names if name]


def _images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, in natural order (none if it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file()),
                  key=lambda p: natural_key(p.name))


def _load_gzip_json(path: Path, skips: Skips) -> Any:
    """The JSON in gzip file `path`, or None (counted) when it cannot be read."""
    try:
        with gzip.open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, EOFError, zlib.error) as err:
        skips.skip("invalid_json", f"{path}: not a gzip-compressed JSON file ({err})")
    except UnicodeDecodeError as err:
        skips.skip("invalid_json", f"{path}: not UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        skips.skip("invalid_json", f"{path}: not valid JSON ({json_problem(err)})")
    return None


def _check_record(record: Any) -> str | None:
    """The first problem with an episode record's fields, if any."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    episode_id = record.get("episode_id")
    if isinstance(episode_id, bool) or not isinstance(episode_id, int | str) \
            or not str(episode_id).strip():
        return f"field 'episode_id' should be an integer or text, got {episode_id!r}"
    instruction = record.get("instruction")
    if not isinstance(instruction, str) and not (
            isinstance(instruction, dict) and isinstance(instruction.get("instruction_text"), str)):
        return "field 'instruction' should be {instruction_text: text} or text"
    scene = record.get("scene_id")
    if scene is not None and not isinstance(scene, str):
        return f"field 'scene_id' should be text, got {type(scene).__name__}"
    path = record.get("reference_path")
    if path is not None and not isinstance(path, list):
        return f"field 'reference_path' should be a list, got {type(path).__name__}"
    return None


def is_split_records(path: Path) -> bool:
    """Whether `path` is named as a split's episode records: ``<split>/<split>*.json.gz``
    (``val_seen/val_seen.json.gz``, ``val_seen/val_seen_guide.json.gz``), not ``_gt``.

    Example:
        >>> is_split_records(Path("R2R/val_seen/val_seen.json.gz"))
        True
        >>> is_split_records(Path("R2R/embeddings.json.gz"))
        False
    """
    name, split = path.name, path.parent.name
    if not name.endswith(RECORDS_SUFFIX) or name.endswith(GT_SUFFIX) or not split:
        return False
    stem = name.removesuffix(RECORDS_SUFFIX)
    return stem == split or stem.startswith(split + "_")
