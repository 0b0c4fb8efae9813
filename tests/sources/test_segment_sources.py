"""segments:, coin: and epic-kitchens: on small videos whose frames show their time.

Each test video (64x48, 10 fps) has a white bar two pixels wide at column `i` in
frame `i`, so a decoded frame says which frame it is (`frame_index`); its
background brightens at the times given (`changes`), the only big change of the
picture, for the ``keyframe`` choice.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tpru.diagnostics import InputError, Skips
from tpru.schema import Sample, read_jsonl
from tpru.sources import open_source
from tpru.sources.base import load_frames
from tpru.sources.coin import COINSource, class_words
from tpru.sources.epic_kitchens import EpicKitchensSource, parse_timestamp
from tpru.sources.segments import SegmentsSource

av = pytest.importorskip("av")

FPS = 10
EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp",
                "start_timestamp", "stop_timestamp", "start_frame", "stop_frame", "narration",
                "verb", "verb_class", "noun", "noun_class", "all_nouns", "all_noun_classes")


def write_video(path: Path, *, seconds: int = 6, changes: tuple[float, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        for i in range(seconds * FPS):
            background = 40 + 60 * sum(1 for t in changes if i >= round(t * FPS))
            pixels = np.full((48, 64, 3), background, np.uint8)
            pixels[:, i:i + 2] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_index(image: Image.Image) -> int:
    """Which frame of a test video `image` is: the bar's left column."""
    columns = np.asarray(image.convert("L"), dtype=float).mean(axis=0)
    bright = np.flatnonzero(columns > 200)
    return round(float(bright.mean()) - 0.5)


def indices(frames: tuple[str, ...]) -> list[int]:
    loaded = list(load_frames(frames))
    assert all(f.image is not None for f in loaded), [f.message for f in loaded]
    return [frame_index(f.image) for f in loaded if f.image is not None]


def seg(start: float, end: float, text: str) -> dict[str, Any]:
    return {"start": start, "end": end, "text": text}


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                            for x in lines))
    return path


STEPS = [seg(0, 1, "open"), seg(1, 2, "pour"), seg(2, 3.5, "stir"), seg(4, 5, "close")]


# ---------------------------------------------------------------- segments:


@pytest.mark.parametrize(("frame", "expected"), [
    ("end", [9, 19, 34, 49]),
    ("middle", [5, 15, 28, 45]),
    ("keyframe", [9, 13, 34, 42]),
])
def test_one_frame_per_segment_from_the_chosen_time(tmp_path: Path, skips: Skips, frame: str,
                                                    expected: list[int]) -> None:
    write_video(tmp_path / "clips/a.mp4", changes=(1.3, 4.2))
    path = write_lines(tmp_path / "seg.jsonl", [
        {"video": "clips/a.mp4", "segments": STEPS, "description": "making tea"}])
    source = SegmentsSource(path, skips=skips, frame=frame,  # type: ignore[arg-type]
                            change_threshold=0.1)  # above the bar's own motion
    [episode] = source.iter_episodes()
    assert (episode.id, episode.scenario, episode.source) == ("clips/a.mp4", "video", "segments")
    assert episode.steps == ("open", "pour", "stir", "close")
    assert episode.description == "making tea"
    assert episode.meta["frame"] == frame
    assert indices(episode.frames) == expected
    assert not skips.counts


def test_keyframe_without_a_big_change_falls_back_to_the_end(tmp_path: Path,
                                                             skips: Skips) -> None:
    write_video(tmp_path / "a.mp4", changes=(1.3,))
    path = write_lines(tmp_path / "seg.jsonl", [
        {"video": "a.mp4", "segments": STEPS[:2], "id": "tea", "scenario": "kitchen",
         "meta": {"k": 1}}])
    [episode] = SegmentsSource(path, skips=skips, frame="keyframe",
                               change_threshold=0.9).iter_episodes()
    assert (episode.id, episode.scenario, episode.meta["k"]) == ("tea", "kitchen", 1)
    assert indices(episode.frames) == [9, 19]


@pytest.mark.parametrize(("reason", "line", "message"), [
    ("invalid_json", '{"video": "a.mp4", ', "seg.jsonl:2:"),
    ("bad_field", {"video": "a.mp4", "segments": [{"start": 0, "end": "x", "text": "a"}]},
     "segment 1 must be"),
    ("bad_segment", {"video": "a.mp4", "segments": [seg(2, 1, "a")]}, "not after its start"),
    ("overlapping_segments", {"video": "a.mp4", "segments": [seg(0, 2, "a"), seg(1, 3, "b")]},
     "starts before segment 1 ends"),
    ("segment_past_end", {"video": "a.mp4", "segments": [seg(0, 1, "a"), seg(5, 9, "b")]},
     "past the end of"),
    ("missing_file", {"video": "nowhere.mp4", "segments": [seg(0, 1, "a")]}, "nowhere.mp4"),
    ("path_escapes_root", {"video": "../a.mp4", "segments": [seg(0, 1, "a")]}, "outside"),
    ("unreadable_video", {"video": "broken.mp4", "segments": [seg(0, 1, "a")]}, "broken.mp4"),
])
def test_bad_lines_are_counted_naming_the_file_and_episode(
        tmp_path: Path, reason: str, line: Any, message: str) -> None:
    write_video(tmp_path / "a.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    path = write_lines(tmp_path / "seg.jsonl",
                       [{"id": "good", "video": "a.mp4", "segments": STEPS}, line])
    skips = Skips()
    episodes = list(SegmentsSource(path, skips=skips).iter_episodes())
    assert [e.id for e in episodes] == ["good"]
    assert dict(skips.counts) == {reason: 1}
    [example] = skips.examples[reason]
    assert str(path) in example and message in example
    if reason != "invalid_json":
        assert "line 2" in example
    with pytest.raises(InputError, match=reason):
        list(SegmentsSource(path, skips=Skips(strict=True)).iter_episodes())


def test_a_segment_just_past_the_end_is_cut_to_it(tmp_path: Path, skips: Skips) -> None:
    write_video(tmp_path / "a.mp4", seconds=3)
    path = write_lines(tmp_path / "seg.jsonl", [
        {"video": "a.mp4", "segments": [seg(0, 1, "a"), seg(2, 3.3, "b")]}])
    [episode] = SegmentsSource(path, skips=skips).iter_episodes()
    assert indices(episode.frames) == [9, 29]


def test_options_are_checked(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "seg.jsonl", [])
    with pytest.raises(InputError, match="frame must be one of end, middle, keyframe"):
        open_source(f"segments:{path}", options={"segments": {"frame": "start"}})
    with pytest.raises(InputError, match="no such segments file"):
        open_source(f"segments:{tmp_path / 'none.jsonl'}")


# ---------------------------------------------------------------- COIN


def write_coin(root: Path) -> Path:
    """COIN.json with two videos found (one in a recipe_type folder), one missing, one bad."""
    write_video(root / "videos/vidA.mp4", changes=(1.3,))
    write_video(root / "videos/11/vidB.mkv", changes=(2.5,))
    database = {
        "vidA": {"recipe_type": 11, "class": "ReplaceBatteryOnKeyToCar", "subset": "training",
                 "start": 0.0, "end": 6.0, "duration": 6.0, "video_url": "https://y/vidA",
                 "annotation": [{"segment": [3.0, 4.0], "label": "put in the battery",
                                 "id": "2"},
                                {"segment": [1.0, 2.0], "label": "open the key", "id": "1"}]},
        "vidB": {"recipe_type": 11, "class": "MakeRJ45Cable", "subset": "testing",
                 "annotation": [{"segment": [0.5, 1.5], "label": "strip", "id": "7"},
                                {"segment": [2.0, 5.0], "label": "crimp", "id": "8"}]},
        "gone": {"recipe_type": 3, "class": "ArcWeld", "subset": "training",
                 "annotation": [{"segment": [0.0, 1.0], "label": "weld", "id": "9"}]},
        "bad": {"class": "ArcWeld", "annotation": [{"segment": [1.0], "label": "x"}]},
    }
    path = root / "annotations/COIN.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"database": database}))
    return path


def test_coin_one_episode_per_video_with_the_task_as_description(tmp_path: Path,
                                                                  skips: Skips) -> None:
    path = write_coin(tmp_path)
    episodes = list(COINSource(path, skips=skips,
                               video_root=str(tmp_path / "videos")).iter_episodes())
    assert [e.id for e in episodes] == ["vidA", "vidB"]
    a, b = episodes
    assert a.steps == ("open the key", "put in the battery")
    assert a.description == "replacing battery on key to car"
    assert (a.meta["class"], a.meta["subset"], a.meta["step_ids"]) == (
        "ReplaceBatteryOnKeyToCar", "training", ["1", "2"])
    assert indices(a.frames) == [19, 39]
    assert b.frames[0].startswith(str(tmp_path / "videos/11/vidB.mkv"))
    assert b.description == "making rj45 cable" and b.meta["subset"] == "testing"
    assert dict(skips.counts) == {"missing_file": 1, "bad_field": 1}
    assert "video 'gone'" in skips.examples["missing_file"][0]
    assert "video 'bad'" in skips.examples["bad_field"][0]
    keyframes = COINSource(path, skips=Skips(), video_root=str(tmp_path / "videos"),
                           subset="training", frame="keyframe", change_threshold=0.1)
    [a] = keyframes.iter_episodes()
    assert indices(a.frames) == [13, 39]


def test_coin_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "COIN.json"
    path.write_text('{"database": {\n  "x": }')
    with pytest.raises(InputError, match=r"COIN.json:2:\d+: not valid JSON"):
        COINSource(path, skips=Skips())
    path.write_text("[]")
    with pytest.raises(InputError, match="no 'database' object"):
        COINSource(path, skips=Skips())
    assert class_words("ArcWeld") == "arc weld"


def test_coin_a_subset_no_video_has_is_an_error_naming_the_subsets(tmp_path: Path) -> None:
    path = write_coin(tmp_path)
    with pytest.raises(InputError, match=r"COIN.json: no video of subset 'train' "
                                         r"\(its subsets: 'testing', 'training'\)"):
        COINSource(path, skips=Skips(), video_root=str(tmp_path / "videos"), subset="train")


# ---------------------------------------------------------------- EPIC-KITCHENS


def epic_row(n: int, start: str, stop: str, narration: str,
             video: str = "P01_01") -> dict[str, str]:
    return {"narration_id": f"{video}_{n}", "participant_id": video[:3], "video_id": video,
            "narration_timestamp": start, "start_timestamp": start, "stop_timestamp": stop,
            "start_frame": "0", "stop_frame": "0", "narration": narration,
            "verb": narration.split()[0], "verb_class": "0", "noun": narration.split()[-1],
            "noun_class": "0", "all_nouns": "[]", "all_noun_classes": "[]"}


def write_epic(root: Path, columns: tuple[str, ...] = EPIC_COLUMNS) -> Path:
    write_video(root / "P01/videos/P01_01.MP4", changes=(1.3,))
    write_video(root / "P02/videos/P02_03.MP4")
    rows = [epic_row(0, "00:00:00.00", "00:00:01.00", "open fridge"),
            epic_row(2, "00:00:02.00", "00:00:03.00", "take milk"),
            epic_row(1, "00:00:01.00", "00:00:02.00", "look inside"),
            epic_row(3, "00:00:02.50", "00:00:02.90", "tap runs"),  # overlaps: left out
            epic_row(4, "00:00:03.00", "00:00:04.00", "close fridge"),
            epic_row(5, "00:00:04.00", "00:00:05.00", "pour milk"),
            epic_row(6, "00:00:05.00", "00:00:05.50", "drink milk"),  # the remainder
            epic_row(7, "00:00:0x.00", "00:00:01.00", "bad time", "P02_03"),
            epic_row(8, "00:00:00.00", "00:00:01.00", "wash cup", "P02_03"),
            epic_row(9, "00:00:01.00", "00:00:02.00", "dry cup", "P02_03"),
            epic_row(0, "00:00:00.00", "00:00:01.00", "cut onion", "P03_01")]  # no video
    rows.append(epic_row(1, "00:00:01.00", "00:00:02.00", "fry onion", "P03_01"))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path = root / "EPIC_100_train.csv"
    path.write_text(out.getvalue())
    return path


def test_epic_runs_of_consecutive_narrations(tmp_path: Path, skips: Skips) -> None:
    path = write_epic(tmp_path)
    episodes = list(EpicKitchensSource(path, skips=skips, steps=2).iter_episodes())
    assert [e.id for e in episodes] == ["P01_01/0000", "P01_01/0001", "P01_01/0002",
                                        "P02_03/0000"]
    assert [e.steps for e in episodes] == [("open fridge", "look inside"),
                                           ("take milk", "close fridge"),
                                           ("pour milk", "drink milk"),
                                           ("wash cup", "dry cup")]
    assert [indices(e.frames) for e in episodes] == [[9, 19], [29, 39], [49, 54], [9, 19]]
    first = episodes[0]
    assert (first.description, first.scenario, first.source) == (None, "kitchen",
                                                                 "epic-kitchens")
    assert first.meta["narration_ids"] == ["P01_01_0", "P01_01_1"]
    assert first.meta["verbs"] == ["open", "look"]
    assert dict(skips.counts) == {"bad_field": 1, "missing_file": 1}
    assert "line 9" in skips.examples["bad_field"][0]
    assert "P03_01" in skips.examples["missing_file"][0]
    assert skips.warning_counts["overlapping narrations"] == 1
    middle = EpicKitchensSource(path, skips=Skips(), steps=3, frame="middle",
                                description="working in a kitchen")
    run, _ = middle.iter_episodes()  # the second video has 2 readable narrations
    assert run.steps == ("open fridge", "look inside", "take milk")
    assert run.description == "working in a kitchen"
    assert indices(run.frames) == [5, 15, 25]
    assert parse_timestamp("00:01:02.37") == 62.37
    assert parse_timestamp("1:02") is None


def test_epic_csv_without_columns_is_refused_naming_them(tmp_path: Path) -> None:
    columns = tuple(c for c in EPIC_COLUMNS if c not in ("video_id", "stop_timestamp"))
    path = write_epic(tmp_path, columns)
    with pytest.raises(InputError) as err:
        EpicKitchensSource(path, skips=Skips())
    assert str(err.value) == (f"{path}: not an EPIC-KITCHENS narration CSV, missing columns "
                              "video_id, stop_timestamp")
    with pytest.raises(InputError, match="steps must be at least 2"):
        open_source(f"epic-kitchens:{path}", options={"epic-kitchens": {"steps": 1}})


# ---------------------------------------------------------------- end to end


def _inputs(kind: str, root: Path) -> tuple[Path, dict[str, list[int]]]:
    """Input files for `kind` and the frame index shown by each episode's steps."""
    if kind == "segments":
        lines = []
        for n in range(4):
            write_video(root / f"v{n}.mp4", changes=(1.3 + n,))
            lines.append({"video": f"v{n}.mp4", "description": f"task number {n}",
                          "segments": [seg(t, t + 1, f"step {t}") for t in range(5)]})
        return write_lines(root / "seg.jsonl", lines), {
            f"v{n}.mp4": [9, 19, 29, 39, 49] for n in range(4)}
    if kind == "coin":
        database = {}
        for n in range(4):
            write_video(root / f"c{n}.mp4", changes=(0.5 + n,))
            database[f"c{n}"] = {"class": ["ArcWeld", "MakeTea", "ParkCar", "WashDog"][n],
                                 "subset": "training", "recipe_type": n,
                                 "annotation": [{"segment": [t, t + 1], "label": f"s{t}",
                                                 "id": str(t)} for t in range(5)]}
        (root / "COIN.json").write_text(json.dumps({"database": database}))
        return root / "COIN.json", {f"c{n}": [9, 19, 29, 39, 49] for n in range(4)}
    path = write_epic(root)
    return path, {"P01_01/0000": [9, 19, 29, 39], "P02_03/0000": []}


@pytest.mark.parametrize("kind", ["segments", "coin", "epic-kitchens"])
def test_build_end_to_end_answers_follow_the_video(kind: str, tmp_path: Path) -> None:
    from tpru.cli import main

    root = tmp_path / "input"
    root.mkdir()
    path, shown = _inputs(kind, root)
    out = tmp_path / "out"
    options = ["source_options={epic-kitchens: {steps: 4}}"] if kind == "epic-kitchens" else []
    assert main(["build", "-q", "--source", f"{kind}:{path}", "--out", str(out),
                 "split.ratios={train: 1.0}", "filter.min_side=16",
                 "tasks.frames_per_sample=4", *options]) == 0
    samples = list(read_jsonl(out / "train.jsonl", Sample))
    ordering = [s for s in samples if s.task == "ordering" and not s.negative]
    assert ordering
    for sample in ordering:
        truth = [shown[sample.episode_id][i] for i in sample.meta["window"]]
        if sample.options is None:  # letters: the images in chronological order
            order = [ord(letter) - ord("A") for letter in sample.answer]
        else:
            order = [int(x) - 1 for x in sample.meta["order"].split()]
        seen = [frame_index(Image.open(out / sample.images[i])) for i in order]
        assert seen == truth, sample.id
