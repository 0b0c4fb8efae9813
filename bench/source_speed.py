"""Frames per CPU second of the robot and procedure-video sources, beside a bare PyAV decode.

    .venv/bin/python bench/source_speed.py                 # every source, 3 repeats
    .venv/bin/python bench/source_speed.py --only coin epic-kitchens --repeat 1 --no-record

What it does, top to bottom:

1. Writes the inputs into a temporary folder (``--keep DIR`` keeps and reuses them):
   frames that decode like camera footage (a smooth textured background panning
   slowly, two moving blocks, light grain), encoded as each dataset's own
   videos are:

   - ``lerobot v2.1 h264``: 6 episodes of 5 s at 30 fps, 640x480, one mp4 per
     episode, libx264 with lerobot's encoder settings (``g=2``, ``crf=30``);
   - ``lerobot v3.0 av1``: the same episodes packed into one mp4, libsvtav1
     (lerobot's default codec) with ``g=2``, ``crf=30``; left out, and said so,
     when PyAV here has no AV1 encoder;
   - ``coin``: 3 videos of 40 s at 25 fps, 640x360, a keyframe every 2 s
     (YouTube-like), 6 annotated steps each;
   - ``epic-kitchens``: one 120 s video at 30 fps, 640x360, a keyframe every
     second (GoPro-like), 36 narrations, episodes of 6;
   - ``segments``: 2 videos of 30 s at 30 fps, 640x360, libx264's default
     keyframe interval (250 frames), 5 segments each.

   The LeRobot datasets come from the tests' own writer (``tests/sources/lerobot_fixtures.py``).
2. Per source, in one process: the source's episodes (``open_source``, default options
   unless the table says otherwise) with every frame read the way the builder reads
   them (``load_frames``, decoded to RGB images). That is the source's rate.
3. Bare decodes of the same frames (the times the source chose, per video), with
   PyAV and nothing else, two ways: decoding forward from the start to the last
   frame wanted, and seeking to the keyframe before each frame wanted and decoding
   up to it. Each converts the frames wanted to RGB. The faster of the two is the
   reference.
4. Each pass runs ``--repeat`` times, source and bare decodes in turn; the fastest
   run of each counts. Rates are frames kept per CPU second of this process (all
   its threads: PyAV decodes with frame threads), so other load on the machine
   moves them little; wall-clock rates are printed too.
5. A table, and a dated section appended to ``bench/RESULTS.md`` (``--no-record``
   leaves it alone).

The target, a ratio from this one run: each source reads at least 0.7 of the
reference's frames per CPU second.

``rlds`` (measured when ``tpru.sources.rlds`` exists): 8 episodes of 30 steps of
256x256 JPEG images written with the tests' RLDS writer (``tests/sources/rlds_files.py``,
its pictures swapped for the footage above). Its frames are images stored in the
shard's records (`tpru.sources.stored_images`), so its bare reference is PIL decoding
the same JPEG bytes from memory (read out of the shard before the timing), and the
source's pass decodes the bytes ``load_frames`` returns in the same way: the source's
listing and ``load_frames`` reading each record again are what the ratio charges it.
Each source pass gets a fresh ``TPRU_CACHE``, so a source that wrote to it would pay for it.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
import numpy as np
from bench_common import BENCH_DIR, code_version, machine

sys.path.insert(0, str(BENCH_DIR.parent / "tests" / "sources"))
from lerobot_fixtures import write_mp4, write_v21, write_v30
from PIL import Image

from tpru.diagnostics import Skips
from tpru.sources import open_source
from tpru.sources.base import frame_reader_key, load_frames, split_video_ref

TARGET = 0.7
PRECISION = 0.0005  # refs carry milliseconds, as in tpru.sources.video
LEROBOT_OPTIONS = {"g": "2", "crf": "30"}
SECTIONS = ("lerobot v2.1 h264", "lerobot v3.0 av1", "coin", "epic-kitchens", "segments",
            "rlds")


# ---------------------------------------------------------------- footage


class Footage:
    """Frames that compress like camera footage: ``frame(k)`` is frame k (HxWx3 uint8)."""

    def __init__(self, size: tuple[int, int], seed: int) -> None:
        from PIL import Image

        self.width, self.height = size
        rng = np.random.default_rng(seed)
        w, h = self.width + 400, self.height + 200
        texture = np.zeros((h, w, 3), np.float32)
        for cells, amplitude in ((4, 90.0), (12, 40.0), (40, 20.0), (120, 12.0)):
            small = (rng.random((max(2, cells * h // w), cells, 3)) * 255).astype(np.uint8)
            texture += np.asarray(Image.fromarray(small).resize((w, h),
                                                                Image.Resampling.BICUBIC),
                                  np.float32) * (amplitude / 255.0)
        self.texture = np.clip(texture + 40, 0, 255).astype(np.uint8)
        self.grain = rng.integers(-6, 7, (8, self.height, self.width, 3), dtype=np.int16)
        self.colours = rng.integers(0, 256, (2, 3), dtype=np.uint8)

    def frame(self, k: int) -> np.ndarray:
        x, y = (k * 2) % 400, (k // 3) % 200  # a slow pan
        pixels = self.texture[y:y + self.height, x:x + self.width].astype(np.int16)
        pixels += self.grain[k % len(self.grain)]
        for n, colour in enumerate(self.colours):
            bx = int((0.5 + 0.4 * np.sin(k / (20 + 13 * n))) * (self.width - 60))
            by = int((0.5 + 0.4 * np.cos(k / (17 + 11 * n))) * (self.height - 60))
            pixels[by:by + 60, bx:bx + 60] = colour
        return np.clip(pixels, 0, 255).astype(np.uint8)


def write_video(path: Path, seconds: float, fps: int, size: tuple[int, int], seed: int,
                gop: int | None) -> Path:
    footage = Footage(size, seed)
    options = {"preset": "veryfast", **({"g": str(gop)} if gop else {})}
    write_mp4(path, [footage.frame(k) for k in range(int(seconds * fps))], fps=fps,
              options=options)
    return path


def av1_encoder() -> str | None:
    for name in ("libsvtav1", "libaom-av1"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # not built into this PyAV
            continue
    return None


# ---------------------------------------------------------------- the cases


@dataclass
class Case:
    name: str
    spec: str
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _lerobot_pixels(size: tuple[int, int]) -> Callable[[int, int], np.ndarray]:
    footage = Footage(size, seed=1)
    return lambda episode, k: footage.frame(episode * 150 + k)


LEROBOT_EPISODES = [(150, "Pick up the red cube."), (150, "Stack the blue block"),
                    (150, "Open the drawer"), (150, "Put the pen in the drawer"),
                    (150, "Close the drawer"), (150, "Push the cup to the left")]


def write_cases(root: Path, wanted: list[str]) -> list[Case]:
    """Write (or reuse, when a marker says they are there) the inputs of the `wanted` cases."""
    cases: list[Case] = []
    lerobot_note = "6 episodes x 150 frames, 640x480 at 30 fps, g=2 crf=30; fps 2 sampled"
    for name in wanted:
        folder = root / name.replace(" ", "_")
        done = folder / ".written"
        if name == "lerobot v2.1 h264":
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                write_v21(folder, LEROBOT_EPISODES, fps=30, pixels=_lerobot_pixels((640, 480)),
                          video_options=LEROBOT_OPTIONS)
            cases.append(Case(name, f"lerobot:{folder}", {"fps": 2}, lerobot_note))
        elif name == "lerobot v3.0 av1":
            codec = av1_encoder()
            if codec is None:
                print("lerobot v3.0 av1: left out, this PyAV has no AV1 encoder")
                continue
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                write_v30(folder, LEROBOT_EPISODES, fps=30, pixels=_lerobot_pixels((640, 480)),
                          codec=codec, video_options={**LEROBOT_OPTIONS, "preset": "12"}
                          if codec == "libsvtav1" else LEROBOT_OPTIONS)
            cases.append(Case(name, f"lerobot:{folder}", {"fps": 2},
                              lerobot_note.replace("episodes", "episodes in one mp4")
                              + f", {codec}"))
        elif name == "coin":
            if not done.exists():
                _write_coin(folder)
            cases.append(Case(name, f"coin:{folder / 'COIN.json'}", {},
                              "3 videos x 40 s, 640x360 at 25 fps, keyframe every 2 s, "
                              "6 steps each; frame=end"))
        elif name == "epic-kitchens":
            if not done.exists():
                _write_epic(folder)
            cases.append(Case(name, f"epic-kitchens:{folder / 'EPIC_100_train.csv'}", {},
                              "1 video x 120 s, 640x360 at 30 fps, keyframe every 1 s, "
                              "36 narrations, steps=6; frame=end"))
        elif name == "segments":
            if not done.exists():
                _write_segments(folder)
            cases.append(Case(name, f"segments:{folder / 'steps.jsonl'}", {},
                              "2 videos x 30 s, 640x360 at 30 fps, keyframe every 250 "
                              "frames, 5 segments each; frame=end"))
        elif name == "rlds":
            case = _rlds_case(folder)
            if case is not None:
                cases.append(case)
            continue
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()
    return cases


def _write_coin(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    database = {}
    for n in range(3):
        video_id = f"coin{n:02d}"
        write_video(folder / f"{video_id}.mp4", 40, 25, (640, 360), seed=10 + n, gop=50)
        steps = [[2.0 + 6 * i, 6.0 + 6 * i] for i in range(6)]
        database[video_id] = {"class": "ReplaceBatteryOnKeyToCar", "subset": "training",
                              "recipe_type": 11, "annotation": [
                                  {"segment": s, "label": f"step {i}", "id": str(i)}
                                  for i, s in enumerate(steps)]}
    (folder / "COIN.json").write_text(json.dumps({"database": database}))


def _write_epic(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    write_video(folder / "P01/videos/P01_01.MP4", 120, 30, (640, 360), seed=20, gop=30)
    rows = []
    for i in range(36):
        start, stop = 1.0 + 3.2 * i, 3.0 + 3.2 * i
        rows.append({"narration_id": f"P01_01_{i}", "participant_id": "P01",
                     "video_id": "P01_01", "start_timestamp": _hms(start),
                     "stop_timestamp": _hms(stop), "narration": f"action {i}"})
    with (folder / "EPIC_100_train.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _hms(seconds: float) -> str:
    return f"00:{int(seconds // 60):02d}:{seconds % 60:05.2f}"


def _write_segments(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    lines = []
    for n in range(2):
        write_video(folder / f"clip{n}.mp4", 30, 30, (640, 360), seed=30 + n, gop=None)
        lines.append(json.dumps({"video": f"clip{n}.mp4", "description": "making tea",
                                 "segments": [{"start": 1.0 + 5.5 * i, "end": 5.0 + 5.5 * i,
                                               "text": f"step {i}"} for i in range(5)]}))
    (folder / "steps.jsonl").write_text("\n".join(lines) + "\n")


def _rlds_case(folder: Path) -> Case | None:
    """The hook for ``rlds:``: write a small RLDS/TFDS dataset into `folder` here (with the
    tests' own writer for that source) and return its Case. Until then it is left out."""
    if importlib.util.find_spec("tpru.sources.rlds") is None:
        print("rlds: left out, tpru.sources.rlds does not exist")
        return None
    try:
        import rlds_files  # tests/sources, beside lerobot_fixtures
    except ImportError as err:  # its writer needs crc32c (the rlds extra)
        print(f"rlds: left out, its test writer cannot be imported ({err})")
        return None

    done = folder / ".written"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        footage = Footage((256, 256), seed=40)
        rlds_files.frame_pixels = lambda episode, k: footage.frame(episode * 30 + k)
        rlds_files.write_rlds(folder, {"train": [rlds_files.Ep(n, 30, "pick up the cube")
                                                  for n in range(8)]}, encoding="jpeg")
        done.touch()
    return Case("rlds", f"rlds:{folder}", {}, "8 episodes x 30 steps, 256x256 JPEG, "
                "one shard; every step (mode=steps)")


# ---------------------------------------------------------------- the passes


@dataclass
class Timing:
    frames: int
    cpu_s: float
    wall_s: float

    @property
    def per_cpu_s(self) -> float:
        return self.frames / max(self.cpu_s, 1e-9)

    @property
    def per_s(self) -> float:
        return self.frames / max(self.wall_s, 1e-9)


def timed(run: Callable[[], int]) -> Timing:
    cpu, wall = time.process_time(), time.perf_counter()
    frames = run()
    return Timing(frames, time.process_time() - cpu, time.perf_counter() - wall)


def read_source(case: Case) -> int:
    """The source's episodes, every frame read as the builder reads it; frames read."""
    skips = Skips()
    kind = case.spec.partition(":")[0]
    source = open_source(case.spec, skips=skips, options={kind: case.options})
    frames = 0
    for episode in source.iter_episodes():
        for loaded in load_frames(episode.frames):
            if loaded.data is not None:  # an image file: the builder decodes it later
                decode_image(loaded.data)
            elif loaded.image is None:
                raise SystemExit(f"{case.name}: {loaded.message}")
            frames += 1
    if skips.counts:
        raise SystemExit(f"{case.name}: skips {dict(skips.counts)}")
    return frames


def decode_image(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB")


def chosen_frames(case: Case) -> tuple[dict[str, list[float]], list[bytes]]:
    """The frames the source chose: per video the sorted times, and the encoded bytes of
    images (files, or images stored inside the dataset's files)."""
    kind = case.spec.partition(":")[0]
    source = open_source(case.spec, skips=Skips(), options={kind: case.options})
    times: dict[str, list[float]] = {}
    images: list[bytes] = []
    for episode in source.iter_episodes():
        stored = []
        for ref in episode.frames:
            where = split_video_ref(ref) if frame_reader_key(ref)[1] == "t" else None
            if where is None:
                stored.append(ref)
            else:
                times.setdefault(where[0], []).append(where[1])
        for loaded in load_frames(stored):
            if loaded.data is None:
                raise SystemExit(f"{case.name}: {loaded.message}")
            images.append(loaded.data)
    return {path: sorted(ts) for path, ts in times.items()}, images


def decode_images(images: list[bytes]) -> int:
    """Bare PIL: decode each image's bytes to RGB."""
    for data in images:
        decode_image(data)
    return len(images)


def decode_forward(videos: dict[str, list[float]]) -> int:
    """Bare PyAV: decode each video from its start to the last time wanted."""
    frames = 0
    for path, times in videos.items():
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            i = 0
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    continue
                while i < len(times) and t >= times[i] - PRECISION:
                    frame.to_ndarray(format="rgb24")
                    i, frames = i + 1, frames + 1
                if i == len(times):
                    break
    return frames


def decode_seeking(videos: dict[str, list[float]]) -> int:
    """Bare PyAV: for each time wanted, seek to the keyframe before it and decode up to it."""
    frames = 0
    for path, times in videos.items():
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            assert stream.time_base is not None
            for t_wanted in times:
                container.seek(int(t_wanted / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time is not None and frame.time >= t_wanted - PRECISION:
                        frame.to_ndarray(format="rgb24")
                        frames += 1
                        break
    return frames


@dataclass
class Result:
    case: Case
    source: Timing
    bare: dict[str, Timing]  # "forward", "seek" (videos) or "PIL" (image files)

    @property
    def reference(self) -> tuple[str, Timing]:
        return max(self.bare.items(), key=lambda item: item[1].per_cpu_s)

    @property
    def ratio(self) -> float:
        return self.source.per_cpu_s / self.reference[1].per_cpu_s


def measure(case: Case, repeat: int, scratch: Path) -> Result:
    os.environ["TPRU_CACHE"] = str(scratch / "cache-chosen")  # never the user's cache
    videos, images = chosen_frames(case)
    if videos and images:
        raise SystemExit(f"{case.name}: both video and image frames; measure them apart")
    passes: list[tuple[str, Callable[[], int]]] = [("source", lambda: read_source(case))]
    passes += [("PIL", lambda: decode_images(images))] if images else [
        ("forward", lambda: decode_forward(videos)), ("seek", lambda: decode_seeking(videos))]
    best: dict[str, Timing] = {}
    for n in range(repeat):
        for name, run in passes:
            cache = scratch / f"cache-{case.name}-{n}".replace(" ", "_")
            shutil.rmtree(cache, ignore_errors=True)  # fresh, also when --keep reuses a folder
            os.environ["TPRU_CACHE"] = str(cache)
            timing = timed(run)
            if name in best and timing.frames != best[name].frames:
                raise SystemExit(f"{case.name}: {name} read {timing.frames} frames, "
                                 f"then {best[name].frames}")
            if name not in best or timing.cpu_s < best[name].cpu_s:
                best[name] = timing
    counts = {name: t.frames for name, t in best.items()}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"{case.name}: the passes read different frame counts {counts}")
    return Result(case, best.pop("source"), best)


# ---------------------------------------------------------------- the report


def table(results: list[Result]) -> str:
    lines = ["| source | frames | source fr/CPU-s | bare fr/CPU-s | "
             "source / best bare | target 0.7 | source fr/s (wall) |",
             "|---|---:|---:|---|---:|---|---:|"]
    for r in results:
        bare = ", ".join(f"{name} {t.per_cpu_s:.0f}" for name, t in r.bare.items())
        lines.append(
            f"| {r.case.name} | {r.source.frames} | {r.source.per_cpu_s:.0f} | {bare} | "
            f"{r.source.per_cpu_s:.0f} / {r.reference[1].per_cpu_s:.0f} "
            f"({r.reference[0]}) = {r.ratio:.2f} | {'met' if r.ratio >= TARGET else 'NOT met'} "
            f"| {r.source.per_s:.0f} |")
    return "\n".join(lines)


def record(path: Path, results: list[Result], command: str, repeat: int) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    inputs = "\n".join(f"  - {r.case.name}: {r.case.note}" for r in results)
    text = (f"\n## {stamp}: source read rates (bench/source_speed.py)\n\n"
            f"- machine: {machine(f'PyAV {av.__version__}')}\n"
            f"- command: `{command}`\n- code: {code_version()}\n"
            f"- one process; the fastest of {repeat} runs of each pass; rates are frames "
            "per CPU second of the process (all its threads)\n- inputs:\n"
            f"{inputs}\n\n{table(results)}\n\n"
            "Source: the source's episodes with every frame read as the builder reads it "
            "(`load_frames`, to RGB). Forward: bare PyAV decoding each video from its start "
            "to the last frame wanted. Seek: bare PyAV seeking to the keyframe before each "
            "frame wanted. Both bare passes convert the frames wanted to RGB; the better "
            "of the two is the reference. PIL (image files): decoding the same encoded "
            "images from memory; the source pass decodes the bytes it reads the same way.\n")
    with path.open("a") as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="the sources to measure (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pass (the "
                        "fastest counts)")
    parser.add_argument("--keep", type=Path, help="write the inputs here and reuse them")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    command = "python bench/source_speed.py " + shlex.join(argv if argv is not None
                                                            else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="tpru-source-speed-") as scratch:
        root = args.keep or Path(scratch)
        started = time.perf_counter()
        cases = write_cases(root, args.only)
        print(f"inputs ready in {time.perf_counter() - started:.0f} s ({root})")
        results = []
        for case in cases:
            print(f"measuring {case.name} ...", flush=True)
            results.append(measure(case, args.repeat, root))
    print(table(results))
    if not args.no_record:
        record(args.results, results, command.strip(), args.repeat)
        print(f"appended to {args.results}")
    return 0 if all(r.ratio >= TARGET for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
