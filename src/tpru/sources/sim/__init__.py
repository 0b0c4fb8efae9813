"""Episodes rendered on CPU by real simulators: ``sim:robot``, ``sim:nav``, ``sim:gui``, ...

Each simulator (see `tpru.sources.sim.common` for the interface) renders
scripted episodes of a few task types from a seed. `SimSource` asks one
simulator for episodes, seed after seed, writes their frames into a cache
folder and yields `Episode` records that point at them.

How to ask for episodes: the build passes its ``sim`` section as options,
so in a build config::

    sources: ["sim:robot", "sim:nav"]
    sim: {episodes: 24, frames: 6, seed: 0, size: [320, 240], out: null}

or ``tpru build --source sim:robot sim.episodes=100 sim.frames=8``. The
options mean:

- ``episodes``: episodes per simulator (seeds that fail or repeat an
  earlier description are skipped, counted, and replaced by further seeds);
- ``frames``: frames per episode (one per sub-action that has settled);
- ``seed``: the first seed; seed ``s`` renders task ``tasks[s % len(tasks)]``,
  so tasks take turns and one seed always gives the same episode;
- ``size``: frame width and height;
- ``out``: the folder frames are written to, default ``$XDG_CACHE_HOME/tpru/sim``
  (``~/.cache/tpru/sim``). An episode already rendered there with the same
  simulator, task, seed, frames and size, by the same tpru version and
  simulator code, is reused.

``sim:robot:stack,push`` limits a simulator to some of its tasks.

Layout: ``<out>/<simulator>/<W>x<H>-f<frames>/<seed:06d>-<task>/000.jpg ...``
with ``episode.json`` (written last) beside the frames: the cache ``key``,
``description``, ``steps``, ``frames`` (the file names, in order) and
``meta``. ``frames:<out>`` reads such a folder back as the same episodes
(see `tpru.sources.frames`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tpru import __version__
from tpru.diagnostics import InputError, Skips
from tpru.registry import load
from tpru.schema import Episode
from tpru.sources.frames import EPISODE_FILE, sim_episode_id
from tpru.sources.sim.common import EngineMissing, EpisodeSpec, Simulator

log = logging.getLogger(__name__)

SIMULATORS: dict[str, str] = {
    "robot": "tpru.sources.sim.robot:RobotSim",
    "nav": "tpru.sources.sim.nav:NavSim",
    "gui": "tpru.sources.sim.gui:GuiSim",
    "lego": "tpru.sources.sim.lego:LegoSim",
}
"""Simulator name -> ``"module:class"``, imported only when that simulator is used."""

REQUIREMENTS: dict[str, str] = {
    "robot": "the Python package pybullet",
    "nav": "the Python package miniworld (with a headless OpenGL: Mesa's EGL)",
    "gui": "the Python package playwright and Chromium at /usr/bin/chromium",
    "lego": "LeoCAD with the LDraw parts library and xvfb",
}
"""What each simulator's engine needs, for the message when it is missing."""

MAX_EXTRA_SEEDS = 10
"""Seeds tried beyond ``2 * episodes`` before giving up on failing or repeating ones."""


def load_simulator(name: str) -> Simulator:
    """The simulator called `name`, its engine imported now.

    Raises:
        InputError: an unknown name, or a missing engine (the message says
            what to install).
    """
    if name not in SIMULATORS:
        raise InputError(f"unknown simulator {name!r} (simulators: {', '.join(SIMULATORS)})")
    factory = load(SIMULATORS[name], what=f"simulator {name!r}", extra="sim",
                   needs=REQUIREMENTS[name])
    try:
        simulator: Simulator = factory()
    except EngineMissing as err:
        raise InputError(f"simulator {name!r}: {err}") from None
    return simulator


def code_version() -> str:
    """A digest of this package's source files: a cached episode is reused only if they match.

    Any change to a simulator may change its frames, and the package version is
    not bumped for every change.
    """
    if not _CODE:
        digest = hashlib.sha256()
        for path in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _CODE.append(digest.hexdigest()[:16])
    return _CODE[0]


_CODE: list[str] = []


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/tpru/sim``, or ``~/.cache/tpru/sim``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tpru" / "sim"


class SimSource:
    """Episodes of one simulator, rendered into a cache folder (see the module docstring).

    Args:
        path: the part after ``sim:``: a simulator name, optionally followed by
            ``:TASK,TASK`` to use only those tasks.
        skips: counts renders that failed and repeated descriptions.
        episodes: how many episodes to yield.
        frames: frames per episode.
        seed: the first seed.
        size: (width, height) of the frames.
        out: the cache folder (default `default_cache`).

    Example:
        >>> source = SimSource("nav:maze", skips=Skips(), episodes=2, frames=4)  # doctest: +SKIP
        >>> [e.id for e in source.iter_episodes()]                               # doctest: +SKIP
        ['sim-nav-maze-000000', 'sim-nav-maze-000001']
    """

    def __init__(self, path: str, *, skips: Skips, episodes: int = 24, frames: int = 6,
                 seed: int = 0, size: Sequence[int] = (320, 240),
                 out: str | os.PathLike[str] | None = None) -> None:
        name, _, wanted = path.partition(":")
        if episodes < 1:
            raise InputError(f"sim:{path}: episodes must be at least 1, got {episodes}")
        if frames < 2:
            raise InputError(f"sim:{path}: frames must be at least 2, got {frames}")
        if seed < 0:
            raise InputError(f"sim:{path}: seed must be a non-negative integer, got {seed}")
        if len(size) != 2 or min(size) < 16 or max(size) > 4096:
            raise InputError(f"sim:{path}: size must be [width, height], 16 to 4096 pixels "
                             f"each, got {list(size)}")
        self.simulator = load_simulator(name)
        tasks = tuple(t.strip() for t in wanted.split(",") if t.strip()) if wanted else ()
        unknown = [t for t in tasks if t not in self.simulator.tasks]
        if unknown:
            raise InputError(f"sim:{path}: simulator {name!r} has no task "
                             f"{', '.join(map(repr, unknown))} "
                             f"(tasks: {', '.join(self.simulator.tasks)})")
        self.name = name
        self.tasks = tasks or self.simulator.tasks
        self.skips = skips
        self.episodes = episodes
        self.frames = frames
        self.seed = seed
        self.size = (int(size[0]), int(size[1]))
        self.root = Path(os.path.abspath(Path(out).expanduser() if out else default_cache()))

    def task_of(self, seed: int) -> str:
        """The task seed `seed` renders: the tasks take turns."""
        return self.tasks[seed % len(self.tasks)]

    def folder_of(self, seed: int) -> Path:
        """Where the episode of `seed` is written."""
        w, h = self.size
        return (self.root / self.name / f"{w}x{h}-f{self.frames}"
                / f"{seed:06d}-{self.task_of(seed)}")

    def iter_episodes(self) -> Iterator[Episode]:
        """`episodes` episodes in seed order; a failed or repeated one is skipped and replaced."""
        return self.admit(self.open_episode(seed) for seed in self.episode_keys())

    def episode_keys(self) -> Iterator[int]:
        """The seeds that may be rendered, in order (`admit` stops when it has enough)."""
        return iter(range(self.seed, self.seed + 2 * self.episodes + MAX_EXTRA_SEEDS))

    def open_episode(self, key: int) -> Episode | None:
        """The episode of seed `key`, rendered unless cached; None if the render failed."""
        return self._episode(key)

    def admit(self, opened: Iterator[Episode | None]) -> Iterator[Episode]:
        """The rendered episodes in seed order, a repeated description skipped, up to
        `episodes`. With a build's workers the renders run there (see
        `tpru.sources.base.SplitSource`); this runs where the build is driven."""
        seen: set[str] = set()
        made = 0
        limit = 2 * self.episodes + MAX_EXTRA_SEEDS
        try:
            for episode in opened:
                if episode is None:
                    continue
                assert episode.description is not None
                if episode.description in seen:
                    self.skips.skip("duplicate_description",
                                    f"{self.folder_of(episode.meta['seed'])}: described like "
                                    f"an earlier episode ({episode.description!r})")
                    continue
                seen.add(episode.description)
                yield episode
                made += 1
                if made == self.episodes:
                    return
            log.warning("sim:%s: only %d of %d episodes after trying %d seeds", self.name,
                        made, self.episodes, limit)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the simulator's engine, if it keeps one running (a browser)."""
        close = getattr(self.simulator, "close", None)
        if callable(close):
            close()

    def _episode(self, seed: int) -> Episode | None:
        folder = self.folder_of(seed)
        key = self._key(seed)
        spec = _cached(folder, key)
        if spec is None:
            spec = self._render(seed, folder, key)
            if spec is None:
                return None
        return Episode(
            id=sim_episode_id(self.name, key["task"], seed),
            scenario=self.name,
            source="sim",
            frames=tuple(str(folder / f) for f in spec.frames),
            steps=spec.steps,
            description=spec.description,
            meta={**spec.meta, "simulator": self.name, "task": key["task"], "seed": seed},
        )

    def _key(self, seed: int) -> dict[str, Any]:
        return {"simulator": self.name, "task": self.task_of(seed), "seed": seed,
                "frames": self.frames, "size": list(self.size), "tpru": __version__,
                "code": code_version()}

    def _render(self, seed: int, folder: Path, key: dict[str, Any]) -> EpisodeSpec | None:
        """Render into a fresh folder beside the target, then move it into place."""
        work = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.perf_counter()
        try:
            spec = self.simulator.render_episode(key["task"], seed, work, frames=self.frames,
                                                 size=self.size)
            if len(spec.frames) != self.frames:
                raise ValueError(f"wrote {len(spec.frames)} frames, {self.frames} were asked")
            missing = [f for f in spec.frames if not (work / f).is_file()]
            if missing:
                raise ValueError(f"frame files {missing} were not written")
        except EngineMissing as err:
            shutil.rmtree(work, ignore_errors=True)
            raise InputError(f"simulator {self.name!r}: {err}") from None
        except Exception as err:  # engines raise many kinds; one bad seed must not stop a build
            shutil.rmtree(work, ignore_errors=True)
            self.skips.skip("sim_render_failed", f"{folder}: {self.name} task {key['task']} "
                            f"seed {seed} failed: {type(err).__name__}: {err}")
            return None
        except BaseException:  # interrupted (Ctrl-C, a render a build no longer needs)
            shutil.rmtree(work, ignore_errors=True)
            raise
        record = {"key": key, "description": spec.description, "steps": list(spec.steps),
                  "frames": list(spec.frames), "meta": dict(spec.meta)}
        (work / EPISODE_FILE).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
        log.info("sim:%s: rendered %s task %s, seed %d, in %.1f s", self.name, folder.name,
                 key["task"], seed, time.perf_counter() - started)
        return spec


def _cached(folder: Path, key: dict[str, Any]) -> EpisodeSpec | None:
    """The episode already rendered in `folder` for `key`, or None."""
    try:
        record = json.loads((folder / EPISODE_FILE).read_text(encoding="utf-8"))
        if record.get("key") != key:
            return None
        spec = EpisodeSpec(description=record["description"], steps=tuple(record["steps"]),
                           frames=tuple(record["frames"]), meta=record["meta"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all((folder / f).is_file() for f in spec.frames):
        return None
    return spec


__all__ = ["REQUIREMENTS", "SIMULATORS", "SimSource", "code_version", "default_cache",
           "load_simulator"]
