"""What a robot episode does: the scene drawn from a seed, the moves, and the words.

A `TaskPlan` says which objects lie where on the table (kind, colour,
position), which coloured pads and whether a tray are there, the moves the
arm makes in order (carry an object somewhere, or push it along the table),
its look (camera, light, floor and table tints: one of the few `LOOKS` that
all episodes share, so that frames of other episodes are plausible
candidates) and the description. `tpru.sources.sim.robot` turns the moves
into arm motions in PyBullet and writes the step texts.

The tasks:

- ``pick_place``: one object picked up and put on a pad, among other objects;
- ``stack``: two or three cubes or bricks stacked one on another;
- ``tray``: two or three objects put into the tray, in order;
- ``push``: one or two cubes pushed along the table onto pads;
- ``sort``: three or four objects of two colours put on the pads of their colours;
- ``line_up``: three objects set down in a row in front of the robot.

No geometry lives here beyond positions on the table (metres, in the robot's
frame: x away from the robot, y to its left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tpru.sources.text import join_words, with_article

EPISODE_TASKS = ("pick_place", "stack", "tray", "push", "sort", "line_up")
"""The kinds of episode the simulator records (its ``tasks``, an episode's ``meta.task``);
not the sample tasks of `tpru.schema.TASKS`."""

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.12, 0.3, 0.9),
    "yellow": (0.95, 0.85, 0.1), "orange": (1.0, 0.5, 0.05), "purple": (0.55, 0.2, 0.75),
    "cyan": (0.1, 0.8, 0.85), "pink": (1.0, 0.45, 0.7),
}
"""Colour name -> RGB (0-1) given to objects and pads."""


@dataclass(frozen=True)
class Kind:
    """A kind of object from pybullet_data: its file, scale and name in words."""

    noun: str
    urdf: str | None
    """A file in pybullet_data, or None for a plain sphere of radius ``scale``."""
    scale: float
    stackable: bool
    pushable: bool


KINDS: dict[str, Kind] = {
    "cube": Kind("cube", "cube_small.urdf", 1.0, True, True),
    "brick": Kind("lego brick", "lego/lego.urdf", 1.5, True, True),
    "ball": Kind("ball", None, 0.024, False, False),
    "duck": Kind("rubber duck", "duck_vhacd.urdf", 0.6, False, False),
}

GRID_X = (0.46, 0.57, 0.68)
GRID_Y = (-0.28, -0.17, -0.06, 0.05, 0.16, 0.27)
"""Cells objects, pads and the tray are laid out on (robot frame, metres)."""
ROW_X = 0.36
ROW_Y = (0.14, 0.0, -0.14)
"""Where ``line_up`` sets objects down, from the robot's left to its right."""
JITTER = 0.012


@dataclass(frozen=True)
class Thing:
    """One movable object: its kind (a `KINDS` key), colour and start position."""

    kind: str
    colour: str
    xy: tuple[float, float]
    yaw: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.colour} {KINDS[self.kind].noun}"


@dataclass(frozen=True)
class Pad:
    """A flat coloured square on the table (seen, not felt: it has no collision)."""

    colour: str
    xy: tuple[float, float]
    side: float


@dataclass(frozen=True)
class Move:
    """One move of the arm.

    Attributes:
        kind: ``carry`` (pick up and set down) or ``push`` (slide along the table).
        thing: index into `TaskPlan.things`.
        target: ``("pad", i, slot)``, ``("tray", slot)``, ``("on", j)`` (on top of
            thing j) or ``("row", k)``; a slot spreads objects that share a place.
        above: words for the space above the target ("above the green pad").
        onto: words for the set-down ("on the green pad", "into the tray").
        at: words for where the object ends ("on the green pad", "in the tray").
    """

    kind: str
    thing: int
    target: tuple[str | int, ...]
    above: str
    onto: str
    at: str


@dataclass(frozen=True)
class Camera:
    """Looks at the middle of the table from in front of the robot."""

    yaw: float
    pitch: float
    distance: float
    fov: float


@dataclass(frozen=True)
class Look:
    """Where the camera stands, where the light comes from, and how floor and table are tinted.

    Tints multiply the textures' own colours (RGBA, 0-1): the floor's checks and the
    table's wood grain stay, in another colour.
    """

    camera: Camera
    light: tuple[float, float, float]
    """The direction the light comes from (TinyRenderer's ``lightDirection``)."""
    floor: tuple[float, float, float, float]
    table: tuple[float, float, float, float]


LOOKS: dict[str, Look] = {
    "studio": Look(Camera(90.0, -36.0, 0.8, 49.0), (0.5, 0.0, 1.0), (1.0, 1.0, 1.0, 1.0),
                   (1.0, 1.0, 1.0, 1.0)),
    "workshop": Look(Camera(76.0, -38.0, 0.78, 48.0), (0.6, 1.0, 1.0), (0.8, 0.7, 0.55, 1.0),
                     (0.8, 0.68, 0.55, 1.0)),
    "lab": Look(Camera(104.0, -38.0, 0.8, 50.0), (0.4, -1.0, 1.2), (0.6, 0.72, 0.62, 1.0),
                (0.9, 0.93, 1.0, 1.0)),
}
"""A small pool of viewpoints, lights and floor/table tints shared by all robot episodes, so
other episodes' frames are plausible candidates by look and only the objects tell them apart."""


@dataclass(frozen=True)
class TaskPlan:
    task: str
    things: tuple[Thing, ...]
    pads: tuple[Pad, ...]
    tray: tuple[float, float] | None
    moves: tuple[Move, ...]
    look: str
    """A key of `LOOKS`: the camera, light and tints of this episode."""
    description: str

    @property
    def camera(self) -> Camera:
        return LOOKS[self.look].camera

    @property
    def setting(self) -> str:
        """The first frame's words: what lies on the table."""
        things = join_words([with_article(t.name) for t in self.things])
        extra = [with_article(f"{p.colour} pad") for p in self.pads]
        extra += ["a tray"] if self.tray else []
        tail = f", beside {join_words(extra)}" if extra else ""
        return f"The arm waits above the table; {things} lie on it{tail}."


def step_text(plan: TaskPlan, move: Move, kind: str, done: bool) -> str:
    """The text of the frame taken after a sub-action (`kind`) of `move`, or part of one."""
    name = plan.things[move.thing].name
    number = list(plan.moves).index(move) + 1
    count = len(plan.moves)
    if not done:
        return {
            "reach": f"The arm moves towards the {name}.",
            "grasp": f"The open gripper lowers onto the {name}.",
            "lift": f"The gripper lifts the {name}.",
            "carry": f"The arm carries the {name} towards {move.above.removeprefix('above ')}.",
            "lower": f"The {name} is lowered {move.onto}.",
            "approach": f"The arm moves behind the {name}.",
            "descend": f"The closed gripper lowers behind the {name}.",
            "push": f"The gripper pushes the {name} towards {move.above}.",
            "retreat": f"The arm moves back from the {name}.",
        }[kind]
    return {
        "reach": f"The open gripper is above the {name}.",
        "grasp": f"The gripper closes on the {name}.",
        "lift": f"The {name} is lifted.",
        "carry": f"The {name} is held {move.above}.",
        "lower": f"The {name} is set down {move.onto}.",
        "approach": f"The closed gripper is above the table behind the {name}.",
        "descend": f"The closed gripper is on the table behind the {name}.",
        "push": f"The {name} has been pushed {move.onto}.",
        "retreat": f"The arm is back in its rest pose; the {name} is {move.at} "
                   f"({number} of {count} moves done).",
    }[kind]


def plan_task(task: str, rng: np.random.Generator) -> TaskPlan:
    """Draw the scene and the moves of one `task` episode from `rng`."""
    if task not in _PLANNERS:
        raise ValueError(f"unknown robot task {task!r} (tasks: {', '.join(EPISODE_TASKS)})")
    return _PLANNERS[task](rng)


class _Layout:
    """Free grid cells, handed out at random."""

    def __init__(self, rng: np.random.Generator, *, tray_side: int | None = None) -> None:
        self.rng = rng
        cells = [(x, y) for x in GRID_X for y in GRID_Y]
        self.tray: tuple[float, float] | None = None
        if tray_side is not None:
            self.tray = (0.56, 0.36 * tray_side)
            cells = [c for c in cells if c[1] * tray_side < 0.16]
        self.free = cells

    def take(self) -> tuple[float, float]:
        i = int(self.rng.integers(len(self.free)))
        x, y = self.free.pop(i)
        dx, dy = self.rng.uniform(-JITTER, JITTER, 2)
        return round(x + float(dx), 4), round(y + float(dy), 4)

    def take_far(self, other: tuple[float, float], min_gap: float) -> tuple[float, float]:
        """A free cell at least `min_gap` from `other` (for pushes, which need a run-up)."""
        far = [c for c in self.free if np.hypot(c[0] - other[0], c[1] - other[1]) >= min_gap]
        if not far:
            return self.take()
        cell = far[int(self.rng.integers(len(far)))]
        self.free.remove(cell)
        return cell


def _colours(rng: np.random.Generator, n: int) -> list[str]:
    return [str(c) for c in rng.choice(list(COLOURS), size=n, replace=False)]


def _kinds(rng: np.random.Generator, n: int, *, only: list[str] | None = None) -> list[str]:
    pool = only or list(KINDS)
    return [str(k) for k in rng.choice(pool, size=n)]


def _look(rng: np.random.Generator) -> str:
    """One of `LOOKS`, drawn last by every planner so the objects do not depend on it."""
    return str(rng.choice(list(LOOKS)))


def _things(rng: np.random.Generator, layout: _Layout, kinds: list[str],
            colours: list[str]) -> tuple[Thing, ...]:
    return tuple(Thing(k, c, layout.take(), round(float(rng.uniform(-0.6, 0.6)), 3))
                 for k, c in zip(kinds, colours, strict=True))


def _pick_place(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng)
    n = int(rng.integers(2, 4))
    colours = _colours(rng, n + 1)
    things = _things(rng, layout, _kinds(rng, n), colours[:n])
    pad = Pad(colours[n], layout.take(), 0.1)
    t = things[0]
    where = f"on the {pad.colour} pad"
    move = Move("carry", 0, ("pad", 0, 0), f"above the {pad.colour} pad", where, where)
    others = join_words([f"the {o.name}" for o in things[1:]])
    description = (f"picking up the {t.name} from beside {others} and placing it {where}")
    return TaskPlan("pick_place", things, (pad,), None, (move,), _look(rng), description)


def _stack(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng)
    n = int(rng.integers(2, 4))
    colours = _colours(rng, n + 1)
    kinds = _kinds(rng, n + 1, only=[k for k, v in KINDS.items() if v.stackable])
    # The last object is a distractor that stays where it is.
    things = _things(rng, layout, kinds, colours)
    moves, parts = [], []
    for m in range(1, n):
        below, top = things[m - 1], things[m]
        onto = f"on top of the {below.name}"
        moves.append(Move("carry", m, ("on", m - 1), f"above the {below.name}", onto, onto))
        parts.append(f"the {top.name} on the {below.name}")
    description = "stacking " + ", then ".join(parts)
    description += f", leaving the {things[n].name} aside"
    return TaskPlan("stack", things, (), None, tuple(moves), _look(rng), description)


def _tray(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng, tray_side=int(rng.choice([-1, 1])))
    n = int(rng.integers(2, 4))
    things = _things(rng, layout, _kinds(rng, n + 1), _colours(rng, n + 1))
    order = [int(i) for i in rng.permutation(n)]
    moves = tuple(Move("carry", i, ("tray", slot), "above the tray", "into the tray",
                       "in the tray") for slot, i in enumerate(order))
    names = [f"the {things[i].name}" for i in order]
    description = (f"putting {', then '.join(names)} into the tray, leaving the "
                   f"{things[n].name} on the table")
    return TaskPlan("tray", things, (), layout.tray, moves, _look(rng), description)


def _push(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng)
    n = int(rng.integers(1, 3))
    colours = _colours(rng, 2 * n + 1)
    kinds = _kinds(rng, n, only=[k for k, v in KINDS.items() if v.pushable])
    things = list(_things(rng, layout, kinds, colours[:n]))
    pads = tuple(Pad(colours[n + i], layout.take_far(things[i].xy, 0.15), 0.1)
                 for i in range(n))
    things.append(Thing(_kinds(rng, 1)[0], colours[2 * n], layout.take(),
                        round(float(rng.uniform(-0.6, 0.6)), 3)))
    moves, parts = [], []
    for i in range(n):
        where = f"onto the {pads[i].colour} pad"
        moves.append(Move("push", i, ("pad", i, 0), f"the {pads[i].colour} pad", where,
                          f"on the {pads[i].colour} pad"))
        parts.append(f"pushing the {things[i].name} along the table {where}")
    description = ", then ".join(parts)
    return TaskPlan("push", tuple(things), pads, None, tuple(moves), _look(rng), description)


def _sort(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng)
    n = int(rng.integers(3, 5))
    two = _colours(rng, 2)
    colours = [two[i % 2] for i in range(n)]
    rng.shuffle(colours)
    kinds = _kinds(rng, n)
    # No two objects alike, so every name in the description points at one object.
    while len({(k, c) for k, c in zip(kinds, colours, strict=True)}) < n:
        kinds = _kinds(rng, n)
    things = _things(rng, layout, kinds, colours)
    pads = tuple(Pad(c, layout.take(), 0.13) for c in two)
    order = [int(i) for i in rng.permutation(n)]
    used = [0, 0]
    moves, parts = [], []
    for i in order:
        p = two.index(things[i].colour)
        where = f"on the {two[p]} pad"
        moves.append(Move("carry", i, ("pad", p, used[p]), f"above the {two[p]} pad", where,
                          where))
        used[p] += 1
        parts.append(f"the {things[i].name} onto the {two[p]} pad")
    description = "sorting the objects by colour onto matching pads: " + ", then ".join(parts)
    return TaskPlan("sort", things, pads, None, tuple(moves), _look(rng), description)


def _line_up(rng: np.random.Generator) -> TaskPlan:
    layout = _Layout(rng)
    things = _things(rng, layout, _kinds(rng, 3), _colours(rng, 3))
    order = [int(i) for i in rng.permutation(3)]
    spots = (("left end", "at the left end"), ("middle", "in the middle"),
             ("right end", "at the right end"))
    moves = []
    for k, i in enumerate(order):
        spot, where = spots[k]
        moves.append(Move("carry", i, ("row", k), f"above the {spot} of the row",
                          f"{where} of a row in front of the robot", f"{where} of the row"))
    names = [f"the {things[i].name}" for i in order]
    description = (f"lining up {join_words(names)} in a row in front of the robot, "
                   "from its left to its right")
    return TaskPlan("line_up", things, (), None, tuple(moves), _look(rng), description)


_PLANNERS = {"pick_place": _pick_place, "stack": _stack, "tray": _tray, "push": _push,
             "sort": _sort, "line_up": _line_up}
