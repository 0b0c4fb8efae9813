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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpru.build.config import FilterConfig, ImageConfig
from tpru.build.images import frame_change, hamming, measure_frame
from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.base import LoadedFrame
from tpru.sources.sim import SIMULATORS, load_simulator

Render = Callable[[str], tuple[list[Episode], Skips]]
FRAMES, SIZE = 5, (320, 240)
"""As asked by the session's `render_tasks` (see `sim_request`); the other test files import
these."""
FORMATS = {"gui": "PNG", "lego": "JPEG", "nav": "JPEG", "robot": "JPEG"}
"""The image format each simulator writes (the web app's screenshots are lossless)."""
REPLAYED = {"gui": (2,), "lego": (0, -1), "nav": (1,), "robot": (1,)}
"""Which of a simulator's session episodes are rendered again in a new process, by index:
gui's shop task, lego's first model (generated) and its last (from the LDraw library)."""


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
