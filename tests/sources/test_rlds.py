"""RLDSSource on small TFDS/RLDS datasets written in TFDS's own layout (`rlds_files`)."""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("crc32c")
pytest.importorskip("google.protobuf")

from lerobot_fixtures import bar_of, episode_of
from rlds_files import RT1_LANGUAGE, Ep, shard, write_rlds

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources import open_source
from tpru.sources.base import flatten, load_frames
from tpru.sources.rlds import RLDSSource

TRAIN = [Ep(0, 6, "Pick up the red block."), Ep(1, 5, "Open the drawer."),
         Ep(2, 7, "Push the cup to the left.")]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TPRU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def seen(episode: Episode) -> list[tuple[int, int]]:
    """(episode picture, step) of every frame, read as the builder reads it."""
    out = []
    for frame in load_frames(episode.frames):
        assert frame.data is not None, frame.message
        with Image.open(io.BytesIO(frame.data)) as image:
            out.append((episode_of(image), bar_of(image)))
    return out


def read(path: Path, skips: Skips | None = None, **options: object) -> list[Episode]:
    return list(RLDSSource(path, skips=skips or Skips(), **options).iter_episodes())  # type: ignore[arg-type]


def test_a_two_shard_dataset_gives_every_step_of_every_episode_in_order(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN, "val": [Ep(3, 4, "Wipe the table")]},
                        shards=2)
    assert len(list(folder.glob("*-train.tfrecord-*-of-00002"))) == 2
    skips = Skips()
    episodes = read(folder, skips)
    assert [e.id for e in episodes] == ["tiny_rlds/train/000000", "tiny_rlds/train/000001",
                                        "tiny_rlds/train/000002", "tiny_rlds/val/000000"]
    assert [seen(e) for e in episodes] == [[(ep.number, k) for k in range(ep.length)]
                                           for ep in [*TRAIN, Ep(3, 4)]]
    assert [e.description for e in episodes] == [
        "picking up the red block", "opening the drawer", "pushing the cup to the left",
        "wiping the table"]
    first = episodes[2]
    assert first.steps is None and first.scenario == "robot" and first.source == "rlds"
    assert first.meta["shard"] == "tiny_rlds-train.tfrecord-00001-of-00002"
    assert first.meta["record"] == 0 and first.meta["episode_index"] == 2
    assert first.meta["instruction"] == "Push the cup to the left."
    assert first.meta["language_key"] == "steps/language_instruction"
    assert first.meta["episode_metadata"] == {"file_path": "/raw/episode_2.h5"}
    assert not skips.counts


def test_rt1_style_language_key(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:2]}, name="fractal20220817_data",
                        version="0.1.0", language_key=RT1_LANGUAGE, string_tensor=True)
    episodes = read(folder)
    assert [e.description for e in episodes] == ["picking up the red block", "opening the drawer"]
    assert episodes[0].meta["language_key"] == RT1_LANGUAGE
    assert episodes[0].id == "fractal20220817_data/train/000000"


def test_an_instruction_changing_within_an_episode_gives_the_steps(tmp_path: Path) -> None:
    texts = ["reach the drawer"] * 2 + ["", "open the drawer"] + ["put the cup in"] * 2
    folder = write_rlds(tmp_path, {"train": [Ep(0, 6, texts)]})
    [episode] = read(folder)
    assert episode.description == "reaching the drawer"
    assert episode.steps == ("reach the drawer", "reach the drawer", "reach the drawer",
                             "open the drawer", "put the cup in", "put the cup in")
    assert episode.meta["instructions"] == ["reach the drawer", "open the drawer",
                                            "put the cup in"]
    [thinned] = read(folder, stride=3)
    assert thinned.steps == ("reach the drawer", "open the drawer")


def test_the_language_option_overrides_detection(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]}, language_key="steps/observation/command")
    [plain] = read(folder)
    assert plain.description is None and "language_key" not in plain.meta
    for key in ("observation/command", "steps/observation/command"):
        [episode] = read(folder, language=key)
        assert episode.description == "picking up the red block"
    with pytest.raises(InputError, match=r"features.json: no text feature 'command' "
                       r"\(text features: .*steps/observation/command"):
        read(folder, language="command")


def test_episode_level_language(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:2]},
                        language_key="episode_metadata/language_instruction")
    assert [e.description for e in read(folder)] == ["picking up the red block",
                                                     "opening the drawer"]


def test_the_camera_option(tmp_path: Path, cache: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:2]}, cameras=("image", "wrist_image"),
                        encoding="jpeg")
    plain = read(folder)
    assert [seen(e) for e in plain] == [[(0, k) for k in range(6)], [(1, k) for k in range(5)]]
    # Frames are references into the shard, read there; nothing is copied to a cache.
    second = 12 + int.from_bytes(shard(folder).read_bytes()[:8], "little") + 4
    assert plain[1].frames[2] == f"{shard(folder)}#record=1&byte={second}" \
        "&feature=steps/observation/image&step=2"
    assert not cache.exists()
    wrist = read(folder, camera="wrist_image")
    assert [seen(e) for e in wrist] == [[(0, k) for k in reversed(range(6))],
                                        [(1, k) for k in reversed(range(5))]]
    both = read(folder, camera="all")
    assert [e.id for e in both] == ["tiny_rlds/train/000000/image",
                                    "tiny_rlds/train/000000/wrist_image",
                                    "tiny_rlds/train/000001/image",
                                    "tiny_rlds/train/000001/wrist_image"]
    with pytest.raises(InputError, match=r"features.json: no camera 'top' "
                       r"\(cameras: image, wrist_image, or all\)"):
        read(folder, camera="top")


def test_without_an_image_camera_the_first_one_is_taken(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]}, cameras=("wrist_image",))
    [episode] = read(folder)
    assert episode.meta["camera"] == "wrist_image"


def test_a_folder_with_two_datasets(tmp_path: Path) -> None:
    write_rlds(tmp_path / "oxe", {"train": TRAIN[:2]}, name="bridge")
    write_rlds(tmp_path / "oxe", {"train": [Ep(3, 4, "Close the lid")]}, name="bridge",
               version="0.0.9")  # an older version beside the newer: not read
    write_rlds(tmp_path / "oxe", {"train": [Ep(2, 5, "Wipe the table")]},
               name="fractal20220817_data", language_key=RT1_LANGUAGE, string_tensor=True)
    skips = Skips()
    episodes = read(tmp_path / "oxe", skips)
    assert [e.id for e in episodes] == ["bridge/train/000000", "bridge/train/000001",
                                        "fractal20220817_data/train/000000"]
    assert [e.description for e in episodes] == ["picking up the red block", "opening the drawer",
                                                 "wiping the table"]
    [warning] = skips.warning_examples["older_version"]
    assert "bridge/0.0.9: an older version of" in warning


def test_sampling_options(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN, "test": [Ep(3, 4, "Wipe")]}, shards=2)
    [first, *_] = read(folder, stride=2)
    assert first.meta["step_indices"] == [0, 2, 4]
    [first, *_] = read(folder, max_frames=3)
    assert first.meta["step_indices"] == [0, 2, 5]
    assert [e.id for e in read(folder, episodes=[2])] == ["tiny_rlds/train/000002"]
    assert [e.id for e in read(folder, episodes=[2], split="train")] == ["tiny_rlds/train/000002"]
    assert [e.meta["split"] for e in read(folder, split=["test"])] == ["test"]
    assert [e.id for e in read(folder, tasks=["drawer", "WIPE"])] == [
        "tiny_rlds/train/000001", "tiny_rlds/test/000000"]
    with pytest.raises(InputError, match=r"no split 'validation' \(splits: test, train\)"):
        read(folder, split="validation")


def test_keyframes_keep_the_steps_where_the_picture_changes(tmp_path: Path) -> None:
    moving = write_rlds(tmp_path / "moving", {"train": [Ep(0, 8, "Stack the cups")]})
    # Steps 2 and 3 show step 1's picture again: nothing changes there.
    still = write_rlds(tmp_path / "still", {"train": [Ep(0, 8, "Stack the cups",
                                                         shown=[0, 1, 1, 1, 4, 5, 6, 7])]})
    [episode] = read(moving, mode="keyframes")
    assert episode.meta["step_indices"] == list(range(8))
    [episode] = read(still, mode="keyframes")
    assert episode.meta["step_indices"] == [0, 1, 4, 5, 6, 7]
    assert [k for _, k in seen(episode)] == [0, 1, 4, 5, 6, 7]
    [episode] = read(moving, mode="keyframes", stride=3)
    assert episode.meta["step_indices"] == [0, 3, 6]


def test_open_source_and_its_options(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]})
    source = open_source(f"rlds:{folder}", options={"rlds": {"stride": 5}})
    [episode] = list(source.iter_episodes())
    assert episode.meta["step_indices"] == [0, 5]
    with pytest.raises(InputError, match="source kind 'rlds' has no option 'fps'"):
        open_source(f"rlds:{folder}", options={"rlds": {"fps": 2}})
    with pytest.raises(InputError, match="stride must be a whole number of steps"):
        open_source(f"rlds:{folder}", options={"rlds": {"stride": 0}})


def test_without_the_extra_the_error_is_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tpru.sources.rlds", "tpru.sources.tfrecord"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "crc32c", None)  # import crc32c now fails
    with pytest.raises(InputError, match=r"^source kind 'rlds' needs crc32c; install it with: "
                       r"pip install 'tpru\[rlds\]'$"):
        open_source("rlds:anywhere")
    monkeypatch.undo()
    importlib.import_module("tpru.sources.rlds")


# ---------------------------------------------------------------- bad input


def test_features_without_an_image_feature(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]}, cameras=())
    with pytest.raises(InputError, match=r"1.0.0/features.json: no image feature under "
                       r"steps/observation/ \(features: episode_metadata/file_path, "):
        read(folder)


def test_a_truncated_shard_is_a_counted_skip_naming_file_and_episode(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN})
    path = shard(folder)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 100])
    skips = Skips()
    episodes = read(folder, skips)
    assert [e.meta["episode_index"] for e in episodes] == [0, 1]
    [message] = skips.examples["truncated_record"]
    assert message.startswith(f"{path}: record 2 (episode 2) at byte ")
    assert "(truncated)" in message
    with pytest.raises(InputError, match="record 2 .episode 2.*truncated"):
        read(folder, Skips(strict=True))


def test_a_damaged_record_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN})
    path = shard(folder)
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the first record's data
    path.write_bytes(bytes(data))
    skips = Skips()
    assert [e.meta["episode_index"] for e in read(folder, skips)] == [1, 2]
    [message] = skips.examples["damaged_record"]
    assert message == f"{path}: record 0 (episode 0) at byte 0: the record's data fails its " \
        "checksum (damaged)"


def test_a_damaged_length_stops_the_shard(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN})
    path = shard(folder)
    data = bytearray(path.read_bytes())
    second = 12 + int.from_bytes(data[:8], "little") + 4
    data[second + 7] = 0x7F  # a length of petabytes, caught by its checksum
    path.write_bytes(bytes(data))
    skips = Skips()
    assert [e.meta["episode_index"] for e in read(folder, skips)] == [0]
    [message] = skips.examples["damaged_record"]
    assert f"record 1 (episode 1) at byte {second}: the record's length fails its checksum" \
        in message and "the 1 records after it are lost too" in message


def test_a_missing_shard_is_counted(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN}, shards=3)
    shard(folder, index=1).unlink()
    skips = Skips()
    assert [e.meta["episode_index"] for e in read(folder, skips)] == [0, 2]
    [message] = skips.examples["missing_file"]
    assert "tfrecord-00001-of-00003: no such shard of split 'train'" in message


def test_missing_dataset_info_and_features(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]})
    (folder / "features.json").unlink()
    with pytest.raises(InputError, match=r"1.0.0: not a TFDS dataset folder \(no features.json\)"):
        read(folder)
    (folder / "dataset_info.json").unlink()
    with pytest.raises(InputError, match=r"no TFDS dataset .*; it has tiny_rlds-train.tfrecord-"
                       r"00000-of-00001 but no dataset_info.json beside it"):
        read(folder)
    with pytest.raises(InputError, match=r"^memory://tpru-nowhere: no such folder$"):
        open_source("rlds:memory://tpru-nowhere")
    with pytest.raises(InputError, match="no such folder"):
        read(tmp_path / "nowhere")


def test_an_undecodable_image_is_a_counted_skip(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": [Ep(0, 6, "Pick up the red block", broken=[1])]},
                        encoding="jpeg")
    skips = Skips()
    [episode] = read(folder, skips)
    assert episode.meta["step_indices"] == [0, 2, 3, 4, 5]
    [message] = skips.examples["unreadable_image"]
    assert message.startswith(f"{shard(folder)}: record 0 (episode 0): "
                              "steps/observation/image of step 1 cannot be decoded (")
    broken = write_rlds(tmp_path / "all", {"train": [Ep(0, 2, "Wipe", broken=[0, 1])]})
    skips = Skips()
    assert read(broken, skips) == []
    assert skips.counts == {"unreadable_image": 2, "empty_episode": 1}


def test_an_image_whole_but_undecodable_is_left_to_the_build_which_counts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source checks that a PNG is whole, not its pixels: one whose compressed pixels
    are damaged (under a valid checksum) is kept here, and the build drops and counts it."""
    import struct
    import zlib

    import rlds_files

    from tpru.builder.config import BuildConfig, FilterConfig
    from tpru.builder.measure import measure_episode

    def damaged(png: bytes) -> bytes:
        at = png.index(b"IDAT") - 4
        (length,) = struct.unpack(">I", png[at:at + 4])
        data = bytearray(png[at + 8:at + 8 + length])
        data[2:] = bytes(255 - b for b in data[2:])  # the zlib header kept, the rest garbled
        chunk = b"IDAT" + bytes(data)
        return png[:at + 4] + chunk + struct.pack(">I", zlib.crc32(chunk)) + \
            png[at + 12 + length:]

    encoded = iter(range(100))
    real = rlds_files.encode
    monkeypatch.setattr(rlds_files, "encode", lambda pixels, encoding: (
        damaged if next(encoded) == 2 else (lambda data: data))(real(pixels, encoding)))
    folder = write_rlds(tmp_path, {"train": [Ep(0, 4, "Wipe the table")]})
    skips = Skips()
    [episode] = read(folder, skips)
    assert episode.meta["step_indices"] == [0, 1, 2, 3] and not skips.counts
    result = measure_episode(episode, 0, BuildConfig(filter=FilterConfig(
        min_side=32, blur_threshold=0, dup_hamming=0)), tmp_path / "stage")
    drops = result.record["drops"]
    assert sum(drops.values()) == 1 and set(drops) <= {"unreadable_image", "truncated_image"}
    [[message]] = result.record["examples"].values()
    assert message.startswith(episode.frames[2] + ": ")


def test_a_shard_damaged_or_gone_after_listing_drops_its_frames_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are read from the shard by the build: a record damaged since it was listed
    gives frames with errors naming the shard and record, which the build counts."""
    from tpru.builder.config import BuildConfig, FilterConfig
    from tpru.builder.measure import measure_episode
    from tpru.sources import tfrecord

    folder = write_rlds(tmp_path, {"train": TRAIN[:2]})
    path = shard(folder)
    first, second = read(folder)
    # The frames are read as by another process than the one that made the episodes
    # (a build's worker): no record's features kept from making them.
    monkeypatch.setattr(tfrecord, "_LAST", None)
    offset = 12 + int.from_bytes(path.read_bytes()[:8], "little") + 4
    data = bytearray(path.read_bytes())
    data[offset + 40] ^= 0xFF  # inside the second record's data
    path.write_bytes(bytes(data))
    damaged = f"{path}: record 1 at byte {offset}: the record's data fails its checksum " \
        "(damaged)"
    assert [(f.error, f.message) for f in load_frames(second.frames)] == \
        [("unreadable_file", damaged)] * 5
    assert seen(first) == [(0, k) for k in range(6)]  # the record before it is whole
    config = BuildConfig(filter=FilterConfig(min_side=32, blur_threshold=0, dup_hamming=0))
    result = measure_episode(second, 1, config, tmp_path / "stage")
    assert result.record["drops"] == {"unreadable_file": 5}
    assert result.record["examples"]["unreadable_file"][0] == damaged
    with pytest.raises(InputError, match="record 1 at byte .* fails its checksum"):
        measure_episode(second, 1, BuildConfig(strict=True), tmp_path / "stage")
    path.unlink()
    assert {(f.error, f.message) for f in load_frames(first.frames)} == \
        {("missing_file", f"{path}: no such file")}
    [bad] = load_frames([f"{path}#record=0&byte=zero&feature=steps/observation/image&step=1"])
    assert bad.error == "unreadable_file" and "byte 'zero' is not a whole number" in bad.message


def test_listing_reads_record_headers_only_and_a_worker_parses_each_record_once(
        tmp_path: Path) -> None:
    """The keys a build's driver lists cost 12 bytes a record; the records are read and
    parsed when their episodes are made (on the workers), and give what iter_episodes does."""
    folder = write_rlds(tmp_path, {"train": TRAIN, "val": [Ep(3, 4, "Wipe the table")]},
                        shards=2, cameras=("image", "wrist_image"))
    skips = Skips()
    source = RLDSSource(folder, skips=skips, camera="all")
    keys = list(source.episode_keys())
    shards = sorted(folder.glob("*.tfrecord-*"))
    assert len(keys) == 4 and source.listed_bytes == 4 * 12
    assert source.listed_bytes < sum(p.stat().st_size for p in shards) / 100
    assert source.parsed_records == 0
    made = [source.open_episode(key) for key in keys]
    assert source.parsed_records == 4 and source.listed_bytes == 4 * 12
    assert all(isinstance(m, list) and len(m) == 2 for m in made)  # a record's two cameras
    episodes = list(source.admit(flatten(made)))
    assert [e.id for e in episodes] == [e.id for e in read(folder, camera="all")]
    assert episodes[1].id == "tiny_rlds/train/000000/wrist_image" and not skips.counts
    # A problem found while listing is a key counted where it lies in the input.
    shard(folder, index=1).unlink()
    skips = Skips()
    source = RLDSSource(folder, skips=skips)
    keys = list(source.episode_keys())
    assert not skips.counts and [e.id for e in read(folder)] == \
        ["tiny_rlds/train/000000", "tiny_rlds/train/000001", "tiny_rlds/val/000000"]
    assert [source.open_episode(key) for key in keys][2] is None
    assert skips.counts == {"missing_file": 1}


def test_a_file_format_other_than_tfrecord(tmp_path: Path) -> None:
    folder = write_rlds(tmp_path, {"train": TRAIN[:1]})
    info = json.loads((folder / "dataset_info.json").read_text())
    (folder / "dataset_info.json").write_text(json.dumps({**info, "fileFormat": "array_record"}))
    with pytest.raises(InputError, match="fileFormat 'array_record' is not read"):
        read(folder)


# ---------------------------------------------------------------- the build, end to end


def test_build_from_an_rlds_dataset_keeps_frame_order(tmp_path: Path) -> None:
    from tpru.cli import main
    from tpru.schema import Sample, read_jsonl

    episodes = [Ep(e, 8, text) for e, text in enumerate(
        ["Pick up the red block", "Open the drawer", "Push the cup left", "Stack the cups"])]
    folder = write_rlds(tmp_path, {"train": episodes}, shards=2)
    out = tmp_path / "built"
    assert main(["build", "-q", "--source", f"rlds:{folder}", "--out", str(out),
                 "filter.min_side=32"]) == 0
    info = json.loads((out / "build.json").read_text())
    samples = [s for split in info["splits"] for s in read_jsonl(out / f"{split}.jsonl", Sample)]
    ordering = [s for s in samples if s.task == "ordering"]
    assert ordering
    for sample in ordering:
        if sample.meta["form"] == "letters":
            order = [ord(letter) - ord("A") for letter in sample.answer]
        else:
            assert sample.options is not None
            chosen = sample.options[ord(sample.answer) - ord("A")]
            text = chosen if chosen[0].isdigit() else sample.meta["order"]
            order = [int(label) - 1 for label in text.split()]
        bars = []
        for i in order:
            with Image.open(out / sample.question_images[i]) as image:
                bars.append(bar_of(image))
        assert bars == sample.meta["window"], sample.id
    descriptions = {"picking up the red block", "opening the drawer", "pushing the cup left",
                    "stacking the cups"}
    positives = [s for s in samples if not s.negative]
    assert positives and all(any(d in s.question for d in descriptions) for s in positives)


def test_a_build_in_one_process_reads_each_record_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Making an episode reads its record; reading its frames in the same process then
    uses the features kept, and the dataset is the one built reading it twice."""
    from tpru.cli import main
    from tpru.sources import rlds, tfrecord

    folder = write_rlds(tmp_path, {"train": [Ep(e, 6, f"Move block {e}") for e in range(4)]},
                        shards=2)
    build = ["build", "-q", "--source", f"rlds:{folder}", "filter.min_side=32",
             "split.ratios={train: 1}"]
    reads: list[int] = []
    real = tfrecord.read_record

    def counted(path: object, offset: int, index: int) -> tfrecord.Record:
        reads.append(offset)
        return real(path, offset, index)  # type: ignore[arg-type]

    monkeypatch.setattr(rlds, "read_record", counted)
    monkeypatch.setattr(tfrecord, "read_record", counted)
    assert main([*build, "--out", str(tmp_path / "once")]) == 0
    assert len(reads) == 4
    monkeypatch.setattr(tfrecord, "recall_example", lambda path, offset: None)
    assert main([*build, "--out", str(tmp_path / "twice")]) == 0
    assert len(reads) == 4 + 8  # without the kept features: each record read twice
    for name in ("train.jsonl", "build.json"):
        assert (tmp_path / "once" / name).read_bytes() == (tmp_path / "twice" / name).read_bytes()


# ---------------------------------------------------------------- a dataset at a URL (fsspec)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[str]:
    """A folder of fsspec's in-memory filesystem (``memory://``), removed afterwards."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/tpru-test-{tmp_path.name}"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _upload(local: Path, root: str) -> str:
    """`local` (a folder) copied into fsspec's memory filesystem under `root`; its URL."""
    import fsspec

    fsspec.filesystem("memory").put(str(local), root, recursive=True)
    return f"memory://{root}"


def test_a_dataset_at_a_url_reads_as_its_local_copy(tmp_path: Path, memory: str) -> None:
    """Listing, dataset_info.json, features.json, shards and records read through fsspec;
    each frame's reference carries the full URL, so a worker anywhere reads it again."""
    import fsspec

    local = tmp_path / "local"
    folder = write_rlds(local, {"train": TRAIN, "val": [Ep(3, 4, "Wipe the table")]}, shards=2)
    url = _upload(local, memory)
    skips = Skips()
    source = RLDSSource(url, skips=skips)
    remote = list(source.iter_episodes())
    here = read(folder)
    assert [(e.id, e.description, e.meta) for e in remote] == \
        [(e.id, e.description, e.meta) for e in here]
    prefix = f"memory://{memory}/tiny_rlds/1.0.0/"
    assert all(f.startswith(prefix) for e in remote for f in e.frames)
    assert [f.removeprefix(prefix) for e in remote for f in e.frames] == \
        [f.removeprefix(f"{folder}/") for e in here for f in e.frames]
    assert [[f.data for f in load_frames(e.frames)] for e in remote] == \
        [[f.data for f in load_frames(e.frames)] for e in here]
    assert source.listed_bytes == 12 * 4 and not skips.counts
    fsspec.filesystem("memory").rm(f"{memory}/tiny_rlds/1.0.0/{shard(folder).name}")
    assert {(f.error, f.message) for f in load_frames(remote[0].frames)} == \
        {("missing_file", f"{prefix}{shard(folder).name}: no such file")}
    skips = Skips()
    assert [e.id for e in RLDSSource(url, skips=skips).iter_episodes()] == \
        ["tiny_rlds/train/000002", "tiny_rlds/val/000000"]
    assert skips.counts == {"missing_file": 1}


def test_a_url_whose_protocol_package_is_missing_names_it() -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(InputError, match=r"^gs://bucket/data: gs:// needs a package fsspec "
                       r"names: .*install gcsfs"):
        open_source("rlds:gs://bucket/data")
    with pytest.raises(InputError, match=r"^nosuch://x: Protocol not known: nosuch"):
        open_source("rlds:nosuch://x")
    [frame] = load_frames(["gs://bucket/x-train.tfrecord-00000-of-00001#record=0&byte=0&"
                           "feature=steps/observation/image&step=0"])
    assert frame.error == "unreadable_file" and "gcsfs" in (frame.message or "")


def test_a_build_from_a_url_equals_the_build_from_the_local_copy(
        tmp_path: Path, memory: str) -> None:
    from tpru.cli import main
    from tpru.schema import Sample, read_jsonl

    local = tmp_path / "local"
    episodes = [Ep(e, 8, text) for e, text in enumerate(
        ["Pick up the red block", "Open the drawer", "Push the cup left", "Stack the cups"])]
    write_rlds(local, {"train": episodes}, shards=2)
    url = _upload(local, memory)
    built = {}
    for name, where in (("local", str(local)), ("remote", url)):
        out = tmp_path / f"built-{name}"
        assert main(["build", "-q", "--source", f"rlds:{where}", "--out", str(out),
                     "filter.min_side=32"]) == 0
        info = json.loads((out / "build.json").read_text())
        samples = [s for split in info["splits"]
                   for s in read_jsonl(out / f"{split}.jsonl", Sample)]
        built[name] = [(s.id, s.question, s.options, s.answer,
                        [(out / image).read_bytes() for image in s.images]) for s in samples]
    assert built["remote"] and built["remote"] == built["local"]


# ---------------------------------------------------------------- TFDS's own writer

TFDS_WRITER = Path(__file__).with_name("rlds_tfds_writer.py")


def _tfds_python() -> str | None:
    """A Python with tensorflow_datasets: this one, or $TPRU_TFDS_PYTHON."""
    try:
        importlib.import_module("tensorflow_datasets")
        return sys.executable
    except ImportError:
        other = os.environ.get("TPRU_TFDS_PYTHON")
        return other if other and shutil.which(other) else None


@pytest.mark.slow
def test_a_dataset_written_by_tfds_itself(tmp_path: Path) -> None:
    python = _tfds_python()
    if python is None:
        pytest.skip("tensorflow_datasets is not installed (or set TPRU_TFDS_PYTHON)")
    done = subprocess.run([python, str(TFDS_WRITER), str(tmp_path / "tfds")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    skips = Skips()
    episodes = read(tmp_path / "tfds", skips, camera="all")
    assert not skips.counts
    by_id = {e.id: e for e in episodes}
    # TFDS shuffles a split's examples by key: the picture says which episode each is.
    train = [by_id[f"tiny_rlds/train/{i:06d}/image"] for i in range(2)]
    assert sorted(seen(e)[0][0] for e in train) == [0, 1]
    for episode in [*train, by_id["tiny_rlds/val/000000/image"]]:
        number = seen(episode)[0][0]
        length, text = json.loads(done.stdout.splitlines()[-1])[number]
        assert seen(episode) == [(number, k) for k in range(length)]
        assert episode.meta["instruction"] == text
        assert episode.meta["episode_metadata"] == {"file_path": f"/raw/episode_{number}.h5"}
        wrist = by_id[episode.id.replace("/image", "/wrist_image")]
        assert [k for _, k in seen(wrist)] == list(reversed(range(length)))


# ---------------------------------------------------------------- configs/robot-mix.yaml


def test_the_robot_mix_config_builds_lerobot_and_rlds_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("av")
    pytest.importorskip("pyarrow")
    from lerobot_fixtures import write_v30

    from tpru.cli import main
    from tpru.schema import Sample, read_jsonl

    config = Path(__file__).parents[2] / "configs" / "robot-mix.yaml"
    monkeypatch.chdir(tmp_path)  # the config's paths are relative to where it runs
    write_v30(tmp_path / "datasets/so100_pickplace",
              [(10, "Pick up the red cube."), (9, "Stack the blue block"), (10, "Pick up the pen")])
    write_rlds(tmp_path / "datasets/open_x",
               {"train": [Ep(3, 10, "Open the drawer"), Ep(4, 9, "Wipe the table")],
                "val": [Ep(2, 8, "Close the lid")]}, name="bridge", shards=2)
    # The fixtures are short and small: every frame, and 64x48 pictures let through.
    assert main(["build", str(config), "-q", "source_options.lerobot.fps=10",
                 "source_options.rlds.stride=1", "filter.min_side=32"]) == 0
    out = tmp_path / "data/robot-mix"
    info = json.loads((out / "build.json").read_text())
    assert info["config"]["sources"] == ["lerobot:datasets/so100_pickplace", "rlds:datasets/open_x"]
    samples = [s for split in info["splits"] for s in read_jsonl(out / f"{split}.jsonl", Sample)]
    sources = {s.episode_id.split("/")[0] for s in samples}
    assert "bridge" in sources and any(s.startswith("episode_") for s in sources)
    assert not any(s.episode_id.startswith("bridge/val/") for s in samples)  # split: train
    questions = " ".join(s.question for s in samples)
    assert "opening the drawer" in questions and "picking up the red cube" in questions
