"""LeRobotSource on small v2.1 and v3.0 datasets in lerobot's layouts (`lerobot_fixtures`)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("pyarrow")

from lerobot_fixtures import (
    FPS,
    TOP,
    WRIST,
    bar_of,
    episode_of,
    write_v21,
    write_v30,
)

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources import open_source
from tpru.sources.base import load_frames, split_video_ref
from tpru.sources.lerobot import LeRobotSource

EPISODES = [(8, "Pick up the red cube."), (6, "Stack the blue block"), (10, "Pick up the pen")]


def seen(episode: Episode) -> list[tuple[int, int]]:
    """(episode, frame index) that each decoded frame of `episode` shows."""
    out = []
    for frame in load_frames(episode.frames):
        assert frame.image is not None or frame.data is not None, frame.message
        image = frame.image or Image.open(BytesIO(frame.data or b""))
        out.append((episode_of(image), bar_of(image)))
    return out


@pytest.fixture
def v21(tmp_path: Path) -> Path:
    return write_v21(tmp_path / "so100_v21", EPISODES)


@pytest.fixture
def v30(tmp_path: Path) -> Path:
    # Episodes 0 and 1 share one mp4, episode 2 starts the next file.
    return write_v30(tmp_path / "so100_v30", EPISODES, video_files=[0, 0, 1])


def test_v21_every_frame_of_every_episode_in_order(v21: Path, skips: Skips) -> None:
    episodes = list(LeRobotSource(v21, skips=skips, fps=FPS).iter_episodes())
    assert [e.id for e in episodes] == ["episode_000000", "episode_000001", "episode_000002"]
    for e, (length, task) in enumerate(EPISODES):
        assert seen(episodes[e]) == [(e, k) for k in range(length)]
        assert episodes[e].description == process(task)
        assert episodes[e].meta["tasks"] == [task]
        assert episodes[e].meta["frame_indices"] == list(range(length))
    assert episodes[0].frames[1].endswith(f"videos/chunk-000/{TOP}/episode_000000.mp4#t=0.100")
    assert (episodes[0].scenario, episodes[0].source) == ("robot", "lerobot")
    assert episodes[0].meta["lerobot_version"] == "v2.1"
    assert episodes[0].meta["robot_type"] == "so100"
    assert not skips.counts


def process(task: str) -> str:
    from tpru.sources.text import process_phrase

    return process_phrase(task)


def test_v30_packed_episodes_come_from_their_own_time_range(v30: Path, skips: Skips) -> None:
    episodes = list(LeRobotSource(v30, skips=skips, fps=FPS).iter_episodes())
    assert [seen(e) for e in episodes] == [[(e, k) for k in range(n)]
                                           for e, (n, _) in enumerate(EPISODES)]
    # Episode 1 starts 0.8 s into file-000; episode 2 at 0 s of file-001.
    refs = [split_video_ref(e.frames[0]) for e in episodes]
    assert [(Path(p).name, t) for p, t in (r for r in refs if r)] == [
        ("file-000.mp4", 0.0), ("file-000.mp4", 0.8), ("file-001.mp4", 0.0)]
    assert episodes[1].description == "stacking the blue block"
    assert not skips.counts


def test_v30_opens_a_packed_video_once_for_its_episodes(v30: Path, skips: Skips,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tpru.sources import lerobot_frames

    opened: list[str] = []
    real = lerobot_frames.open_video

    def counting(path: str):  # type: ignore[no-untyped-def]
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(lerobot_frames, "open_video", counting)
    episodes = list(LeRobotSource(v30, skips=skips, mode="keyframes", fps=FPS,
                                  change_threshold=0.0).iter_episodes())
    assert opened == ["file-000.mp4", "file-001.mp4"]
    assert [seen(e) for e in episodes] == [[(e, k) for k in range(n)]
                                           for e, (n, _) in enumerate(EPISODES)]
    # Split for a build's workers: the listing opens no video; a key is one file's episodes.
    opened.clear()
    source = LeRobotSource(v30, skips=skips, mode="keyframes", fps=FPS, change_threshold=0.0)
    keys = list(source.episode_keys())
    assert opened == [] and [[r.index for r in records] for _, records in keys] == [[0, 1], [2]]
    made = [source.open_episode(key) for key in keys]
    assert opened == ["file-000.mp4", "file-001.mp4"] and [len(m) for m in made] == [2, 1]
    assert [e.id for m in made for e in m] == [e.id for e in episodes]


def test_time_sampling_and_max_frames(v21: Path, v30: Path, skips: Skips) -> None:
    for root in (v21, v30):
        [first, _, third] = LeRobotSource(root, skips=skips, fps=5.0).iter_episodes()
        assert first.meta["frame_indices"] == [0, 2, 4, 6]
        assert seen(third) == [(2, k) for k in (0, 2, 4, 6, 8)]
        [_, _, spread] = LeRobotSource(root, skips=skips, fps=FPS, max_frames=3).iter_episodes()
        assert spread.meta["frame_indices"] == [0, 4, 9]


def test_keyframes_start_afresh_in_each_packed_episode(v30: Path, skips: Skips) -> None:
    still = list(LeRobotSource(v30, skips=skips, mode="keyframes", fps=FPS,
                               change_threshold=1.0).iter_episodes())
    assert [seen(e) for e in still] == [[(0, 0)], [(1, 0)], [(2, 0)]]


def test_camera_option(tmp_path: Path, skips: Skips) -> None:
    root = write_v21(tmp_path / "two", EPISODES[:2], cameras={TOP: "video", WRIST: "video"})
    assert [e.meta["camera"] for e in LeRobotSource(root, skips=skips).iter_episodes()] == \
        [TOP, TOP]
    both = list(LeRobotSource(root, skips=skips, camera="all").iter_episodes())
    assert [e.id for e in both] == [f"episode_00000{i}/{c}" for c in (TOP, WRIST)
                                    for i in (0, 1)]
    wrist = list(LeRobotSource(root, skips=skips, camera=WRIST).iter_episodes())
    assert WRIST in wrist[0].frames[0]
    with pytest.raises(InputError) as err:
        LeRobotSource(root, skips=skips, camera="observation.images.side")
    assert str(err.value).endswith(f"no camera 'observation.images.side' (cameras: {TOP}, "
                                   f"{WRIST}, or all)")


def test_episode_and_task_filters(v21: Path, v30: Path, skips: Skips) -> None:
    for root in (v21, v30):
        picked = LeRobotSource(root, skips=skips, episodes=[2, 0]).iter_episodes()
        assert [e.meta["episode_index"] for e in picked] == [0, 2]
        by_task = LeRobotSource(root, skips=skips, tasks=["pick up"]).iter_episodes()
        assert [e.meta["episode_index"] for e in by_task] == [0, 2]
        assert [e.meta["episode_index"] for e in
                LeRobotSource(root, skips=skips, tasks="STACK").iter_episodes()] == [1]
    with pytest.raises(ValueError, match="episodes must be a list"):
        LeRobotSource(v21, skips=skips, episodes=["0"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="episodes must be a list"):
        LeRobotSource(v21, skips=skips, episodes=[])
    assert not skips.counts and not skips.warning_counts


@pytest.mark.parametrize("version", ["v21", "v30"])
def test_episodes_asked_for_that_the_dataset_lacks(version: str, request: pytest.FixtureRequest,
                                                   skips: Skips) -> None:
    root = request.getfixturevalue(version)
    source = LeRobotSource(root, skips=skips, episodes=[1, 7, 8, 9, 12])
    assert [e.meta["episode_index"] for e in source.iter_episodes()] == [1]
    assert skips.counts["missing_episode"] == 4
    assert skips.examples["missing_episode"][0] == (
        f"{root}: no episode 7-9, 12 (asked for in 'episodes'); it has episodes 0-2")
    with pytest.raises(InputError, match=rf"^{re.escape(str(root))}: no episode 5, 40 "
                                         r"\(asked for in 'episodes'\); it has episodes 0-2$"):
        LeRobotSource(root, skips=Skips(), episodes=[40, 5])
    with pytest.raises(InputError, match="--strict stops"):
        LeRobotSource(root, skips=Skips(strict=True), episodes=[0, 3])


def test_tasks_asked_for_that_match_nothing(v30: Path, skips: Skips) -> None:
    source = LeRobotSource(v30, skips=skips, tasks=["stack", "pour"])
    assert [e.meta["episode_index"] for e in source.iter_episodes()] == [1]
    assert skips.warning_examples["unmatched task"] == [
        f"{v30}: no task contains 'pour' (asked for in 'tasks')"]
    assert not skips.counts
    with pytest.raises(InputError, match=r"no task contains 'pour' or 'wipe' \(asked for in "
                                         r"'tasks'\); its tasks: 'Pick up the pen', "):
        LeRobotSource(v30, skips=Skips(), tasks=["pour", "wipe"])
    with pytest.raises(InputError, match=r"none of the episodes asked for in 'episodes' has a "
                                         r"task containing 'stack'$"):
        LeRobotSource(v30, skips=Skips(), episodes=[0, 2], tasks="stack")


def test_image_features_in_the_parquet(tmp_path: Path, skips: Skips,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPRU_CACHE", str(tmp_path / "cache"))
    root = write_v21(tmp_path / "images", EPISODES, cameras={TOP: "image"})
    episodes = list(LeRobotSource(root, skips=skips, fps=5.0).iter_episodes())
    assert seen(episodes[2]) == [(2, k) for k in (0, 2, 4, 6, 8)]
    # References into the parquet's cells, read there by the build: nothing is copied out.
    assert episodes[0].frames[1] == f"{root}/data/chunk-000/episode_000000.parquet" \
        f"#episode_index=0&frame_index=2&column={TOP}"
    assert not (tmp_path / "cache").exists()
    keyed = list(LeRobotSource(root, skips=skips, mode="keyframes", fps=FPS,
                               change_threshold=1.0).iter_episodes())
    assert [seen(e) for e in keyed] == [[(0, 0)], [(1, 0)], [(2, 0)]]
    assert not skips.counts


def test_image_features_of_a_v30_parquet_read_episode_by_episode(tmp_path: Path,
                                                                 skips: Skips) -> None:
    root = write_v30(tmp_path / "images", EPISODES, cameras={TOP: "image", WRIST: "image"})
    episodes = list(LeRobotSource(root, skips=skips, fps=5.0, camera="all").iter_episodes())
    assert [seen(e) for e in episodes] == [[(e, k) for k in range(0, n, 2)]
                                           for e, (n, _) in enumerate(EPISODES)] * 2
    assert not skips.counts
    data = root / "data/chunk-000/file-000.parquet"
    [absent] = load_frames([episodes[0].frames[0].replace("frame_index=0", "frame_index=99")])
    assert (absent.error, absent.message) == \
        ("unreadable_file", f"{data}: episode 0 frame 99: no {TOP} image bytes")
    data.write_bytes(data.read_bytes()[:200])  # damaged after the listing: the build counts it
    frames = list(load_frames(episodes[1].frames))
    assert {f.error for f in frames} == {"unreadable_file"}
    assert frames[0].message.startswith(f"{data}: cannot read (")
    data.unlink()
    assert {(f.error, f.message) for f in load_frames(episodes[1].frames)} == \
        {("missing_file", f"{data}: no such file")}


@pytest.mark.parametrize("writer", [write_v21, write_v30])
def test_several_tasks_are_taken_in_frame_order(writer: Callable[..., Path], tmp_path: Path,
                                                skips: Skips) -> None:
    # lerobot lists an episode's tasks as list(set(...)); the fixture lists them reversed.
    tasks = ("Open the drawer", "Put the pen in the drawer")
    root = writer(tmp_path / "two_tasks", [(6, "Wipe the table"), (8, tasks)])
    first, second = LeRobotSource(root, skips=skips, fps=5.0).iter_episodes()
    assert second.description == "opening the drawer"
    assert second.meta["tasks"] == list(tasks)
    assert second.steps == (tasks[0], tasks[0], tasks[1], tasks[1])
    assert (first.description, first.meta["tasks"], first.steps) == (
        "wiping the table", ["Wipe the table"], None)
    assert not skips.counts


def test_a_language_column_gives_the_steps(tmp_path: Path, skips: Skips) -> None:
    root = write_v21(tmp_path / "lang", EPISODES[:1], language=["reach", "grasp"])
    [episode] = LeRobotSource(root, skips=skips, fps=5.0).iter_episodes()
    assert episode.steps == ("reach", "reach", "grasp", "grasp")


def test_open_source_and_its_options(v30: Path) -> None:
    source = open_source(f"lerobot:{v30}", options={"lerobot": {"fps": 5.0, "episodes": [1]}})
    [episode] = source.iter_episodes()
    assert episode.meta["frame_indices"] == [0, 2, 4]
    with pytest.raises(InputError, match="unknown|not take|option"):
        open_source(f"lerobot:{v30}", options={"lerobot": {"cameras": "all"}})


# ---------------------------------------------------------------- bad input


def test_a_missing_video_is_a_counted_skip_naming_file_and_episode(v21: Path,
                                                                     skips: Skips) -> None:
    (v21 / f"videos/chunk-000/{TOP}/episode_000001.mp4").unlink()
    episodes = list(LeRobotSource(v21, skips=skips).iter_episodes())
    assert [e.meta["episode_index"] for e in episodes] == [0, 2]
    [message] = skips.examples["missing_file"]
    assert "episode_000001.mp4" in message and "episodes 1" in message


def test_a_truncated_video_is_a_counted_skip(v30: Path, skips: Skips) -> None:
    video = v30 / f"videos/{TOP}/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[:300])
    episodes = list(LeRobotSource(v30, skips=skips).iter_episodes())
    assert [e.meta["episode_index"] for e in episodes] == [2]
    [message] = skips.examples["unreadable_video"]
    assert "file-000.mp4" in message and "episodes 0, 1" in message


def test_an_episode_running_past_its_video_is_skipped(v30: Path, skips: Skips) -> None:
    import pyarrow.parquet as pq

    path = v30 / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path).to_pylist()
    table[1]["length"] = 20  # 0.8 s + 2 s, in a 1.4 s video
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), path)
    episodes = list(LeRobotSource(v30, skips=skips).iter_episodes())
    assert [e.meta["episode_index"] for e in episodes] == [0, 2]
    [message] = skips.examples["video_too_short"]
    assert "file-000.mp4: episode 1 runs to 2.800s, the video ends at 1.400s" in message


@pytest.mark.parametrize(("remove", "expected"), [
    ("meta/info.json", "not a LeRobot dataset (no meta/info.json)"),
    ("meta/episodes.jsonl", "no meta/episodes.jsonl"),
])
def test_missing_meta_files_are_one_line_errors(v21: Path, skips: Skips, remove: str,
                                                expected: str) -> None:
    (v21 / remove).unlink()
    with pytest.raises(InputError, match=re.escape(expected)):
        LeRobotSource(v21, skips=skips)


def test_missing_v30_episode_metadata_and_an_unknown_version(v30: Path, skips: Skips) -> None:
    info = json.loads((v30 / "meta/info.json").read_text())
    shutil.rmtree(v30 / "meta/episodes")
    with pytest.raises(InputError, match=r"no meta/episodes/chunk-\*/file-\*.parquet"):
        LeRobotSource(v30, skips=skips)
    (v30 / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    with pytest.raises(InputError, match="codebase_version 'v1.6' is not read"):
        LeRobotSource(v30, skips=skips)


def test_a_repo_id_offline_says_it_could_not_be_downloaded(
        tmp_path: Path, skips: Skips, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(InputError) as err:
        LeRobotSource("lerobot/svla_so100_pickplace", skips=skips)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("lerobot/svla_so100_pickplace: no such folder, and the Hugging "
                              "Face dataset could not be downloaded")
    assert message.endswith("pass a local LeRobot dataset folder")
    with pytest.raises(InputError, match="no such LeRobot dataset folder"):
        LeRobotSource("missing/dir/here", skips=skips)


def _has_encoder(name: str) -> bool:
    from av.codec import Codec

    try:
        Codec(name, "w")
    except Exception:
        return False
    return True


AV1_ENCODER = next((n for n in ("libsvtav1", "libaom-av1") if _has_encoder(n)), None)


@pytest.mark.skipif(AV1_ENCODER is None, reason="no AV1 encoder in this PyAV build")
def test_av1_videos_decode(tmp_path: Path, skips: Skips) -> None:
    assert AV1_ENCODER is not None
    root = write_v30(tmp_path / "av1", EPISODES[:2], codec=AV1_ENCODER)
    episodes = list(LeRobotSource(root, skips=skips, fps=FPS).iter_episodes())
    assert [seen(e) for e in episodes] == [[(e, k) for k in range(n)]
                                           for e, (n, _) in enumerate(EPISODES[:2])]


# ---------------------------------------------------------------- the build, end to end


def test_build_from_a_lerobot_dataset_keeps_frame_order(v30: Path, tmp_path: Path) -> None:
    from tpru.cli import main
    from tpru.schema import Sample, read_jsonl

    out = tmp_path / "built"
    assert main(["build", "-q", "--source", f"lerobot:{v30}", "--out", str(out),
                 "source_options={lerobot: {fps: 10}}", "filter.min_side=32"]) == 0
    info = json.loads((out / "build.json").read_text())
    samples = [s for split in info["splits"] for s in read_jsonl(out / f"{split}.jsonl", Sample)]
    ordering = [s for s in samples if s.task == "ordering"]
    assert ordering
    for sample in ordering:
        if sample.meta["form"] == "letters":  # "ADBC": the labels in chronological order
            order = [ord(letter) - ord("A") for letter in sample.answer]
        else:  # the answer's option, or the truth when the options leave it out
            assert sample.options is not None
            chosen = sample.options[ord(sample.answer) - ord("A")]
            text = chosen if chosen[0].isdigit() else sample.meta["order"]
            order = [int(label) - 1 for label in text.split()]
        bars = []
        for i in order:
            with Image.open(out / sample.question_images[i]) as image:
                bars.append(bar_of(image))
        # Every frame was sampled (fps 10), so the bars are the window's frame indices.
        assert bars == sample.meta["window"], sample.id


def test_a_missing_parquet_of_image_frames_is_counted_per_episode(
        tmp_path: Path, skips: Skips, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPRU_CACHE", str(tmp_path / "cache"))
    root = write_v21(tmp_path / "images", EPISODES, cameras={TOP: "image"})
    (root / "data/chunk-000/episode_000001.parquet").unlink()
    episodes = list(LeRobotSource(root, skips=skips).iter_episodes())
    assert [e.meta["episode_index"] for e in episodes] == [0, 2]
    [message] = skips.examples["unreadable_file"]
    assert "episode_000001.parquet: cannot read" in message and "(episode 1)" in message
