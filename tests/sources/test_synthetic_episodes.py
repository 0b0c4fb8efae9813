"""The synthetic episode writer: layout, determinism, visible progress, distinct texts."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import folder_bytes
from tpru.builder.config import FilterConfig, ImageConfig
from tpru.builder.images import frame_change, hamming, measure_frame
from tpru.diagnostics import Skips
from tpru.sources.base import LoadedFrame
from tpru.sources.frames import FrameFolderSource
from tpru.sources.synthetic import (
    EPISODE_TASKS_BY_SCENARIO,
    MAX_FRAMES,
    SCENARIOS,
    write_synthetic_episodes,
)
from tpru.sources.synthetic import gui as synthetic_gui
from tpru.sources.synthetic import lego as synthetic_lego
from tpru.sources.synthetic import nav as synthetic_nav
from tpru.sources.synthetic import robot as synthetic_robot


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """3 episodes per scenario, 6 frames each, seed 0 (read-only)."""
    return write_synthetic_episodes(tmp_path_factory.mktemp("synthetic"), episodes=3, seed=0)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def laplacian_variance(path: Path) -> float:
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1]
           - 4.0 * grey[1:-1, 1:-1])
    return float(lap.var())


def test_layout_is_one_frame_folder_per_episode(written: list[Path]) -> None:
    root = written[0].parent.parent
    assert [p.relative_to(root).as_posix() for p in written] == [
        f"{s}/ep{i:03d}" for s in SCENARIOS for i in range(3)]
    for folder in written:
        assert sorted(p.name for p in folder.iterdir()) == [
            "000.jpg", "001.jpg", "002.jpg", "003.jpg", "004.jpg", "005.jpg", "episode.json"]
        assert Image.open(folder / "000.jpg").size == (320, 240)
        info = json.loads((folder / "episode.json").read_text())
        assert info["scenario"] == folder.parent.name
        assert info["meta"]["task"] in EPISODE_TASKS_BY_SCENARIO[info["scenario"]]
        assert len(info["steps"]) == 6 and all(s.strip() for s in info["steps"])


def test_the_frame_folder_source_reads_them(written: list[Path]) -> None:
    skips = Skips(strict=True)
    found = list(FrameFolderSource(written[0].parent.parent, skips=skips).iter_episodes())
    assert [e.id for e in found] == [f"{s}/ep{i:03d}" for s in sorted(SCENARIOS)
                                     for i in range(3)]
    assert [e.scenario for e in found] == [s for s in sorted(SCENARIOS) for _ in range(3)]
    assert all(len(e.frames) == 6 and e.steps and e.description for e in found)


def test_frames_show_progress_and_are_sharp(written: list[Path]) -> None:
    for folder in written:
        frames = [pixels(p) for p in sorted(folder.glob("*.jpg"))]
        steps = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(frames)]
        assert min(steps) > 0.005, (folder, steps)
        assert float(np.abs(frames[0] - frames[-1]).mean()) > 0.05, folder
        assert min(laplacian_variance(p) for p in folder.glob("*.jpg")) > 100, folder


def test_descriptions_and_steps_tell_episodes_apart(written: list[Path]) -> None:
    infos = [json.loads((p / "episode.json").read_text()) for p in written]
    descriptions = [info["description"] for info in infos]
    assert len(set(descriptions)) == len(descriptions)
    assert all(len(d) > 40 for d in descriptions)
    assert len({tuple(info["steps"]) for info in infos}) == len(infos)


def test_descriptions_are_gerund_phrases(written: list[Path]) -> None:
    # The builder puts them after "These photos show the process of ...".
    for folder in written:
        description = json.loads((folder / "episode.json").read_text())["description"]
        first = description.split()[0]
        assert first.islower() and first.endswith("ing"), description
        assert not description.endswith("."), description


@pytest.mark.parametrize("frames", [8, MAX_FRAMES])
def test_no_frame_is_a_near_duplicate_or_blurred_for_the_builder(tmp_path: Path,
                                                                 frames: int) -> None:
    # The builder's own measurements and default thresholds (tpru.builder.measure).
    rule, image = FilterConfig(), ImageConfig()
    tasks: set[tuple[str, str]] = set()
    for folder in write_synthetic_episodes(tmp_path, episodes=3, frames=frames, seed=0):
        info = json.loads((folder / "episode.json").read_text())
        tasks.add((info["scenario"], info["meta"]["task"]))
        measured = [measure_frame(LoadedFrame(p.name, data=p.read_bytes()), image)
                    for p in sorted(folder.glob("*.jpg"))]
        assert len(measured) == frames
        for i, (a, b) in enumerate(itertools.pairwise(measured)):
            bits = hamming(a.phash, b.phash)
            diff = frame_change(a.look, b.look)
            assert bits > rule.dup_hamming or diff > rule.dup_pixel_diff, (folder, i, bits, diff)
        assert min(m.sharpness for m in measured) > rule.blur_threshold, folder
    assert tasks == {(s, t) for s in SCENARIOS for t in EPISODE_TASKS_BY_SCENARIO[s]}


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    options = {"episodes": 2, "frames": 4, "size": (160, 120)}
    write_synthetic_episodes(tmp_path / "a", seed=7, **options)  # type: ignore[arg-type]
    write_synthetic_episodes(tmp_path / "b", seed=7, **options)  # type: ignore[arg-type]
    write_synthetic_episodes(tmp_path / "c", seed=8, **options)  # type: ignore[arg-type]
    a, b, c = (folder_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a if name.endswith(".jpg"))


def test_every_scenario_has_three_kinds_of_task(written: list[Path]) -> None:
    tasks: dict[str, set[str]] = {s: set() for s in SCENARIOS}
    for folder in written:
        info = json.loads((folder / "episode.json").read_text())
        tasks[info["scenario"]].add(info["meta"]["task"])
    assert tasks == {s: set(EPISODE_TASKS_BY_SCENARIO[s]) for s in SCENARIOS}
    assert all(len(EPISODE_TASKS_BY_SCENARIO[s]) >= 3 for s in SCENARIOS)


@pytest.mark.parametrize("frames", [3, 12])
def test_any_frame_count_in_range_shows_progress(tmp_path: Path, frames: int) -> None:
    for folder in write_synthetic_episodes(tmp_path, episodes=2, frames=frames, seed=3):
        images = [pixels(p) for p in sorted(folder.glob("*.jpg"))]
        assert len(images) == frames
        assert min(float(np.abs(a - b).mean())
                   for a, b in itertools.pairwise(images)) > 0.002, folder


def test_rewriting_replaces_earlier_frames(tmp_path: Path) -> None:
    write_synthetic_episodes(tmp_path, episodes=1, frames=6, seed=0, scenarios=["gui"])
    [folder] = write_synthetic_episodes(tmp_path, episodes=1, frames=4, seed=0,
                                        scenarios=["gui"])
    assert len(list(folder.glob("*.jpg"))) == 4


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frames"):
        write_synthetic_episodes(tmp_path, episodes=1, frames=2, seed=0)
    with pytest.raises(ValueError, match="unknown scenarios"):
        write_synthetic_episodes(tmp_path, episodes=1, seed=0, scenarios=["kitchen"])
    with pytest.raises(ValueError, match="size"):
        write_synthetic_episodes(tmp_path, episodes=1, seed=0, size=(64, 48))


@pytest.mark.parametrize("size", [(448, 448), (160, 120), (400, 225)])
def test_other_sizes_keep_the_layout(tmp_path: Path, size: tuple[int, int]) -> None:
    for folder in write_synthetic_episodes(tmp_path, episodes=1, frames=6, seed=2, size=size):
        images = sorted(folder.glob("*.jpg"))
        assert {Image.open(p).size for p in images} == {size}
        assert float(np.abs(pixels(images[0]) - pixels(images[-1])).mean()) > 0.03, folder


LOOK_POOLS = {"robot": synthetic_robot.LOOKS, "lego": synthetic_lego.LOOKS,
              "gui": synthetic_gui.THEMES, "nav": synthetic_nav.LOOKS}
"""Each scenario's shared pool of looks (backdrop, room, theme), as its module names it."""
BAND = {"robot": slice(10, 16), "lego": slice(0, 6), "gui": slice(0, 6), "nav": slice(0, 6)}
"""Rows near the top of a first frame that show mostly the look: robot's wall below the
gripper's rail, lego's backdrop, gui's desktop, nav's ceiling or outer wall."""


def test_looks_come_from_a_small_pool_shared_across_episodes(tmp_path: Path) -> None:
    # Frames of other episodes are candidates: they must not be ruled out by their look alone.
    written = write_synthetic_episodes(tmp_path, episodes=24, frames=3, seed=5)
    infos = [json.loads((folder / "episode.json").read_text()) for folder in written]
    for scenario, pool in LOOK_POOLS.items():
        mine = [(folder, info) for folder, info in zip(written, infos, strict=True)
                if info["scenario"] == scenario]
        looks = Counter(info["meta"]["look"] for _, info in mine)
        assert set(looks) <= set(pool) and 2 <= len(looks) <= len(pool) <= 4, (scenario, looks)
        assert max(looks.values()) >= 2, (scenario, looks)
        # The same look is the same picture where only the look shows (a corridor's ceiling
        # and a room's outer wall differ, so nav pairs share a task too).
        groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
        for folder, info in mine:
            task = info["meta"]["task"] if scenario == "nav" else ""
            groups[(info["meta"]["look"], task)].append(folder / "000.jpg")
        pairs = [group[:2] for group in groups.values() if len(group) >= 2]
        assert pairs, scenario
        for a, b in pairs:
            # The median colour: a pillar, a hand or a gripper in the band does not count.
            band_a, band_b = (np.median(pixels(p)[BAND[scenario]].reshape(-1, 3), axis=0) * 255
                              for p in (a, b))
            assert np.abs(band_a - band_b).max() < 8, (a, b, band_a, band_b)
        # Content still differs: every episode is described differently.
        assert len({info["description"] for _, info in mine}) == len(mine)
