"""``sim:lego``: generated LDraw models, and real LeoCAD renders read back from disk.

The model tests need no engine; the rendering tests skip, naming what to
install, only when LeoCAD, Xvfb or the LDraw library is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.sim import lego, load_simulator
from tpru.sources.sim.common import EngineMissing
from tpru.sources.sim.lego import LegoSim, find_library
from tpru.sources.sim.lego_ldraw import part_title, regroup
from tpru.sources.sim.lego_models import BUILDERS
from tpru.sources.sim.lego_parts import to_ldr
from tpru.sources.sim.lego_render import BACKDROPS

Render = Callable[[str], tuple[list[Episode], Skips]]


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    """Skips, saying what to install, when LeoCAD, Xvfb or the LDraw library is missing."""
    try:
        LegoSim().close()
    except EngineMissing as err:
        pytest.skip(f"sim:lego {err}")
    yield


@pytest.fixture
def rendered(engine: None, render_tasks: Render) -> tuple[list[Episode], Skips]:
    return render_tasks("lego")


# Models: no engine needed.


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_every_model_has_the_steps_asked_for(task: str) -> None:
    library = find_library()
    for steps in range(2, 13):
        model = BUILDERS[task](np.random.default_rng(steps), steps)
        assert len(model.steps) == steps and all(step.parts for step in model.steps)
        text = to_ldr(model)
        assert text.count("\n0 STEP") == steps
        for line in text.splitlines():
            if line.startswith("1 "):
                fields = line.split()
                assert len(fields) == 15, line
                if library is not None:
                    assert (library / "parts" / fields[14]).is_file(), line


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_seeds_give_different_models_and_the_same_seed_the_same(task: str) -> None:
    descriptions = [BUILDERS[task](np.random.default_rng(seed), 5).description
                    for seed in range(10)]
    assert len(set(descriptions)) == len(descriptions), descriptions
    assert to_ldr(BUILDERS[task](np.random.default_rng(4), 5)) == \
        to_ldr(BUILDERS[task](np.random.default_rng(4), 5))


def test_parts_sit_on_what_is_below() -> None:
    model = BUILDERS["tower"](np.random.default_rng(0), 4)
    lines = [line.split() for line in to_ldr(model).splitlines() if line.startswith("1 ")]
    plate_top = int(lines[0][3])
    assert plate_top == -8                              # a plate on the ground, -Y up
    assert [int(f[3]) for f in lines[1:]] == [-32] * 3 + [-56] * 3 + [-80] * 3 + [-104] * 3


def test_regrouping_keeps_the_order_and_balances_the_steps() -> None:
    steps = [["a1", "a2", "a3", "a4", "a5", "a6"], ["b1", "b2"], ["c1"]]
    weights = {"a": 8, "b": 8, "c": 1}
    grouped = regroup(steps, 4, lambda line: weights[line[0]])
    assert grouped is not None and len(grouped) == 4
    assert [line for group in grouped for line in group] == [line for s in steps for line in s]
    assert grouped[-1][-1] == "c1" and len(grouped[-1]) > 1     # the lone small part joins
    assert regroup(steps, 2, lambda line: 1) is not None
    assert regroup(steps, 10, lambda line: 1) is None


def test_part_titles_read_like_words() -> None:
    assert part_title("0 Brick  2 x  4") == "2x4 brick"
    assert part_title("0 Plate  2 x  2 with Wheels Holder") == "2x2 plate with wheels holder"
    assert part_title("0 Tyre  6/50 x  8 Offset Tread") == "tyre offset tread"
    assert part_title("0 ~Car Steering Stand and Wheel (Complete)") == \
        "car steering stand and wheel"


def test_missing_library_names_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    with pytest.raises(EngineMissing, match="ldraw-parts") as err:
        LegoSim(library=tmp_path)
    assert "scripts/setup-system.sh lego" in str(err.value)
    monkeypatch.setenv("LDRAWDIR", str(tmp_path))
    monkeypatch.setattr(lego, "LIBRARY_PATHS", ())
    with pytest.raises(InputError, match=r"^simulator 'lego': needs LeoCAD, Xvfb and the LDraw "
                                         r"parts library \(missing: .*the LDraw library") as err:
        load_simulator("lego")
    assert "Debian packages leocad, xvfb, ldraw-parts" in str(err.value)
    assert "\n" not in str(err.value)


# Real renders.


def test_models_stand_on_an_opaque_backdrop(rendered: tuple[list[Episode], Skips]) -> None:
    episodes, _ = rendered
    for episode in episodes:
        with Image.open(episode.frames[-1]) as image:
            corner = np.asarray(image)[:8, :8].astype(int)
        backdrop = BACKDROPS[episode.meta["backdrop"]]
        assert np.abs(corner.mean(axis=(0, 1)) - backdrop).max() < 16


def test_descriptions_name_the_colours(rendered: tuple[list[Episode], Skips]) -> None:
    episodes, _ = rendered
    by_task = {e.meta["task"]: e for e in episodes}
    tower = by_task["tower"]
    assert tower.description is not None and tower.steps is not None
    assert all(colour in tower.description for colour in tower.meta["courses"])
    first, second = tower.meta["courses"][:2]
    assert tower.steps[0].endswith(f"8x8 plate with three {first} 2x6 bricks side by side "
                                   "on it.")
    assert tower.steps[1] == (f"Adding three {second} 2x6 bricks side by side on top of the "
                              f"{first} course, crosswise.")
    if "example_car" in by_task:
        car = by_task["example_car"]
        assert car.description is not None and f"{car.meta['body']} body" in car.description
        assert car.steps is not None and all(s.startswith("Adding ") for s in car.steps)


def test_one_x_server_serves_many_models_then_stops(engine: None, tmp_path: Path) -> None:
    with LegoSim() as sim:
        for seed, task in enumerate(("mosaic", "bridge")):
            (tmp_path / task).mkdir()
            spec = sim.render_episode(task, seed, tmp_path / task, frames=3, size=(200, 100))
            if seed == 0:
                server = sim._server.process
            with Image.open(tmp_path / task / spec.frames[0]) as image:
                assert image.size == (200, 100)
        assert sim._server.process is server and server is not None
        assert server.poll() is None
    assert server.poll() is not None                  # stopped on leaving the block
