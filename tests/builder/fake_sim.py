"""A stand-in simulator for the tests: draws `episode_files` frames instead of rendering.

It goes through `tpru.sources.sim.SimSource` like the real ones, so the folder
it leaves has the real layout and sidecar files (`tpru.sources.sim`).
"""

from __future__ import annotations

from pathlib import Path

from episode_files import frame_image, write_image

from tpru.sources.sim.common import EpisodeSpec


class FakeSim:
    """Tasks ``push`` and ``stack`` (robot) or ``maze`` (nav): textured frames, one step each."""

    def __init__(self, name: str, tasks: tuple[str, ...], offset: int) -> None:
        self.name, self.tasks, self.offset = name, tasks, offset

    def render_episode(self, task: str, seed: int, folder: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        names = tuple(f"{i:03d}.jpg" for i in range(frames))
        for i, name in enumerate(names):
            write_image(folder / name, frame_image(self.offset + seed, i, size))
        return EpisodeSpec(description=f"{task} episode number {seed} in the {self.name} scene",
                           steps=tuple(f"step {i}" for i in range(frames)), frames=names,
                           meta={"engine": "fake"})


def robot() -> FakeSim:
    return FakeSim("robot", ("push", "stack"), 1000)


def nav() -> FakeSim:
    return FakeSim("nav", ("maze",), 2000)
