"""``sim:gui``: the web app, its scripted tasks, and real Chromium screenshots read back from disk.

The planner and server tests need neither Playwright nor Chromium; the
rendering tests skip, naming what to install, only when those are absent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tpru.diagnostics import Skips
from tpru.schema import Episode
from tpru.sources.sim.webapp import STATIC
from tpru.sources.sim.webapp.server import StaticServer
from tpru.sources.sim.webapp.tasks import MAX_ACTIONS, PLANNERS

Render = Callable[[str], tuple[list[Episode], Skips]]


@pytest.fixture(scope="module")
def gui() -> Iterator[Any]:
    """The `tpru.sources.sim.gui` module; skips when Playwright or Chromium is missing."""
    pytest.importorskip("playwright", reason="sim:gui needs playwright (pip install 'tpru[sim]')")
    from tpru.sources.sim import gui as module
    from tpru.sources.sim.common import EngineMissing

    try:
        module.GuiSim().close()
    except EngineMissing as err:
        pytest.skip(f"sim:gui {err}")
    yield module


@pytest.fixture
def rendered(gui: Any, render_tasks: Render) -> tuple[list[Episode], Skips]:
    return render_tasks("gui")


# The app and its scripts: no browser needed.


@pytest.mark.parametrize("task", sorted(PLANNERS))
def test_every_planner_scripts_any_number_of_actions(task: str) -> None:
    for count in range(1, MAX_ACTIONS + 1):
        script = PLANNERS[task](np.random.default_rng(count), count)
        assert len(script.actions) == count
        assert script.actions[0].ops[0][0] == "click"
        assert script.actions[0].ops[0][1].startswith("#open-")
        assert all(op[0] in ("click", "fill", "press") for a in script.actions for op in a.ops)
        assert script.description.split()[0].endswith("ing"), script.description
        json.dumps(script.config)          # injected into the page as JSON


@pytest.mark.parametrize("task", sorted(PLANNERS))
def test_seeds_give_different_processes_and_the_same_seed_the_same(task: str) -> None:
    descriptions = [PLANNERS[task](np.random.default_rng(seed), 5).description
                    for seed in range(8)]
    assert len(set(descriptions)) == len(descriptions), descriptions
    assert PLANNERS[task](np.random.default_rng(3), 5) == PLANNERS[task](
        np.random.default_rng(3), 5)


def test_descriptions_say_what_was_done_in_order() -> None:
    script = PLANNERS["todo"](np.random.default_rng(0), 6)
    added, ticked = script.meta["added"], script.meta["ticked"]
    assert len(added) == 4 and len(ticked) == 1
    assert script.description == (
        "adding " + ", ".join(f"'{a}'" for a in added[:-1]) + f" and '{added[-1]}' to the "
        f"'{script.meta['list']}' to-do list, then ticking '{ticked[0]}'")
    shop = PLANNERS["shop"](np.random.default_rng(0), 6)
    assert shop.description.endswith(", then opening the cart, checking out, entering a "
                                     f"delivery address in {shop.meta['address'][2]} for "
                                     f"{shop.meta['address'][0]} and placing the order")


def test_static_server_serves_the_app_until_closed() -> None:
    with StaticServer(STATIC) as server:
        page = urllib.request.urlopen(f"{server.url}/shop.html", timeout=10).read().decode()
        assert 'data-page="shop"' in page and "app.js" in page
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{server.url}/nothing.html", timeout=10)
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/index.html", timeout=5)


def test_the_app_uses_nothing_from_outside() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, path.name


# Real screenshots.


@pytest.mark.browser
def test_descriptions_name_the_content(rendered: tuple[list[Episode], Skips]) -> None:
    episodes, _ = rendered
    by_task = {e.meta["task"]: e for e in episodes}
    todo = by_task["todo"]
    assert todo.description is not None and f"'{todo.meta['list']}'" in todo.description
    assert all(f"'{item}'" in todo.description for item in todo.meta["added"])
    assert by_task["shop"].description is not None
    assert f"'{by_task['shop'].meta['shop']}'" in by_task["shop"].description
    for episode in episodes:
        assert episode.steps is not None and episode.steps[0].startswith("The home screen")
        assert episode.meta["engine"].startswith("chromium ")


@pytest.mark.browser
def test_one_browser_serves_many_episodes_then_closes(gui: Any, tmp_path: Path) -> None:
    sim = gui.GuiSim()
    with sim:
        specs = []
        for seed, task in enumerate(("notes", "contact")):
            folder = tmp_path / task
            folder.mkdir()
            specs.append(sim.render_episode(task, seed + 10, folder, frames=3, size=(400, 225)))
            if seed == 0:
                engine = sim._holder["engine"]
        assert sim._holder["engine"] is engine          # started once, reused
        browser = engine.browser
        assert browser.is_connected()
    assert not browser.is_connected() and "engine" not in sim._holder
    for spec, task in zip(specs, ("notes", "contact"), strict=True):
        assert spec.meta["viewport"] == [853, 480]      # wider than 4:3: same height, wider page
        for name in spec.frames:
            with Image.open(tmp_path / task / name) as image:
                assert image.size == (400, 225)


@pytest.mark.browser
def test_a_forgotten_simulator_s_browser_is_stopped_at_the_next_episode(gui: Any,
                                                                        tmp_path: Path) -> None:
    forgotten = gui.GuiSim()
    forgotten.render_episode("settings", 1, tmp_path, frames=2, size=(160, 120))
    browser = forgotten._holder["engine"].browser
    # What the garbage collector runs when it frees a simulator nobody closed (when that
    # happens is up to the collector: Playwright keeps the caller's frames for a while).
    forgotten._finalizer()
    assert browser.is_connected()       # never stopped from inside the collector
    with gui.GuiSim() as sim:
        (tmp_path / "next").mkdir()
        sim.render_episode("settings", 2, tmp_path / "next", frames=2, size=(160, 120))
        assert not browser.is_connected()


def test_requests_out_of_range_are_refused(gui: Any, tmp_path: Path) -> None:
    sim = gui.GuiSim()
    with pytest.raises(ValueError, match="at most 12 frames"):
        sim.render_episode("todo", 0, tmp_path, frames=13, size=(320, 240))
    with pytest.raises(ValueError, match="no task 'chess'"):
        sim.render_episode("chess", 0, tmp_path, frames=3, size=(320, 240))
    assert not sim._holder                              # refused before starting a browser


def test_missing_chromium_names_what_to_install(gui: Any, tmp_path: Path) -> None:
    from tpru.sources.sim.common import EngineMissing

    with pytest.raises(EngineMissing, match=r"scripts/setup-system.sh browser") as err:
        gui.GuiSim(chromium=tmp_path / "chromium")
    assert "Debian package chromium" in str(err.value) and "\n" not in str(err.value)
