"""``sim:robot``: PyBullet episodes rendered on CPU, read back from the files they wrote."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from test_every_simulator import FRAMES, SIZE

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode

pytest.importorskip("pybullet", reason="sim:robot needs pybullet (pip install 'tpru[sim]')")

from tpru.sources.sim import SimSource, load_simulator
from tpru.sources.sim.robot import RobotSim

Render = Callable[[str], tuple[list[Episode], Skips]]


def test_descriptions_name_what_moves(render_tasks: Render) -> None:
    episodes, _ = render_tasks("robot")
    for episode in episodes:
        objects = episode.meta["objects"]
        assert episode.description is not None
        assert any(o["colour"] in episode.description for o in objects), episode.description
        assert episode.steps is not None
        assert episode.steps[0].startswith("The arm waits above the table")
        assert "moves done" in episode.steps[-1]


def test_another_seed_of_the_same_task_is_another_episode(render_tasks: Render,
                                                          tmp_path: Path) -> None:
    episodes, _ = render_tasks("robot")
    first = episodes[0]
    spec = RobotSim().render_episode(first.meta["task"], first.meta["seed"] + 6, tmp_path,
                                     frames=FRAMES, size=SIZE)
    assert spec.description != first.description
    assert (tmp_path / spec.frames[0]).read_bytes() != Path(first.frames[0]).read_bytes()


def test_rendered_episodes_are_reused_from_the_cache(render_tasks: Render,
                                                     sim_cache: Path) -> None:
    episodes, _ = render_tasks("robot")
    stamps = {ref: Path(ref).stat().st_mtime_ns for e in episodes for ref in e.frames}
    again = SimSource("robot", skips=Skips(), episodes=len(episodes), frames=FRAMES, seed=0,
                      size=list(SIZE), out=sim_cache)
    assert list(again.iter_episodes()) == episodes
    assert {ref: Path(ref).stat().st_mtime_ns for ref in stamps} == stamps


def test_the_spec_can_pick_tasks(tmp_path: Path) -> None:
    source = SimSource("robot:stack", skips=Skips(), episodes=1, frames=3, seed=4,
                       out=tmp_path)
    (episode,) = source.iter_episodes()
    assert episode.meta["task"] == "stack" and episode.id == "sim-robot-stack-000004"
    assert episode.description is not None and episode.description.startswith("stacking")
    assert Path(episode.frames[0]).parent == tmp_path / "robot" / "320x240-f3" / "000004-stack"
    assert (Path(episode.frames[0]).parent / "episode.json").is_file()


def test_unknown_task_is_a_one_line_error() -> None:
    with pytest.raises(InputError, match=r"no task 'fly'.*pick_place") as err:
        SimSource("robot:fly", skips=Skips())
    assert "\n" not in str(err.value)


def test_missing_engine_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pybullet", None)   # makes `import pybullet` fail
    monkeypatch.delitem(sys.modules, "tpru.sources.sim.robot")
    with pytest.raises(InputError, match=r"needs the Python package pybullet") as err:
        load_simulator("robot")
    assert "pip install 'tpru[sim]'" in str(err.value)
    if importlib.util.find_spec("miniworld") is not None:   # the other simulators still work
        assert load_simulator("nav").name == "nav"
