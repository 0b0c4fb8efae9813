"""Small LeRobot datasets in the layouts lerobot's writers produce (v2.1: 0.3.x, v3.0: 0.4.x).

Every frame is 64x48: a grey background whose level tells the episode
(`episode_of`) and a bright vertical bar whose column tells the frame index
within its episode (`bar_of`), so a test sees which frames came out, in which
order, from which episode.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FPS = 10
SIZE = (64, 48)
TOP, WRIST = "observation.images.top", "observation.images.wrist"
BAR = 5  # columns per frame index


def frame_pixels(episode: int, frame: int) -> np.ndarray:
    pixels = np.full((SIZE[1], SIZE[0], 3), 30 + 50 * episode, np.uint8)
    pixels[:, BAR * frame + 2:BAR * frame + 5] = 255
    return pixels


def bar_of(image: Image.Image) -> int:
    columns = np.asarray(image.convert("L"), dtype=float).mean(axis=0)
    return int(np.argmax(columns)) // BAR


def episode_of(image: Image.Image) -> int:
    level = float(np.asarray(image.convert("L"), dtype=float)[:, -4:].mean())
    return round((level - 30) / 50)


Pixels = Callable[[int, int], np.ndarray]
"""``pixels(episode, frame)``: the RGB frame to write (`frame_pixels` in the tests)."""


def write_mp4(path: Path, frames: Sequence[np.ndarray], codec: str = "libx264", *,
              fps: int = FPS, options: Mapping[str, str] | None = None) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=dict(options or {}))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _features(cameras: dict[str, str], fps: int, size: tuple[int, int]) -> dict[str, Any]:
    features: dict[str, Any] = {
        "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
    }
    for key, dtype in cameras.items():
        features[key] = {"dtype": dtype, "shape": [size[1], size[0], 3],
                         "names": ["height", "width", "channels"]}
        if dtype == "video":
            features[key]["info"] = {"video.height": size[1], "video.width": size[0],
                                     "video.codec": "av1", "video.pix_fmt": "yuv420p",
                                     "video.is_depth_map": False, "video.fps": fps,
                                     "video.channels": 3, "has_audio": False}
    for key in ("timestamp",):
        features[key] = {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return features


Task = str | tuple[str, ...]
"""An episode's task, or its tasks in the order its frames go through them."""


def _tasks_of(task: Task) -> tuple[str, ...]:
    return (task,) if isinstance(task, str) else task


def _all_tasks(episodes: Sequence[tuple[int, Task]]) -> list[str]:
    return sorted({t for _, task in episodes for t in _tasks_of(task)})


def _listed(task: Task) -> list[str]:
    """An episode's ``tasks`` as lerobot writes them: ``list(set(tasks))``, in no particular
    order; reversed here, so a reader that takes the listed order for frame order fails."""
    return list(reversed(_tasks_of(task)))


def _rows(episode: int, length: int, first_index: int, task_index: Sequence[int],
          cameras: dict[str, str], language: Sequence[str] | None, fps: int = FPS,
          pixels: Pixels = frame_pixels) -> dict[str, Any]:
    rows: dict[str, Any] = {
        "action": [[0.1 * k, 0.0] for k in range(length)],
        "observation.state": [[0.1 * k, 1.0] for k in range(length)],
        "timestamp": [k / fps for k in range(length)],
        "frame_index": list(range(length)),
        "episode_index": [episode] * length,
        "index": list(range(first_index, first_index + length)),
        "task_index": [task_index[k * len(task_index) // length] for k in range(length)],
    }
    for key, dtype in cameras.items():
        if dtype == "image":
            cells = []
            for k in range(length):
                out = io.BytesIO()
                Image.fromarray(pixels(episode, k)).save(out, format="PNG")
                cells.append({"bytes": out.getvalue(), "path": f"frame_{k:06d}.png"})
            rows[key] = cells
    if language is not None:
        rows["language_instruction"] = [language[min(k * len(language) // length,
                                                     len(language) - 1)] for k in range(length)]
    return rows


def _table(rows: dict[str, Any]) -> Any:
    import pyarrow as pa

    types = {"action": pa.list_(pa.float32()), "observation.state": pa.list_(pa.float32()),
             "timestamp": pa.float32()}
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table({k: pa.array(v, type=types.get(k, image if isinstance(v[0], dict)
                                                   else None)) for k, v in rows.items()})


def _info(version: str, episodes: Sequence[tuple[int, Task]], cameras: dict[str, str],
          data_path: str, video_path: str | None, fps: int = FPS,
          size: tuple[int, int] = SIZE) -> dict[str, Any]:
    tasks = _all_tasks(episodes)
    info: dict[str, Any] = {
        "codebase_version": version, "robot_type": "so100",
        "total_episodes": len(episodes), "total_frames": sum(n for n, _ in episodes),
        "total_tasks": len(tasks), "chunks_size": 1000, "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": data_path, "video_path": video_path,
        "features": _features(cameras, fps, size),
    }
    if version == "v2.1":
        info.update(total_videos=len(episodes) * len(cameras), total_chunks=1)
    else:
        info.update(data_files_size_in_mb=100, video_files_size_in_mb=500)
    return info


def write_v21(root: Path, episodes: Sequence[tuple[int, Task]], *,
              cameras: dict[str, str] | None = None, codec: str = "libx264",
              language: Sequence[str] | None = None, fps: int = FPS,
              pixels: Pixels = frame_pixels, video_options: Mapping[str, str] | None = None
              ) -> Path:
    """A v2.1 dataset: ``episodes`` are ``(length, task)``; one parquet and mp4 per episode.
    A task given as a tuple of tasks spreads them evenly over the episode's frames.

    `fps`, `pixels` and `video_options` (the encoder's, e.g. ``{"g": "2"}``) default to the
    tests' small frames; the benchmarks pass bigger ones."""
    import pyarrow.parquet as pq

    cameras = cameras or {TOP: "video"}
    tasks = _all_tasks(episodes)
    info = _info("v2.1", episodes, cameras,
                 "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                 "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
                 fps, _size(pixels))
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "tasks.jsonl").write_text("".join(
        json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks)))
    lines, stats, first = [], [], 0
    for e, (length, task) in enumerate(episodes):
        lines.append(json.dumps({"episode_index": e, "tasks": _listed(task),
                                 "length": length}) + "\n")
        stats.append(json.dumps({"episode_index": e, "stats": {}}) + "\n")
        data = root / f"data/chunk-000/episode_{e:06d}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        indices = [tasks.index(t) for t in _tasks_of(task)]
        pq.write_table(_table(_rows(e, length, first, indices, cameras, language,
                                    fps, pixels)), data)
        for key, dtype in cameras.items():
            if dtype == "video":
                write_mp4(root / f"videos/chunk-000/{key}/episode_{e:06d}.mp4",
                          [pixels(e, k) for k in range(length)], codec, fps=fps,
                          options=video_options)
        first += length
    (root / "meta" / "episodes.jsonl").write_text("".join(lines))
    (root / "meta" / "episodes_stats.jsonl").write_text("".join(stats))
    return root


def write_v30(root: Path, episodes: Sequence[tuple[int, Task]], *,
              video_files: Sequence[int] | None = None, codec: str = "libx264",
              cameras: dict[str, str] | None = None, fps: int = FPS,
              pixels: Pixels = frame_pixels,
              video_options: Mapping[str, str] | None = None) -> Path:
    """A v3.0 dataset: all episodes in one data parquet; ``video_files[e]`` is the mp4 file
    index of episode e (default all in file-000), episodes packed one after another."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    cameras = cameras or {TOP: "video"}
    files = list(video_files or [0] * len(episodes))
    tasks = _all_tasks(episodes)
    info = _info("v3.0", episodes, cameras,
                 "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                 "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
                 fps, _size(pixels))
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    pd.DataFrame({"task_index": range(len(tasks))}, index=tasks).to_parquet(
        root / "meta" / "tasks.parquet")
    all_rows: dict[str, list[Any]] = {}
    meta_rows: list[dict[str, Any]] = []
    offsets: dict[int, float] = {}
    video_frames: dict[int, list[np.ndarray]] = {}
    first = 0
    for e, (length, task) in enumerate(episodes):
        indices = [tasks.index(t) for t in _tasks_of(task)]
        for k, v in _rows(e, length, first, indices, cameras, None, fps,
                          pixels).items():
            all_rows.setdefault(k, []).extend(v)
        start = offsets.get(files[e], 0.0)
        row: dict[str, Any] = {
            "episode_index": e, "tasks": _listed(task), "length": length,
            "data/chunk_index": 0, "data/file_index": 0,
            "dataset_from_index": first, "dataset_to_index": first + length,
        }
        for key, dtype in cameras.items():
            if dtype == "video":
                row.update({f"videos/{key}/chunk_index": 0,
                            f"videos/{key}/file_index": files[e],
                            f"videos/{key}/from_timestamp": start,
                            f"videos/{key}/to_timestamp": start + length / fps})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                    "stats/action/mean": [0.0, 0.0]})
        meta_rows.append(row)
        offsets[files[e]] = start + length / fps
        video_frames.setdefault(files[e], []).extend(pixels(e, k) for k in range(length))
        first += length
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(_table(all_rows), root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist(meta_rows),
                   root / "meta/episodes/chunk-000/file-000.parquet")
    for key, dtype in cameras.items():
        if dtype == "video":
            for index, frames in video_frames.items():
                write_mp4(root / f"videos/{key}/chunk-000/file-{index:03d}.mp4", frames, codec,
                          fps=fps, options=video_options)
    return root


def _size(pixels: Pixels) -> tuple[int, int]:
    height, width = pixels(0, 0).shape[:2]
    return width, height
