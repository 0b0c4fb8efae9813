"""Fixtures for the simulators' tests: session-rendered episodes, and ``sim:`` for builds.

Episodes are rendered once per session into a temporary cache folder (one
episode per task of each simulator) and shared by the tests, which read the
files back. What every simulator must do is tested in ``test_every_simulator.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tpru import sources
from tpru.diagnostics import Skips
from tpru.schema import Episode

FRAMES = 5
"""Frames per test episode: more than the builder's 4 per sample, few enough to be quick."""
SIZE = (320, 240)


@pytest.fixture(scope="session")
def sim_request() -> dict[str, object]:
    """The ``frames`` and ``size`` every session-rendered episode was asked with."""
    return {"frames": FRAMES, "size": SIZE}


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder every session-rendered episode goes to (read-only for tests)."""
    return tmp_path_factory.mktemp("sim-cache")


@pytest.fixture(scope="session")
def render_tasks(sim_cache: Path) -> Callable[[str], tuple[list[Episode], Skips]]:
    """``render_tasks(name)``: one episode per task of simulator `name` (seeds 0, 1, ...)."""
    from tpru.sources.sim import SimSource, load_simulator

    done: dict[str, tuple[list[Episode], Skips]] = {}

    def render(name: str) -> tuple[list[Episode], Skips]:
        if name not in done:
            skips = Skips()
            count = len(load_simulator(name).tasks)
            source = SimSource(name, skips=skips, episodes=count, frames=FRAMES, seed=0,
                               size=SIZE, out=sim_cache)
            done[name] = (list(source.iter_episodes()), skips)
        return done[name]

    return render


@pytest.fixture
def sim_source_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``sim:`` in the table of source kinds, for builds (until the lead adds it for good)."""
    monkeypatch.setitem(sources.SOURCES, "sim", "tpru.sources.sim:SimSource")
    monkeypatch.setitem(sources.EXTRAS, "sim", "sim")
    yield
