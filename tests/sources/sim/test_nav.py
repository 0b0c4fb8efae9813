"""``sim:nav``: MiniWorld walks rendered on CPU, and builds over ``sim:robot`` and ``sim:nav``."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_every_simulator import FRAMES, SIZE

from tpru.builder.config import BuildConfig, SimConfig, SplitConfig
from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode, Sample, read_jsonl

# Not importorskip: MiniWorld must be imported by tpru.sources.sim.nav, which puts pyglet in
# headless mode first.
if importlib.util.find_spec("miniworld") is None:
    pytest.skip("sim:nav needs miniworld (pip install 'tpru[sim]')", allow_module_level=True)

from tpru.sources.sim import SimSource

Render = Callable[[str], tuple[list[Episode], Skips]]


def test_descriptions_and_steps_follow_the_walk(render_tasks: Render) -> None:
    episodes, _ = render_tasks("nav")
    for episode in episodes:
        goal = episode.meta["visits"][-1]
        assert episode.description is not None and goal in episode.description
        assert episode.steps is not None and goal in episode.steps[-1]
    by_task = {e.meta["task"]: e for e in episodes}
    assert by_task["collect"].steps is not None
    assert by_task["collect"].steps[-1].startswith("The agent has collected the")
    assert by_task["turn"].description is not None
    assert by_task["turn"].description.startswith("turning ")
    assert by_task["maze"].description is not None
    assert " maze with " in by_task["maze"].description


def test_a_walk_too_short_for_the_frames_asked_is_skipped_and_counted(tmp_path: Path) -> None:
    skips = Skips()
    source = SimSource("nav:turn", skips=skips, episodes=1, frames=40, out=tmp_path)
    assert list(source.iter_episodes()) == []
    assert skips.counts == {"sim_render_failed": 12}      # 2 * episodes + 10 seeds tried
    example = skips.examples["sim_render_failed"][0]
    assert str(tmp_path / "nav" / "320x240-f40" / "000000-turn") in example
    assert "too short for 40 distinct frames" in example
    assert list((tmp_path / "nav" / "320x240-f40").iterdir()) == []   # nothing half-written


def test_strict_stops_at_the_first_failed_render(tmp_path: Path) -> None:
    source = SimSource("nav:turn", skips=Skips(strict=True), episodes=1, frames=40,
                       out=tmp_path)
    with pytest.raises(InputError, match=r"000000-turn: nav task turn seed 0 failed"):
        list(source.iter_episodes())


def test_bad_options_and_names_are_one_line_errors() -> None:
    for path, options, message in [
            ("boat", {}, r"unknown simulator 'boat' \(simulators: robot, nav, gui, lego\)"),
            ("nav", {"frames": 1}, r"frames must be at least 2"),
            ("nav", {"size": [8, 8]}, r"size must be \[width, height\]"),
            ("nav:swim", {}, r"no task 'swim'.*go_to")]:
        with pytest.raises(InputError, match=message) as err:
            SimSource(path, skips=Skips(), **options)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)


def test_a_build_over_sim_robot_and_sim_nav_makes_samples(
        render_tasks: Render, sim_cache: Path, sim_source_kind: None, tmp_path: Path) -> None:
    pytest.importorskip("pybullet", reason="sim:robot needs pybullet")
    from tpru.builder.pipeline import build

    robot, _ = render_tasks("robot")   # rendered already: the build reads them from the cache
    nav, _ = render_tasks("nav")
    config = BuildConfig(
        sources=("sim:robot", "sim:nav"), out=str(tmp_path / "dataset"),
        split=SplitConfig(ratios={"train": 1.0}),
        sim=SimConfig(episodes=5, frames=FRAMES, seed=0, size=SIZE, out=str(sim_cache)))
    result = build(config, show_progress=False)
    samples = list(read_jsonl(result.path / "train.jsonl", Sample))
    assert {s.scenario for s in samples} == {"robot", "nav"}
    assert {s.task for s in samples} == {"ordering", "next_frame", "prev_frame"}
    episode_ids = {e.id for e in robot[:5] + nav[:5]}
    assert {s.episode_id for s in samples} == episode_ids
    assert all((result.path / image).is_file() for s in samples for image in s.images)
    info = json.loads((result.path / "build.json").read_text())
    assert info["counts"]["episodes_kept"] == 10
    assert info["counts"]["frames_kept"] == info["counts"]["frames_read"] == 10 * FRAMES
    assert info["drops"]["inputs"] == {} and info["drops"]["frames"] == {}
