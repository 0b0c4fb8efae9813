"""The real-dataset adapters on what the releases ship beside their episodes (issue 12).

VLN-CE keeps ``embeddings.json.gz`` (GloVe vectors) next to its split folders
and is published without frames; the ShareRobot hub repeats its train and
test planning files in ``planning/jsons/`` and numbers episodes per
``rtx_frames_success_N`` folder; GUI Odyssey's hub copy keeps screenshots in
sub-folders, names annotation files with ``.json`` in its split lists, and
adds step fields (``low_level_instruction``, ``ps``, ``sam2_bbox``). The
fixtures are written in those layouts by `real_fixtures`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from real_fixtures import (
    CLUSTER,
    check,
    write_frame,
    write_gui_odyssey,
    write_gzip_json,
    write_habitat,
    write_sharerobot,
    write_sharerobot_hub,
)

from tpru.diagnostics import InputError, Skips
from tpru.schema import Sample, read_jsonl
from tpru.sources.gui_odyssey import GUIOdysseySource
from tpru.sources.habitat import HabitatSource, is_split_records
from tpru.sources.sharerobot import ShareRobotSource


def tpru_lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tpru" and r.levelno >= level]


# ---------------------------------------------------------------- Habitat / VLN-CE


def test_habitat_reads_only_split_records_so_a_strict_read_passes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tpru")
    expected = write_habitat(tmp_path, bad=False)
    assert (tmp_path / "embeddings.json.gz").is_file()
    skips = Skips(strict=True)
    episodes = list(HabitatSource(tmp_path, skips=skips).iter_episodes())
    check(episodes, expected, "nav", "habitat")
    assert not skips.counts
    [line] = tpru_lines(caplog)
    assert "not reading embeddings.json.gz" in line and "<split>/<split>.json.gz" in line
    # A records file named on its own is read whatever its name.
    renamed = tmp_path / "mine.json.gz"
    shutil.copyfile(tmp_path / "val_seen" / "val_seen.json.gz", renamed)
    source = HabitatSource(renamed, skips=skips, frames_dir=tmp_path / "val_seen" / "frames")
    assert len(list(source.iter_episodes())) == 3
    # A folder with only other .json.gz files is refused, naming them.
    alone = tmp_path / "alone"
    write_gzip_json(alone / "embeddings.json.gz", [[0.5]])
    with pytest.raises(InputError, match=r"found only embeddings.json.gz: name a records file"):
        HabitatSource(alone, skips=skips)
    assert [is_split_records(Path(p)) for p in (
        "R2R/val_seen/val_seen.json.gz", "RxR/val_unseen/val_unseen_guide.json.gz",
        "R2R/val_seen/val_seen_gt.json.gz", "R2R/embeddings.json.gz",
        "R2R/val_seen/other.json.gz")] == [True, True, False, False, False]


def test_habitat_strict_build_with_embeddings_beside_the_splits(tmp_path: Path) -> None:
    from tpru.builder.config import BuildConfig, SplitConfig
    from tpru.builder.pipeline import build

    expected = write_habitat(tmp_path / "R2R_VLNCE_v1-3_preprocessed", bad=False)
    config = BuildConfig(sources=(f"habitat:{tmp_path / 'R2R_VLNCE_v1-3_preprocessed'}",),
                         out=str(tmp_path / "out"), seed=0, strict=True,
                         split=SplitConfig(ratios={"train": 1.0}))
    result = build(config, show_progress=False)
    assert result.info["drops"]["inputs"] == {}
    samples = list(read_jsonl(result.path / "train.jsonl", Sample))
    assert {s.episode_id for s in samples} == set(expected.ids)


def test_habitat_unrendered_split_gives_one_summary_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The release's test split, with no frames: one warning, every episode counted."""
    caplog.set_level(logging.INFO, logger="tpru")
    expected = write_habitat(tmp_path, bad=False)
    records = [{"episode_id": n, "trajectory_id": 5000 + n,
                "scene_id": "mp3d/5ZKStnWn8Zo/5ZKStnWn8Zo.glb",
                "instruction": {"instruction_text": f"Go to room {n}.",
                                "instruction_tokens": [1, 2]}} for n in range(1, 41)]
    write_gzip_json(tmp_path / "test" / "test.json.gz",
                    {"episodes": records, "instruction_vocab": {"word_list": []}})
    skips = Skips()
    episodes = list(HabitatSource(tmp_path, skips=skips).iter_episodes())
    assert [e.id for e in episodes] == expected.ids
    assert dict(skips.counts) == {"frames_not_rendered": 40}
    assert len(skips.examples["frames_not_rendered"]) == 5  # for build.json, each naming
    assert "'1'" in skips.examples["frames_not_rendered"][0]  # where it looked
    warnings = tpru_lines(caplog, logging.WARNING)
    assert len(warnings) == 1
    [line] = warnings
    assert "test.json.gz: 40 of 40 episodes have no rendered frames" in line
    assert "(episodes 1, 2, 3, 4, 5, ...)" in line
    assert f"expected in {tmp_path / 'test' / 'frames' / '<episode_id>'}/" in line
    assert "habitat-sim" in line and "frames_dir" in line
    # With --strict the first unrendered episode stops the read, naming it.
    with pytest.raises(InputError, match="no rendered frames for episode '1'"):
        list(HabitatSource(tmp_path / "test", skips=Skips(strict=True)).iter_episodes())


# ---------------------------------------------------------------- ShareRobot


def test_sharerobot_hub_planning_folder_reads_each_entry_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tpru")
    expected, repeated = write_sharerobot_hub(tmp_path)
    skips = Skips(strict=True)
    episodes = list(ShareRobotSource(tmp_path / "planning", skips=skips,
                                     image_root=tmp_path / "frames_root").iter_episodes())
    # jsons/ comes first in natural order and holds every episode.
    check(episodes, expected, "robot", "sharerobot")
    assert [e.meta["entries"] for e in episodes] == [3, 3, 3, 3]
    [line] = tpru_lines(caplog)
    assert f"passed over {repeated} repeated entries" in line
    assert "jsons" in line and "train" in line
    # One side alone repeats nothing, and says nothing.
    caplog.clear()
    train = list(ShareRobotSource(tmp_path / "planning" / "train", skips=skips,
                                  image_root=tmp_path / "frames_root").iter_episodes())
    assert [e.id for e in train] == expected.ids[:2]
    assert tpru_lines(caplog) == []


def test_sharerobot_frames_folder_is_part_of_the_episode_id(tmp_path: Path,
                                                            skips: Skips) -> None:
    """Episode numbers repeat across ``rtx_frames_success_N`` folders."""
    root = tmp_path / "rt_frames_success"
    entries = []
    for part in (1, 2):
        name = f"rtx_frames_success_{part}/49_bridge#episode_7"
        paths = [write_frame(root / name / f"frame_{i}.png", part, i) for i in range(12)]
        entries.append({"id": f"/mnt/hpfs/baaiei/jyShi/rt_frames_success/{name}",
                        "task": "Planning_Task", "selected_step": 0,
                        "conversations": [{"from": "human", "value": "<image 0-11> The "
                                           f"objective is <open drawer {part}>, what next?"},
                                          {"from": "gpt", "value": "<grasp the handle>"}],
                        "image": [f"{CLUSTER}/../{name}/{p.name}" for p in paths]})
    (tmp_path / "planning_task.json").write_text(json.dumps(entries))
    episodes = list(ShareRobotSource(tmp_path / "planning_task.json", skips=skips,
                                     image_root=tmp_path).iter_episodes())
    assert [e.id for e in episodes] == ["rtx_frames_success_1/49_bridge#episode_7",
                                        "rtx_frames_success_2/49_bridge#episode_7"]
    assert not skips.counts
    for part, episode in zip((1, 2), episodes, strict=True):
        assert episode.meta["frames_folder"] == f"rtx_frames_success_{part}"
        assert (episode.meta["source_dataset"], episode.meta["shard"]) == ("bridge", 49)
        assert episode.description == f"opening drawer {part}"
        # frame_2 before frame_10, each from its own folder
        assert [Path(f).name for f in episode.frames] == [f"frame_{i}.png" for i in range(12)]
        assert all(f"rtx_frames_success_{part}/" in f for f in episode.frames)


def test_sharerobot_ids_without_a_frames_folder_keep_their_episode_part(
        tmp_path: Path, skips: Skips) -> None:
    expected = write_sharerobot(tmp_path, bad=False)
    path = tmp_path / "annotations" / "planning_task_generated_templates.json"
    entries = json.loads(path.read_text())
    for entry in entries:
        entry["id"] = entry["id"].replace(CLUSTER, "/data/frames")
    path.write_text(json.dumps(entries))
    episodes = list(ShareRobotSource(path, skips=skips, image_root=tmp_path).iter_episodes())
    assert [e.id for e in episodes] == [i.split("/", 1)[1] for i in expected.ids]
    assert "frames_folder" not in episodes[0].meta


# ---------------------------------------------------------------- GUI Odyssey


def test_gui_odyssey_hub_layout_and_newer_step_fields(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Screenshots in ``screenshots/part1/``, split lists of ``<id>.json`` names, and
    the step fields of newer copies kept in ``meta["step_meta"]``."""
    caplog.set_level(logging.INFO, logger="tpru")
    expected = write_gui_odyssey(tmp_path, bad=False)
    screenshots = tmp_path / "data" / "screenshots"
    part1 = screenshots / "part1"
    part1.mkdir()
    for shot in list(screenshots.rglob("*.png")):
        shot.rename(part1 / shot.name)
    expected.frames = {key: [str(part1.resolve() / Path(f).name) for f in frames]
                       for key, frames in expected.frames.items()}
    ids = list(expected.ids)
    (tmp_path / "data" / "splits" / "random_split.json").write_text(json.dumps(
        {"train": [f"{i}.json" for i in ids[:3]], "test": [f"{i}.json" for i in ids[3:]]}))
    for episode_id in ids:
        expected.meta[episode_id]["splits"]["random_split"] = "train" if episode_id in ids[:3] \
            else "test"
    skips = Skips(strict=True)
    train = list(GUIOdysseySource(tmp_path, skips=skips, split_file="random_split",
                                  split="train").iter_episodes())
    expected.ids = ids[:3]
    check(train, expected, "gui", "gui-odyssey")
    low_level = train[1]
    assert low_level.steps == tuple(f"Do step {k} on the screen" for k in range(6))
    assert low_level.meta["step_meta"] == [
        {"ps": "", "low_level_instruction": f"Do step {k} on the screen",
         "sam2_bbox": [10 * k, 20, 10 * k + 50, 80]} for k in range(6)]
    assert train[0].meta["step_meta"] == [{"ps": ""}] * 6
    assert not skips.warning_counts and tpru_lines(caplog) == []
    [test] = GUIOdysseySource(tmp_path, skips=skips, split_file="random_split.json",
                              split="test").iter_episodes()
    assert test.id == ids[3] and test.meta["splits"]["random_split"] == "test"
