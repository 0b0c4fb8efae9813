"""The parts and words the LEGO model builders share (`tpru.sources.sim.lego_models`).

It holds what every builder draws on and the simulator reads back: the
colours (LDraw codes, grey levels, the runs of contrasting colours), the
bricks and plates by footprint, the `Placement`, `Step` and `Model` records,
`to_ldr` that writes a model as an LDraw file, and the words of the step
texts (numbers, ordinals; articles and lists come from `tpru.sources.text`).
The builders themselves live apart, so that adding a model type never means
reading the geometry again.

Geometry is kept on the stud grid: a part is placed by the stud cell of its
footprint's corner (``x`` along LDraw's X axis, ``z`` along Z) and the height
of its bottom in LDraw units (a brick is 24 high, a plate 8, one stud 20
wide); `Placement.ldraw_line` turns that into LDraw's centre-of-top position
with -Y up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STUD = 20
"""LDraw units per stud."""
BRICK_HEIGHT, PLATE_HEIGHT = 24, 8

COLOURS: dict[str, int] = {
    "red": 4, "blue": 1, "yellow": 14, "green": 2, "white": 15, "black": 0, "orange": 25,
    "lime": 27, "dark turquoise": 3, "magenta": 26, "medium blue": 73, "bright green": 10,
    "tan": 19, "reddish brown": 70, "dark grey": 72, "light grey": 71, "purple": 22,
    "dark pink": 5,
}
"""Colour names used in texts -> LDraw colour codes (LDConfig.ldr)."""

GREY: dict[str, float] = {
    "red": 54, "blue": 81, "yellow": 193, "green": 83, "white": 244, "black": 39,
    "orange": 139, "lime": 171, "dark turquoise": 112, "magenta": 75, "medium blue": 145,
    "bright green": 134, "tan": 159, "reddish brown": 58, "dark grey": 100, "light grey": 150,
    "purple": 64, "dark pink": 112,
}
"""Grey level (ITU-R 601) of each colour's LDConfig value."""
CONTRAST = 35
"""Least grey-level difference between the colours of neighbouring steps."""

BRIGHT = ("red", "blue", "yellow", "green", "white", "black", "orange", "lime",
          "dark turquoise", "magenta", "medium blue", "purple", "dark pink")
"""Colours drawn for bricks."""
GROUNDS = ("green", "dark grey", "light grey", "tan", "blue")
"""Colours drawn for plates and baseplates that carry a model."""

_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "ten", "eleven", "twelve")


def number(n: int) -> str:
    """``"three"`` for 3; digits from 13 on."""
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def counted(n: int, noun: str) -> str:
    """``"one course"``, ``"four courses"``."""
    return f"{number(n)} {noun}{'s' if n != 1 else ''}"


def ordinal_word(n: int) -> str:
    """``"first"``, ``"second"``, ... ``"twelfth"``; ``"13th"`` from 13 on."""
    words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
             "ninth", "tenth", "eleventh", "twelfth")
    if 1 <= n <= len(words):
        return words[n - 1]
    return f"{n}th"


@dataclass(frozen=True)
class Shape:
    """One LDraw part on the stud grid: ``width`` x ``length`` studs, long side along X."""

    part: str
    kind: str
    width: int
    length: int
    height: int

    @property
    def name(self) -> str:
        """``"2x4 brick"``."""
        return f"{self.width}x{self.length} {self.kind}"


def _shapes(kind: str, height: int, parts: dict[tuple[int, int], str]) -> dict[tuple[int, int],
                                                                              Shape]:
    return {dims: Shape(part, kind, dims[0], dims[1], height) for dims, part in parts.items()}


BRICKS = _shapes("brick", BRICK_HEIGHT, {
    (1, 1): "3005", (1, 2): "3004", (1, 3): "3622", (1, 4): "3010", (1, 6): "3009",
    (1, 8): "3008", (2, 2): "3003", (2, 3): "3002", (2, 4): "3001", (2, 6): "2456"})
PLATES = _shapes("plate", PLATE_HEIGHT, {
    (1, 1): "3024", (1, 2): "3023", (1, 3): "3623", (1, 4): "3710", (1, 6): "3666",
    (1, 8): "3460", (1, 10): "4477", (2, 2): "3022", (2, 3): "3021", (2, 4): "3020",
    (2, 6): "3795", (2, 8): "3034", (2, 10): "3832", (4, 4): "3031", (4, 6): "3032",
    (4, 8): "3035", (4, 10): "3030", (4, 12): "3029", (6, 6): "3958", (6, 8): "3036",
    (8, 8): "41539"})
SHORT_BRICKS = {dims: shape for dims, shape in BRICKS.items() if dims[0] == 1 and dims[1] <= 4}
"""1x1 to 1x4 bricks, for walls laid in running bond."""
FENCE = Shape("3185", "lattice fence", 1, 4, 2 * BRICK_HEIGHT)

_TURN = "0 0 1 0 1 0 -1 0 0"   # 90 degrees about Y: the long side along Z
_STRAIGHT = "1 0 0 0 1 0 0 0 1"


@dataclass(frozen=True)
class Placement:
    """A part at stud cell (``x``, ``z``) with its bottom ``level`` LDraw units above the ground."""

    shape: Shape
    colour: str
    x: int
    z: int
    level: int
    along_z: bool = False

    def ldraw_line(self) -> str:
        """The LDraw type-1 line: colour, centre of the top face (-Y up), rotation, part."""
        sx, sz = ((self.shape.width, self.shape.length) if self.along_z
                  else (self.shape.length, self.shape.width))
        cx, cz = (2 * self.x + sx) * STUD // 2, (2 * self.z + sz) * STUD // 2
        top = -(self.level + self.shape.height)
        turn = _TURN if self.along_z else _STRAIGHT
        return f"1 {COLOURS[self.colour]} {cx} {top} {cz} {turn} {self.shape.part}.dat"


@dataclass(frozen=True)
class Step:
    """One building step: the parts it adds and a sentence saying so."""

    text: str
    parts: tuple[Placement, ...]


@dataclass(frozen=True)
class Model:
    """A model built in `steps`, with a description of the whole build."""

    task: str
    description: str
    steps: tuple[Step, ...]
    meta: dict[str, Any] = field(default_factory=dict)


def to_ldr(model: Model) -> str:
    """The model as an LDraw file: a header, then each step's parts followed by ``0 STEP``."""
    lines = [f"0 {model.task}: {model.description}", "0 Name: model.ldr", "0 Author: tpru", ""]
    for step in model.steps:
        lines.append(f"0 // {step.text}")
        lines.extend(p.ldraw_line() for p in step.parts)
        lines.extend(["0 STEP", ""])
    return "\n".join(lines)


def colour_run(rng: np.random.Generator, count: int, palette: Sequence[str] = BRIGHT, *,
               after: str | None = None, contrast: float = CONTRAST) -> list[str]:
    """`count` colours from `palette` whose neighbours (and the first with `after`) differ in
    grey level by at least `contrast`, so that each step stands out from the one below it
    (the builder compares frames in grey)."""
    colours: list[str] = []
    for _ in range(count):
        before = colours[-1] if colours else after
        choices = [c for c in palette if before is None
                   or abs(GREY[c] - GREY[before]) >= contrast]
        colours.append(choices[int(rng.integers(len(choices)))])
    return colours


def _run(pieces: dict[tuple[int, int], Shape], width: int, length: int,
         first: int = 0) -> list[tuple[int, Shape]]:
    """Cover ``length`` studs with ``width``-wide pieces: (offset, shape), longest first.

    ``first`` > 0 starts with a piece that long, for a running bond.
    """
    lengths = sorted((n for w, n in pieces if w == width), reverse=True)
    out: list[tuple[int, Shape]] = []
    at = 0
    while at < length:
        left = length - at
        want = first if at == 0 and 0 < first < left else left
        size = next(n for n in lengths if n <= want)
        out.append((at, pieces[(width, size)]))
        at += size
    return out


def row(pieces: dict[tuple[int, int], Shape], colour: str, x: int, z: int, level: int,
        width: int, length: int, *, along_z: bool = False, first: int = 0) -> list[Placement]:
    """Pieces covering a ``width``-wide strip of ``length`` studs from cell (x, z)."""
    return [Placement(shape, colour, x + (0 if along_z else at), z + (at if along_z else 0),
                      level, along_z) for at, shape in _run(pieces, width, length, first)]


def area(colour: str, x: int, z: int, level: int, size_x: int, size_z: int) -> list[Placement]:
    """Plates covering a rectangle, in 2-stud strips along X."""
    parts: list[Placement] = []
    for dz in range(0, size_z, 2):
        width = min(2, size_z - dz)
        parts += row(PLATES, colour, x, z + dz, level, width, size_x)
    return parts
