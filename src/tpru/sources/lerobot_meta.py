"""What a LeRobot dataset says about itself: cameras, tasks and where each episode lies.

Two layouts are read into the same `EpisodeRecord`, lazily, so a dataset of a
million episodes costs the memory of one metadata file at a time:

- v2.0 / v2.1 (lerobot 0.3.x): ``meta/episodes.jsonl`` (``episode_index``,
  ``tasks``, ``length``), ``meta/tasks.jsonl`` (``task_index``, ``task``); one
  data parquet and one video per episode and camera, at the ``data_path`` and
  ``video_path`` templates of ``meta/info.json`` (``{episode_chunk}`` being
  ``episode_index // chunks_size``). Video time = the episode's own timestamps.
- v3.0 (lerobot 0.4.x): ``meta/episodes/chunk-*/file-*.parquet`` with
  ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``,
  ``videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}``,
  ``tasks`` and ``length``; ``meta/tasks.parquet`` (``task_index``, the task
  as pandas' index). Several episodes share one parquet and one mp4 per camera;
  an episode's frame k is at ``from_timestamp + k / fps`` in its mp4.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tpru.diagnostics import InputError, Skips, first_line

VERSIONS = ("v2.0", "v2.1", "v3.0")
CAMERA_DTYPES = ("video", "image")

_V3_VIDEO_FIELDS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


@dataclass(frozen=True)
class VideoSpan:
    """Where one camera's frames of an episode lie: `path`, from `start` seconds."""

    path: Path
    start: float
    end: float | None


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode as the metadata describes it: its rows in `data_file` are those with its
    ``episode_index``; its frames in each camera's video start at `VideoSpan.start`."""

    index: int
    length: int
    tasks: tuple[str, ...]
    data_file: Path
    videos: Mapping[str, VideoSpan] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetMeta:
    """``meta/info.json`` read and checked: root, version, fps, cameras (in feature order)."""

    root: Path
    version: str
    fps: float
    cameras: Mapping[str, str]  # key -> "video" | "image"
    info: Mapping[str, Any]

    @property
    def info_path(self) -> Path:
        return self.root / "meta" / "info.json"


def read_meta(root: Path) -> DatasetMeta:
    """Read and check ``meta/info.json``.

    Raises:
        InputError: the file is missing or unreadable, the version is not one read
            here, or a needed key is missing; the message names the file.
    """
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise InputError(f"{root}: not a LeRobot dataset (no meta/info.json)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read ({first_line(err)})") from None
    if not isinstance(info, dict):
        raise InputError(f"{path}: expected a JSON object")
    version = str(info.get("codebase_version", ""))
    if version not in VERSIONS:
        raise InputError(f"{path}: codebase_version {version or '(none)'!r} is not read "
                         f"(reads {', '.join(VERSIONS)}); convert it with lerobot first")
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise InputError(f"{path}: no {key!r}")
    features = info["features"]
    if not isinstance(features, dict):
        raise InputError(f"{path}: 'features' is not an object")
    cameras = {key: spec["dtype"] for key, spec in features.items()
               if isinstance(spec, dict) and spec.get("dtype") in CAMERA_DTYPES}
    if any(kind == "video" for kind in cameras.values()) and not info.get("video_path"):
        raise InputError(f"{path}: video features but no 'video_path'")
    try:
        fps = float(info["fps"])
    except (TypeError, ValueError):
        raise InputError(f"{path}: fps {info['fps']!r} is not a number") from None
    if fps <= 0:
        raise InputError(f"{path}: fps must be positive, got {fps}")
    return DatasetMeta(root=root, version=version, fps=fps, cameras=cameras, info=info)


def iter_episode_records(meta: DatasetMeta, skips: Skips) -> Iterator[EpisodeRecord]:
    """The episodes in metadata order, one metadata file in memory at a time.

    Raises:
        InputError: at once, when the episodes metadata is missing.
    """
    if meta.version == "v3.0":
        files = sorted((meta.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise InputError(f"{meta.root}: no meta/episodes/chunk-*/file-*.parquet "
                             "(LeRobot v3.0)")
        return _v3_records(meta, files)
    path = meta.root / "meta" / "episodes.jsonl"
    if not path.is_file():
        raise InputError(f"{meta.root}: no meta/episodes.jsonl (LeRobot {meta.version})")
    return _v2_records(meta, path, skips)


def _v2_records(meta: DatasetMeta, path: Path, skips: Skips) -> Iterator[EpisodeRecord]:
    chunks = int(meta.info.get("chunks_size") or 1000)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                index, length = int(row["episode_index"]), int(row["length"])
                tasks = tuple(str(t) for t in row.get("tasks") or ())
            except (ValueError, KeyError, TypeError) as err:
                skips.skip("bad_record", f"{path}:{number}: not an episode ({first_line(err)})")
                continue
            names = {"episode_chunk": index // chunks, "episode_index": index}
            videos = {key: VideoSpan(meta.root / _fill(meta, "video_path", **names,
                                                        video_key=key), 0.0, None)
                      for key, kind in meta.cameras.items() if kind == "video"}
            yield EpisodeRecord(index, length, tasks,
                                meta.root / _fill(meta, "data_path", **names), videos)


def _v3_records(meta: DatasetMeta, files: list[Path]) -> Iterator[EpisodeRecord]:
    video_keys = [key for key, kind in meta.cameras.items() if kind == "video"]
    wanted = ["episode_index", "length", "tasks", "data/chunk_index", "data/file_index",
              *(f"videos/{key}/{part}" for key in video_keys for part in _V3_VIDEO_FIELDS)]
    for path in files:
        try:
            present = set(pq.read_schema(path).names)
            missing = [name for name in wanted if name not in present and name != "tasks"]
            if missing:
                raise InputError(f"{path}: no column {', '.join(missing[:4])}")
            rows = pq.read_table(path, columns=[w for w in wanted if w in present]).to_pylist()
        except InputError:
            raise
        except Exception as err:  # pyarrow raises several kinds for a damaged file
            raise InputError(f"{path}: cannot read ({first_line(err)})") from None
        for row in rows:
            yield _v3_record(meta, row, video_keys)


def _v3_record(meta: DatasetMeta, row: Mapping[str, Any], video_keys: list[str]) -> EpisodeRecord:
    videos = {}
    for key in video_keys:
        part = {name: row[f"videos/{key}/{name}"] for name in _V3_VIDEO_FIELDS}
        videos[key] = VideoSpan(
            meta.root / _fill(meta, "video_path", video_key=key,
                              chunk_index=int(part["chunk_index"]),
                              file_index=int(part["file_index"])),
            float(part["from_timestamp"]), float(part["to_timestamp"]))
    data = meta.root / _fill(meta, "data_path", chunk_index=int(row["data/chunk_index"]),
                             file_index=int(row["data/file_index"]))
    tasks = row.get("tasks") or ()
    return EpisodeRecord(int(row["episode_index"]), int(row["length"]),
                         (tasks,) if isinstance(tasks, str) else tuple(str(t) for t in tasks),
                         data, videos)


def _fill(meta: DatasetMeta, template_key: str, **names: Any) -> str:
    template = str(meta.info[template_key])
    try:
        return template.format(**names)
    except (KeyError, IndexError, ValueError) as err:
        raise InputError(f"{meta.info_path}: {template_key} {template!r} has a field it "
                         f"cannot fill ({first_line(err)})") from None


def read_tasks(meta: DatasetMeta) -> dict[int, str]:
    """``task_index -> task`` from ``meta/tasks.jsonl`` (v2.x) or ``meta/tasks.parquet`` (v3.0);
    empty when the file is absent (episodes carry their task texts themselves)."""
    jsonl, table = meta.root / "meta" / "tasks.jsonl", meta.root / "meta" / "tasks.parquet"
    try:
        if jsonl.is_file():
            rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
            return {int(r["task_index"]): str(r["task"]) for r in rows}
        if table.is_file():
            return _tasks_from_parquet(table)
    except InputError:
        raise
    except Exception as err:  # a damaged file: JSON, key or pyarrow errors
        raise InputError(f"{jsonl if jsonl.is_file() else table}: cannot read "
                         f"({first_line(err)})") from None
    return {}


def _tasks_from_parquet(path: Path) -> dict[int, str]:
    """pandas writes the task text as the index: a ``task`` column, or ``__index_level_0__``."""
    data = pq.read_table(path)
    names = data.column_names
    text = next((n for n in ("task", "__index_level_0__") if n in names), None)
    if text is None:
        text = next((n for n in names if n != "task_index"
                     and str(data.schema.field(n).type) in ("string", "large_string")), None)
    if text is None or "task_index" not in names:
        raise InputError(f"{path}: expected a task_index column and the task text")
    return {int(i): str(t) for i, t in zip(data.column("task_index").to_pylist(),
                                           data.column(text).to_pylist(), strict=True)}


def resolve_root(spec: str | os.PathLike[str], *, revision: str | None = None) -> Path:
    """A local dataset folder, or a Hugging Face repo id (``owner/name``) fetched into the
    hub's cache. Offline (``HF_HUB_OFFLINE=1`` or no network) a repo not cached fails here.

    Raises:
        InputError: no such folder, and not a repo id that could be downloaded.
    """
    root = Path(os.path.abspath(Path(spec).expanduser()))
    if root.is_dir():
        return root
    text = str(spec)
    parts = text.split("/")
    if len(parts) != 2 or not all(parts) or text.startswith((".", "~")) or Path(text).suffix:
        raise InputError(f"{spec}: no such LeRobot dataset folder")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError(f"{spec}: no such folder; to download it as a Hugging Face dataset "
                         "install huggingface_hub (pip install 'tpru[data]')") from None
    try:
        return Path(snapshot_download(repo_id=text, repo_type="dataset", revision=revision))
    except Exception as err:  # offline, unknown repo, gated repo: all mean "not here"
        raise InputError(f"{spec}: no such folder, and the Hugging Face dataset could not be "
                         f"downloaded ({type(err).__name__}); pass a local LeRobot dataset "
                         "folder") from None
