"""Navigation episodes: walking down a corridor towards a coloured door (first
person), crossing a maze to a goal, or collecting items in a room (top down)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tpru.sources.synthetic.draw import (
    COLOURS,
    DARK,
    INK,
    NAMES,
    RGB,
    WHITE,
    Plan,
    Point,
    between,
    darker,
    gradient,
    mix,
    pick,
    sample,
    to_image,
)
from tpru.sources.text import join_words, with_article

EPISODE_TASKS = ("corridor", "maze", "collect")
"""The kinds of episode drawn here, in turn (an episode's ``meta.task``); not the
sample tasks of `tpru.schema.TASKS`."""


@dataclass(frozen=True)
class Look:
    """The building walked through: the corridor's walls (first person), and the floor and
    walls of a room or maze seen from above."""

    corridor: RGB
    floor: RGB
    wall: RGB


LOOKS: dict[str, Look] = {
    "grey": Look((150, 150, 156), (232, 232, 234), (62, 64, 72)),
    "cream": Look((215, 200, 168), (238, 234, 222), (58, 64, 80)),
    "pale blue": Look((160, 182, 210), (228, 234, 242), (44, 56, 84)),
}
"""A small pool of buildings shared by all nav episodes, so other episodes' frames are
plausible candidates by look and only the route, doors and items tell them apart. A
corridor is named by its look ("a cream corridor")."""
_PILLAR: RGB = (74, 58, 46)
Cell = tuple[int, int]
_MIN_GAIN = 3
"""New trail cells from one frame to the next (a top-down walk's visible step)."""


def plan(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> Plan:
    """A walk towards a goal: first person down a corridor, or top down on a grid."""
    look = pick(rng, tuple(LOOKS))
    if task == "corridor":
        return _corridor(rng, n, size, look)
    return _grid_walk(rng, n, size, task, look)


def _corridor(rng: np.random.Generator, n: int, size: tuple[int, int], look: str) -> Plan:
    """A pinhole view down a corridor; the far door grows as the camera walks on."""
    w, h = size
    length = between(rng, 8, 14)
    door = pick(rng, NAMES)
    wall = LOOKS[look].corridor
    end = length - 1.6                              # metres walked by the last frame
    cx, cy, f, near = w / 2, h * 0.45, w * 0.55, 0.35

    def p(x: float, y: float, z: float) -> Point:
        return cx + f * x / z, cy - f * y / z

    def camera(i: int) -> float:
        """Metres walked by frame `i`.

        Each step covers the same share of the way left, so the door looks the
        same factor larger at every step and early steps, far from it, walk on
        past more of the corridor.
        """
        return length - length * math.pow((length - end) / length, i / (n - 1))

    # Each poster stands a little ahead of where some frame is taken, so the
    # walk passes them one by one.
    k = min(between(rng, 2, 4), n - 2)
    at = sorted(sample(rng, [camera(i) + 1.3 for i in range(1, n - 1)], k))
    sides = [pick(rng, ["left", "right"]) for _ in range(k)]
    posters = sample(rng, [c for c in NAMES if c != door], k)

    def step(i: int) -> str:
        z = camera(i)
        if i == 0:
            return f"At the start of the corridor, {length} m from the {door} door."
        if i == n - 1:
            return f"In front of the {door} door."
        ahead = [j for j in range(k) if at[j] - z > 0.4]
        nxt = (f"the {posters[ahead[0]]} poster on the {sides[ahead[0]]} is "
               f"{at[ahead[0]] - z:.1f} m ahead" if ahead else "all posters are passed")
        return f"{length - z:.1f} m to the {door} door; {nxt}."

    pillars = [(x, [m for m in np.cumsum(rng.uniform(1.1, 2.6, length)).tolist()
                    if m < length - 0.3]) for x in (-1.19, 1.19)]
    background = to_image(gradient(size, mix(wall, WHITE, 0.5), mix(wall, INK, 0.4)))

    def render(i: int) -> Image.Image:
        z = camera(i)
        far = length - z
        img = background.copy()
        d = ImageDraw.Draw(img)

        def quad(x1: float, y1: float, x2: float, y2: float, z1: float, z2: float) -> list[Point]:
            return [p(x1, y1, z1), p(x2, y2, z1), p(x2, y2, z2), p(x1, y1, z2)]

        d.polygon(quad(-1.2, -1, 1.2, -1, near, far), fill=mix(wall, INK, 0.55))
        d.polygon(quad(-1.2, 1, 1.2, 1, near, far), fill=mix(wall, WHITE, 0.35))
        d.polygon(quad(-1.2, -1, -1.2, 1, near, far), fill=mix(wall, INK, 0.12))
        d.polygon(quad(1.2, -1, 1.2, 1, near, far), fill=mix(wall, INK, 0.22))
        d.rectangle((*p(-1.2, 1, far), *p(1.2, -1, far)), fill=wall, outline=INK)
        for metre in range(math.ceil(z + near), length):
            zr = metre - z
            d.line((*p(-1.2, -1, zr), *p(1.2, -1, zr)), fill=mix(wall, INK, 0.75), width=2)
            d.line((*p(-0.3, 1, zr), *p(0.3, 1, zr)), fill=WHITE, width=3)
        # Dark pillars sweep past as the camera walks, even on short steps; they
        # stand at irregular distances, so no step looks like a whole period.
        for x, at_side in pillars:
            for metre in at_side:
                z1, z2 = max(metre - 0.12 - z, near), metre + 0.12 - z
                if z2 > near:
                    d.polygon([p(x, 1, z1), p(x, 1, z2), p(x, -1, z2), p(x, -1, z1)],
                              fill=_PILLAR)
        for j in range(k):
            z1, z2 = max(at[j] - 0.35 - z, near), at[j] + 0.35 - z
            if z2 > near:
                x = -1.19 if sides[j] == "left" else 1.19
                rgb = COLOURS[posters[j]]
                d.polygon([p(x, 0.5, z1), p(x, 0.5, z2), p(x, -0.2, z2), p(x, -0.2, z1)],
                          fill=rgb, outline=darker(rgb))
        rgb = COLOURS[door]
        d.rectangle((*p(-0.55, 0.65, far), *p(0.55, -1, far)), fill=_PILLAR)  # the door frame
        d.rectangle((*p(-0.45, 0.55, far), *p(0.45, -1, far)), fill=rgb, outline=darker(rgb),
                    width=max(1, int(6 / far)))
        kx, ky = p(0.32, -0.2, far)
        r = 0.05 * f / far
        d.ellipse((kx - r, ky - r, kx + r, ky + r), fill=(230, 200, 90))
        return img

    placed = ", ".join(f"{c} on the {s}" for c, s in zip(posters, sides, strict=True))
    description = (f"walking down {with_article(look)} corridor to the {door} door at its "
                   f"end, {length} m away, passing {k} poster{'s' if k > 1 else ''} ({placed})")
    return Plan("corridor", description, tuple(step(i) for i in range(n)), render, look)


def _maze(rng: np.random.Generator, cols: int, rows: int, start: Cell) -> np.ndarray:
    """A (2*rows+1, 2*cols+1) grid, True where open, carved by a random depth-first walk."""
    grid = np.zeros((2 * rows + 1, 2 * cols + 1), bool)
    grid[start] = True
    stack = [start]
    while stack:
        r, c = stack[-1]
        nexts = [(r + dr, c + dc) for dr, dc in ((-2, 0), (2, 0), (0, -2), (0, 2))
                 if 0 < r + dr < grid.shape[0] - 1 and 0 < c + dc < grid.shape[1] - 1
                 and not grid[r + dr, c + dc]]
        if not nexts:
            stack.pop()
            continue
        nr, nc = pick(rng, nexts)
        grid[(r + nr) // 2, (c + nc) // 2] = grid[nr, nc] = True
        stack.append((nr, nc))
    return grid


def _bfs(grid: np.ndarray, start: Cell) -> dict[Cell, Cell | None]:
    """Parents of every open cell reachable from `start`, in breadth-first order."""
    parents: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if (0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1]
                    and grid[nxt] and nxt not in parents):
                parents[nxt] = (r, c)
                queue.append(nxt)
    return parents


def _route(parents: dict[Cell, Cell | None], goal: Cell) -> list[Cell] | None:
    if goal not in parents:
        return None
    route: list[Cell] = [goal]
    while (back := parents[route[-1]]) is not None:
        route.append(back)
    return route[::-1]


def _region(cell: Cell, shape: tuple[int, ...]) -> str:
    vertical = ("top", "middle", "bottom")[min(2, 3 * cell[0] // shape[0])]
    horizontal = ("left", "centre", "right")[min(2, 3 * cell[1] // shape[1])]
    if (vertical, horizontal) == ("middle", "centre"):
        return "centre"
    return f"{vertical} {horizontal}"


def _long_enough(route: list[Cell], n: int) -> bool:
    """Whether the trail can grow by `_MIN_GAIN` new cells a frame, to at least 25 cells.

    The last step gets one more, the goal or the exit, which is drawn over.
    """
    return len(set(route)) >= max(25, _MIN_GAIN * (n - 1) + 2)


def _grid_walk(rng: np.random.Generator, n: int, size: tuple[int, int], task: str,
               look: str) -> Plan:
    """A top-down walk over a grid: through a maze to a goal, or collecting items."""
    w, h = size
    trail_name = pick(rng, DARK)
    goal_name = pick(rng, [c for c in NAMES if c != trail_name])
    items: list[tuple[Cell, str]] = []
    reached: list[int] = []                        # route index where each item is picked up
    side = ""
    for _ in range(1000):
        if task == "maze":
            corners = {"top-left": (1, 1), "top-right": (1, 11), "bottom-left": (7, 1),
                       "bottom-right": (7, 11)}
            corner = pick(rng, tuple(corners))
            grid = _maze(rng, 6, 4, corners[corner])
            parents = _bfs(grid, corners[corner])
            route = _route(parents, list(parents)[-1]) or []  # to the farthest cell
        else:
            grid = np.ones((9, 13), bool)
            grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = False
            free = [(r, c) for r in range(1, 8) for c in range(1, 12)]
            for cell in sample(rng, free, 10):
                grid[cell] = False
            free = [cell for cell in free if grid[cell]]
            side = pick(rng, ["north", "south", "west", "east"])
            door = {"north": (0, between(rng, 2, 10)), "south": (8, between(rng, 2, 10)),
                    "west": (between(rng, 2, 6), 0), "east": (between(rng, 2, 6), 12)}[side]
            grid[door] = True
            picks = sample(rng, free, between(rng, 2, 4) + 1)
            others = [c for c in NAMES if c != trail_name]
            items = list(zip(picks[1:], sample(rng, others, len(picks) - 1), strict=True))
            route, reached = [picks[0]], []
            for target in [cell for cell, _ in items] + [door]:
                leg = _route(_bfs(grid, route[-1]), target)
                if leg is None:
                    route = []
                    break
                route += leg[1:]
                reached.append(len(route) - 1)  # where the route reaches this item
        if route and _long_enough(route, n):
            break
    else:
        raise RuntimeError("no long enough walk found")  # not seen; keeps the loop finite
    kind = pick(rng, ["coin", "gem"])
    c = min(w // grid.shape[1], h // grid.shape[0])
    ox, oy = (w - c * grid.shape[1]) / 2, (h - c * grid.shape[0]) / 2
    floor, wall = LOOKS[look].floor, LOOKS[look].wall
    trail = mix(COLOURS[trail_name], (0, 0, 0), 0.38)
    big = np.kron(grid, np.ones((c, c), bool))
    px = np.zeros((h, w, 3))
    px[:] = wall
    px[int(oy):int(oy) + big.shape[0], int(ox):int(ox) + big.shape[1]][big] = floor
    background = to_image(px)

    def box(cell: Cell, inset: float = 0.0) -> tuple[float, float, float, float]:
        x, y = ox + cell[1] * c, oy + cell[0] * c
        return x + inset, y + inset, x + c - inset, y + c - inset

    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in map(box, route)]
    # Frames are taken where the trail has grown by the same number of new
    # cells, so walking back over the trail never makes a step look like none.
    firsts = [j for j, cell in enumerate(route) if cell not in route[:j]]

    def at(i: int) -> int:
        """The route index the agent stands on in frame `i`."""
        return firsts[i * (len(firsts) - 1) // (n - 1)]

    def doorway(d: ImageDraw.ImageDraw) -> None:
        """The exit as an opening with brown jambs, so the trail shows when it gets there."""
        x1, y1, x2, y2 = box(route[-1])
        t = c * 0.22
        jambs = ([(x1, y1, x1 + t, y2), (x2 - t, y1, x2, y2)] if side in ("north", "south")
                 else [(x1, y1, x2, y1 + t), (x1, y2 - t, x2, y2)])
        for jamb in jambs:
            d.rectangle(jamb, fill=(150, 100, 55))

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        here = at(i)
        for cell in route[: here + 1]:
            d.rectangle(box(cell), fill=trail)
        if task == "maze":
            rgb = COLOURS[goal_name]
            # A frame, not a filled square: the trail reaching the goal shows in it.
            d.rectangle(box(route[-1], 1), outline=rgb, width=max(3, c // 5))
        else:
            doorway(d)
        for j, (cell, colour) in enumerate(items):
            rgb = COLOURS[colour]
            if reached[j] > here:
                x1, y1, x2, y2 = box(cell, c * 0.2)
                if kind == "coin":
                    d.ellipse((x1, y1, x2, y2), fill=rgb, outline=darker(rgb), width=2)
                else:
                    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
                    d.polygon([(mx, y1), (x2, my), (mx, y2), (x1, my)], fill=rgb,
                              outline=darker(rgb))
            slot = (ox + 4 + j * 14, oy + 2, ox + 14 + j * 14, oy + 12)
            d.rectangle(slot, fill=rgb if reached[j] <= here else wall, outline=WHITE)
        x, y = centres[here]
        r = c * 0.4
        d.ellipse((x - r, y - r, x + r, y + r), fill=WHITE, outline=INK, width=2)
        return img

    steps_total = len(route) - 1
    if task == "maze":
        goal_at = _region(route[-1], grid.shape)
        description = (f"walking through a 6x4 maze, seen from above, from the {corner} corner "
                       f"to the {goal_name} goal at the {goal_at}, {steps_total} squares away, "
                       f"leaving {with_article(trail_name)} trail")

        def step(i: int) -> str:
            if i == 0:
                return f"The agent starts in the {corner} corner of the maze."
            if i == n - 1:
                return f"The agent reaches the {goal_name} goal after {steps_total} squares."
            return f"{steps_total - at(i)} squares left to the {goal_name} goal."
    else:
        names = [f"{colour} {kind}" for _, colour in items]
        description = (f"collecting the {join_words([colour for _, colour in items])} {kind}s, "
                       "in that order, in a room seen from above, then leaving through the "
                       f"door on the {side} wall, drawing {with_article(trail_name)} trail")

        def step(i: int) -> str:
            got = sum(r <= at(i) for r in reached)
            if i == 0:
                return f"The agent starts; {len(items)} {kind}s to collect."
            if i == n - 1:
                return (f"All {len(items)} {kind}s collected; the agent leaves through the door "
                        f"on the {side} wall.")
            if got < len(items):
                left = reached[got] - at(i)
                return (f"{got} of {len(items)} collected; the {names[got]} is {left} squares "
                        "away.")
            return f"All {len(items)} {kind}s collected; heading for the door on the {side} wall."

    return Plan(task, description, tuple(step(i) for i in range(n)), render, look)

