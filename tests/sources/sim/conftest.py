"""Shared checks for the simulators' tests: frames the builder would keep, texts, and builds.

Episodes are rendered once per session into a temporary cache folder (one
episode per task of each simulator) and shared by the tests, which read the
files back. The fixture `frame_problems` judges frames with the builder's own
measurements and default thresholds, so that a test fails exactly when the
builder would drop a frame as blank, blurred or a near-duplicate (stricter:
consecutive thumbnails must differ by more than the near-duplicate limit
whatever their hashes say).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpru import sources
from tpru.build.config import FilterConfig, ImageConfig
from tpru.build.images import frame_change, hamming, measure_frame
from tpru.diagnostics import Skips
from tpru.schema import Episode
from tpru.sources.base import LoadedFrame

FRAMES = 5
"""Frames per test episode: more than the builder's 4 per sample, few enough to be quick."""
SIZE = (320, 240)


@pytest.fixture(scope="session")
def sim_request() -> dict[str, object]:
    """The ``frames`` and ``size`` every session-rendered episode was asked with."""
    return {"frames": FRAMES, "size": SIZE}


@pytest.fixture(scope="session")
def frame_problems() -> Callable[[Episode], list[str]]:
    """``frame_problems(episode)``: see `_frame_problems`."""
    return _frame_problems


@pytest.fixture(scope="session")
def check_texts() -> Callable[[list[Episode], int], None]:
    """``check_texts(episodes, frames)``: see `_check_texts`."""
    return _check_texts


def _frame_problems(episode: Episode) -> list[str]:
    """Why the builder (default config) would not keep every frame of `episode`; [] if none."""
    limits, image_config = FilterConfig(), ImageConfig()
    problems: list[str] = []
    measures = []
    for ref in episode.frames:
        data = Path(ref).read_bytes()
        pixels = np.asarray(Image.open(ref).convert("RGB"), dtype=np.float32)
        if pixels.var() == 0:
            problems.append(f"{ref}: blank")
        measure = measure_frame(LoadedFrame(ref, data=data), image_config)
        if measure.sharpness < limits.blur_threshold:
            problems.append(f"{ref}: blurred (sharpness {measure.sharpness:.1f})")
        measures.append(measure)
    for k in range(1, len(measures)):
        diff = frame_change(measures[k - 1].look, measures[k].look)
        if diff <= limits.dup_pixel_diff:
            bits = hamming(measures[k - 1].phash, measures[k].phash)
            problems.append(f"{episode.frames[k]}: thumbnail differs from the previous frame "
                            f"by only {diff:.4f} (hash: {bits} bits)")
    change = max(frame_change(measures[0].look, m.look) for m in measures[1:])
    if change <= limits.min_change:
        problems.append(f"{episode.id}: static (largest change {change:.4f})")
    return problems


def _check_texts(episodes: list[Episode], frames: int) -> None:
    """Descriptions are distinct gerund phrases; one step text per frame."""
    descriptions = [e.description for e in episodes]
    assert len(set(descriptions)) == len(descriptions), descriptions
    for episode in episodes:
        text = episode.description
        assert text and text[0].islower() and not text.endswith("."), text
        assert text.split()[0].endswith("ing"), text
        assert episode.steps is not None and len(episode.steps) == frames
        assert all(step and step.endswith(".") for step in episode.steps), episode.steps


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
