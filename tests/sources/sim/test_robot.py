"""``sim:robot``: PyBullet episodes rendered on CPU, read back from the files they wrote."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode

pytest.importorskip("pybullet", reason="sim:robot needs pybullet (pip install 'tpru[sim]')")

from tpru.sources.sim import SimSource, load_simulator
from tpru.sources.sim.robot import RobotSim

Render = Callable[[str], tuple[list[Episode], Skips]]
Problems = Callable[[Episode], list[str]]
Texts = Callable[[list[Episode], int], None]
FRAMES, SIZE = 5, (320, 240)
"""As asked by the session's `render_tasks` (see `sim_request`)."""


def test_settings_match_the_session(sim_request: dict[str, object]) -> None:
    assert sim_request == {"frames": FRAMES, "size": SIZE}


def test_every_task_renders_frames_the_builder_keeps(render_tasks: Render,
                                                     frame_problems: Problems) -> None:
    episodes, skips = render_tasks("robot")
    assert not skips.counts, skips.as_dict()
    assert [e.meta["task"] for e in episodes] == list(RobotSim.tasks)
    for episode in episodes:
        assert episode.scenario == "robot" and episode.source == "sim"
        assert len(episode.frames) == FRAMES
        assert frame_problems(episode) == [], episode.description


def test_descriptions_are_distinct_and_name_what_moves(render_tasks: Render,
                                                        check_texts: Texts) -> None:
    episodes, _ = render_tasks("robot")
    check_texts(episodes, FRAMES)
    for episode in episodes:
        objects = episode.meta["objects"]
        assert episode.description is not None
        assert any(o["colour"] in episode.description for o in objects), episode.description
        assert episode.steps is not None
        assert episode.steps[0].startswith("The arm waits above the table")
        assert "moves done" in episode.steps[-1]


def test_same_seed_gives_byte_identical_files_in_a_new_process(render_tasks: Render,
                                                                tmp_path: Path) -> None:
    episodes, _ = render_tasks("robot")
    episode = episodes[1]
    script = ("import json, sys; from pathlib import Path; "
              "from tpru.sources.sim.robot import RobotSim; "
              "spec = RobotSim().render_episode(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), "
              f"frames={FRAMES}, size={SIZE}); "
              "print(json.dumps([spec.description, list(spec.steps), list(spec.frames)]))")
    run = subprocess.run([sys.executable, "-c", script, episode.meta["task"],
                          str(episode.meta["seed"]), str(tmp_path)],
                         capture_output=True, text=True, check=True)
    description, steps, names = json.loads(run.stdout.strip().splitlines()[-1])
    assert description == episode.description
    assert tuple(steps) == episode.steps
    assert [(tmp_path / name).read_bytes() for name in names] == \
        [Path(ref).read_bytes() for ref in episode.frames]


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
