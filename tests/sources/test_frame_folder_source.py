"""FrameFolderSource: episode folders, natural order, episode.json, counted skips."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tpru.diagnostics import InputError, Skips
from tpru.sources import open_source
from tpru.sources.frames import FrameFolderSource, natural_key


def episodes(root: Path, skips: Skips) -> list[Any]:
    return list(FrameFolderSource(root, skips=skips).iter_episodes())


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["frame10.jpg", "frame2.jpg", "Frame1.jpg", "frame02.jpg", "a.jpg", "frame1b.jpg"]
    assert sorted(names, key=natural_key) == [
        "a.jpg", "Frame1.jpg", "frame1b.jpg", "frame02.jpg", "frame2.jpg", "frame10.jpg"]


def test_frames_are_image_files_in_natural_order_as_absolute_paths(
        tmp_path: Path, skips: Skips, write_image: Any) -> None:
    ep = tmp_path / "root" / "ep"
    for name in ["frame10.png", "frame2.JPG", "frame1.jpeg", "frame3.webp", "frame4.bmp"]:
        write_image(ep / name)
    (ep / "notes.txt").write_text("not a frame")
    (ep / ".hidden.jpg").write_bytes(b"")
    (ep / "frame5.jpg").write_bytes(b"not decoded by the source")

    [episode] = episodes(tmp_path / "root", skips)
    names = [Path(f).name for f in episode.frames]
    assert names == ["frame1.jpeg", "frame2.JPG", "frame3.webp", "frame4.bmp", "frame5.jpg",
                     "frame10.png"]
    assert all(Path(f).is_absolute() and Path(f).is_file() for f in episode.frames)
    assert episode.source == "frames"
    assert not skips.counts


def test_defaults_id_is_relative_path_and_scenario_is_root_name(
        tmp_path: Path, skips: Skips, write_image: Any) -> None:
    root = tmp_path / "lego"
    for folder in ["b10", "b2", "nested/inner"]:
        write_image(root / folder / "0.jpg")
    found = episodes(root, skips)
    assert [e.id for e in found] == ["b2", "b10", "nested/inner"]
    assert {e.scenario for e in found} == {"lego"}
    assert all(e.steps is None and e.description is None and e.meta == {} for e in found)


def test_a_folder_of_images_is_itself_one_episode(tmp_path: Path, skips: Skips,
                                                  write_image: Any) -> None:
    root = tmp_path / "single"
    write_image(root / "1.jpg")
    write_image(root / "2.jpg")
    [episode] = episodes(root, skips)
    assert episode.id == "single"
    assert len(episode.frames) == 2


def test_episode_json_fields_are_used(tmp_path: Path, skips: Skips, write_image: Any) -> None:
    ep = tmp_path / "root" / "folder"
    write_image(ep / "1.jpg")
    write_image(ep / "2.jpg")
    info = {"id": "custom", "scenario": "robot", "description": "stacking the red cube",
            "steps": ["grasp", "place"], "meta": {"camera": "wrist"}}
    (ep / "episode.json").write_text(json.dumps(info))
    [episode] = episodes(tmp_path / "root", skips)
    assert (episode.id, episode.scenario, episode.description) == (
        "custom", "robot", "stacking the red cube")
    assert episode.steps == ("grasp", "place")
    assert episode.meta == {"camera": "wrist"}


BAD_INPUTS = [
    ("invalid_json", "{not json"),
    ("bad_field", json.dumps({"steps": "one step"})),
    ("bad_field", json.dumps({"steps": ["a", 2]})),
    ("bad_field", json.dumps({"description": 42})),
    ("bad_field", json.dumps({"scenario": ["robot"]})),
    ("bad_field", json.dumps({"meta": []})),
    ("bad_field", json.dumps(["a list"])),
    ("steps_count", json.dumps({"steps": ["only one"]})),
    ("empty_episode", None),
]


def _bad_tree(root: Path, content: str | None, write_image: Any) -> Path:
    """A good episode and a bad one; returns the path the skip message must name."""
    write_image(root / "good" / "1.jpg")
    bad = root / "bad"
    bad.mkdir(parents=True)
    if content is None:  # an episode folder without images
        (bad / "readme.txt").write_text("no frames here")
        return bad
    write_image(bad / "1.jpg")
    write_image(bad / "2.jpg")
    (bad / "episode.json").write_text(content)
    return bad / "episode.json"


@pytest.mark.parametrize(("reason", "content"), BAD_INPUTS)
def test_bad_input_is_skipped_and_counted_naming_the_file(
        tmp_path: Path, write_image: Any, reason: str, content: str | None) -> None:
    skips = Skips()
    path = _bad_tree(tmp_path / "root", content, write_image)
    found = episodes(tmp_path / "root", skips)
    assert [e.id for e in found] == ["good"]
    assert dict(skips.counts) == {reason: 1}
    assert str(path) in skips.examples[reason][0]


@pytest.mark.parametrize(("reason", "content"), BAD_INPUTS)
def test_bad_input_stops_a_strict_run(tmp_path: Path, write_image: Any, reason: str,
                                      content: str | None) -> None:
    path = _bad_tree(tmp_path / "root", content, write_image)
    with pytest.raises(InputError, match=reason) as caught:
        episodes(tmp_path / "root", Skips(strict=True))
    assert str(path) in str(caught.value)


def test_duplicate_ids_from_episode_json_are_skipped(tmp_path: Path, skips: Skips,
                                                     write_image: Any) -> None:
    for name in ("a", "b"):
        write_image(tmp_path / "root" / name / "1.jpg")
        (tmp_path / "root" / name / "episode.json").write_text(json.dumps({"id": "same"}))
    found = episodes(tmp_path / "root", skips)
    assert [e.id for e in found] == ["same"]
    assert dict(skips.counts) == {"duplicate_id": 1}
    assert str(tmp_path / "root" / "b") in skips.examples["duplicate_id"][0]


def test_symlink_loops_are_followed_once(tmp_path: Path, skips: Skips, write_image: Any) -> None:
    write_image(tmp_path / "root" / "ep" / "1.jpg")
    (tmp_path / "root" / "ep" / "loop").symlink_to(tmp_path / "root")
    assert [e.id for e in episodes(tmp_path / "root", skips)] == ["ep"]


def test_open_source_by_name(tmp_path: Path, write_image: Any) -> None:
    write_image(tmp_path / "root" / "ep" / "1.jpg")
    source = open_source(f"frames:{tmp_path / 'root'}")
    assert [e.id for e in source.iter_episodes()] == ["ep"]
    with pytest.raises(InputError, match="not a folder"):
        open_source(f"frames:{tmp_path / 'missing'}")


def test_frame_files_that_are_not_regular_files_are_counted_not_read(
        tmp_path: Path, skips: Skips, write_image: Any) -> None:
    ep = tmp_path / "root" / "ep"
    write_image(ep / "1.jpg")
    write_image(ep / "4.jpg")
    (ep / "2.jpg").symlink_to(tmp_path / "nowhere.jpg")  # broken
    os.mkfifo(ep / "3.jpg")  # reading it would wait forever
    (ep / "5.jpg").symlink_to(ep / "5.jpg")  # a loop
    [episode] = episodes(tmp_path / "root", skips)
    assert [Path(f).name for f in episode.frames] == ["1.jpg", "4.jpg"]
    assert dict(skips.counts) == {"missing_file": 1, "unreadable_file": 2}
    assert skips.examples["missing_file"] == [f"{ep / '2.jpg'}: no such file (a broken symlink)"]
    fifo, loop = skips.examples["unreadable_file"]
    assert fifo == f"{ep / '3.jpg'}: not a regular file (a FIFO)"
    assert str(ep / "5.jpg") in loop and "symbolic links" in loop


def test_unknown_keys_in_episode_json_are_ignored_with_a_guess(
        tmp_path: Path, skips: Skips, write_image: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru")  # other tests may leave the root at ERROR
    for name in ("a", "b"):
        write_image(tmp_path / "rec" / name / "1.jpg")
        (tmp_path / "rec" / name / "episode.json").write_text(
            json.dumps({"descripton": "stacking", "scenerio": "robot", "zzz": 1}))
    found = episodes(tmp_path / "rec", skips)
    assert [(e.description, e.scenario) for e in found] == [(None, "rec"), (None, "rec")]
    assert not skips.counts  # the episodes are kept
    info = tmp_path / "rec" / "a" / "episode.json"
    assert skips.warning_examples["unknown key 'descripton'"][0] == (
        f"{info}: unknown key 'descripton' is ignored (did you mean 'description'?)")
    assert "did you mean 'scenario'?" in skips.warning_examples["unknown key 'scenerio'"][0]
    assert "known: description, frames, id, key, meta, scenario, steps" in \
        skips.warning_examples["unknown key 'zzz'"][0]
    assert skips.warning_counts["unknown key 'descripton'"] == 2
    assert "unknown key 'descripton' is ignored (did you mean 'description'?)" in caplog.text


def test_a_folder_of_scenario_folders_keeps_each_scenario(
        tmp_path: Path, skips: Skips, write_image: Any) -> None:
    root = tmp_path / "rec"
    for folder in ["robot/ep1", "robot/ep2", "nav/ep1", "nav/day2/ep1"]:
        write_image(root / folder / "0.jpg")
    found = episodes(root, skips)
    assert [(e.id, e.scenario) for e in found] == [
        ("nav/day2/ep1", "nav"), ("nav/ep1", "nav"), ("robot/ep1", "robot"),
        ("robot/ep2", "robot")]
    # One episode directly below the root: the root's name is the scenario, as before.
    write_image(root / "loose" / "0.jpg")
    assert {e.scenario for e in episodes(root, skips)} == {"rec"}


def test_frames_listed_in_episode_json_are_the_episode_in_that_order(
        tmp_path: Path, skips: Skips, write_image: Any) -> None:
    ep = tmp_path / "rec" / "ep"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(ep / name)
    (ep / "episode.json").write_text(json.dumps({"frames": ["c.jpg", "a.jpg"]}))
    [episode] = episodes(tmp_path / "rec", skips)
    assert [Path(f).name for f in episode.frames] == ["c.jpg", "a.jpg"]
    assert not skips.warning_counts
    (ep / "episode.json").write_text(json.dumps({"frames": ["a.jpg", "gone.jpg"]}))
    assert episodes(tmp_path / "rec", skips) == []
    assert skips.examples["missing_file"] == [
        f"{ep / 'episode.json'}: frame 'gone.jpg' is not in the folder"]
    (ep / "episode.json").write_text(json.dumps({"frames": ["../x/a.jpg"]}))
    assert episodes(tmp_path / "rec", skips) == []
    assert "should be the name of a file in the folder" in skips.examples["bad_field"][0]
