"""Reading a LeRobot dataset's files: episodes' frames, and per-frame values of its rows.

`tpru.sources.lerobot` decides which episodes and cameras to read and makes
the `Episode` records; this module reads what lies in the files, a file's
episodes together (a v3.0 mp4 or data parquet packs many):

- `FrameChooser`: the frames chosen in each episode, as ``file.mp4#t=SECONDS``
  references into a camera's video, or as references into the data parquet's
  ``{bytes, path}`` cells (``file.parquet#episode_index=E&frame_index=F&column=C``,
  `tpru.sources.stored_images`; a cell holding only a path: that file);
  ``mode="time"`` takes one frame every ``1/fps`` seconds (no decoding),
  ``mode="keyframes"`` decodes and keeps the frames where the picture changed.
- `DataRows`: columns of the data parquet by episode and frame index (image
  cells, ``task_index``, a language column), one file held at a time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from PIL import Image

from tpru.diagnostics import InputError, Skips, first_line
from tpru.sources.lerobot_meta import DatasetMeta, EpisodeRecord
from tpru.sources.stored_images import parquet_ref
from tpru.sources.video import (
    KeyframePicker,
    UnreadableVideo,
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

Chosen = tuple[list[int], list[str]]
"""An episode's chosen frame indices and their references (both empty: none)."""


class FrameChooser:
    """Chooses the frames of episodes whose frames of one camera lie in one file.

    Args:
        meta: the dataset's metadata.
        rows: the data parquet's rows (image features are stored there).
        skips: where missing or unreadable files and videos too short are counted.
        mode, fps, change_threshold, max_frames: as for ``video:``.
    """

    def __init__(self, meta: DatasetMeta, rows: DataRows, skips: Skips, *,
                 mode: Literal["time", "keyframes"], fps: float, change_threshold: float,
                 max_frames: int) -> None:
        self.meta, self.rows, self.skips = meta, rows, skips
        self.mode, self.fps, self.max_frames = mode, fps, max_frames
        self.change_threshold = change_threshold

    def choose(self, camera: str, records: list[EpisodeRecord]) -> list[Chosen]:
        """Each record's ``(indices, frames)`` of `camera`, in order; empty if none."""
        if self.meta.cameras[camera] == "image":
            return self._image_frames(camera, records)
        return self._video_frames(camera, records)

    def _time_indices(self, record: EpisodeRecord) -> list[int]:
        """Frame indices one every ``1/fps`` seconds of the episode."""
        step = self.meta.fps / self.fps
        count = max(1, int((record.length - 1) / step + 1e-6) + 1) if record.length else 0
        return sorted({min(record.length - 1, round(j * step)) for j in range(count)})

    def _video_frames(self, camera: str,
                      records: list[EpisodeRecord]) -> list[Chosen]:
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
        out: list[Chosen] = []
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
                      records: list[EpisodeRecord]) -> list[Chosen]:
        """Image-feature frames: references to the sampled rows' image cells."""
        out: list[Chosen] = []
        for record in records:
            images = self.rows.get(record, [camera], self.skips).get(camera, {})
            if not images and not self.rows.failed:
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
            frames = [self._image_ref(images[k], record, camera, k) for k in indices]
            kept = [(k, f) for k, f in zip(indices, frames, strict=True) if f is not None]
            out.append(([k for k, _ in kept], [f for _, f in kept]))
        return out

    def _image_ref(self, cell: Any, record: EpisodeRecord, camera: str, k: int) -> str | None:
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            relative = cell.get("path") if isinstance(cell, dict) else None
            found = self.meta.root / str(relative) if relative else None
            if found is not None and found.is_file():
                return str(found)
            self.skips.skip("missing_file", f"{record.data_file}: episode {record.index} frame "
                            f"{k}: no image bytes and no file {relative!r}")
            return None
        return parquet_ref(record.data_file, record.index, k, camera)

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


class DataRows:
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
        self._reported: set[int] = set()

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
            same = record.data_file == self._path
            wanted = set(columns) | (self._columns if same else set())
            self._path, self._columns, self._table = record.data_file, wanted, {}
            self.failed, self._reported = False, self._reported if same else set()
            try:
                self._table = _read_rows(record.data_file, sorted(wanted))
            except Exception as err:  # a missing or damaged parquet
                self.failed, self._problem = True, first_line(err)
        if self.failed:
            if record.index not in self._reported:  # once, however often it is asked for
                self._reported.add(record.index)
                skips.skip("unreadable_file", f"{record.data_file}: cannot read "
                           f"({self._problem}) (episode {record.index})")
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


def _indices(records: list[EpisodeRecord]) -> str:
    shown = ", ".join(str(r.index) for r in records[:5])
    return shown + (f" and {len(records) - 5} more" if len(records) > 5 else "")
