"""Small copies of the real datasets' on-disk layouts, written by the tests.

Each writer lays out files the way the published dataset does (ShareRobot's
planning JSON, GUI Odyssey's data/ folder, VLN-CE's gzipped records with
frames rendered beside them, a stop-motion LEGO video) with real image and
video files, plus the bad inputs each adapter must count. The returned
`Expected` lists what an adapter should make of it.

Frames are sharp blocky textures, one per episode, with a white square that
moves each step, so that they pass the builder's blur, duplicate and static
checks; the LEGO video shows a studded baseplate on which a brick appears at
each step, with a hand passing between steps.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tpru.schema import Episode

SIZE = (96, 72)


def frame_image(seed: int, step: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """Frame `step` of the episode drawn from `seed`: a texture with a square that moves."""
    width, height = size
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize((blocks.shape[1] * 8, blocks.shape[0] * 8),
                                           Image.Resampling.NEAREST).crop((0, 0, width, height))
    side = min(width, height) // 3
    x = (step * width // 7) % (width - side)
    image.paste((255, 255, 255), (x, height // 4, x + side, height // 4 + side))
    return image


def write_frame(path: Path, seed: int, step: int, size: tuple[int, int] = SIZE) -> Path:
    """A real JPEG or PNG (by suffix) of `frame_image(seed, step)`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    frame_image(seed, step, size).save(buffer, "PNG" if path.suffix == ".png" else "JPEG",
                                       quality=92)
    path.write_bytes(buffer.getvalue())
    return path


@dataclass
class Expected:
    """What an adapter should read from a fixture."""

    ids: list[str]
    frames: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, str | None] = field(default_factory=dict)
    steps: dict[str, list[str] | None] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)


def check(episodes: list[Episode], expected: Expected, scenario: str, source: str) -> None:
    """The episodes match what the fixture wrote, field by field."""
    assert [e.id for e in episodes] == expected.ids
    for episode in episodes:
        assert (episode.scenario, episode.source) == (scenario, source)
        assert list(episode.frames) == expected.frames[episode.id], episode.id
        assert episode.description == expected.descriptions[episode.id], episode.id
        steps = None if episode.steps is None else list(episode.steps)
        assert steps == expected.steps[episode.id], episode.id
        for key, value in expected.meta[episode.id].items():
            assert episode.meta.get(key) == value, (episode.id, key)
        # Records survive their JSON form (what the builder writes and reads back).
        assert Episode.from_dict(json.loads(json.dumps(episode.to_dict()))) == episode


# ---------------------------------------------------------------- ShareRobot

SHAREROBOT_GOALS = ("pick up the banana and place it in the mug", "open the top drawer",
                    "Stack the red cup on the blue cup", "wipe the table with the sponge")
CLUSTER = "/mnt/hpfs/baaiei/jyShi/rt_frames_success/rtx_frames_success_42"
"""Where the published ids and image paths point: the authors' machines."""


def write_sharerobot(root: Path, *, frames: int = 6, bad: bool = True) -> Expected:
    """Four planning episodes over three question-type files, plus bad entries.

    Episodes 0 and 2 use the published absolute paths (re-rooted under
    `root`), the others paths relative to `root`. Episode 1's answer is a
    numbered plan with one step per frame, so it gets per-frame steps.
    """
    names = ["62_robo_set#episode_1570", "7_bridge#episode_12", "62_robo_set#episode_3",
             "fmb#episode_40"]
    sources = ["robo_set", "bridge", "robo_set", "fmb"]
    # The frame folder stays in the id: episode numbers repeat across those folders.
    keys = [f"rtx_frames_success_42/{name}" for name in names]
    expected = Expected(ids=list(keys))
    planning: list[Any] = []
    context: list[Any] = []
    future: list[str] = []
    for e, (name, key) in enumerate(zip(names, keys, strict=True)):
        folder = f"rtx_frames_success_42/{name}" if e % 2 == 0 else f"frames/{name}"
        paths = [write_frame(root / folder / f"{i}.jpg", 100 + e, i) for i in range(frames)]
        refs = [f"{CLUSTER}/{name}/{i}.jpg" if e % 2 == 0 else f"{folder}/{i}.jpg"
                for i in range(frames)]
        # Listed out of order: the frames come out in natural order of their paths.
        refs_shuffled = refs[::-1]
        goal = SHAREROBOT_GOALS[e]
        entry_id = f"{CLUSTER}/{name}"
        steps = [f"step {k} of {goal}" for k in range(1, frames + 1)]
        planning.append({
            "id": entry_id, "task": "Planning_Task", "selected_step": 0,
            "conversations": [
                {"from": "human", "value": f"<image 0-{frames - 1}> The objective is <{goal}>, "
                                           "what should be the next step to move forward?"},
                {"from": "gpt", "value": ("\n".join(f"{k}. {s}." for k, s in
                                                    enumerate(steps, start=1))
                                          if e == 1 else f"<{steps[0]}>")}],
            "image": refs_shuffled})
        context.append({
            "id": entry_id, "task": "Planning_with_Context_Task", "selected_step": 2,
            "conversations": [
                {"from": "human", "value": f"<image 0-{frames - 1}> So far, you've completed "
                                           f"these steps: 1-<{steps[0]}>, 2-<{steps[1]}>. What's "
                                           f"the next move to achieve the goal of <{goal}>?"},
                {"from": "gpt", "value": f"<{steps[2]}>"}],
            "image": refs[:3]})
        future.append(json.dumps({
            "id": entry_id, "task": "Future_Prediction_Task", "selected_step": 3,
            "conversations": [
                {"from": "human", "value": f"<image 0-3> After <{steps[2]}>, what's the most "
                                           "probable next event?"},
                {"from": "gpt", "value": f"<{steps[3]}>"}],
            "image": refs[:4]}))
        expected.frames[key] = [str(p.resolve()) for p in paths]
        expected.descriptions[key] = {
            0: "picking up the banana and placing it in the mug", 1: "opening the top drawer",
            2: "stacking the red cup on the blue cup", 3: "wiping the table with the sponge"}[e]
        expected.steps[key] = steps if e == 1 else None
        expected.meta[key] = {"source_dataset": sources[e],
                              "frames_folder": "rtx_frames_success_42",
                              "selected_steps": [0, 2, 3],
                              "question_types": ["Future_Prediction_Task", "Planning_Task",
                                                 "Planning_with_Context_Task"],
                              "plan": steps if e == 1 else steps[:3]}
    if bad:
        planning.append({"id": f"{CLUSTER}/9_viola#episode_1", "task": "Planning_Task",
                         "image": 5, "conversations": []})                        # bad_field
        planning.append("not an entry")                                           # bad_field
        planning.append({"id": f"{CLUSTER}/9_viola#episode_2", "task": "Planning_Task",
                         "image": ["frames/nowhere/0.jpg"], "conversations": []})  # missing_file
        future.append('{"id": "broken", ')                                        # invalid_json
        (root / "annotations" / "broken_task.json").parent.mkdir(parents=True, exist_ok=True)
        (root / "annotations" / "broken_task.json").write_text("[{", encoding="utf-8")
        expected.skips = {"bad_field": 2, "missing_file": 1, "invalid_json": 2}
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    (annotations / "planning_task_generated_templates.json").write_text(
        json.dumps(planning, indent=1), encoding="utf-8")
    (annotations / "planning_with_context_task_generated_templates.json").write_text(
        json.dumps(context), encoding="utf-8")
    (annotations / "future_prediction_task_generated_templates.jsonl").write_text(
        "\n".join(future) + "\n", encoding="utf-8")
    return expected


HUB_FILES = {"planning_task_generated_templates.json": "planning_task.json",
             "planning_with_context_task_generated_templates.json":
                 "planning_with_context_task.json",
             "future_prediction_task_generated_templates.jsonl": "future_prediction_task.json"}


def write_sharerobot_hub(root: Path) -> tuple[Expected, int]:
    """`write_sharerobot`'s episodes as the hub lays out planning annotations.

    ``root/planning/{train,test,jsons}/<question type>.json``: episodes 0 and 1
    in train, 2 and 3 in test, and ``jsons/`` holding train and test again.
    The frames are under ``root/frames_root`` (the ``image_root``). Returns
    what an adapter should read, and how many entries ``jsons/`` repeats.
    """
    images = root / "frames_root"
    expected = write_sharerobot(images, bad=False)
    train_ids = tuple(expected.ids[:2])
    repeated = 0
    for name, hub_name in HUB_FILES.items():
        text = (images / "annotations" / name).read_text(encoding="utf-8")
        entries = ([json.loads(line) for line in text.splitlines() if line.strip()]
                   if name.endswith(".jsonl") else json.loads(text))
        train = [e for e in entries if e["id"].endswith(train_ids)]
        test = [e for e in entries if e not in train]
        for side, listed in (("train", train), ("test", test), ("jsons", train + test)):
            _write_json(root / "planning" / side / hub_name, listed)
        repeated += len(entries)
    return expected, repeated


# ---------------------------------------------------------------- GUI Odyssey

GUI_STEPS: tuple[tuple[str, Any], ...] = (
    ("CLICK", [[512, 300]]), ("SCROLL", [[500, 800], [500, 200]]), ("TEXT", "hello"),
    ("CLICK", "KEY_BACK"), ("LONG_PRESS", [[120.5, 640]]), ("COMPLETE", ""))
GUI_TEXTS = ("CLICK at (512, 300)", "SCROLL UP from (500, 800) to (500, 200)", "TYPE 'hello'",
             "PRESS_BACK", "LONG_PRESS at (120.5, 640)", "COMPLETE")


def write_gui_odyssey(root: Path, *, episodes: int = 4, bad: bool = True) -> Expected:
    """A GUI Odyssey ``data/`` folder under `root`: annotations, screenshots and splits.

    Episode 1 carries per-step low-level instructions and ``sam2_bbox``;
    episode 2's screenshots sit in a subfolder (the layout before
    preprocessing.py).
    """
    data = root / "data"
    ids = [f"81434714865150{e:02d}" for e in range(episodes)]
    expected = Expected(ids=list(ids))
    for e, episode_id in enumerate(ids):
        folder = data / "screenshots" / ("part_2" if e == 2 else "")
        shots = [write_frame(folder / f"{episode_id}_{k}.png", 300 + e, k, size=(72, 128))
                 for k in range(len(GUI_STEPS))]
        steps = [{"step": k, "screenshot": shot.name, "action": action, "info": info, "ps": ""}
                 for k, (shot, (action, info)) in enumerate(zip(shots, GUI_STEPS, strict=True))]
        if e == 1:  # a newer release's step fields
            for k, step in enumerate(steps):
                step["low_level_instruction"] = f"Do step {k} on the screen"
                step["sam2_bbox"] = [10 * k, 20, 10 * k + 50, 80]
        steps = steps[1:] + steps[:1]  # stored out of order: read back by step number
        annotation = {
            "episode_id": episode_id,
            "device_info": {"product": "sdk_gphone64", "release_version": "14",
                            "sdk_version": "34", "h": 2400, "w": 1080,
                            "device_name": "Pixel 7 Pro"},
            "task_info": {"category": "Multi_Apps", "app": ["DuckDuckGo", "TickTick"],
                          "meta_task": "Search for the next {} and set a reminder.",
                          "task": f"Search for event {e} and set a reminder.",
                          "instruction": f"Utilize DuckDuckGo to find event {e} and then use "
                                         "TickTick to set a reminder."},
            "step_length": len(GUI_STEPS),
            "steps": steps,
        }
        _write_json(data / "annotations" / f"{episode_id}.json", annotation)
        expected.frames[episode_id] = [str(p.resolve()) for p in shots]
        expected.descriptions[episode_id] = (f"utilizing DuckDuckGo to find event {e} and then "
                                             "using TickTick to set a reminder")
        expected.steps[episode_id] = ([f"Do step {k} on the screen" for k in range(len(shots))]
                                      if e == 1 else list(GUI_TEXTS))
        expected.meta[episode_id] = {
            "device": "Pixel 7 Pro", "app": ["DuckDuckGo", "TickTick"], "category": "Multi_Apps",
            "splits": {"random_split": "train" if e % 2 == 0 else "test",
                       "task_split": "test" if e == 0 else "train"}}
    train = [i for e, i in enumerate(ids) if e % 2 == 0]
    test = [f"{i}.json" for e, i in enumerate(ids) if e % 2 == 1]  # file names work too
    if bad:
        bad_ids = ["9000000000000001", "9000000000000002", "9000000000000003"]
        (data / "annotations" / f"{bad_ids[0]}.json").write_text("{not json", encoding="utf-8")
        _write_json(data / "annotations" / f"{bad_ids[1]}.json",
                    {"episode_id": bad_ids[1], "steps": "CLICK"})
        _write_json(data / "annotations" / f"{bad_ids[2]}.json",
                    {"episode_id": bad_ids[2], "task_info": {"instruction": "Open the app"},
                     "steps": [{"step": 0, "screenshot": "gone.png", "action": "CLICK",
                                "info": [[1, 2]]}]})
        train += [*bad_ids, "9999999999999999"]  # the last has no annotation at all
        expected.skips = {"invalid_json": 1, "bad_field": 1, "missing_file": 1}
    _write_json(data / "splits" / "random_split.json", {"train": train, "test": test})
    _write_json(data / "splits" / "task_split.json", {"train": ids[1:], "test": ids[:1]})
    return expected


# ---------------------------------------------------------------- Habitat / VLN-CE

NAV_INSTRUCTIONS = ("Walk past the sofa and stop at the kitchen door.",
                    "Go up the stairs and wait by the painting.",
                    "Turn left at the hallway and enter the bedroom.",
                    "Exit the bathroom and stop next to the plant.")


def write_habitat(root: Path, *, frames: int = 6, bad: bool = True) -> Expected:
    """VLN-CE records: an R2R-style ``val_seen`` split (frames in ``frames/<id>/``) and an
    RxR-style ``val_unseen_guide`` file (frames in ``rgb/<stem>/<id>/``), with the
    release's ``embeddings.json.gz`` (a list of lists, not episodes) at the root."""
    expected = Expected(ids=[])
    write_gzip_json(root / "embeddings.json.gz", [[0.25, -0.5, 0.125]] * 4)
    layouts = (("val_seen", "val_seen", [11, 12, 13]), ("val_unseen", "val_unseen_guide", [4]))
    n = 0
    for split, stem, episode_ids in layouts:
        records: list[Any] = []
        truth: dict[str, Any] = {}
        for episode_id in episode_ids:
            text = NAV_INSTRUCTIONS[n]
            instruction: dict[str, Any] = {"instruction_text": text,
                                           "instruction_tokens": [1, 2, 3]}
            if stem.endswith("guide"):
                instruction.update(instruction_id=f"{episode_id}", language="en-US")
            records.append({"episode_id": episode_id, "trajectory_id": 1000 + episode_id,
                            "scene_id": "mp3d/2azQ1b91cZZ/2azQ1b91cZZ.glb",
                            "start_position": [0.0, 0.1, 0.2],
                            "start_rotation": [0.0, 0.0, 0.0, 1.0], "instruction": instruction,
                            "reference_path": [[0.0, 0.1, 0.2], [1.0, 0.1, 0.2]],
                            "goals": [{"position": [1.0, 0.1, 0.2], "radius": 3.0}]})
            # Episode 12 has one action more than frames: no per-frame steps then.
            actions = [1, 1, 2, 1, 3, 0] if episode_id != 12 else [1, 1, 2, 1, 3, 1, 0]
            truth[str(episode_id)] = {"actions": actions,
                                      "locations": [[0.0, 0.1, 0.2]] * len(actions),
                                      "forward_steps": 3}
            folder = (root / split / "frames" / str(episode_id) if split == "val_seen"
                      else root / split / "rgb" / stem / str(episode_id))
            paths = [write_frame(folder / f"{i:03d}.jpg", 500 + n, i) for i in range(frames)]
            key = f"{stem}/{episode_id}"
            expected.ids.append(key)
            expected.frames[key] = [str(p) for p in paths]
            expected.descriptions[key] = {
                0: "walking past the sofa and stopping at the kitchen door",
                1: "going up the stairs and waiting by the painting",
                2: "turning left at the hallway and entering the bedroom",
                3: "exiting the bathroom and stopping next to the plant"}[n]
            names = ["move forward", "move forward", "turn left", "move forward", "turn right",
                     "stop"]
            expected.steps[key] = names if episode_id != 12 else None
            expected.meta[key] = {"split": stem, "trajectory_id": str(1000 + episode_id),
                                  "scene_id": "mp3d/2azQ1b91cZZ/2azQ1b91cZZ.glb"}
            n += 1
        if bad and split == "val_seen":
            records.append({"episode_id": 99, "instruction": {"instruction_text": "Go."}})
            records.append({"episode_id": [1], "instruction": "Go."})  # bad_field
            records.append({"episode_id": 98, "instruction": 5})       # bad_field
        write_gzip_json(root / split / f"{stem}.json.gz",
                         {"episodes": records, "instruction_vocab": {"word_list": []}})
        write_gzip_json(root / split / f"{stem}_gt.json.gz", truth)
    if bad:
        (root / "train").mkdir(parents=True, exist_ok=True)
        (root / "train" / "train.json.gz").write_bytes(b"plain text, not gzip")
        expected.skips = {"frames_not_rendered": 1, "bad_field": 2, "invalid_json": 1}
    return expected


# ---------------------------------------------------------------- LEGO stop-motion video

BRICK_COLOURS = ((200, 30, 30), (30, 90, 200), (240, 200, 20), (30, 160, 60), (240, 240, 240),
                 (120, 40, 160))
HAND = (225, 170, 140)


def lego_picture(bricks: int, hand_x: int | None = None, *, plate: int = 0,
                 size: tuple[int, int] = (128, 96)) -> np.ndarray:
    """A studded baseplate (colour number `plate`) with `bricks` bricks on it, and a
    hand at `hand_x` if given."""
    width, height = size
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = ((70, 120, 70), (90, 90, 130), (130, 100, 70), (60, 60, 60))[plate % 4]
    pixels[4::8, 4::8] = (140, 200, 140)  # studs: a sharp texture
    pixels[5::8, 4::8] = (30, 60, 30)
    for b in range(bricks):
        x, y = 8 + (b % 3) * 40, 16 + (b // 3) * 36
        pixels[y:y + 24, x:x + 32] = BRICK_COLOURS[b % len(BRICK_COLOURS)]
        pixels[y:y + 24:6, x:x + 32] = 0  # brick edges
    if hand_x is not None:
        pixels[0:60, max(0, hand_x):hand_x + 30] = HAND
    return pixels


def write_lego_video(path: Path, *, bricks: int = 4, still: int = 12, move: int = 4,
                     fps: int = 10, empty_pass_after: int | None = None,
                     plate: int = 0) -> list[float]:
    """A stop-motion H.264 video: the baseplate, then one brick per step.

    Each state is held still for `still` frames; between states a hand
    crosses the picture for `move` frames and leaves the new brick. With
    `empty_pass_after`, the hand also crosses once after that state without
    changing anything. Returns the times (seconds) at which each state's
    still period starts: the steps an adapter should find.
    """
    import av

    pictures: list[np.ndarray] = []
    starts: list[float] = []
    for state in range(bricks + 1):
        if state:
            for k in range(move):
                pictures.append(lego_picture(state if k == move - 1 else state - 1,
                                             hand_x=10 + k * 28, plate=plate))
        starts.append(len(pictures) / fps)
        pictures.extend(lego_picture(state, plate=plate) for _ in range(still))
        if empty_pass_after == state:
            pictures.extend(lego_picture(state, hand_x=10 + k * 28, plate=plate)
                            for k in range(move))
            pictures.extend(lego_picture(state, plate=plate) for _ in range(still))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "16"})
        stream.width, stream.height = pictures[0].shape[1], pictures[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for pixels in pictures:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return starts


def bricks_in(image: Image.Image) -> int:
    """How many bricks a decoded LEGO picture shows (by their colours at known places)."""
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    count = 0
    for b in range(len(BRICK_COLOURS)):
        x, y = 8 + (b % 3) * 40, 16 + (b // 3) * 36
        if y + 24 > pixels.shape[0]:
            break
        patch = pixels[y + 8:y + 11, x + 10:x + 20].reshape(-1, 3).mean(axis=0)
        if np.abs(patch - np.array(BRICK_COLOURS[b])).sum() < 60:
            count += 1
    return count


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def write_gzip_json(path: Path, data: Any) -> None:
    """`data` as gzip-compressed JSON, as VLN-CE ships its records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(data, handle)

