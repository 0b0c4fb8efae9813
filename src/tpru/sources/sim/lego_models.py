"""LEGO models generated step by step, written as LDraw ``.ldr`` files with ``0 STEP`` lines.

Each builder turns a seeded generator and a step count into a `Model`: the
parts of every building step with a sentence saying what the step adds, and a
description of the whole build. Every builder makes exactly the number of
steps asked for, so one LeoCAD call renders one frame per step. Each step adds
a comparable share of the model (a course, a layer, a row), so consecutive
frames differ clearly. The parts, colours and words they share, and the stud
grid they are placed on, are in `tpru.sources.sim.lego_parts`.

Example:
    >>> import numpy as np
    >>> from tpru.sources.sim.lego_parts import to_ldr
    >>> model = BUILDERS["tower"](np.random.default_rng(0), 4)
    >>> len(model.steps), to_ldr(model).count("0 STEP")
    (4, 4)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tpru.sources.sim.lego_parts import (
    BRICK_HEIGHT,
    BRICKS,
    CONTRAST,
    FENCE,
    GROUNDS,
    PLATE_HEIGHT,
    PLATES,
    SHORT_BRICKS,
    Model,
    Placement,
    Step,
    area,
    colour_run,
    counted,
    number,
    ordinal_word,
    row,
)
from tpru.sources.synthetic.draw import pick
from tpru.sources.text import join_words, with_article


def tower(rng: np.random.Generator, steps: int) -> Model:
    """A 6x6 tower of 2x6 bricks, three side by side per course, on an 8x8 plate; one course
    per step (the plate comes with the first)."""
    base = pick(rng, GROUNDS)
    colours = colour_run(rng, steps, after=base)
    plate = Placement(PLATES[(8, 8)], base, -1, -1, 0)
    parts = []
    for k, colour in enumerate(colours):
        level = PLATE_HEIGHT + k * BRICK_HEIGHT
        turned = k % 2 == 1    # alternate the bricks' direction so the courses interlock
        bricks = tuple(Placement(BRICKS[(2, 6)], colour, 2 * i if turned else 0,
                                 0 if turned else 2 * i, level, turned) for i in range(3))
        if k == 0:
            parts.append(Step(f"laying {with_article(base)} 8x8 plate with three {colour} 2x6 "
                              "bricks side by side on it", (plate, *bricks)))
        else:
            parts.append(Step(f"adding three {colour} 2x6 bricks side by side on top of the "
                              f"{colours[k - 1]} course, crosswise", bricks))
    description = (f"building a tower of {counted(steps, 'course')} of 2x6 bricks on "
                   f"{with_article(base)} 8x8 plate, {join_words(colours)} from the bottom up")
    return Model("tower", description, tuple(parts), {"base": base, "courses": colours})


def wall(rng: np.random.Generator, steps: int) -> Model:
    """A one-stud-thick wall of 1xN bricks in running bond, one course per step."""
    length = int(pick(rng, (10, 12, 14, 16)))
    palette = colour_run(rng, 2)
    colours = [palette[k % 2] for k in range(steps)]
    parts = []
    for k, colour in enumerate(colours):
        bricks = row(SHORT_BRICKS, colour, 0, 0, k * BRICK_HEIGHT, 1, length,
                     first=2 * (k % 2))
        if k == 0:
            text = f"laying the first course of {colour} 1x4 bricks, {length} studs long"
        else:
            text = (f"adding the {ordinal_word(k + 1)} course in {colour}, "
                    f"{'offset by half a brick' if k % 2 else 'in line with the first'}")
        parts.append(Step(text, tuple(bricks)))
    description = (f"building {with_article(f'{length}-stud')} wall of 1x4 bricks in running "
                   f"bond, {number(steps)} courses high: {join_words(colours)} from the bottom up")
    return Model("wall", description, tuple(parts), {"length": length, "courses": colours})


def _ring(colour: str, start: int, side: int, level: int) -> list[Placement]:
    """A two-stud-wide square ring of bricks (solid when ``side`` is 4 or less)."""
    if side <= 4:
        return _area_bricks(colour, start, start, level, side)
    end = start + side
    return (row(BRICKS, colour, start, start, level, 2, side)
            + row(BRICKS, colour, start, end - 2, level, 2, side)
            + row(BRICKS, colour, start, start + 2, level, 2, side - 4, along_z=True)
            + row(BRICKS, colour, end - 2, start + 2, level, 2, side - 4, along_z=True))


def _area_bricks(colour: str, x: int, z: int, level: int, side: int) -> list[Placement]:
    parts: list[Placement] = []
    for dz in range(0, side, 2):
        parts += row(BRICKS, colour, x, z + dz, level, 2, side)
    return parts


def pyramid(rng: np.random.Generator, steps: int) -> Model:
    """A stepped pyramid of square brick rings two bricks high, each one stud in from the one
    below (tall layers, so even the small top ones change much of the frame)."""
    colours = colour_run(rng, steps)
    base = 2 * steps + 4
    parts = []
    for k, colour in enumerate(colours):
        side = base - 2 * k
        what = "block" if side <= 4 else "ring"
        where = "as the base" if k == 0 else f"on the {colours[k - 1]} layer, one stud in"
        level = 2 * k * BRICK_HEIGHT
        bricks = _ring(colour, k, side, level) + _ring(colour, k, side, level + BRICK_HEIGHT)
        parts.append(Step(f"laying {with_article(colour)} {side}x{side} {what} two bricks high "
                          f"{where}", tuple(bricks)))
    description = (f"building a stepped pyramid of {number(steps)} layers two bricks high, "
                   f"from {with_article(f'{base}x{base}')} base to a 6x6 top: "
                   f"{join_words(colours)} from the bottom up")
    return Model("pyramid", description, tuple(parts), {"base": base, "layers": colours})


def _house_course(colour: str, x0: int, z0: int, w: int, d: int, k: int, level: int,
                  gaps: set[tuple[int, int]]) -> list[Placement]:
    """One course of a house's walls; the front and back walls own the corners every other
    course (``k`` counts courses), and door and window cells (``gaps``) are left open."""
    long_corners = k % 2 == 0
    walls: list[tuple[int, int, int, bool]] = []    # x, z, length, along_z
    inset = 0 if long_corners else 1
    walls += [(x0 + inset, z0, w - 2 * inset, False), (x0 + inset, z0 + d - 1, w - 2 * inset,
                                                        False)]
    inset = 1 if long_corners else 0
    walls += [(x0, z0 + inset, d - 2 * inset, True), (x0 + w - 1, z0 + inset, d - 2 * inset, True)]
    parts: list[Placement] = []
    for x, z, length, along_z in walls:
        cells = [(x, z + i) if along_z else (x + i, z) for i in range(length)]
        start = 0
        while start < length:           # one run of bricks between gaps
            while start < length and cells[start] in gaps:
                start += 1
            end = start
            while end < length and cells[end] not in gaps:
                end += 1
            if end > start:
                cx, cz = cells[start]
                parts += row(BRICKS, colour, cx, cz, level, 1, end - start, along_z=along_z,
                             first=2 * (k % 2))
            start = end
    return parts


def house(rng: np.random.Generator, steps: int) -> Model:
    """A house on a base of plates: walls course by course with a door and (from two courses
    up) windows, a flat roof, then a parapet around the roof."""
    w, d = int(pick(rng, (8, 10, 12))), int(pick(rng, (6, 8)))
    x0, z0 = 1, 1
    ground = pick(rng, ("green", "light grey", "tan", "dark grey"))
    walls, roof, parapet = colour_run(rng, 3, after=ground)
    courses = max(1, steps - 2)
    door = x0 + w // 2 - 1
    base = f"{w + 2}x{d + 2}"
    parts = []
    for k in range(courses):
        gaps = {(door + i, z0 + d - 1) for i in range(2)} if k < 3 else set()
        if 1 <= k <= 2:                 # windows in the side walls, two courses high
            gaps |= {(x0, z0 + d // 2 - 1), (x0 + w - 1, z0 + d // 2 - 1)}
        bricks = _house_course(walls, x0, z0, w, d, k, k * BRICK_HEIGHT, gaps)
        if k == 0:
            parts.append(Step(f"laying {with_article(ground)} {base} base of plates and the first "
                              f"course of {walls} walls on it, {w}x{d} studs, with a door gap",
                              (*area(ground, 0, 0, -PLATE_HEIGHT, w + 2, d + 2), *bricks)))
        else:
            parts.append(Step(f"adding the {ordinal_word(k + 1)} course of {walls} walls",
                              tuple(bricks)))
    top = courses * BRICK_HEIGHT
    extra = [Step(f"covering the walls with {with_article(roof)} {w + 2}x{d + 2} flat roof "
                  "of plates",
                  tuple(area(roof, x0 - 1, z0 - 1, top, w + 2, d + 2))),
             Step(f"adding {with_article(parapet)} parapet of 1x4 bricks around the roof's edge",
                  tuple(_house_course(parapet, x0 - 1, z0 - 1, w + 2, d + 2, 0,
                                      top + PLATE_HEIGHT, set())))]
    parts += extra[:steps - courses]
    openings = "a door and windows" if courses > 1 else "a door"
    description = (f"building {with_article(walls)} {w}x{d} house with {openings} on "
                   f"{with_article(ground)} {base} base, {counted(courses, 'course')} high")
    if len(parts) > courses:
        description += f", then {with_article(roof)} flat roof"
    if len(parts) > courses + 1:
        description += f" with {with_article(parapet)} parapet"
    return Model("house", description, tuple(parts),
                 {"size": [w, d], "ground": ground, "walls": walls, "roof": roof,
                  "parapet": parapet, "courses": courses})


_PATTERNS: dict[str, Callable[[int, int, int, int], bool]] = {
    "checkerboard": lambda r, c, rows, cols: (r + c) % 2 == 0,
    "stripes across the rows": lambda r, c, rows, cols: c % 2 == 0,
    "diagonal stripes": lambda r, c, rows, cols: ((r + c) // 2) % 2 == 0,
    "framed": lambda r, c, rows, cols: r in (0, rows - 1) or c in (0, cols - 1),
}
"""Mosaic patterns: whether cell (row, column) takes the first colour."""


def mosaic(rng: np.random.Generator, steps: int) -> Model:
    """A flat mosaic of 1x1 plates in a two-colour pattern, laid one row per step."""
    cols = int(rng.integers(6, 13))
    pattern = str(pick(rng, sorted(_PATTERNS)))
    first, second = colour_run(rng, 2, contrast=2 * CONTRAST)
    parts = []
    for r in range(steps):
        cells = [first if _PATTERNS[pattern](r, c, steps, cols) else second for c in range(cols)]
        plates = tuple(Placement(PLATES[(1, 1)], colour, c, r, 0) for c, colour in
                       enumerate(cells))
        counts = [f"{number(cells.count(colour))} {colour}" for colour in (first, second)
                  if colour in cells]
        parts.append(Step(f"laying the {ordinal_word(r + 1)} row: {join_words(counts)} "
                          f"1x1 plate{'s' * (cols > 1)}", plates))
    description = (f"laying {with_article(f'{cols}x{steps}')} mosaic of {first} and {second} "
                   f"1x1 plates in a {pattern} pattern, one row at a time from one end")
    return Model("mosaic", description, tuple(parts),
                 {"size": [cols, steps], "pattern": pattern, "colours": [first, second]})


def bridge(rng: np.random.Generator, steps: int) -> Model:
    """Two 4x4 piers raised course by course, a deck of 4-wide plates across them, then
    lattice railings along both edges."""
    span = int(pick(rng, (4, 8, 12)))
    piers, deck, rails = colour_run(rng, 3)
    courses = max(1, steps - 2)
    length = span + 8
    parts = []
    for k in range(courses):
        turned = k % 2 == 1
        bricks = tuple(Placement(BRICKS[(2, 4)], piers, px + (2 * i if turned else 0),
                                 0 if turned else 2 * i, k * BRICK_HEIGHT, turned)
                       for px in (0, span + 4) for i in range(2))
        text = (f"setting down two {piers} 4x4 pier bases, {span} studs apart" if k == 0
                else f"raising both piers with a {ordinal_word(k + 1)} course of {piers} bricks")
        parts.append(Step(text, bricks))
    top = courses * BRICK_HEIGHT
    extra = [Step(f"laying {with_article(deck)} 4x{length} deck of plates across the piers",
                  tuple(row(PLATES, deck, 0, 0, top, 4, length))),
             Step(f"adding {rails} lattice railings along both edges of the deck",
                  tuple(Placement(FENCE, rails, x, z, top + PLATE_HEIGHT)
                        for z in (0, 3) for x in range(0, length, 4)))]
    parts += extra[:steps - courses]
    description = (f"building a bridge: raising two {piers} 4x4 piers "
                   f"{counted(courses, 'brick')} high, {span} studs apart")
    if len(parts) > courses:
        description += f", laying {with_article(deck)} 4x{length} deck across them"
    if len(parts) > courses + 1:
        description += f" and adding {rails} lattice railings"
    return Model("bridge", description, tuple(parts),
                 {"span": span, "piers": piers, "deck": deck, "rails": rails,
                  "courses": courses})


BUILDERS: dict[str, Callable[[np.random.Generator, int], Model]] = {
    "tower": tower, "wall": wall, "pyramid": pyramid, "house": house, "mosaic": mosaic,
    "bridge": bridge,
}
"""Generated model types: task name -> builder(rng, steps)."""
