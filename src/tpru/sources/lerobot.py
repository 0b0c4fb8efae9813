"""Episodes from a LeRobot dataset (v2.0, v2.1 or v3.0): ``lerobot:PATH_OR_REPO_ID``.

PATH is a dataset folder (``meta/info.json`` at its top); ``owner/name`` with
no such folder is a Hugging Face dataset, fetched into the hub's cache (see
`tpru.sources.lerobot_meta` for the layouts). One episode per LeRobot episode
and camera: ``camera`` names a video or image feature (default the first;
``"all"`` gives every camera its own episode, camera by camera).

Frames are chosen as the ``video:`` source does: ``mode="time"`` takes one
frame every ``1/fps`` seconds of the episode (no decoding: LeRobot frame k
sits at ``k / dataset fps``), ``mode="keyframes"`` decodes and keeps the
frames where the picture changed (`tpru.sources.video.KeyframePicker`).
Video frames are references into the mp4 (``file.mp4#t=SECONDS``); image
features stored in the parquet (``{bytes, path}``) are references into its
cells (``file.parquet#episode_index=E&frame_index=F&column=C``), read by the
build's worker, one episode's rows at a time. This module
picks the episodes and makes their records; `tpru.sources.lerobot_frames`
reads the files (frames, and the data parquet's rows).

Files are visited in order and each is opened once for all the episodes it
holds (a v3.0 mp4 or parquet packs many), so memory does not grow with the
dataset. The source is split (`tpru.sources.base.SplitSource`): listing reads
only the metadata, and a build's workers open the files, one key per file.

The episode's task is its description (`process_phrase`; the raw
tasks stay in ``meta``); a per-frame language column of the data parquet
(``language_instruction``, ``subtask``, ``annotation``, ...) gives the steps.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.base import flatten
from tpru.sources.lerobot_frames import DataRows, FrameChooser
from tpru.sources.lerobot_meta import (
    DatasetMeta,
    EpisodeRecord,
    iter_episode_records,
    read_meta,
    read_tasks,
    resolve_root,
)
from tpru.sources.text import process_phrase
from tpru.sources.video import MODES, check_video_options


class LeRobotSource:
    """Episodes from a LeRobot dataset (see the module docstring).

    Args:
        path: a dataset folder, or a Hugging Face dataset repo id.
        skips: where missing or unreadable videos and bad episodes are counted.
        camera: a video or image feature key, ``"all"``, or None for the first.
        mode, fps, change_threshold, max_frames: as for ``video:``.
        episodes: only these episode indices.
        tasks: only episodes whose task contains one of these (case-insensitive).
        revision: the hub revision, for a repo id.

    Raises:
        InputError: no dataset there, a missing or unreadable meta file, an unknown camera.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips, camera: str | None = None,
                 mode: Literal["time", "keyframes"] = "time", fps: float = 1.0,
                 change_threshold: float = 0.03, max_frames: int = 64,
                 episodes: Sequence[int] | None = None, tasks: Sequence[str] | str | None = None,
                 revision: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        check_video_options(fps=fps, max_frames=max_frames, change_threshold=change_threshold)
        if episodes is not None and (not all(isinstance(e, int) for e in episodes)
                                     or not episodes):
            raise ValueError(f"episodes must be a list of episode indices, got {episodes!r}")
        self.meta = read_meta(resolve_root(path, revision=revision))
        # A hub snapshot's folder is named by commit: name the dataset by its repo id then.
        self.name = self.meta.root.name if Path(path).expanduser().is_dir() else str(path)
        self.skips = skips
        self.cameras = _pick_cameras(self.meta, camera)
        self.episodes = None if episodes is None else set(episodes)
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks or [])
        self.task_names = read_tasks(self.meta)
        iter_episode_records(self.meta, skips)  # a missing episodes file fails here
        self._check_selection()
        self._rows = DataRows()
        self._frames = FrameChooser(self.meta, self._rows, skips, mode=mode, fps=fps,
                                    change_threshold=change_threshold, max_frames=max_frames)

    def iter_episodes(self) -> Iterator[Episode]:
        """Camera by camera, the wanted episodes in metadata order, a file's episodes together."""
        return self.admit(flatten(self.open_episode(key) for key in self.episode_keys()))

    # A split source (`tpru.sources.base.SplitSource`): listing reads the episodes
    # metadata; a build's worker opens each file (a video's header and first frame, or
    # all of it in keyframes mode; the data parquet's rows for images, tasks and language)
    # and makes the episodes whose frames lie in it.
    def episode_keys(self) -> Iterator[tuple[str, tuple[EpisodeRecord, ...]]]:
        """``(camera, records)``: camera by camera, the wanted episodes whose frames lie in
        one file, in metadata order."""
        for camera in self.cameras:
            records = (r for r in iter_episode_records(self.meta, self.skips) if self._wanted(r))
            for _, group in itertools.groupby(records, key=lambda r: self._file_of(r, camera)):
                yield camera, tuple(group)

    def open_episode(self, key: tuple[str, tuple[EpisodeRecord, ...]]) -> list[Episode]:
        """The episodes of one key's records (those that cannot be made are counted)."""
        camera, records = key
        return list(self._group(camera, list(records)))

    def admit(self, opened: Iterator[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order."""
        return (episode for episode in opened if episode is not None)

    def _check_selection(self) -> None:
        """Refuse `episodes`/`tasks` that select no episode at all; otherwise count each
        episode asked for that the dataset lacks (``missing_episode``) and warn about a task
        substring that matches no task. One pass over the episodes metadata, only when
        there is a selection."""
        if self.episodes is None and not self.tasks:
            return
        indices: set[int] = set()
        tasks: set[str] = set()
        selected = 0
        for record in iter_episode_records(self.meta, Skips()):  # bad records: counted later
            indices.add(record.index)
            tasks.update(record.tasks)
            selected += self._wanted(record)
        root = self.meta.root
        missing = sorted(self.episodes - indices) if self.episodes is not None else []
        unmatched = [w for w in self.tasks if not any(w.lower() in t.lower() for t in tasks)]
        has = f"it has episodes {_ranges(sorted(indices))}" if indices else "it has no episodes"
        if not selected:
            if self.episodes is not None and len(missing) == len(self.episodes):
                raise InputError(f"{root}: no episode {_ranges(missing)} (asked for in "
                                 f"'episodes'); {has}")
            if self.tasks and len(unmatched) == len(self.tasks):
                shown = ", ".join(repr(t) for t in sorted(tasks)[:5])
                raise InputError(f"{root}: no task contains "
                                 f"{' or '.join(repr(t) for t in self.tasks)} (asked for in "
                                 f"'tasks'); its tasks: {shown or '(none)'}"
                                 f"{', ...' if len(tasks) > 5 else ''}")
            raise InputError(f"{root}: none of the episodes asked for in 'episodes' has a "
                             f"task containing {' or '.join(repr(t) for t in self.tasks)}")
        if missing:  # one log line for all, one count each
            self.skips.skip("missing_episode", f"{root}: no episode {_ranges(missing)} "
                            f"(asked for in 'episodes'); {has}")
            for index in missing[1:]:
                self.skips.skip("missing_episode", f"{root}: no episode {index}", quiet=True)
        for want in unmatched:
            self.skips.warn("unmatched task", f"{root}: no task contains {want!r} (asked for "
                            "in 'tasks')")

    def _wanted(self, record: EpisodeRecord) -> bool:
        if self.episodes is not None and record.index not in self.episodes:
            return False
        return not self.tasks or any(want.lower() in task.lower()
                                     for want in self.tasks for task in record.tasks)

    def _file_of(self, record: EpisodeRecord, camera: str) -> Path:
        span = record.videos.get(camera)
        return span.path if span is not None else record.data_file

    def _group(self, camera: str, records: list[EpisodeRecord]) -> Iterator[Episode]:
        """The episodes of `records`, whose `camera` frames all lie in one file."""
        picked = self._frames.choose(camera, records)
        for record, (indices, frames) in zip(records, picked, strict=True):
            if frames:
                yield self._episode(camera, record, indices, frames)
            elif record.length <= 0:
                self.skips.skip("empty_episode", f"{self.meta.root}: episode {record.index} "
                                f"has length {record.length}")

    def _episode(self, camera: str, record: EpisodeRecord, indices: list[int],
                 frames: list[str]) -> Episode:
        steps = self._steps(record, indices)
        tasks = self._tasks_in_frame_order(record)
        meta: dict[str, Any] = {
            "dataset": self.name, "lerobot_version": self.meta.version,
            "episode_index": record.index, "camera": camera, "tasks": tasks,
            "fps": self.meta.fps, "frame_indices": indices,
        }
        if self.meta.info.get("robot_type"):
            meta["robot_type"] = self.meta.info["robot_type"]
        name = f"episode_{record.index:06d}"
        return Episode(
            id=f"{name}/{camera}" if len(self.cameras) > 1 else name,
            scenario="robot",
            source="lerobot",
            frames=tuple(frames),
            steps=steps,
            description=process_phrase(tasks[0]) if tasks else None,
            meta=meta,
        )

    def _tasks_in_frame_order(self, record: EpisodeRecord) -> list[str]:
        """The episode's tasks in the order its frames go through them.

        lerobot writes an episode's ``tasks`` as ``list(set(...))``, in no particular
        order; the data parquet's ``task_index`` per frame gives the real one. Tasks the
        frames do not name keep their listed order, after the others.
        """
        if len(record.tasks) < 2 or not self.task_names:
            return list(record.tasks)
        per_frame = self._rows.get(record, ["task_index"], self.skips).get("task_index", {})
        seen = [self.task_names.get(int(per_frame[k])) for k in sorted(per_frame)
                if per_frame[k] is not None]
        ordered = [t for t in dict.fromkeys(seen) if t in record.tasks]
        return ordered + [t for t in record.tasks if t not in ordered]

    def _steps(self, record: EpisodeRecord, indices: list[int]) -> tuple[str, ...] | None:
        """Per-frame text from a language column, or the frame's task when the episode has
        several; the last text before a frame carries over a frame without one."""
        columns = self._rows.language_columns(record.data_file)
        use_tasks = not columns and len(record.tasks) > 1 and bool(self.task_names)
        if not columns and not use_tasks:
            return None
        wanted = columns[:1] or ["task_index"]
        values = self._rows.get(record, wanted, self.skips).get(wanted[0], {})
        steps, last = [], ""
        for k in range(max(indices) + 1):
            value = values.get(k)
            text = self.task_names.get(int(value), "") if use_tasks and value is not None \
                else str(value or "")
            last = text.strip() or last
            if k in indices:
                steps.append(last)
        return tuple(steps) if any(steps) else None


def _pick_cameras(meta: DatasetMeta, camera: str | None) -> list[str]:
    if not meta.cameras:
        raise InputError(f"{meta.info_path}: no video or image features")
    if camera is None:
        return [next(iter(meta.cameras))]
    if camera == "all":
        return list(meta.cameras)
    if camera not in meta.cameras:
        raise InputError(f"{meta.info_path}: no camera {camera!r} (cameras: "
                         f"{', '.join(meta.cameras)}, or all)")
    return [camera]


def _ranges(indices: list[int]) -> str:
    """Sorted indices as runs, for a message.

    Example:
        >>> _ranges([0, 1, 2, 5, 7, 8])
        '0-2, 5, 7-8'
    """
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


