"""What a nav episode does: the world drawn from a seed, the goal, and the words.

A `Plan` lists the rooms (size, and wall and floor textures of MiniWorld
from one of the few `LOOKS` all episodes share, so that frames of other
episodes are plausible candidates by look), the doorways between them, the
objects and where they stand, where the agent starts and which objects it
walks to, in order. `tpru.sources.sim.nav` builds the plan in MiniWorld,
finds the way and renders the walk. Positions are metres on MiniWorld's
floor plan (x east, z south); an agent's heading is 0 facing east and grows
as it turns left.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from tpru.sources.sim.common import SimError
from tpru.sources.text import join_words, with_article

EPISODE_TASKS = ("go_to", "next_room", "collect", "turn", "maze")
"""The kinds of episode the simulator records (its ``tasks``, an episode's ``meta.task``);
not the sample tasks of `tpru.schema.TASKS`."""

WALLS = {"brick_wall": "brick", "cinder_blocks": "cinder-block", "marble": "marble",
         "wood_planks": "wooden", "rock": "stone", "metal_grill": "metal grille"}
"""MiniWorld wall texture -> words. Plain textures (concrete, drywall, stucco) are left out:
a view of them up close is too smooth for the builder's blur check."""
FLOORS = {"floor_tiles_bw": "chequered", "wood": "wooden", "asphalt": "asphalt",
          "concrete_tiles": "tiled", "grass": "grass", "cardboard": "cardboard"}
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
MESHES = {"barrel": ("barrel", 1.0), "cone": ("traffic cone", 0.7),
          "duckie": ("rubber duck", 0.6), "medkit": ("first-aid kit", 0.45),
          "office_chair": ("office chair", 1.1), "potion": ("potion bottle", 0.6)}
"""MiniWorld mesh -> (name in words, height in metres)."""


@dataclass(frozen=True)
class Look:
    """The building an episode walks in: one floor everywhere, and the walls of the first
    room, the second and the third (a maze has the first room's walls throughout)."""

    floor: str
    walls: tuple[str, str, str]


LOOKS: dict[str, Look] = {
    "warehouse": Look("concrete_tiles", ("cinder_blocks", "metal_grill", "brick_wall")),
    "cabin": Look("wood", ("wood_planks", "rock", "marble")),
    "gallery": Look("floor_tiles_bw", ("marble", "brick_wall", "wood_planks")),
}
"""A small pool of buildings (textures of `WALLS` and `FLOORS`) shared by all episodes, so
other episodes' frames are plausible candidates by look and only the objects and the
way tell them apart."""


@dataclass(frozen=True)
class Thing:
    """An object in the world: a box, ball or key of a colour, or a mesh (`MESHES`)."""

    kind: str
    colour: str | None
    x: float
    z: float
    size: float = 0.8

    @property
    def name(self) -> str:
        if self.kind in MESHES:
            return MESHES[self.kind][0]
        return f"{self.colour} {self.kind}"

    @property
    def radius(self) -> float:
        return 0.75 * self.size if self.kind == "box" else 0.45 * self.size + 0.05


@dataclass(frozen=True)
class Room:
    x0: float
    x1: float
    z0: float
    z1: float
    wall: str
    floor: str

    @property
    def words(self) -> str:
        return f"the room with {WALLS[self.wall]} walls"


@dataclass
class Plan:
    """A world and what the agent does in it."""

    rooms: list[Room]
    doors: list[tuple[int, int, dict[str, float]]]
    things: list[Thing]
    start: tuple[float, float, float]
    visits: list[int]
    """Things walked to, in order (for ``turn``: the thing faced at the end)."""
    description: str
    look: str
    """A key of `LOOKS`: the building the rooms' textures come from."""
    collect: bool = False
    turn_by: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def _scatter(rng: np.random.Generator, room: Room, count: int, taken: list[tuple[float, float]],
             *, gap: float = 1.6) -> list[tuple[float, float]]:
    """`count` points in `room`, 1 m from its walls and `gap` from each other and `taken`."""
    found: list[tuple[float, float]] = []
    for _ in range(400):
        if len(found) == count:
            return found
        x, z = rng.uniform(room.x0 + 1.0, room.x1 - 1.0), rng.uniform(room.z0 + 1.0, room.z1 - 1.0)
        if all(math.hypot(x - a, z - b) >= gap for a, b in taken + found):
            found.append((round(float(x), 3), round(float(z), 3)))
    raise SimError(f"could not place {count} objects in a {room.x1 - room.x0:.1f} m room")


def _look(rng: np.random.Generator) -> str:
    """One of `LOOKS`, drawn first by every planner."""
    return str(rng.choice(list(LOOKS)))


def _room(look: str, x0: float, x1: float, z0: float, z1: float, index: int = 0) -> Room:
    """Room `index` (0 to 2) of the building `look`: its walls, and the building's floor."""
    return Room(x0, x1, z0, z1, LOOKS[look].walls[index], LOOKS[look].floor)


def _things(rng: np.random.Generator, spots: list[tuple[float, float]],
            first: str | None = None, kinds: tuple[str, ...] = ("box", "ball", *MESHES)
            ) -> list[Thing]:
    """Objects of `kinds` at `spots`, all named differently; the first a `first` if given.

    MiniWorld's keys are too small to see across a room, so no kind is a key.
    """
    names: set[str] = set()
    out: list[Thing] = []
    for i, (x, z) in enumerate(spots):
        while True:
            kind = first if i == 0 and first else str(rng.choice(kinds))
            colour = None if kind in MESHES else str(rng.choice(COLOURS))
            size = {"box": float(rng.uniform(0.6, 1.0)), "ball": 0.6}.get(
                kind, MESHES.get(kind, ("", 0.6))[1])
            thing = Thing(kind, colour, x, z, round(size, 2))
            if thing.name not in names:
                break
        names.add(thing.name)
        out.append(thing)
    return out


def _others(things: list[Thing], skip: list[int]) -> str:
    return join_words([with_article(t.name) for i, t in enumerate(things) if i not in skip])


def _facing_in(rng: np.random.Generator, room: Room, x: float, z: float) -> float:
    """A heading within 80 degrees of the way to the room's middle (a start that sees the room)."""
    middle = math.atan2(-((room.z0 + room.z1) / 2 - z), (room.x0 + room.x1) / 2 - x)
    return round(middle + float(rng.uniform(-1.4, 1.4)), 4)


def _go_to(rng: np.random.Generator) -> Plan:
    look = _look(rng)
    w, d = float(rng.uniform(7, 10)), float(rng.uniform(7, 10))
    room = _room(look, 0, w, 0, d)
    start = (1.2, float(rng.uniform(1.2, d - 1.2)))
    goal = (float(rng.uniform(w - 2.2, w - 1.0)), float(rng.uniform(1.0, d - 1.0)))
    spots = [goal, *_scatter(rng, room, int(rng.integers(2, 4)), [start, goal])]
    things = _things(rng, spots, first="box")
    text = (f"walking to the {things[0].name} across {room.words} and "
            f"{with_article(FLOORS[room.floor])} floor, which also holds {_others(things, [0])}")
    return Plan([room], [], things, (*start, _facing_in(rng, room, *start)), [0], text, look)


def _next_room(rng: np.random.Generator) -> Plan:
    look = _look(rng)
    n = int(rng.integers(2, 4))
    d = float(rng.uniform(5, 7))
    rooms: list[Room] = []
    x = 0.0
    for i in range(n):
        w = float(rng.uniform(4.5, 6))
        rooms.append(_room(look, x, x + w, 0, d, index=i))
        x += w + 0.25
    doors = []
    for i in range(n - 1):
        z = float(rng.uniform(1.2, d - 2.8))
        doors.append((i, i + 1, {"min_z": round(z, 3), "max_z": round(z + 1.6, 3)}))
    start = (1.2, float(rng.uniform(1.2, d - 1.2)))
    last = rooms[-1]
    goal = _scatter(rng, last, 1, [(last.x0, 0.0)], gap=0.0)[0]
    spots = [goal, *_scatter(rng, rooms[0], 1, [start]),
             *_scatter(rng, last, 1, [goal])]
    things = _things(rng, spots)
    route = " and on into ".join(r.words for r in rooms[1:])
    text = (f"walking from {rooms[0].words} through {'a doorway' if n == 2 else 'doorways'} "
            f"into {route} to the {things[0].name}")
    return Plan(rooms, doors, things, (*start, _facing_in(rng, rooms[0], *start)), [0], text,
                look)


def _collect(rng: np.random.Generator) -> Plan:
    look = _look(rng)
    w, d = float(rng.uniform(9, 11)), float(rng.uniform(8, 10))
    room = _room(look, 0, w, 0, d)
    start = (1.2, d / 2)
    small = ("box", "ball", "cone", "duckie", "medkit", "potion")  # things one can pick up
    things = _things(rng, _scatter(rng, room, 3, [start], gap=2.8), kinds=small)
    order = [int(i) for i in rng.permutation(3)]
    text = (f"collecting the {', then the '.join(things[i].name for i in order)} "
            f"in {room.words} and {with_article(FLOORS[room.floor])} floor")
    return Plan([room], [], things, (*start, _facing_in(rng, room, *start)), order, text,
                look, collect=True)


def _turn(rng: np.random.Generator) -> Plan:
    look = _look(rng)
    room = _room(look, 0, 9, 0, 9)
    bearings = np.sort(rng.choice(np.arange(12), size=4, replace=False)) * (2 * math.pi / 12)
    bearings = bearings + float(rng.uniform(0, 0.4))
    spots = [(round(4.5 + 2.6 * math.cos(b), 3), round(4.5 - 2.6 * math.sin(b), 3))
             for b in bearings]
    things = _things(rng, spots)
    a, b = (int(i) for i in rng.choice(4, size=2, replace=False))
    left = bool(rng.integers(2))  # MiniWorld's angles grow to the left
    if (bearings[b] - bearings[a]) * (1 if left else -1) % (2 * math.pi) < math.radians(150):
        left = not left  # turn the long way, so that every frame looks somewhere new
    sign = 1 if left else -1
    sweep = sign * ((bearings[b] - bearings[a]) * sign % (2 * math.pi))
    rel = {i: (bearings[i] - bearings[a]) * sign % (2 * math.pi) for i in range(4)}
    passed = sorted((i for i in range(4) if i not in (a, b) and rel[i] < abs(sweep)),
                    key=rel.__getitem__)
    past = f" past the {', then the '.join(things[i].name for i in passed)}" if passed else ""
    text = (f"turning {'left' if left else 'right'} on the spot in {room.words}, from facing "
            f"the {things[a].name}{past} to facing the {things[b].name}")
    return Plan([room], [], things, (4.5, 4.5, float(bearings[a])), [b], text, look,
                turn_by=float(sweep), meta={"facing": a})


def _maze(rng: np.random.Generator) -> Plan:
    look = _look(rng)
    rows, cols = [(2, 3), (3, 3), (3, 2)][int(rng.integers(3))]
    size, gap = 3.0, 0.25
    wall, floor = LOOKS[look].walls[0], LOOKS[look].floor
    rooms = [Room(c * (size + gap), c * (size + gap) + size, r * (size + gap),
                  r * (size + gap) + size, wall, floor) for r in range(rows) for c in range(cols)]
    # A random spanning tree of the cells (depth first), so there is one way between any two.
    seen, stack, doors = {0}, [0], []
    while stack:
        cell = stack[-1]
        c = cell % cols
        near = [n for n in (cell - cols, cell + cols, cell - 1 if c else -1,
                            cell + 1 if c < cols - 1 else -1) if 0 <= n < rows * cols
                and n not in seen]
        if not near:
            stack.pop()
            continue
        nxt = int(rng.choice(near))
        seen.add(nxt)
        stack.append(nxt)
        a, b = min(cell, nxt), max(cell, nxt)
        bounds = ({"min_z": rooms[a].z0, "max_z": rooms[a].z1} if b == a + 1
                  else {"min_x": rooms[a].x0, "max_x": rooms[a].x1})
        doors.append((a, b, bounds))
    path = _tree_path(doors, 0, rows * cols)
    goal = rooms[path[-1]]
    things = [Thing("box", str(rng.choice(COLOURS)), (goal.x0 + goal.x1) / 2,
                    (goal.z0 + goal.z1) / 2, 0.8)]
    heading = [(b - a) for a, b in pairwise(path)]
    turns = [_turn_word(h0, h1, cols) for h0, h1 in pairwise(heading)
             if h0 != h1]
    way = f"turning {', then '.join(turns)} on the way" if turns else "without a turn"
    text = (f"finding the way through a {rows} by {cols} maze with {WALLS[wall]} walls and "
            f"{with_article(FLOORS[floor])} floor to the {things[0].name}, {way}")
    start_dir = {1: 0.0, -1: math.pi, cols: -math.pi / 2, -cols: math.pi / 2}[heading[0]]
    first = rooms[0]
    return Plan(rooms, doors, things, ((first.x0 + first.x1) / 2, (first.z0 + first.z1) / 2,
                                       start_dir), [0], text, look, meta={"cells": path})


def _tree_path(doors: list[tuple[int, int, dict[str, float]]], start: int, count: int
               ) -> list[int]:
    """The cells from `start` to the cell farthest from it (lowest index on ties)."""
    links: dict[int, list[int]] = {i: [] for i in range(count)}
    for a, b, _ in doors:
        links[a].append(b)
        links[b].append(a)
    parent = {start: start}
    order = [start]
    for cell in order:
        for n in sorted(links[cell]):
            if n not in parent:
                parent[n] = cell
                order.append(n)
    path = [order[-1]]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


def _turn_word(h0: int, h1: int, cols: int) -> str:
    """``left`` or ``right`` for a change of heading between cells (z grows southwards)."""
    vec = {1: (1, 0), -1: (-1, 0), cols: (0, 1), -cols: (0, -1)}
    (x0, z0), (x1, z1) = vec[h0], vec[h1]
    return "right" if x0 * z1 - z0 * x1 > 0 else "left"


PLANNERS: dict[str, Callable[[np.random.Generator], Plan]] = {
    "go_to": _go_to, "next_room": _next_room, "collect": _collect, "turn": _turn,
    "maze": _maze}
