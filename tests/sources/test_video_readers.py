"""The video held open between reads (`READERS`): a LeRobot v3.0 mp4 packing several
episodes, read episode by episode as the builder reads it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("pyarrow")

from lerobot_fixtures import bar_of, episode_of, write_v30

from tpru.diagnostics import Skips
from tpru.schema import Episode
from tpru.sources.base import load_frames
from tpru.sources.lerobot import LeRobotSource
from tpru.sources.video_readers import READERS

# Four episodes packed in file-000.mp4 (3.6 s at 10 fps), the last one in file-001.mp4.
EPISODES = [(9, "Pick up the red cube."), (8, "Stack the blue block"), (10, "Pick up the pen"),
            (9, "Open the drawer"), (7, "Wipe the table")]


@pytest.fixture
def packed(tmp_path: Path) -> list[Episode]:
    root = write_v30(tmp_path / "packed", EPISODES, video_files=[0, 0, 0, 0, 1])
    episodes = list(LeRobotSource(root, skips=Skips(), fps=5.0).iter_episodes())
    assert len(episodes) == len(EPISODES)
    return episodes


@pytest.fixture(autouse=True)
def nothing_held() -> Iterator[None]:
    READERS.close()
    yield
    READERS.close()


def pixels(episode: Episode) -> list[np.ndarray]:
    out = []
    for frame in load_frames(episode.frames):
        assert frame.image is not None, frame.message
        out.append(np.asarray(frame.image))
    return out


def fresh(episode: Episode) -> list[np.ndarray]:
    """The episode's frames read from a file opened for it alone (as before `READERS`)."""
    READERS.close()
    try:
        return pixels(episode)
    finally:
        READERS.close()


def test_a_packed_file_is_opened_once_for_its_episodes(packed: list[Episode]) -> None:
    before = READERS.opens
    held = [pixels(e) for e in packed]
    assert READERS.opens - before == 2  # file-000 once for four episodes, file-001 once
    assert READERS.held is not None and READERS.held.endswith("file-001.mp4")
    before = READERS.opens
    alone = [fresh(e) for e in packed]
    assert READERS.opens - before == len(packed)
    for mine, theirs in zip(held, alone, strict=True):
        assert len(mine) == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
    # And they are the frames chosen: episode e's frames 0, 2, 4, ...
    for e, (episode, frames) in enumerate(zip(packed, held, strict=True)):
        shown = [(episode_of(Image.fromarray(f)), bar_of(Image.fromarray(f))) for f in frames]
        assert shown == [(e, k) for k in episode.meta["frame_indices"]]


def test_a_held_file_read_backwards_gives_the_same_frames(packed: list[Episode]) -> None:
    # Episode 3 lies past a second into the file (a seek), episode 0 at its start (a
    # rewind), episode 2 between them: each read after another of the same file.
    order = [3, 0, 2, 2, 1]
    before = READERS.opens
    held = [pixels(packed[e]) for e in order]
    assert READERS.opens - before == 1
    for e, frames in zip(order, held, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(frames, fresh(packed[e]), strict=True))


def test_a_file_changed_on_disk_is_opened_afresh(packed: list[Episode]) -> None:
    start = packed[0].frames[0]  # file-000.mp4 at 0 s
    path = start.rpartition("#t=")[0]
    [original] = load_frames([start])
    assert READERS.held == path
    before = READERS.opens
    # Another video under the same name: its first frame is episode 4's.
    os.replace(packed[4].frames[0].rpartition("#t=")[0], path)
    [changed] = load_frames([start])
    assert READERS.opens - before == 1
    assert original.image is not None and changed.image is not None
    assert (episode_of(original.image), episode_of(changed.image)) == (0, 4)


def _read_in_child(episode: Episode) -> tuple[list[np.ndarray], int]:
    before = READERS.opens
    return pixels(episode), READERS.opens - before


def test_a_held_file_is_closed_before_a_fork(packed: list[Episode]) -> None:
    mine = pixels(packed[1])
    assert READERS.held is not None
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        theirs, child_opens = pool.submit(_read_in_child, packed[1]).result(timeout=60)
        assert READERS.held is None  # closed in this process before the worker forked
    assert child_opens == 1  # the worker opened its own
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
