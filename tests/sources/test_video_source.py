"""VideoSource and decode_at_times on small H.264 videos written by the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tpru.diagnostics import InputError, Skips
from tpru.sources import open_source
from tpru.sources.base import load_frames
from tpru.sources.video import (
    VideoSource,
    decode_at_times,
    decoded_frames,
    open_video,
    spread,
    video_ref,
)

pytest.importorskip("av")


def test_time_mode_takes_one_frame_every_1_over_fps_seconds(
        tmp_path: Path, skips: Skips, write_video: Any, scene_of: Any) -> None:
    clip = write_video(tmp_path / "clip.mp4", seconds=3)
    [episode] = VideoSource(clip, skips=skips, fps=2.0).iter_episodes()
    assert episode.frames == tuple(video_ref(str(clip), t) for t in
                                   (0.0, 0.5, 1.0, 1.5, 2.0, 2.5))
    assert episode.frames[1] == f"{clip}#t=0.500"
    assert (episode.id, episode.scenario, episode.source) == ("clip.mp4", "video", "video")
    assert [scene_of(f) for f in load_frames(episode.frames)] == [0, 0, 1, 1, 2, 2]


def test_keyframes_mode_keeps_the_frames_where_the_picture_changes(
        tmp_path: Path, skips: Skips, write_video: Any, scene_of: Any) -> None:
    clip = write_video(tmp_path / "clip.mkv", seconds=4)
    source = VideoSource(clip, skips=skips, mode="keyframes", fps=5.0, change_threshold=0.1)
    [episode] = source.iter_episodes()
    assert episode.frames == tuple(video_ref(str(clip), t) for t in (0.0, 1.0, 2.0, 3.0))
    assert [scene_of(f) for f in load_frames(episode.frames)] == [0, 1, 2, 3]
    # A threshold above every change keeps only the first frame.
    [still] = VideoSource(clip, skips=skips, mode="keyframes", fps=5.0,
                          change_threshold=1.0).iter_episodes()
    assert still.frames == (video_ref(str(clip), 0.0),)


def test_max_frames_spreads_frames_evenly(tmp_path: Path, skips: Skips,
                                          write_video: Any) -> None:
    clip = write_video(tmp_path / "clip.mp4", seconds=3)
    [episode] = VideoSource(clip, skips=skips, fps=10.0, max_frames=4).iter_episodes()
    assert episode.frames == tuple(video_ref(str(clip), t) for t in (0.0, 0.9, 1.9, 2.9))
    assert spread([1.0, 2.0, 3.0], 5) == [1.0, 2.0, 3.0]
    assert spread([1.0, 2.0, 3.0], 1) == [1.0]


def test_a_folder_of_videos_in_natural_order_with_sidecars(tmp_path: Path, skips: Skips,
                                                           write_video: Any) -> None:
    root = tmp_path / "videos"
    for name in ["clip10.mp4", "clip2.MKV", "sub/clip1.mov"]:
        write_video(root / name, seconds=2)
    (root / "notes.txt").write_text("not a video")
    (root / "clip10.mp4.json").write_text(json.dumps(
        {"scenario": "lego", "description": "adding bricks", "steps": ["a", "b"],
         "meta": {"k": 1}}))
    (root / "clip2.json").write_text(json.dumps({"id": "second"}))
    found = list(VideoSource(root, skips=skips).iter_episodes())
    assert [e.id for e in found] == ["second", "clip10.mp4", "sub/clip1.mov"]
    ten = found[1]
    assert (ten.scenario, ten.description, ten.steps, ten.meta) == (
        "lego", "adding bricks", ("a", "b"), {"k": 1})
    assert not skips.counts


@pytest.mark.parametrize(("reason", "sidecar"), [
    ("steps_count", {"steps": ["only one"]}),
    ("bad_field", {"description": 5}),
    ("invalid_json", "{"),
])
def test_bad_sidecars_are_skipped_and_counted(tmp_path: Path, write_video: Any, reason: str,
                                              sidecar: Any) -> None:
    skips = Skips()
    clip = write_video(tmp_path / "clip.mp4", seconds=2)
    path = tmp_path / "clip.json"
    path.write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar))
    assert list(VideoSource(clip, skips=skips).iter_episodes()) == []
    assert dict(skips.counts) == {reason: 1}
    assert str(path) in skips.examples[reason][0]


@pytest.mark.parametrize("mode", ["time", "keyframes"])
def test_unreadable_videos_are_skipped_and_counted(tmp_path: Path, write_video: Any,
                                                   truncate: Any, mode: str) -> None:
    skips = Skips()
    root = tmp_path / "videos"
    write_video(root / "a_good.mp4", seconds=2)
    cut = truncate(write_video(root / "b_cut.mp4", seconds=2), 0.5)  # index at the end: lost
    garbage = root / "c_garbage.avi"
    garbage.write_bytes(b"\x00not a video" * 50)
    found = list(VideoSource(root, skips=skips, mode=mode).iter_episodes())  # type: ignore[arg-type]
    assert [e.id for e in found] == ["a_good.mp4"]
    assert dict(skips.counts) == {"unreadable_video": 2}
    messages = skips.examples["unreadable_video"]
    assert str(cut) in messages[0] and str(garbage) in messages[1]
    with pytest.raises(InputError, match=str(cut)):
        list(VideoSource(cut, skips=Skips(strict=True), mode=mode).iter_episodes())  # type: ignore[arg-type]


def test_decode_at_times_answers_in_the_order_asked(tmp_path: Path, write_video: Any,
                                                    scene_of: Any) -> None:
    clip = str(write_video(tmp_path / "clip.mp4", seconds=4))
    times = [2.5, 0.0, 1.05, 3.0, 0.0]
    frames = list(decode_at_times(clip, times))
    assert [f.ref for f in frames] == [video_ref(clip, t) for t in times]
    assert [scene_of(f) for f in frames] == [2, 0, 1, 3, 0]
    assert all(f.image is not None and f.image.mode == "RGB" for f in frames)
    # Given refs come back as they were.
    [frame] = decode_at_times(clip, [1.5], refs=["clip.mp4#t=1.5"])
    assert frame.ref == "clip.mp4#t=1.5"


@pytest.mark.parametrize("encoder", [{"g": "2", "bf": "0"}, {"g": "5", "bf": "2"},
                                     {"g": "250", "bf": "3"}])
def test_decode_at_times_skips_keyframe_intervals_yet_gives_the_frames_asked(
        tmp_path: Path, encoder: dict[str, str]) -> None:
    from lerobot_fixtures import FPS, bar_of, frame_pixels, write_mp4

    clip = tmp_path / "clip.mp4"
    write_mp4(clip, [frame_pixels(0, k) for k in range(12)], options=encoder)
    times = [0.5, 1.1, 0.0, 0.6, 0.3, 0.9]
    frames = list(decode_at_times(str(clip), times))
    assert [bar_of(f.image) for f in frames if f.image is not None] == [
        round(t * FPS) for t in times]
    # Decoding for one late frame leaves out the intervals before its keyframe.
    container, stream = open_video(str(clip))
    with container:
        keyframes = [round(float(p.pts * p.time_base) * FPS) for p in container.demux(stream)
                     if p.is_keyframe and p.pts is not None]
        container.seek(0)
        decoded = [round(f.time * FPS) for f in decoded_frames(
            container, stream, next_wanted=lambda: 0.9) if f.time is not None]
    first = max(k for k in keyframes if k <= 9)
    assert decoded == list(range(first, 12))
    assert first > 0 or encoder["g"] == "250"


def test_decode_at_times_past_the_end_gives_error_frames(tmp_path: Path,
                                                         write_video: Any, scene_of: Any) -> None:
    clip = str(write_video(tmp_path / "clip.mp4", seconds=2))
    last, after = decode_at_times(clip, [1.95, 9.0])
    assert scene_of(last) == 1
    assert after.image is None and after.error == "unreadable_video"
    assert clip in after.message


@pytest.mark.parametrize(("name", "faststart", "keep", "some_decoded"), [
    ("clip.mp4", False, 0.5, False),  # index at the end: nothing can be read
    ("clip.mp4", True, 0.5, False),   # index in front, but the cut falls in the first frame
    ("clip.mp4", True, 0.8, True),    # index in front: the frames before the cut decode
    ("clip.mkv", False, 0.5, True),
])
def test_decode_at_times_on_a_truncated_video_never_raises(
        tmp_path: Path, write_video: Any, truncate: Any, name: str, faststart: bool,
        keep: float, some_decoded: bool) -> None:
    clip = truncate(write_video(tmp_path / name, seconds=4, faststart=faststart), keep)
    times = [0.0, 1.0, 2.0, 3.0, 3.5]
    frames = list(decode_at_times(str(clip), times))
    assert [f.ref for f in frames] == [video_ref(str(clip), t) for t in times]
    errors = [f for f in frames if f.error is not None]
    assert errors, "the second half of the video is gone"
    assert all(f.error == "unreadable_video" and f.image is None for f in errors)
    assert all(f.message.startswith(f"{clip}: ") for f in errors)
    assert (len(errors) < len(frames)) == some_decoded
    decoded = [f for f in frames if f.error is None]
    assert all(f.image is not None for f in decoded)


def test_decode_at_times_on_a_missing_file(tmp_path: Path) -> None:
    [frame] = decode_at_times(str(tmp_path / "gone.mp4"), [1.0])
    assert frame.error == "missing_file" and "gone.mp4" in frame.message


def test_load_frames_mixes_files_and_videos_in_order(tmp_path: Path, write_video: Any,
                                                     write_image: Any, scene_of: Any) -> None:
    one = str(write_video(tmp_path / "one.mp4", seconds=3))
    two = str(write_video(tmp_path / "two.mkv", seconds=3))
    image = str(write_image(tmp_path / "still.png"))
    refs = [image, video_ref(one, 2.0), video_ref(one, 0.0), video_ref(two, 1.0), image,
            video_ref(one, 1.0), str(tmp_path / "missing.jpg")]
    frames = list(load_frames(refs))
    assert [f.ref for f in frames] == refs
    assert frames[0].data == Path(image).read_bytes() and frames[4].data == frames[0].data
    assert [scene_of(frames[i]) for i in (1, 2, 3, 5)] == [2, 0, 1, 1]
    assert frames[6].error == "missing_file"


def test_open_source_with_defaults(tmp_path: Path, write_video: Any) -> None:
    clip = write_video(tmp_path / "clip.mp4", seconds=2)
    [episode] = open_source(f"video:{clip}").iter_episodes()
    assert episode.frames == (video_ref(str(clip), 0.0), video_ref(str(clip), 1.0))
    with pytest.raises(InputError, match="no such video"):
        open_source(f"video:{tmp_path / 'missing.mp4'}")


def test_options_are_checked(tmp_path: Path, skips: Skips) -> None:
    for options in ({"fps": 0}, {"mode": "scenes"}, {"change_threshold": 2},
                    {"max_frames": 0}):
        with pytest.raises(ValueError):
            VideoSource(tmp_path, skips=skips, **options)


@pytest.mark.parametrize("suffix", [".ts", ".m4v"])
def test_transport_streams_and_m4v_files_are_videos(tmp_path: Path, skips: Skips,
                                                     write_video: Any, scene_of: Any,
                                                     suffix: str) -> None:
    clip = write_video(tmp_path / "videos" / f"clip{suffix}", seconds=3)
    [episode] = VideoSource(tmp_path / "videos", skips=skips, fps=1.0).iter_episodes()
    assert episode.id == f"clip{suffix}"
    # A transport stream's first frame may come a little after 0 (its muxer's delay).
    assert all(f.startswith(f"{clip}#t=") for f in episode.frames)
    assert [scene_of(f) for f in load_frames(episode.frames)] == [0, 1, 2]
    assert not skips.counts


def test_a_folder_without_videos_names_the_suffixes_it_accepts(tmp_path: Path,
                                                                skips: Skips) -> None:
    root = tmp_path / "clips"
    root.mkdir()
    for name in ("a.flv", "b.flv", "notes.txt", "a.flv.json"):
        (root / name).write_text("x")
    assert list(VideoSource(root, skips=skips).iter_episodes()) == []
    assert skips.examples["empty_episode"] == [
        f"{root}: no video files (.avi, .m4v, .mkv, .mov, .mp4, .ts, .webm); "
        "it has .flv (2), .txt (1)"]
