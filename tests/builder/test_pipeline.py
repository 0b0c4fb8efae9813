"""The builder end to end: real image and video files in, a dataset folder out.

Every build goes through the command line (`tpru.cli.main`, or a real
subprocess where the build is killed), and every check reads the files the
build wrote.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from episode_files import (
    blurred,
    encode,
    frame_image,
    truncate,
    write_episode,
    write_episodes,
    write_image,
    write_video,
)
from PIL import Image

from helpers import folder_bytes
from tpru.builder import pipeline
from tpru.builder.config import BuildConfig
from tpru.cli import main
from tpru.schema import IMAGE_OPTION, NONE_OPTION, Sample, read_jsonl

SPLIT_HALVES = "split.ratios={train: 0.5, test: 0.5}"


def build(out: Path, *sources: str, args: tuple[str, ...] = ()) -> int:
    """`tpru build -q --source ... --out OUT ARGS...`; the exit status."""
    argv = ["build", "-q", "--out", str(out), *args]
    for source in sources:
        argv += ["--source", source]
    return main(argv)


def samples_by_split(out: Path) -> dict[str, list[Sample]]:
    info = json.loads((out / "build.json").read_text())
    return {split: list(read_jsonl(out / f"{split}.jsonl", Sample)) for split in info["splits"]}


def build_info(out: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((out / "build.json").read_text())
    return info


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_output_whatever_the_workers(
        episodes_dir: Path, tmp_path: Path) -> None:
    source = f"frames:{episodes_dir}"
    assert build(tmp_path / "a", source, args=("--workers", "1")) == 0
    assert build(tmp_path / "b", source, args=("--workers", "2")) == 0
    assert build(tmp_path / "c", source, args=("--seed", "1")) == 0
    a, b, c = (folder_bytes(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
    assert a["build.json"] != c["build.json"]
    assert any(a[name] != c.get(name) for name in a if name.endswith(".jsonl"))


# ---------------------------------------------------------------- atomicity and resume


def _kill_when_started(command: list[str], records: Path, lines: int) -> int:
    """Run `command`, SIGKILL it (and its workers) once `records` has `lines` lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if records.exists() and records.read_bytes().count(b"\n") >= lines:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        else:
            pytest.fail(f"the build ended (status {process.poll()}) before it could be "
                        f"interrupted: {process.stderr.read().decode() if process.stderr else ''}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stderr:
            process.stderr.close()
    return records.read_bytes().count(b"\n")


@pytest.mark.slow
def test_interrupted_build_leaves_no_dataset_and_resume_finishes_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Frames larger than image.max_side, so each is decoded, downscaled and re-encoded:
    # the build takes a few seconds, long enough to be killed in the middle.
    episodes = write_episodes(tmp_path / "episodes", 20, size=(800, 600))
    out = tmp_path / "data"
    partial = tmp_path / "data.partial"
    argv = ["build", "-q", "--source", f"frames:{episodes}", "--out", str(out), "--seed", "3"]

    done = _kill_when_started([sys.executable, "-m", "tpru.cli", *argv],
                              partial / "work" / "episodes.jsonl", lines=2)
    assert 2 <= done < 20
    assert not out.exists()
    assert partial.is_dir() and not (partial / "build.json").exists()

    # A different configuration must not continue this build.
    assert main([*argv[:-1], "4", "--resume"]) == 1
    assert "cannot resume" in one_line_error(capsys)
    assert not out.exists() and partial.is_dir()

    assert main([*argv, "--resume"]) == 0
    assert not partial.exists()
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out",
                 str(tmp_path / "reference"), "--seed", "3", "--workers", "2"]) == 0
    assert folder_bytes(out) == folder_bytes(tmp_path / "reference")

    # A finished dataset is never replaced unless asked.
    capsys.readouterr()
    assert main(argv) == 1
    assert "--overwrite" in one_line_error(capsys)
    assert main([*argv, "--overwrite"]) == 0
    assert folder_bytes(out) == folder_bytes(tmp_path / "reference")

    # Nor is a folder the build did not write, even with --overwrite.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main([*argv[:argv.index("--out") + 1], str(other),
                 *argv[argv.index("--out") + 2:], "--overwrite"]) == 1
    assert "is not a dataset tpru wrote" in one_line_error(capsys)
    assert (other / "keep.txt").read_text() == "mine"


def test_interrupt_after_the_samples_are_written_resumes_to_the_same_dataset(
        episodes_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real_finish = pipeline._finish

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_finish", interrupted)
    out = tmp_path / "data"
    assert build(out, f"frames:{episodes_dir}") == 130
    assert "--resume" in one_line_error(capsys)
    assert not out.exists()
    assert any((tmp_path / "data.partial").glob("*.jsonl"))

    monkeypatch.setattr(pipeline, "_finish", real_finish)
    assert build(out, f"frames:{episodes_dir}", args=("--resume",)) == 0
    assert build(tmp_path / "reference", f"frames:{episodes_dir}") == 0
    assert folder_bytes(out) == folder_bytes(tmp_path / "reference")


# ---------------------------------------------------------------- filtering


@pytest.fixture(scope="module")
def bad_episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four clean episodes and one of each kind of bad input the builder must count."""
    root = tmp_path_factory.mktemp("bad")
    for e in range(4):
        write_episode(root / f"good{e}", 100 + e)
    mixed = root / "mixed"
    write_episode(mixed, 200)
    (mixed / "003a.jpg").write_bytes(np.random.default_rng(0).bytes(3000))
    (mixed / "003b.jpg").write_bytes(encode(frame_image(201, 0), ".jpg"))
    truncate(mixed / "003b.jpg", 0.5)
    (mixed / "003c.png").write_bytes(encode(frame_image(202, 0), ".png"))
    truncate(mixed / "003c.png", 0.5)
    write_image(mixed / "003d.jpg", frame_image(203, 0).resize((40, 40)))
    write_image(mixed / "003e.jpg", blurred(frame_image(204, 0)))
    shutil.copyfile(mixed / "003.jpg", mixed / "003f.jpg")  # the same frame twice in a row
    static = root / "static"
    write_episode(static, 300, frames=1)
    for step in range(1, 6):
        shutil.copyfile(static / "000.jpg", static / f"{step:03d}.jpg")
    write_episode(root / "short", 400, frames=3)
    (root / "empty").mkdir()
    return root


def test_bad_frames_and_episodes_are_dropped_and_counted_by_reason(
        bad_episodes: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert build(out, f"frames:{bad_episodes}") == 0
    info = build_info(out)
    assert info["drops"]["frames"] == {"blurred": 1, "near_duplicate": 1 + 5, "too_small": 1,
                                       "truncated_image": 2, "unreadable_image": 1}
    assert info["drops"]["episodes"] == {"static": 1, "too_few_frames": 1}
    assert info["drops"]["inputs"] == {"empty_episode": 1}
    assert info["counts"]["episodes_kept"] == 5
    assert info["counts"]["episodes_dropped"] == 2
    assert info["counts"]["frames_read"] == 5 * 6 + 6 + 6 + 3
    assert info["counts"]["frames_kept"] == 5 * 6

    examples = info["drop_examples"]
    mixed = bad_episodes / "mixed"
    assert any(str(mixed / "003a.jpg") in m for m in examples["unreadable_image"])
    truncated = "\n".join(examples["truncated_image"])
    assert str(mixed / "003b.jpg") in truncated and str(mixed / "003c.png") in truncated
    assert str(mixed / "003d.jpg") in examples["too_small"][0]
    assert str(mixed / "003e.jpg") in examples["blurred"][0]
    assert any(str(mixed / "003f.jpg") in m for m in examples["near_duplicate"])
    assert examples["static"][0].startswith("episode static:")
    assert examples["too_few_frames"][0].startswith("episode short:")
    assert str(bad_episodes / "empty") in examples["empty_episode"][0]
    # Nothing of a dropped episode reaches the samples.
    episodes = {s.episode_id for split in samples_by_split(out).values() for s in split}
    assert episodes == {"good0", "good1", "good2", "good3", "mixed"}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_strict_build_stops_at_the_first_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str) -> None:
    root = tmp_path / "episodes"
    for e in range(3):
        write_episode(root / f"good{e}", e)
    (root / "good1" / "002a.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "data"
    assert build(out, f"frames:{root}", args=("--strict", "--workers", workers)) == 1
    assert str(root / "good1" / "002a.jpg") in one_line_error(capsys)
    assert not out.exists()

    # What was done is kept: with the bad file gone, --resume finishes the same dataset.
    (root / "good1" / "002a.jpg").unlink()
    assert build(out, f"frames:{root}", args=("--strict", "--resume")) == 0
    assert build(tmp_path / "reference", f"frames:{root}", args=("--strict",)) == 0
    assert folder_bytes(out) == folder_bytes(tmp_path / "reference")


# ---------------------------------------------------------------- other sources


def test_manifest_bad_lines_are_skipped_and_the_rest_builds(tmp_path: Path) -> None:
    root = tmp_path / "manifest"
    lines: list[dict[str, Any]] = []
    for e in range(5):
        paths = write_episode(root / f"ep{e}", 500 + e)
        lines.append({"id": f"ep{e}", "scenario": "robot",
                      "frames": [p.relative_to(root).as_posix() for p in paths]})
    lines[2]["frames"].insert(3, "ep2/missing.jpg")
    write_image(tmp_path / "outside.jpg", frame_image(9, 0))
    lines.append({"id": "escapes", "scenario": "robot",
                  "frames": ["../outside.jpg", *lines[0]["frames"][1:]]})
    lines.append({"id": "wrong_type", "scenario": "robot", "frames": "ep0/000.jpg"})
    manifest = root / "episodes.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    out = tmp_path / "data"
    assert build(out, f"manifest:{manifest}") == 0
    info = build_info(out)
    assert info["drops"]["inputs"] == {"bad_field": 1, "path_escapes_root": 1}
    assert info["drops"]["frames"] == {"missing_file": 1}
    assert info["counts"]["episodes_kept"] == 5
    examples = info["drop_examples"]
    assert f"{manifest}, line 7" in examples["bad_field"][0]
    assert f"{manifest}, line 6" in examples["path_escapes_root"][0]
    assert str(root / "ep2" / "missing.jpg") in examples["missing_file"][0]


def test_video_source_builds_and_counts_truncated_videos(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    root.mkdir()
    for k in range(3):
        write_video(root / f"clip{k}.mp4", k)
    # Index at the end: the cut video cannot even be opened (skipped as an input).
    truncate(write_video(root / "cut_header.mp4", 7), 0.5)
    # Index in front: it opens, but the frames after the cut are missing.
    truncate(write_video(root / "cut_frames.mp4", 8, faststart=True), 0.6)

    out = tmp_path / "data"
    assert build(out, f"video:{root}") == 0
    info = build_info(out)
    assert info["drops"]["inputs"] == {"unreadable_video": 1}
    assert str(root / "cut_header.mp4") in info["drop_examples"]["unreadable_video"][0]
    assert info["drops"]["frames"]["unreadable_video"] >= 4
    assert any(str(root / "cut_frames.mp4") in m
               for m in info["drop_examples"]["unreadable_video"][1:])
    assert info["drops"]["episodes"] == {"too_few_frames": 1}
    assert info["counts"]["episodes_kept"] == 3
    samples = [s for split in samples_by_split(out).values() for s in split]
    assert {s.episode_id for s in samples} == {"clip0.mp4", "clip1.mp4", "clip2.mp4"}


def test_video_options_come_from_the_config(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    root.mkdir()
    for k in range(3):
        write_video(root / f"clip{k}.mp4", k)
    timed, keyed = tmp_path / "timed", tmp_path / "keyed"
    assert build(timed, f"video:{root}", args=("video.fps=2",)) == 0
    assert build(keyed, f"video:{root}",
                 args=("video.mode=keyframes", "video.fps=4", "video.max_frames=5")) == 0
    assert build_info(timed)["config"]["video"]["fps"] == 2.0
    assert build_info(timed)["counts"]["frames_read"] == 3 * 16  # 8 s at 2 frames/s
    keyed_info = build_info(keyed)
    assert keyed_info["config"]["video"]["mode"] == "keyframes"
    assert 3 * 4 <= keyed_info["counts"]["frames_read"] <= 3 * 5


# ---------------------------------------------------------------- dataset properties


@pytest.fixture(scope="module")
def halves(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic episodes built into two equal splits with many negatives."""
    out = tmp_path_factory.mktemp("halves") / "data"
    assert build(out, f"frames:{synthetic_dir}",
                 args=(SPLIT_HALVES, "tasks.negative_rate=0.5")) == 0
    return out


def test_episodes_and_images_stay_in_one_split(halves: Path) -> None:
    by_split = samples_by_split(halves)
    assert set(by_split) == {"train", "test"}
    episode_split: dict[str, set[str]] = defaultdict(set)
    image_split: dict[str, set[str]] = defaultdict(set)
    for split, samples in by_split.items():
        assert samples
        for sample in samples:
            assert sample.meta["split"] == split
            episode_split[sample.episode_id].add(split)
            for image in sample.images:
                image_split[image].add(split)
    assert len(episode_split) == build_info(halves)["counts"]["episodes_kept"]
    assert all(len(splits) == 1 for splits in episode_split.values())
    assert all(len(splits) == 1 for splits in image_split.values())


def test_episodes_sharing_two_images_or_near_duplicates_share_a_split(tmp_path: Path) -> None:
    root = write_episodes(tmp_path / "episodes", 12)
    for name in ("002.jpg", "003.jpg"):  # split.join_min_frames is 2
        shutil.copyfile(root / "ep000" / name, root / "ep001" / name)
    for name in ("004.jpg", "005.jpg"):
        with Image.open(root / "ep002" / name) as image:  # the same frame, encoded again
            image.save(root / "ep003" / name, "JPEG", quality=80)
    out = tmp_path / "data"
    for seed in range(4):
        shutil.rmtree(out, ignore_errors=True)
        assert build(out, f"frames:{root}", args=(SPLIT_HALVES, "--seed", str(seed))) == 0
        split = {s.episode_id: name for name, samples in samples_by_split(out).items()
                 for s in samples}
        assert split["ep000"] == split["ep001"]
        assert split["ep002"] == split["ep003"]
        assert set(split.values()) == {"train", "test"}


def test_distractors_come_from_the_same_scenario_and_split(halves: Path) -> None:
    samples = [s for split in samples_by_split(halves).values() for s in split]
    scenario = {s.episode_id: s.scenario for s in samples}
    split = {s.episode_id: s.meta["split"] for s in samples}
    other_episode = 0
    for sample in samples:
        for distractor in sample.meta.get("distractors", []):
            assert scenario[distractor["episode"]] == sample.scenario
            assert split[distractor["episode"]] == split[sample.episode_id]
            other_episode += distractor["episode"] != sample.episode_id
    assert other_episode > 0


def test_no_distractor_of_the_own_episode_could_also_be_the_answer(halves: Path) -> None:
    """A frame between the truth's shown neighbours fits the question as well as the truth."""
    checked = 0
    for sample in (s for split in samples_by_split(halves).values() for s in split):
        window = sample.meta["window"]
        if sample.task == "next_frame":
            low, high = window[-3], window[-1]
        elif sample.task == "prev_frame":
            low, high = -1, window[1]
        else:
            continue
        for distractor in sample.meta["distractors"]:
            if distractor["episode"] == sample.episode_id:
                checked += 1
                assert not low < distractor["frame"] < high, (sample.id, distractor)
    assert checked > 0


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_the_truth_appears_only_where_the_answer_says(halves: Path,
                                                       synthetic_dir: Path) -> None:
    checked = Counter[str]()
    for sample in (s for split in samples_by_split(halves).values() for s in split):
        if sample.task == "ordering":
            continue
        window = sample.meta["window"]
        position = window[-2] if sample.task == "next_frame" else window[0]
        truth = _pixels(synthetic_dir / sample.episode_id / f"{position:03d}.jpg")
        options = sample.option_images
        assert sample.options is not None
        assert len(options) == sample.options.count(IMAGE_OPTION)
        equal = [np.array_equal(_pixels(halves / image), truth) for image in options]
        kind = sample.meta["negative_kind"]
        if kind == "missing":
            assert not any(equal), sample.id
        else:
            letter = sample.answer if kind is None else sample.meta["truth_option"]
            image_letters = [chr(65 + i) for i, o in enumerate(sample.options)
                             if o == IMAGE_OPTION]
            assert equal.count(True) == 1, sample.id
            assert image_letters[equal.index(True)] == letter, sample.id
        checked[str(kind)] += 1
    assert set(checked) == {"None", "missing", "mismatch"}


def test_negatives_of_both_kinds_and_mismatched_descriptions(halves: Path,
                                                             synthetic_dir: Path) -> None:
    samples = [s for split in samples_by_split(halves).values() for s in split]
    kinds = Counter(s.meta.get("negative_kind") for s in samples if s.negative)
    assert kinds["mismatch"] > 0 and kinds["missing"] > 0
    for sample in samples:
        assert sample.negative == (sample.options is not None
                                   and sample.options[ord(sample.answer) - 65] == NONE_OPTION)
        if sample.meta.get("negative_kind") != "mismatch":
            continue
        own = json.loads((synthetic_dir / sample.episode_id / "episode.json").read_text())
        shown = sample.meta["shown_description"]
        assert shown != own["description"]
        assert shown[1:-1] in sample.question
        assert own["description"][1:-1] not in sample.question


def test_answer_letters_are_balanced_and_none_moves(halves: Path) -> None:
    by_key: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    none_letters: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    for split, samples in samples_by_split(halves).items():
        for sample in samples:
            forms[sample.meta.get("form", "choice")] += 1
            if sample.options is None:
                assert len(sample.answer) == len(sample.images)
                continue
            by_key[(split, sample.scenario, sample.task)][sample.answer] += 1
            none_letters[chr(65 + sample.options.index(NONE_OPTION))] += 1
    assert forms["options"] > 0 and forms["letters"] > 0
    # Gold positions come in shuffled blocks of every letter, one sequence per split,
    # scenario and task: within a key no letter is gold more than once more often than
    # another.
    letters = "ABCDE"
    for key, counts in by_key.items():
        assert set(counts) <= set(letters), key
        spread = [counts[letter] for letter in letters]
        assert max(spread) - min(spread) <= 1, (key, counts)
    assert len(none_letters) >= 4, none_letters


@pytest.mark.parametrize("frames", [3, 8])
def test_frames_per_sample_sets_the_images_per_question(tmp_path: Path, frames: int) -> None:
    from tpru.sources.synthetic import write_synthetic_episodes

    episodes = tmp_path / "episodes"
    write_synthetic_episodes(episodes, episodes=2, frames=max(frames, 6), seed=1)
    out = tmp_path / "data"
    # One split: two episodes per scenario in two splits leave no other episode to draw
    # next_frame's distractors from.
    assert build(out, f"frames:{episodes}", args=(f"tasks.frames_per_sample={frames}",
                                                  "split.ratios={train: 1}")) == 0
    tasks = Counter[str]()
    for sample in (s for split in samples_by_split(out).values() for s in split):
        shown = sample.question_images
        tasks[sample.task] += 1
        assert len(shown) == (frames if sample.task == "ordering" else frames - 1), sample.id
        assert len(sample.meta["window"]) == frames
    assert set(tasks) == {"ordering", "next_frame", "prev_frame"}


# ---------------------------------------------------------------- several sources, warnings


def test_sources_whose_episode_ids_collide_keep_all_their_episodes(tmp_path: Path) -> None:
    robot = write_episodes(tmp_path / "robot", 4, scenarios=("robot",))
    nav = write_episodes(tmp_path / "nav", 4, seed=1, scenarios=("nav",))
    out = tmp_path / "data"
    assert build(out, f"frames:{robot}", f"frames:{nav}", args=(SPLIT_HALVES,)) == 0
    info = build_info(out)
    assert info["counts"]["episodes_kept"] == 8 and info["drops"]["inputs"] == {}
    ids = {s.episode_id: s.scenario for samples in samples_by_split(out).values()
           for s in samples}
    # The first source keeps its ids; the second's that collide carry its folder's name.
    assert ids == {**{f"ep{e:03d}": "robot" for e in range(4)},
                   **{f"nav/ep{e:03d}": "nav" for e in range(4)}}
    assert info["warnings"] == [
        f"frames:{nav}: episode id 'ep000' is already used by frames:{robot}; this episode "
        "is 'nav/ep000' (and 3 more like it)"]

    # A single source's ids never change.
    assert build(tmp_path / "one", f"frames:{nav}", args=(SPLIT_HALVES,)) == 0
    assert {s.episode_id for samples in samples_by_split(tmp_path / "one").values()
            for s in samples} == {f"ep{e:03d}" for e in range(4)}
    assert build_info(tmp_path / "one")["warnings"] == []


def test_an_id_that_still_collides_is_counted_naming_both_sources(tmp_path: Path) -> None:
    first = write_episodes(tmp_path / "first", 4)
    write_episode(first / "nav" / "ep000", 50)  # id "nav/ep000"
    nav = write_episodes(tmp_path / "nav", 4, seed=1)
    out = tmp_path / "data"
    assert build(out, f"frames:{first}", f"frames:{nav}", args=(SPLIT_HALVES,)) == 0
    info = build_info(out)
    assert info["counts"]["episodes_kept"] == 5 + 3
    assert info["drops"]["inputs"] == {"duplicate_id": 1}
    assert info["drop_examples"]["duplicate_id"] == [
        f"frames:{nav}: episode id 'ep000' is already used by frames:{first}, and "
        f"'nav/ep000' by frames:{first}; give the episodes distinct ids (e.g. the 'id' of "
        "episode.json)"]


def test_sources_with_one_folder_name_are_told_apart_by_position(tmp_path: Path) -> None:
    a = write_episodes(tmp_path / "a" / "episodes", 3)
    b = write_episodes(tmp_path / "b" / "episodes", 3, seed=1)
    out = tmp_path / "data"
    assert build(out, f"frames:{a}", f"frames:{b}", args=(SPLIT_HALVES,)) == 0
    ids = {s.episode_id for samples in samples_by_split(out).values() for s in samples}
    assert ids == {"ep000", "ep001", "ep002", "episodes-2/ep000", "episodes-2/ep001",
                   "episodes-2/ep002"}


def test_a_split_left_empty_is_a_warning_that_says_why(tmp_path: Path) -> None:
    few = write_episodes(tmp_path / "few", 3)
    out = tmp_path / "few-data"
    assert build(out, f"frames:{few}") == 0
    info = build_info(out)
    assert info["splits"] == ["train"]
    assert info["warnings"] == ["split 'test' (split.ratios 0.1) has no episodes: the 3 "
                                "episodes are too few: no scenario has the 2 episodes needed to "
                                "reach each of the 2 splits with a share above 0; add episodes"]

    # Six episodes that all show two frames, encoded again each time: one group.
    grouped = write_episodes(tmp_path / "grouped", 6)
    for name in ("002.jpg", "003.jpg"):
        with Image.open(grouped / "ep000" / name) as image:
            for e in range(1, 6):
                image.save(grouped / f"ep{e:03d}" / name, "JPEG", quality=80 + e)
    out = tmp_path / "grouped-data"
    assert build(out, f"frames:{grouped}", args=(SPLIT_HALVES,)) == 0
    info = build_info(out)
    [empty] = {"train", "test"} - set(info["splits"])
    [warning] = info["warnings"]
    assert warning.startswith(f"split '{empty}' (split.ratios 0.5) has no episodes: for scenario "
                              "'lego', its 2 episodes are joined into 1 group(s) of episodes "
                              "that share identical or near-duplicate frames (the largest holds "
                              "6, held together by pairs that share 2 or more frames of each)")
    assert "set split.join_min_frames=3" in warning


def _app_episodes(root: Path, shared: Sequence[str], *, lone: bool = False) -> Path:
    """12 episodes, 3 per scenario, whose gui episodes begin on the frames `shared` of
    ep002 (an app's start screens), and, if `lone`, one episode of a scenario of its own."""
    write_episodes(root, 12)
    for e in (6, 10):
        for name in shared:
            shutil.copyfile(root / "ep002" / name, root / f"ep{e:03d}" / name)
    if lone:
        write_episode(root / "lone", 99, scenario="lone", description="the only one of its kind")
    return root


def test_episodes_that_share_only_a_start_screen_reach_every_split(tmp_path: Path) -> None:
    root = _app_episodes(tmp_path / "episodes", ["000.jpg"], lone=True)
    out = tmp_path / "data"
    assert build(out, f"frames:{root}", args=(SPLIT_HALVES,)) == 0
    info = build_info(out)
    report = info["split_report"]
    assert report["joined_groups"] == 0 and report["largest_groups"] == []
    by_scenario = report["episodes_by_scenario"]
    assert by_scenario["gui"] in ({"train": 2, "test": 1}, {"train": 1, "test": 2})
    assert all(min(counts.values()) >= 1 for s, counts in by_scenario.items() if s != "lone")
    # The start screen is in both splits: counted and shown, not a leak.
    assert report["shared_across_splits"]["images"] == 1
    [example, *_] = report["shared_across_splits"]["examples"]
    assert example.startswith("image ") and "(episode ep002)" in example
    [missing] = [split for split, n in by_scenario["lone"].items() if n == 0]
    assert info["warnings"] == [
        f"scenario 'lone' has no episodes in split '{missing}' (split.ratios 0.5): it has 1 "
        "episode(s), and at least 2 are needed to reach each of the 2 splits with a share "
        "above 0; add episodes of 'lone'"]


def test_a_scenario_joined_into_one_group_warns_and_the_advice_fixes_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _app_episodes(tmp_path / "episodes", ["000.jpg", "001.jpg"])
    out = tmp_path / "data"
    assert build(out, f"frames:{root}", args=(SPLIT_HALVES,)) == 0
    info = build_info(out)
    [gui] = info["warnings"]
    assert gui.endswith("(split.ratios 0.5): its 3 episodes are joined into 1 group(s) of "
                        "episodes that share identical or near-duplicate frames (the largest "
                        "holds 3, held together by pairs that share 2 or more frames of each), "
                        "and a group goes to one split whole; set split.join_min_frames=3 so "
                        "that only episodes sharing at least 3 frames are joined, or add "
                        "episodes of 'gui'")
    [group] = info["split_report"]["largest_groups"]
    assert group["episodes"] == ["ep002", "ep006", "ep010"]
    assert (group["size"], group["scenario"], group["joined_pairs"]) == (3, "gui", 3)
    assert (group["most_shared_frames"], group["apart_at_join_min_frames"]) == (2, 3)

    assert build(tmp_path / "strict", f"frames:{root}", args=(SPLIT_HALVES, "--strict")) == 1
    error = one_line_error(capsys)
    assert "scenario 'gui' has no episodes in split" in error and "--strict" in error

    # Following the advice: the gui episodes reach both splits, sharing two frames.
    out = tmp_path / "advised"
    assert build(out, f"frames:{root}", args=(SPLIT_HALVES, "split.join_min_frames=3")) == 0
    info = build_info(out)
    assert info["warnings"] == []
    assert set(info["split_report"]["episodes_by_scenario"]["gui"].values()) == {1, 2}
    assert info["split_report"]["shared_across_splits"]["images"] >= 1


def test_ratios_that_do_not_sum_to_one_are_used_as_proportions_with_a_warning(
        episodes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert build(out, f"frames:{episodes_dir}", args=("split.ratios={train: 1.5, test: 0.5}",)
                 ) == 0
    info = build_info(out)
    assert info["warnings"] == ["split.ratios sum to 2, not 1; they are used as proportions "
                                "of it: train 0.75, test 0.25"]
    assert info["counts"]["episodes_by_split"] == {"train": 18, "test": 6}


def test_an_unreadable_image_leaves_build_json_byte_identical(tmp_path: Path) -> None:
    root = write_episodes(tmp_path / "episodes", 4)
    (root / "ep001" / "002b.png").write_text("a text file named like a PNG")
    assert build(tmp_path / "a", f"frames:{root}") == 0
    assert build(tmp_path / "b", f"frames:{root}", args=("--workers", "2")) == 0
    text = (tmp_path / "a" / "build.json").read_text()
    assert text == (tmp_path / "b" / "build.json").read_text()
    assert build_info(tmp_path / "a")["drop_examples"]["unreadable_image"] == [
        f"{root / 'ep001' / '002b.png'}: unreadable image (not a recognised image format)"]
    assert "object at 0x" not in text


def test_resume_with_nothing_to_resume_says_so(episodes_dir: Path, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru")  # other tests may leave the root at ERROR
    config = BuildConfig(sources=(f"frames:{episodes_dir}",), out=str(tmp_path / "data"))
    result = pipeline.build(config, resume=True, show_progress=False)
    assert result.info["counts"]["episodes_kept"] == 24
    assert (f"nothing to resume in {tmp_path / 'data.partial'}; starting a new build"
            in caplog.messages)
