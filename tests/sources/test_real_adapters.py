"""The real-dataset adapters on small copies of each dataset's published layout.

Each fixture (`real_fixtures`) writes real image files, gzip JSON and H.264
video in the dataset's own layout, with bad entries mixed in; each test reads
it through the adapter and compares ids, frame order, text and meta with what
the fixture says it wrote, and the counted skips. The last tests build a
dataset from each adapter through `tpru.builder.pipeline.build`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from real_fixtures import (
    bricks_in,
    check,
    write_gui_odyssey,
    write_habitat,
    write_lego_video,
    write_sharerobot,
)

import tpru.sources
from tpru.diagnostics import InputError, Skips
from tpru.schema import Sample, read_jsonl
from tpru.sources.base import load_frames
from tpru.sources.gui_odyssey import GUIOdysseySource, action_text
from tpru.sources.habitat import HabitatSource, action_name
from tpru.sources.lego_video import LegoVideoSource, settled_steps
from tpru.sources.sharerobot import ShareRobotSource
from tpru.sources.sharerobot_plans import goal_of, numbered_items, plan_of
from tpru.sources.text import process_phrase

ADAPTERS = {
    "sharerobot": "tpru.sources.sharerobot:ShareRobotSource",
    "gui-odyssey": "tpru.sources.gui_odyssey:GUIOdysseySource",
    "habitat": "tpru.sources.habitat:HabitatSource",
    "lego-video": "tpru.sources.lego_video:LegoVideoSource",
}


# ---------------------------------------------------------------- ShareRobot


def test_sharerobot_groups_entries_into_episodes_across_question_files(
        tmp_path: Path, skips: Skips) -> None:
    expected = write_sharerobot(tmp_path)
    episodes = list(ShareRobotSource(tmp_path, skips=skips).iter_episodes())
    check(episodes, expected, "robot", "sharerobot")
    assert dict(skips.counts) == expected.skips
    missing = skips.examples["missing_file"][0]
    assert "9_viola#episode_2" in missing and "frames/nowhere/0.jpg" in missing
    assert "planning_task_generated_templates.json, entry" in skips.examples["bad_field"][0]
    assert any("line 5" in m for m in skips.examples["invalid_json"])


def test_sharerobot_reads_one_file_with_an_image_root(tmp_path: Path, skips: Skips) -> None:
    expected = write_sharerobot(tmp_path)
    planning = tmp_path / "annotations" / "planning_task_generated_templates.json"
    episodes = list(ShareRobotSource(planning, skips=skips, image_root=tmp_path).iter_episodes())
    assert [e.id for e in episodes] == expected.ids
    # Only the planning file: its single answers give no plan except episode 1's.
    assert [len(e.meta.get("plan", [])) for e in episodes] == [0, 6, 0, 0]
    assert episodes[0].meta["selected_steps"] == [0]
    assert dict(skips.counts) == {"bad_field": 2, "missing_file": 1}
    # Without image_root the frames are looked for beside the file, and are not there.
    skips = Skips()
    assert list(ShareRobotSource(planning, skips=skips).iter_episodes()) == []
    assert skips.counts["missing_file"] == 5


def test_sharerobot_refuses_frames_outside_the_image_root(tmp_path: Path, skips: Skips) -> None:
    write_sharerobot(tmp_path / "outside", bad=False)
    root = tmp_path / "root"
    root.mkdir()
    entry = {"id": "x/1_viola#episode_9", "task": "Planning_Task",
             "image": ["../outside/frames/7_bridge#episode_12/0.jpg"], "conversations": []}
    (root / "plan.jsonl").write_text(json.dumps(entry) + "\n")
    assert list(ShareRobotSource(root, skips=skips).iter_episodes()) == []
    assert skips.counts["missing_file"] == 1


def test_sharerobot_bad_paths_raise(tmp_path: Path, skips: Skips) -> None:
    with pytest.raises(InputError, match="no such ShareRobot"):
        ShareRobotSource(tmp_path / "absent.json", skips=skips)
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(InputError, match="image_root"):
        ShareRobotSource(tmp_path / "a.json", skips=skips, image_root=tmp_path / "none")


def test_sharerobot_text_parsing() -> None:
    assert numbered_items("1. Grasp the cup.\n2. Lift it.\nThat is all.") == (
        1, ["Grasp the cup", "Lift it"])
    assert numbered_items("keep 1.5 m away, then 2-3 steps") == (0, [])
    question = ("<image 0-25> Having done 1-<grasp the cup>, 2-<lift it>, what are the next "
                "2 steps toward <serving tea>?")
    assert goal_of(question) == "serving tea"
    assert plan_of("Planning_Remaining_Steps_Task", question, "3-<pour> 4-<serve>") == [
        "grasp the cup", "lift it", "pour", "serve"]
    assert plan_of("Planning_with_Context_Task", question, "<pour the tea>") == [
        "grasp the cup", "lift it", "pour the tea"]
    assert plan_of("Future_Prediction_Task", "After <pour>, what next?", "<serve>") == []
    assert process_phrase("Put the cup on the tray.") == "putting the cup on the tray"
    assert process_phrase("LEGO car on the table") == "LEGO car on the table"


# ---------------------------------------------------------------- GUI Odyssey


def test_gui_odyssey_reads_annotations_screenshots_and_splits(tmp_path: Path,
                                                              skips: Skips) -> None:
    expected = write_gui_odyssey(tmp_path)
    for path in (tmp_path, tmp_path / "data"):  # the repo folder or its data/ folder
        skips = Skips()
        episodes = list(GUIOdysseySource(path, skips=skips).iter_episodes())
        check(episodes, expected, "gui", "gui-odyssey")
        assert dict(skips.counts) == expected.skips
    assert "gone.png" in skips.examples["missing_file"][0]
    low_level = episodes[1]
    assert low_level.meta["actions"] == [
        "CLICK at (512, 300)", "SCROLL UP from (500, 800) to (500, 200)", "TYPE 'hello'",
        "PRESS_BACK", "LONG_PRESS at (120.5, 640)", "COMPLETE"]
    assert "actions" not in episodes[0].meta


def test_gui_odyssey_keeps_one_side_of_a_split(tmp_path: Path) -> None:
    expected = write_gui_odyssey(tmp_path)
    skips = Skips()
    train = list(GUIOdysseySource(tmp_path, skips=skips, split_file="random_split.json",
                                  split="train").iter_episodes())
    assert [e.id for e in train] == expected.ids[0::2]
    # The bad annotations are on the train side, and one listed episode has no file.
    assert dict(skips.counts) == {"invalid_json": 1, "bad_field": 1, "missing_file": 2}
    assert any("9999999999999999" in m for m in skips.examples["missing_file"])
    skips = Skips()
    test = list(GUIOdysseySource(tmp_path / "data", skips=skips, split_file="random",
                                 split="test").iter_episodes())
    assert [e.id for e in test] == expected.ids[1::2]
    assert not skips.counts


def test_gui_odyssey_bad_options_and_folders_raise(tmp_path: Path, skips: Skips) -> None:
    write_gui_odyssey(tmp_path, episodes=1, bad=False)
    with pytest.raises(InputError, match="no such GUI Odyssey"):
        GUIOdysseySource(tmp_path / "absent", skips=skips)
    with pytest.raises(InputError, match="annotations"):
        GUIOdysseySource(tmp_path / "data" / "splits", skips=skips)
    with pytest.raises(InputError, match="both split_file and split"):
        GUIOdysseySource(tmp_path, skips=skips, split="train")
    with pytest.raises(InputError, match="random_split.json: no split 'dev'"):
        GUIOdysseySource(tmp_path, skips=skips, split_file="random_split", split="dev")
    with pytest.raises(InputError, match="no such split file"):
        GUIOdysseySource(tmp_path, skips=skips, split_file="app_split", split="train")


def test_gui_odyssey_missing_screenshot_folder_skips_each_episode(tmp_path: Path,
                                                                  skips: Skips) -> None:
    write_gui_odyssey(tmp_path, episodes=2, bad=False)
    shutil.rmtree(tmp_path / "data" / "screenshots")
    assert list(GUIOdysseySource(tmp_path, skips=skips).iter_episodes()) == []
    assert dict(skips.counts) == {"missing_file": 2}


def test_gui_odyssey_action_texts() -> None:
    assert action_text("CLICK", "KEY_HOME") == "PRESS_HOME"
    assert action_text("CLICK", "KEY_APPSELECT") == "PRESS_RECENT"
    assert action_text("SCROLL", [[100, 500], [900, 520]]) == \
        "SCROLL RIGHT from (100, 500) to (900, 520)"
    assert action_text("TYPE", "hello") == "TYPE 'hello'"
    assert action_text("INCOMPLETE", "") == "IMPOSSIBLE"
    assert action_text("BACK", "") == "PRESS_BACK"
    assert action_text("WAIT", {"s": 1}) == 'WAIT {"s": 1}'


# ---------------------------------------------------------------- Habitat / VLN-CE


def test_habitat_reads_vlnce_records_with_rendered_frames(tmp_path: Path, skips: Skips) -> None:
    expected = write_habitat(tmp_path)
    episodes = list(HabitatSource(tmp_path, skips=skips).iter_episodes())
    check(episodes, expected, "nav", "habitat")
    assert dict(skips.counts) == expected.skips
    [unrendered] = skips.examples["frames_not_rendered"]
    assert "'99'" in unrendered and "habitat-sim" in unrendered and "val_seen.json.gz" in unrendered
    assert "train.json.gz" in skips.examples["invalid_json"][0]
    # Seven actions for six frames: kept in meta, not as per-frame steps.
    assert episodes[1].meta["actions"][-2:] == ["move forward", "stop"]
    rxr = episodes[3]
    assert (rxr.meta["language"], rxr.meta["instruction_id"]) == ("en-US", "4")


def test_habitat_frames_dir_and_single_records_file(tmp_path: Path, skips: Skips) -> None:
    expected = write_habitat(tmp_path, bad=False)
    rendered = tmp_path / "renders"
    shutil.move(tmp_path / "val_seen" / "frames", rendered)
    records = tmp_path / "val_seen" / "val_seen.json.gz"
    moved = list(HabitatSource(records, skips=skips, frames_dir=rendered).iter_episodes())
    assert [e.id for e in moved] == expected.ids[:3]
    assert moved[0].frames[0] == str(rendered / "11" / "000.jpg")
    assert not skips.counts
    # Without frames_dir the moved frames are missing, each episode counted.
    skips = Skips()
    assert list(HabitatSource(records, skips=skips).iter_episodes()) == []
    assert dict(skips.counts) == {"frames_not_rendered": 3}


def test_habitat_bad_paths_raise(tmp_path: Path, skips: Skips) -> None:
    with pytest.raises(InputError, match="no such VLN-CE"):
        HabitatSource(tmp_path / "absent", skips=skips)
    with pytest.raises(InputError, match="no VLN-CE records"):
        HabitatSource(tmp_path, skips=skips)
    write_habitat(tmp_path, bad=False)
    with pytest.raises(InputError, match="frames_dir"):
        HabitatSource(tmp_path, skips=skips, frames_dir=tmp_path / "none")
    assert [action_name(a) for a in (0, 3, "TURN_LEFT", 9, True)] == [
        "stop", "turn right", "turn left", None, None]


# ---------------------------------------------------------------- LEGO stop-motion video


def test_lego_video_takes_the_settled_frame_of_each_step(tmp_path: Path, skips: Skips) -> None:
    pytest.importorskip("av")
    clip = tmp_path / "videos" / "small_house.mp4"
    starts = write_lego_video(clip, bricks=4, empty_pass_after=2)
    [episode] = LegoVideoSource(tmp_path / "videos", skips=skips).iter_episodes()
    assert (episode.id, episode.scenario, episode.source) == ("small_house.mp4", "lego",
                                                              "lego-video")
    assert episode.frames == tuple(f"{clip}#t={t:.3f}" for t in starts)
    # The hand that passed after step 2 left nothing new: no step for it.
    assert [bricks_in(f.image) for f in load_frames(episode.frames)] == [0, 1, 2, 3, 4]
    assert episode.description == "building a LEGO small house"
    assert episode.steps is None and not skips.counts


def test_lego_video_sidecar_names_the_model_and_its_steps(tmp_path: Path, skips: Skips) -> None:
    pytest.importorskip("av")
    write_lego_video(tmp_path / "a.mp4", bricks=2)
    write_lego_video(tmp_path / "b.mkv", bricks=2, plate=1)
    (tmp_path / "a.mp4.json").write_text(json.dumps(
        {"name": "Millennium Falcon", "steps": ["base", "first brick", "second brick"],
         "meta": {"set": 75192}}))
    (tmp_path / "b.json").write_text(json.dumps({"model": "LEGO Technic car",
                                                 "steps": ["too", "few"]}))
    a, b = LegoVideoSource(tmp_path, skips=skips).iter_episodes()
    assert (a.description, a.steps, a.meta["set"]) == (
        "building a LEGO Millennium Falcon", ("base", "first brick", "second brick"), 75192)
    assert (b.description, b.steps, b.meta["sidecar_steps"]) == (
        "building a LEGO Technic car", None, ["too", "few"])


@pytest.mark.parametrize(("reason", "content", "name"), [
    ("bad_field", json.dumps({"name": 3}), "clip.json"),
    ("invalid_json", "{", "clip.mp4.json"),
    ("unreadable_video", None, "clip.mp4"),
])
def test_lego_video_bad_input_is_counted(tmp_path: Path, reason: str, content: str | None,
                                         name: str) -> None:
    pytest.importorskip("av")
    clip = tmp_path / "clip.mp4"
    write_lego_video(clip, bricks=1)
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    else:
        path.write_text(content)
    skips = Skips()
    assert list(LegoVideoSource(tmp_path, skips=skips).iter_episodes()) == []
    assert dict(skips.counts) == {reason: 1}
    assert str(path) in skips.examples[reason][0]
    with pytest.raises(InputError):
        LegoVideoSource(tmp_path / "absent.mp4", skips=skips)


def test_settled_steps_ignore_unsettled_and_transient_changes() -> None:
    import numpy as np

    def pic(level: float) -> Any:
        return np.full((4, 4, 3), level, np.float32)

    def run(levels: list[float], **kw: float) -> list[float]:
        options = {"change_threshold": 0.1, "still_threshold": 0.05, "settle": 0.3,
                   "min_gap": 0.5, **kw}
        return settled_steps([(i / 10, pic(v)) for i, v in enumerate(levels)], **options)

    # Still, a flicker that returns to the same picture, then a real change.
    assert run([0] * 10 + [0.5, 0] + [0] * 5 + [1] * 6) == [0.0, 1.7]
    # A picture that keeps changing never settles: only the still start counts.
    assert run([0] * 4 + [(i % 5) / 5 + 0.1 for i in range(20)]) == [0.0]
    # Two changes 0.4 s apart: both are steps; with a longer min_gap the first is
    # passed over and the second takes the first frame of its still period after the gap.
    assert run([0] * 5 + [1] * 4 + [0.5] * 8) == [0.0, 0.5, 1.0]
    assert run([0] * 5 + [1] * 4 + [0.5] * 8, min_gap=1.0) == [0.0, 1.0]


# ---------------------------------------------------------------- end to end


def _write(kind: str, root: Path) -> tuple[Path, list[str]]:
    """A fixture for `kind` and the episode ids a build may use."""
    if kind == "sharerobot":
        return root, write_sharerobot(root).ids
    if kind == "gui-odyssey":
        return root, write_gui_odyssey(root).ids
    if kind == "habitat":
        return root, write_habitat(root).ids
    ids = []
    for n in range(4):
        write_lego_video(root / f"model_{n}.mp4", bricks=4, plate=n)
        ids.append(f"model_{n}.mp4")
    return root, ids


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_build_reads_each_adapter_end_to_end(kind: str, tmp_path: Path) -> None:
    if kind == "lego-video":
        pytest.importorskip("av")
    from tpru.builder.config import BuildConfig, SplitConfig
    from tpru.builder.pipeline import build

    assert tpru.sources.SOURCES[kind] == ADAPTERS[kind]
    root, ids = _write(kind, tmp_path / "input")
    config = BuildConfig(sources=(f"{kind}:{root}",), out=str(tmp_path / "out"), seed=0,
                         split=SplitConfig(ratios={"train": 1.0}))
    result = build(config, show_progress=False)
    info = result.info
    assert info["counts"]["episodes_kept"] == len(ids)
    assert info["counts"]["samples_total"] > 0
    samples = list(read_jsonl(result.path / "train.jsonl", Sample))
    assert {s.episode_id for s in samples} == set(ids)
    scenario = {"sharerobot": "robot", "gui-odyssey": "gui", "habitat": "nav",
                "lego-video": "lego"}[kind]
    assert {s.scenario for s in samples} == {scenario}
    for sample in samples:
        for image in sample.images:
            assert (result.path / image).is_file()
    written = json.loads((result.path / "build.json").read_text())
    assert written["config"]["sources"] == [f"{kind}:{root}"]
    assert written["drops"]["inputs"] == {
        "sharerobot": {"bad_field": 2, "invalid_json": 2, "missing_file": 1},
        "gui-odyssey": {"bad_field": 1, "invalid_json": 1, "missing_file": 1},
        "habitat": {"bad_field": 2, "frames_not_rendered": 1, "invalid_json": 1},
        "lego-video": {}}[kind]


def test_source_options_reach_the_adapter_through_the_cli(tmp_path: Path) -> None:
    """``source_options`` in the build config picks one side of GUI Odyssey's split."""
    from tpru.cli import main

    expected = write_gui_odyssey(tmp_path / "input", bad=False)
    out = tmp_path / "out"
    assert main(["build", "--source", f"gui-odyssey:{tmp_path / 'input'}", "--out", str(out),
                 "-q", "split.ratios={train: 1.0}",
                 "source_options={gui-odyssey: {split_file: random_split.json, split: test}}"]
                ) == 0
    samples = list(read_jsonl(out / "train.jsonl", Sample))
    assert {s.episode_id for s in samples} == set(expected.ids[1::2])
    bad = tmp_path / "bad"
    assert main(["build", "--source", f"gui-odyssey:{tmp_path / 'input'}", "--out", str(bad),
                 "-q", "source_options={gui-odyssey: {no_such_option: 1}}"]) == 1
    assert not bad.exists()
