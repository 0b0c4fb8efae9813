"""What every simulator promises, checked on each in turn: frames the builder keeps, texts, seeds.

Each test runs once per simulator (``[gui]``, ``[lego]``, ``[nav]``, ``[robot]``)
on the episodes the session rendered (`render_tasks`), and skips, naming what
to install, for a simulator whose engine is missing. `frame_problems` judges
frames with the builder's own measurements and default thresholds, so that a
test fails exactly when the builder would drop a frame as blank, blurred or a
near-duplicate (stricter: consecutive thumbnails must differ by more than the
near-duplicate limit whatever their hashes say). What only one simulator
promises is tested in its own file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpru.builder.config import FilterConfig, ImageConfig
from tpru.builder.images import frame_change, hamming, measure_frame
from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.base import LoadedFrame
from tpru.sources.sim import SIMULATORS, SimSource, load_simulator, nav_tasks, robot_tasks
from tpru.sources.sim.common import episode_rng
from tpru.sources.sim.lego_render import BACKDROPS
from tpru.sources.sim.webapp import tasks as gui_tasks

Render = Callable[[str], tuple[list[Episode], Skips]]
FRAMES, SIZE = 5, (320, 240)
"""As asked by the session's `render_tasks` (see `sim_request`); the other test files import
these."""
FORMATS = {"gui": "PNG", "lego": "JPEG", "nav": "JPEG", "robot": "JPEG"}
"""The image format each simulator writes (the web app's screenshots are lossless)."""
REPLAYED = {"gui": (2,), "lego": (0, -1), "nav": (1,), "robot": (1,)}
"""Which of a simulator's session episodes are rendered again in a new process, by index:
gui's shop task, lego's first model (generated) and its last (from the LDraw library)."""
LOOK_POOLS: dict[str, Collection[str]] = {"gui": gui_tasks.THEMES, "lego": BACKDROPS,
                                          "nav": nav_tasks.LOOKS, "robot": robot_tasks.LOOKS}
"""Each simulator's shared pool of looks, as its module names it; ``meta.look`` is one of them."""
LOOK_EPISODES = {"gui": 12, "lego": 12, "nav": 24, "robot": 12}
"""Episodes rendered to see the pool shared: nav's pairs must also share a task (below)."""


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.browser) if name == "gui" else name
                        for name in sorted(SIMULATORS)])
def simulator(request: pytest.FixtureRequest) -> str:
    """Each simulator's name in turn; skips, saying what to install, if its engine is missing."""
    name: str = request.param
    try:
        load_simulator(name)
    except InputError as err:
        pytest.skip(str(err))
    return name


def frame_problems(episode: Episode) -> list[str]:
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


def background(simulator: str, episode: Episode) -> np.ndarray | None:
    """The median colour of a patch of the first frame that shows only the look, or None.

    The top-left corner shows the floor (robot), the backdrop (lego) or the theme's header
    (gui). A nav walk shows its floor in front of the agent where it starts with open floor
    ahead: in a maze, facing the open side of its cell, and in a ``collect`` room, whose
    objects stand far from the start.
    """
    with Image.open(episode.frames[0]) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width, _ = pixels.shape
    if simulator != "nav":
        patch = pixels[:6, :6]
    elif episode.meta["task"] in ("maze", "collect"):
        patch = pixels[-height // 8:, width // 4: 3 * width // 4]
    else:
        return None
    colour: np.ndarray = np.median(patch.reshape(-1, 3), axis=0)
    return colour


def test_settings_match_the_session(sim_request: dict[str, object]) -> None:
    assert sim_request == {"frames": FRAMES, "size": SIZE}


def test_every_task_renders_frames_the_builder_keeps(simulator: str,
                                                     render_tasks: Render) -> None:
    episodes, skips = render_tasks(simulator)
    assert not skips.counts, skips.as_dict()
    assert [e.meta["task"] for e in episodes] == list(load_simulator(simulator).tasks)
    for episode in episodes:
        assert episode.scenario == simulator and episode.source == "sim"
        assert len(episode.frames) == FRAMES
        assert frame_problems(episode) == [], episode.description
        for ref in episode.frames:
            with Image.open(ref) as image:
                assert (image.size, image.mode, image.format) == \
                    (SIZE, "RGB", FORMATS[simulator]), ref


def test_descriptions_are_distinct_gerunds_with_one_step_per_frame(
        simulator: str, render_tasks: Render) -> None:
    episodes, _ = render_tasks(simulator)
    descriptions = [e.description for e in episodes]
    assert len(set(descriptions)) == len(descriptions), descriptions
    for episode in episodes:
        text = episode.description
        assert text and text[0].islower() and not text.endswith("."), text
        assert text.split()[0].endswith("ing"), text
        assert episode.steps is not None and len(episode.steps) == FRAMES
        assert all(step and step.endswith(".") for step in episode.steps), episode.steps


def test_same_seed_gives_byte_identical_files_in_a_new_process(
        simulator: str, render_tasks: Render, tmp_path: Path) -> None:
    episodes, _ = render_tasks(simulator)
    script = ("import json, sys; from pathlib import Path; "
              "from tpru.sources.sim import load_simulator; "
              "spec = load_simulator(sys.argv[1]).render_episode(sys.argv[2], int(sys.argv[3]), "
              f"Path(sys.argv[4]), frames={FRAMES}, size={SIZE}); "
              "print(json.dumps([spec.description, list(spec.steps), list(spec.frames)]))")
    for episode in (episodes[index] for index in REPLAYED[simulator]):
        out = tmp_path / episode.meta["task"]
        out.mkdir()
        run = subprocess.run([sys.executable, "-c", script, simulator, episode.meta["task"],
                              str(episode.meta["seed"]), str(out)],
                             capture_output=True, text=True, check=True, timeout=300)
        description, steps, names = json.loads(run.stdout.strip().splitlines()[-1])
        assert description == episode.description
        assert tuple(steps) == episode.steps
        assert [(out / name).read_bytes() for name in names] == \
            [Path(ref).read_bytes() for ref in episode.frames]


def test_looks_come_from_a_small_pool_shared_across_episodes(simulator: str,
                                                             tmp_path: Path) -> None:
    # Frames of other episodes are candidates: they must not be ruled out by their look alone.
    skips = Skips()
    source = SimSource(simulator, skips=skips, episodes=LOOK_EPISODES[simulator], frames=3,
                       seed=100, size=SIZE, out=tmp_path)
    episodes = list(source.iter_episodes())
    assert len(episodes) == LOOK_EPISODES[simulator], skips.as_dict()
    pool = LOOK_POOLS[simulator]
    looks = Counter(episode.meta["look"] for episode in episodes)
    assert set(looks) <= set(pool) and len(looks) <= len(pool) <= 4, looks
    assert max(looks.values()) >= 2, looks
    # The same look is the same picture where only the look shows.
    colours: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for episode in episodes:
        colour = background(simulator, episode)
        if colour is not None:
            task = episode.meta["task"] if simulator == "nav" else ""
            colours[(episode.meta["look"], task)].append(colour)
    pairs = [(key, found[:2]) for key, found in colours.items() if len(found) >= 2]
    assert pairs, colours
    for key, (a, b) in pairs:
        assert np.abs(a - b).max() < 12, (key, a, b)


def test_planners_draw_looks_from_the_pool_without_an_engine() -> None:
    # Lego's backdrop also depends on the library's colours: its renders are tested above.
    def look(name: str, seed: int) -> str:
        task = {"robot": robot_tasks.EPISODE_TASKS, "nav": nav_tasks.EPISODE_TASKS,
                "gui": tuple(gui_tasks.PLANNERS)}[name][seed % 5]
        rng = episode_rng(name, task, seed)
        if name == "robot":
            return robot_tasks.plan_task(task, rng).look
        if name == "nav":
            return nav_tasks.PLANNERS[task](rng).look
        return str(gui_tasks.PLANNERS[task](rng, 4).config["theme"])

    for name in ("robot", "nav", "gui"):
        looks = Counter(look(name, seed) for seed in range(24))
        assert set(looks) <= set(LOOK_POOLS[name]) and len(LOOK_POOLS[name]) <= 4, looks
        assert len(looks) >= 2 and max(looks.values()) >= 2, looks
