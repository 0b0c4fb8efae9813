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
features stored in the parquet (``{bytes, path}``) are written once to
``$TPRU_CACHE/lerobot/`` so the builder can read them as files.

Files are visited in order and each is opened once for all the episodes it
holds (a v3.0 mp4 or parquet packs many), so memory does not grow with the
dataset. The episode's task is its description (`process_phrase`; the raw
tasks stay in ``meta``); a per-frame language column of the data parquet
(``language_instruction``, ``subtask``, ``annotation``, ...) gives the steps.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from PIL import Image

from tpru.diagnostics import InputError, Skips, first_line
from tpru.paths import cache_dir
from tpru.schema import Episode
from tpru.sources.lerobot_meta import (
    DatasetMeta,
    EpisodeRecord,
    iter_episode_records,
    read_meta,
    read_tasks,
    resolve_root,
)
from tpru.sources.text import process_phrase
from tpru.sources.video import (
    MODES,
    KeyframePicker,
    UnreadableVideo,
    check_video_options,
    decoded_frames,
    grey_thumb,
    open_video,
    sample_times,
    spread,
    video_problem,
    video_ref,
)

LANGUAGE_COLUMN = re.compile(r"language|instruction|subtask|annotation|narration", re.I)
"""Data parquet columns of text read as per-frame steps."""

_CACHE = "lerobot"


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
        if episodes is not None and not all(isinstance(e, int) for e in episodes):
            raise ValueError(f"episodes must be a list of episode indices, got {episodes!r}")
        self.meta = read_meta(resolve_root(path, revision=revision))
        # A hub snapshot's folder is named by commit: name the dataset by its repo id then.
        self.name = self.meta.root.name if Path(path).expanduser().is_dir() else str(path)
        self.skips = skips
        self.cameras = _pick_cameras(self.meta, camera)
        self.mode, self.fps, self.max_frames = mode, fps, max_frames
        self.change_threshold = change_threshold
        self.episodes = None if episodes is None else set(episodes)
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks or [])
        self.task_names = read_tasks(self.meta)
        iter_episode_records(self.meta, skips)  # a missing episodes file fails here
        self._rows = _DataRows()

    def iter_episodes(self) -> Iterator[Episode]:
        """Camera by camera, the wanted episodes in metadata order, a file's episodes together."""
        for camera in self.cameras:
            records = (r for r in iter_episode_records(self.meta, self.skips) if self._wanted(r))
            for _, group in itertools.groupby(records, key=lambda r: self._file_of(r, camera)):
                yield from self._group(camera, list(group))

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
        if self.meta.cameras[camera] == "image":
            picked = self._image_frames(camera, records)
        else:
            picked = self._video_frames(camera, records)
        for record, (indices, frames) in zip(records, picked, strict=True):
            if frames:
                yield self._episode(camera, record, indices, frames)
            elif record.length <= 0:
                self.skips.skip("empty_episode", f"{self.meta.root}: episode {record.index} "
                                f"has length {record.length}")

    def _time_indices(self, record: EpisodeRecord) -> list[int]:
        """Frame indices one every ``1/fps`` seconds of the episode."""
        step = self.meta.fps / self.fps
        count = max(1, int((record.length - 1) / step + 1e-6) + 1) if record.length else 0
        return sorted({min(record.length - 1, round(j * step)) for j in range(count)})

    def _video_frames(self, camera: str,
                      records: list[EpisodeRecord]) -> list[tuple[list[int], list[str]]]:
        path = records[0].videos[camera].path
        where = f"{path} (episodes {_indices(records)}, camera {camera})"
        if not path.is_file():
            self.skips.skip("missing_file", f"{where}: no such video")
            return [([], [])] * len(records)
        fps = self.meta.fps
        try:
            last = sample_times(str(path), fps=fps)[-1]  # checks a first frame decodes
        except UnreadableVideo as err:
            self.skips.skip("unreadable_video", f"{err} (episodes {_indices(records)}, "
                            f"camera {camera})")
            return [([], [])] * len(records)
        out: list[tuple[list[int], list[str]]] = []
        keyframes = self._video_keyframes(str(path), records, camera) \
            if self.mode == "keyframes" else None
        for n, record in enumerate(records):
            start = record.videos[camera].start
            if start + (record.length - 1) / fps > last + 0.5 / fps:
                self.skips.skip("video_too_short", f"{path}: episode {record.index} runs to "
                                f"{start + record.length / fps:.3f}s, the video ends at "
                                f"{last + 1 / fps:.3f}s (camera {camera})")
                out.append(([], []))
                continue
            indices = keyframes[n] if keyframes is not None else self._time_indices(record)
            indices = [int(i) for i in spread([float(i) for i in indices], self.max_frames)]
            out.append((indices, [video_ref(str(path), start + k / fps) for k in indices]))
        return out

    def _video_keyframes(self, path: str, records: list[EpisodeRecord],
                         camera: str) -> list[list[int]] | None:
        """Keyframe indices per episode, decoding the file once (None, counted, if it fails)."""
        fps = self.meta.fps
        pickers = [KeyframePicker(fps=self.fps, change_threshold=self.change_threshold)
                   for _ in records]
        ranges = [(r.videos[camera].start, r.videos[camera].start + r.length / fps)
                  for r in records]
        try:
            container, stream = open_video(path)
            with container:
                for frame in decoded_frames(container, stream):
                    t = frame.time
                    n = next((i for i, (a, b) in enumerate(ranges)
                              if a - 0.5 / fps <= t < b - 0.5 / fps), None) \
                        if t is not None else None
                    if t is not None and n is not None and pickers[n].is_candidate(t):
                        pickers[n].offer(t, grey_thumb(frame))
        except Exception as err:  # decoders raise many kinds; all mean "unreadable"
            self.skips.skip("unreadable_video", f"{video_problem(path, err)} (episodes "
                            f"{_indices(records)}, camera {camera})")
            return [[] for _ in records]
        return [sorted({round((t - a) * fps) for t in p.times})
                for p, (a, _) in zip(pickers, ranges, strict=True)]

    def _image_frames(self, camera: str,
                      records: list[EpisodeRecord]) -> list[tuple[list[int], list[str]]]:
        """Image-feature frames: the sampled rows' image bytes written to the cache once."""
        out: list[tuple[list[int], list[str]]] = []
        folder = cache_dir(_CACHE) / hashlib.sha1(
            str(self.meta.root).encode()).hexdigest()[:12] / camera
        for record in records:
            images = self._rows.get(record, [camera], self.skips).get(camera, {})
            if not images and not self._rows.failed:
                self.skips.skip("missing_rows", f"{record.data_file}: no rows of episode "
                                f"{record.index} ({camera})")
            candidates = sorted(images) if self.mode == "keyframes" \
                else [k for k in self._time_indices(record) if k in images]
            if self.mode == "keyframes":
                picker = KeyframePicker(fps=self.fps, change_threshold=self.change_threshold)
                for k in candidates:
                    if picker.is_candidate(k / self.meta.fps) and (
                            image := self._open_image(images[k], record, camera)) is not None:
                        picker.offer(k / self.meta.fps, grey_thumb(image))
                candidates = [round(t * self.meta.fps) for t in picker.times]
            indices = [int(i) for i in spread([float(i) for i in candidates], self.max_frames)]
            frames = [self._image_file(images[k], folder, record, k) for k in indices]
            kept = [(k, f) for k, f in zip(indices, frames, strict=True) if f is not None]
            out.append(([k for k, _ in kept], [f for _, f in kept]))
        return out

    def _image_file(self, cell: Any, folder: Path, record: EpisodeRecord, k: int) -> str | None:
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            relative = cell.get("path") if isinstance(cell, dict) else None
            found = self.meta.root / str(relative) if relative else None
            if found is not None and found.is_file():
                return str(found)
            self.skips.skip("missing_file", f"{record.data_file}: episode {record.index} frame "
                            f"{k}: no image bytes and no file {relative!r}")
            return None
        suffix = ".jpg" if data[:2] == b"\xff\xd8" else ".png"
        target = folder / f"episode_{record.index:06d}" / f"frame_{k:06d}{suffix}"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)
        return str(target)

    def _open_image(self, cell: Any, record: EpisodeRecord, camera: str) -> Image.Image | None:
        import io

        data = cell.get("bytes") if isinstance(cell, dict) else None
        try:
            source = io.BytesIO(data) if data else self.meta.root / str(cell["path"])
            with Image.open(source) as image:
                return image.convert("RGB")
        except Exception as err:  # PIL raises many kinds for a damaged image
            self.skips.skip("unreadable_file", f"{record.data_file}: episode {record.index} "
                            f"({camera}): cannot read an image ({first_line(err)})")
            return None

    def _episode(self, camera: str, record: EpisodeRecord, indices: list[int],
                 frames: list[str]) -> Episode:
        steps = self._steps(record, indices)
        meta: dict[str, Any] = {
            "dataset": self.name, "lerobot_version": self.meta.version,
            "episode_index": record.index, "camera": camera, "tasks": list(record.tasks),
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
            description=process_phrase(record.tasks[0]) if record.tasks else None,
            meta=meta,
        )

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


class _DataRows:
    """Columns of the data parquet by episode and frame index, one file held at a time.

    A v3.0 file holds many episodes: asking for more columns of the same file
    reads it again once with all of them, so alternating requests do not re-read it.
    """

    def __init__(self) -> None:
        self._path: Path | None = None
        self._columns: set[str] = set()
        self._table: dict[int, dict[str, dict[int, Any]]] = {}
        self._schema: tuple[Path, list[str]] | None = None
        self.failed, self._problem = False, ""
        """Whether the file last asked for could not be read (each episode is counted)."""

    def language_columns(self, path: Path) -> list[str]:
        if self._schema is None or self._schema[0] != path:
            try:
                schema = pq.read_schema(path)
            except Exception:  # reported when the rows are read
                return []
            self._schema = (path, [f.name for f in schema if LANGUAGE_COLUMN.search(f.name)
                                   and str(f.type) in ("string", "large_string")])
        return self._schema[1]

    def get(self, record: EpisodeRecord, columns: list[str],
            skips: Skips) -> dict[str, dict[int, Any]]:
        if record.data_file != self._path or not set(columns) <= self._columns:
            wanted = set(columns) | (self._columns if record.data_file == self._path else set())
            self._path, self._columns, self._table = record.data_file, wanted, {}
            self.failed = False
            try:
                self._table = _read_rows(record.data_file, sorted(wanted))
            except Exception as err:  # a missing or damaged parquet
                self.failed, self._problem = True, first_line(err)
        if self.failed:
            skips.skip("unreadable_file", f"{record.data_file}: cannot read ({self._problem}) "
                       f"(episode {record.index})")
            return {}
        return self._table.get(record.index, {})


def _read_rows(path: Path, columns: list[str]) -> dict[int, dict[str, dict[int, Any]]]:
    """``episode -> column -> frame_index -> value``, read in batches."""
    found: dict[int, dict[str, dict[int, Any]]] = {}
    with pq.ParquetFile(path) as data:
        names = set(data.schema_arrow.names)
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"no column {', '.join(missing)}")
        for batch in data.iter_batches(columns=["episode_index", "frame_index", *columns],
                                       batch_size=256):
            rows = batch.to_pydict()
            for i, (episode, frame) in enumerate(zip(rows["episode_index"], rows["frame_index"],
                                                     strict=True)):
                per = found.setdefault(int(episode), {})
                for column in columns:
                    per.setdefault(column, {})[int(frame)] = rows[column][i]
    return found


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


def _indices(records: list[EpisodeRecord]) -> str:
    shown = ", ".join(str(r.index) for r in records[:5])
    return shown + (f" and {len(records) - 5} more" if len(records) > 5 else "")
