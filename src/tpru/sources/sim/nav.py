"""``sim:nav``: first-person walks through MiniWorld rooms, rendered with OpenGL on CPU.

MiniWorld (Farama) draws textured rooms, doorways and objects (coloured
boxes, balls and keys, barrels, cones, rubber ducks, ...) from the agent's
eyes. Here the seed draws a world and a goal (the walls and floor from one
of a few buildings that all episodes share, `tpru.sources.sim.nav_tasks.LOOKS`,
so that frames of other episodes are plausible candidates); a planner
(Dijkstra on a 15 cm grid of the floor, kept clear of walls and other
objects by the agent's radius, then shortened by line of sight) finds the
way; the agent turns on the spot to face each next waypoint and walks
straight to it. The frames are spread evenly over the effort of that walk
(metres walked plus turning), so consecutive frames always show the agent
somewhere else or looking elsewhere.

The tasks:

- ``go_to``: walk across a room to a coloured box among other objects;
- ``next_room``: walk through one or two doorways into the last of two or
  three rooms with different walls, to an object there;
- ``collect``: visit three objects in a given order; each vanishes when reached;
- ``turn``: turn on the spot from facing one object, past others, to another;
- ``maze``: find the way through a grid maze to a box, the turns named.

Rendering needs a headless OpenGL (EGL, e.g. Mesa's llvmpipe); pyglet is
put in headless mode before MiniWorld is imported.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyglet

pyglet.options["headless"] = True  # before miniworld creates its (invisible) window
from miniworld.entity import Ball, Box, Key, MeshEnt  # noqa: E402
from miniworld.miniworld import MiniWorldEnv  # noqa: E402
from miniworld.opengl import Texture  # noqa: E402
from miniworld.utils import get_file_path  # noqa: E402
from PIL import Image  # noqa: E402
from pyglet import gl  # noqa: E402

from tpru.sources.sim.common import (  # noqa: E402
    EngineMissing,
    EpisodeSpec,
    SimError,
    check_request,
    episode_rng,
    frame_name,
    pick_distinct,
    save_frame,
    silenced,
    thumbnail,
)
from tpru.sources.sim.nav_tasks import EPISODE_TASKS, PLANNERS, Plan, Room, Thing  # noqa: E402

CELL = 0.15
"""Planner grid spacing in metres."""
CLEARANCE = 0.5
"""How far the agent's centre keeps from walls and objects (its radius is 0.4)."""
TURN_COST = 1.5
"""Metres of walking that one radian of turning counts as when spreading frames: turning
by a sixth of the field of view changes the picture about as much as a step of 40 cm."""
STOP = 1.4
"""How far from an object's edge the agent stops, so that the object is still in view."""
EYE_HEIGHT = 1.2
"""The agent's camera height in metres (MiniWorld's is 1.5): low objects stay in view longer."""
MIN_EFFORT = 0.3
"""Least effort (metres, turns counted by `TURN_COST`) between two frames."""


class NavSim:
    """The ``nav`` simulator: see the module docstring."""

    name = "nav"
    tasks = EPISODE_TASKS

    def __init__(self) -> None:
        self._stages: dict[tuple[int, int], _Stage] = {}

    def render_episode(self, task: str, seed: int, frames_dir: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        """Walk one `task` episode drawn from `seed` and write `frames` JPEG frames."""
        check_request(self, task, frames, size)
        plan = PLANNERS[task](episode_rng(self.name, task, seed))
        stage = self._stage(size)
        for name in {"ceiling_tiles", *(r.wall for r in plan.rooms),
                     *(r.floor for r in plan.rooms)}:
            _preload_texture(name)
        stage.plan = plan
        stage.reset(seed=seed)
        stage.agent.cam_height = EYE_HEIGHT
        segments = plan_walk(stage, plan)
        ends = np.cumsum([seg.effort for seg in segments])
        total = float(ends[-1]) if segments else 0.0
        if total < MIN_EFFORT * (frames - 1):
            raise SimError(f"a walk of {total:.1f} m is too short for {frames} distinct frames")
        last_segment = {seg.visit: k for k, seg in enumerate(segments)}
        # Twice the frames asked as candidates, so that `pick_distinct` has a choice.
        candidates: list[tuple[np.ndarray, str]] = []
        count = 2 * frames - 1
        for i in range(count):
            effort = total * i / (count - 1)
            k = min(int(np.searchsorted(ends, effort - 1e-9)), len(segments) - 1)
            seg = segments[k]
            pose = seg.at((effort - (ends[k] - seg.effort)) / max(seg.effort, 1e-9))
            done = [v for v in range(len(plan.visits))
                    if plan.collect and effort > ends[last_segment[v]] + 1e-9]
            gone = {id(stage.ents[plan.visits[v]]) for v in done}
            stage.entities = [e for e in stage.entities if id(e) not in gone]
            candidates.append((stage.look(*pose), _words(plan, seg, pose, i == count - 1,
                                                         len(done))))
        chosen = pick_distinct([thumbnail(pixels) for pixels, _ in candidates], frames)
        for i, c in enumerate(chosen):
            save_frame(candidates[c][0], frames_dir / frame_name(i))
        steps = [candidates[c][1] for c in chosen]
        meta = {"engine": "miniworld", "look": plan.look, "rooms": len(plan.rooms),
                "walls": sorted({r.wall for r in plan.rooms}),
                "objects": [t.name for t in plan.things],
                "visits": [plan.things[v].name for v in plan.visits],
                "effort_m": round(total, 2), **plan.meta}
        return EpisodeSpec(plan.description, tuple(steps),
                           tuple(frame_name(i) for i in range(frames)), meta)

    def _stage(self, size: tuple[int, int]) -> _Stage:
        if size not in self._stages:
            try:
                with silenced():  # MiniWorld prints what its frame buffer fell back to
                    self._stages[size] = _Stage(size)
            except Exception as err:  # pyglet and OpenGL raise many kinds
                raise EngineMissing(
                    f"MiniWorld could not open a headless OpenGL context ({type(err).__name__}: "
                    f"{err}); it needs EGL with Mesa and GLU (Debian: apt install libegl1 "
                    "libegl-mesa0 libgl1-mesa-dri libglu1-mesa)") from err
        return self._stages[size]


def _words(plan: Plan, seg: Segment, pose: tuple[float, float, float], last: bool,
           collected: int) -> str:
    """What one frame shows, in a sentence."""
    target = plan.things[plan.visits[seg.visit]]
    turned = pose[2] - plan.start[2]
    if plan.turn_by:
        side = "left" if plan.turn_by > 0 else "right"
        if last:
            return f"The agent has turned {abs(math.degrees(turned)):.0f} degrees to the " \
                   f"{side} and faces the {target.name}."
        if abs(turned) < 1e-6:
            return f"The agent faces the {plan.things[plan.meta['facing']].name}."
        return f"The agent has turned {abs(math.degrees(turned)):.0f} degrees to the {side}."
    if last:
        return (f"The agent has collected the {target.name}, the last of the "
                f"{_count(len(plan.visits))}." if plan.collect else
                f"The agent has reached the {target.name}.")
    away = math.hypot(target.x - pose[0], target.z - pose[1])
    where = _where(plan, pose)
    tail = f" ({collected} of {len(plan.visits)} collected)" if plan.collect else ""
    if pose == plan.start:
        return f"The agent stands {where}; the {target.name} is {away:.1f} m away{tail}."
    if seg.kind == "turn":
        side = "left" if seg.end[2] > seg.start[2] else "right"
        return (f"The agent turns to the {side} {where}; the {target.name} is {away:.1f} m "
                f"away{tail}.")
    return f"The agent walks {where} towards the {target.name}, now {away:.1f} m away{tail}."


def _count(n: int) -> str:
    return ("zero", "one", "two", "three", "four", "five")[n] if n <= 5 else str(n)


def _where(plan: Plan, pose: tuple[float, float, float]) -> str:
    if "cells" in plan.meta:
        return "in the maze"
    for room in plan.rooms:
        if room.x0 <= pose[0] <= room.x1 and room.z0 <= pose[1] <= room.z1:
            return f"in {room.words}"
    return "in the doorway"


# ---------------------------------------------------------------- the engine


class _Stage(MiniWorldEnv):  # type: ignore[misc]  # MiniWorld is untyped
    """A MiniWorld environment that builds whatever `plan` says on reset."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.plan: Plan | None = None
        self.ents: list[Any] = []
        super().__init__(obs_width=size[0], obs_height=size[1], window_width=32,
                         window_height=32)

    def _gen_world(self) -> None:
        plan = self.plan or Plan([Room(0, 4, 0, 4, "concrete", "wood")], [], [],
                                 (2.0, 2.0, 0.0), [], "nothing", "")
        rooms = [self.add_rect_room(min_x=r.x0, max_x=r.x1, min_z=r.z0, max_z=r.z1,
                                    wall_tex=r.wall, floor_tex=r.floor,
                                    ceil_tex="ceiling_tiles") for r in plan.rooms]
        for a, b, bounds in plan.doors:
            self.connect_rooms(rooms[a], rooms[b], **bounds)
        self.ents = [self.place_entity(_entity(t), pos=np.array([t.x, 0.0, t.z]),
                                       dir=(3.1 * t.x + 1.7 * t.z) % (2 * math.pi))
                     for t in plan.things]
        x, z, heading = plan.start
        self.place_agent(pos=np.array([x, 0.0, z]), dir=heading)

    def _reward(self) -> float:
        return 0.0

    def look(self, x: float, z: float, heading: float) -> np.ndarray:
        self.agent.pos = np.array([x, 0.0, z])
        self.agent.dir = heading
        return np.asarray(self.render_obs(), dtype=np.uint8)


def _preload_texture(name: str) -> None:
    """Put texture `name` into MiniWorld's cache, decoded with PIL.

    MiniWorld has pyglet convert each PNG to RGBA in pure Python, which takes
    seconds per texture; PIL does it in milliseconds. The upload to OpenGL is
    the same as MiniWorld's (mipmapped, trilinear), so the pictures match.
    """
    path = get_file_path("textures", f"{name}_1", "png")
    if path in Texture.tex_cache:
        return
    with Image.open(path) as source:
        rgba = source.convert("RGBA").transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    width, height = rgba.size
    data = rgba.tobytes()
    texture = pyglet.image.ImageData(width, height, "RGBA", data, pitch=width * 4).get_texture()
    gl.glEnable(texture.target)
    gl.glBindTexture(texture.target, texture.id)
    gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB, width, height, 0, gl.GL_RGBA,
                    gl.GL_UNSIGNED_BYTE, data)
    gl.glHint(gl.GL_GENERATE_MIPMAP_HINT, gl.GL_NICEST)
    gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR)
    gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
    Texture.tex_cache[path] = Texture(texture, name)


def _entity(thing: Thing) -> Any:
    if thing.kind == "box":
        return Box(color=thing.colour, size=thing.size)
    if thing.kind == "ball":
        return Ball(color=thing.colour, size=thing.size)
    if thing.kind == "key":
        return Key(color=thing.colour)
    return MeshEnt(mesh_name=thing.kind, height=thing.size, static=True)


@dataclass(frozen=True)
class Segment:
    """A part of the walk: a turn on the spot or a straight walk, towards one visit."""

    kind: str          # "turn" or "walk"
    visit: int         # index into Plan.visits
    start: tuple[float, float, float]
    end: tuple[float, float, float]

    @property
    def effort(self) -> float:
        if self.kind == "turn":
            return TURN_COST * abs(self.end[2] - self.start[2])
        return math.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1])

    def at(self, t: float) -> tuple[float, float, float]:
        a, b = self.start, self.end
        return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t


def plan_walk(stage: _Stage, plan: Plan) -> list[Segment]:
    """The turns and straight walks that take the agent through `plan.visits`."""
    pose = plan.start
    if plan.turn_by:
        return [Segment("turn", 0, pose, (pose[0], pose[1], pose[2] + plan.turn_by))]
    segments: list[Segment] = []
    for k, goal in enumerate(plan.visits):
        blocked = [t for i, t in enumerate(plan.things)
                   if i != goal and not (plan.collect and i in plan.visits[:k])]
        target = plan.things[goal]
        for x, z in _route(stage, (pose[0], pose[1]), target, blocked)[1:]:
            pose = _turn_to(segments, k, pose, x, z)
            segments.append(Segment("walk", k, pose, (x, z, pose[2])))
            pose = segments[-1].end
        pose = _turn_to(segments, k, pose, target.x, target.z)
    return segments


def _turn_to(segments: list[Segment], visit: int, pose: tuple[float, float, float], x: float,
             z: float) -> tuple[float, float, float]:
    """Add the shortest turn that makes the agent face (x, z); return the new pose."""
    want = math.atan2(-(z - pose[1]), x - pose[0])
    delta = (want - pose[2] + math.pi) % (2 * math.pi) - math.pi
    if abs(delta) < 1e-3:
        return pose
    end = (pose[0], pose[1], pose[2] + delta)
    segments.append(Segment("turn", visit, pose, end))
    return end


def _route(stage: _Stage, start: tuple[float, float], target: Thing, blocked: list[Thing]
           ) -> list[tuple[float, float]]:
    """Waypoints from `start` to beside `target`, clear of walls and of `blocked`."""
    x0, z0 = stage.min_x, stage.min_z
    xs = np.arange(x0 + CELL / 2, stage.max_x, CELL)
    zs = np.arange(z0 + CELL / 2, stage.max_z, CELL)
    gx, gz = np.meshgrid(xs, zs, indexing="xy")
    points = np.stack([gx.ravel(), gz.ravel()], axis=1)
    inside = np.zeros(len(points), bool)
    for room in stage.rooms:
        inside |= ((points[:, 0] >= room.min_x) & (points[:, 0] <= room.max_x)
                   & (points[:, 1] >= room.min_z) & (points[:, 1] <= room.max_z))
    segs = np.asarray(stage.wall_segs)[:, :, [0, 2]]
    free = inside & (_segment_distance(points, segs) >= CLEARANCE)
    for thing in blocked:
        free &= np.hypot(points[:, 0] - thing.x, points[:, 1] - thing.z) >= thing.radius + 0.45
    grid = free.reshape(gz.shape)
    reach = np.hypot(points[:, 0] - target.x, points[:, 1] - target.z).reshape(gz.shape)
    cells = _dijkstra(grid, _nearest(grid, gx, gz, start), reach <= target.radius + STOP)
    if cells is None:
        raise SimError(f"no way to the {target.name}")
    path = [(float(gx[c]), float(gz[c])) for c in cells]
    path[0] = start
    return _shorten(path, grid, gx, gz)


def _segment_distance(points: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest of the segments (both in the floor plane)."""
    a, b = segs[:, 0][None], segs[:, 1][None]
    ab, ap = b - a, points[:, None] - a
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    closest = a + t[..., None] * ab
    result: np.ndarray = np.linalg.norm(points[:, None] - closest, axis=-1).min(axis=1)
    return result


def _nearest(grid: np.ndarray, gx: np.ndarray, gz: np.ndarray, at: tuple[float, float]
             ) -> tuple[int, int]:
    dist = np.hypot(gx - at[0], gz - at[1]) + np.where(grid, 0.0, 1e6)
    index = np.unravel_index(int(np.argmin(dist)), grid.shape)
    return int(index[0]), int(index[1])


def _dijkstra(free: np.ndarray, start: tuple[int, int], goal: np.ndarray
              ) -> list[tuple[int, int]] | None:
    """Shortest 8-connected path over `free` cells from `start` to any `goal` cell."""
    steps = [(dr, dc, math.hypot(dr, dc)) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
             if dr or dc]
    best = {start: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    queue = [(0.0, start)]
    rows, cols = free.shape
    while queue:
        cost, cell = heapq.heappop(queue)
        if cost > best[cell]:
            continue
        if goal[cell]:
            path = [cell]
            while path[-1] in parent:
                path.append(parent[path[-1]])
            return path[::-1]
        for dr, dc, length in steps:
            nxt = (cell[0] + dr, cell[1] + dc)
            if not (0 <= nxt[0] < rows and 0 <= nxt[1] < cols) or not free[nxt]:
                continue
            if cost + length < best.get(nxt, math.inf):
                best[nxt] = cost + length
                parent[nxt] = cell
                heapq.heappush(queue, (cost + length, nxt))
    return None


def _shorten(path: list[tuple[float, float]], free: np.ndarray, gx: np.ndarray,
             gz: np.ndarray) -> list[tuple[float, float]]:
    """Keep only the points needed to walk the path in straight lines between free cells."""
    x0, z0 = float(gx[0, 0]), float(gz[0, 0])

    def clear(a: tuple[float, float], b: tuple[float, float]) -> bool:
        n = max(2, math.ceil(math.hypot(b[0] - a[0], b[1] - a[1]) / (CELL / 2)))
        t = np.linspace(0, 1, n)
        cols = np.rint((a[0] + (b[0] - a[0]) * t - x0) / CELL).astype(int)
        rows = np.rint((a[1] + (b[1] - a[1]) * t - z0) / CELL).astype(int)
        ok = (rows >= 0) & (rows < free.shape[0]) & (cols >= 0) & (cols < free.shape[1])
        return bool(ok.all() and free[rows, cols][1:].all())

    kept = [path[0]]
    i = 0
    while i < len(path) - 1:
        j = len(path) - 1
        while j > i + 1 and not clear(path[i], path[j]):
            j -= 1
        kept.append(path[j])
        i = j
    return kept
