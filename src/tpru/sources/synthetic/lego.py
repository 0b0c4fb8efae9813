"""Lego episodes (side view): bricks added one step at a time to a tower, a
wall or a pyramid on a baseplate, the next brick held in a hand above its place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tpru.sources.synthetic.draw import (
    COLOURS,
    RGB,
    VIVID,
    WHITE,
    Plan,
    between,
    count_shown,
    darker,
    gradient,
    mix,
    pick,
    sample,
    to_image,
)
from tpru.sources.text import join_words, with_article

EPISODE_TASKS = ("tower", "wall", "pyramid")
"""The kinds of episode drawn here, in turn (an episode's ``meta.task``); not the
sample tasks of `tpru.schema.TASKS`."""


@dataclass(frozen=True)
class Look:
    """Where the build stands: the backdrop, top to bottom, the table and the baseplate."""

    backdrop_top: RGB
    backdrop_bottom: RGB
    table: RGB
    plate: str
    """The baseplate's colour name (the description names it), a key of `_PLATES`."""


_PLATES: dict[str, RGB] = {"green": (60, 150, 70), "grey": (150, 150, 155),
                           "blue": (60, 110, 200), "tan": (205, 180, 130)}
LOOKS: dict[str, Look] = {
    "cream": Look((250, 248, 244), (226, 220, 208), (120, 90, 60), "green"),
    "sky": Look((238, 242, 248), (204, 214, 228), (92, 96, 108), "grey"),
    "sand": Look((248, 242, 228), (228, 214, 186), (140, 104, 70), "blue"),
    "stone": Look((232, 232, 230), (200, 200, 196), (70, 62, 58), "tan"),
}
"""A small pool of settings shared by all lego episodes, so other episodes' frames are
plausible candidates by look and only the bricks tell them apart."""
_SKIN: RGB = (226, 178, 146)
_SLEEVE: RGB = (52, 62, 92)
_LIFT = 2.4
"""How many brick heights above its place the next brick is held."""
_HEADROOM = _LIFT + 1.2
"""Brick heights above the finished build: the held brick and the hand."""


def plan(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> Plan:
    """A build of at least `n` bricks; every frame shows one or more bricks more."""
    w, h = size
    look = pick(rng, tuple(LOOKS))
    setting = LOOKS[look]
    plate = setting.plate
    # A brick is (first stud, row, width in studs, colour), in building order.
    bricks: list[tuple[int, int, int, str]] = []
    if task == "tower":
        for row in range(n + between(rng, 0, 2)):
            choices = [c for c in VIVID if not bricks or c != bricks[-1][3]]
            bricks.append((0, row, 4, pick(rng, choices)))
        shape = f"a tower of {len(bricks)} 2x4 bricks"
        detail = "bottom to top: " + ", ".join(b[3] for b in bricks)
    elif task == "wall":
        per_row = 2
        rows = -(-(max(n, 5) + between(rng, 0, 2)) // per_row)
        pair = sample(rng, VIVID, 2)
        bricks = [(2 * (r % 2) + 4 * j, r, 4, pair[(r + j) % 2])
                  for r in range(rows) for j in range(per_row)]
        shape = f"a wall of {rows} rows of {per_row} 2x4 bricks"
        detail = f"{pair[0]} and {pair[1]} in a staggered checker pattern"
    else:
        base = next(b for b in range(1, n + 1) if b * (b + 1) // 2 >= n)
        row_colours = sample(rng, VIVID, base)
        bricks = [(r + 2 * j, r, 2, row_colours[r]) for r in range(base) for j in range(base - r)]
        shape = f"{with_article(f'{base}-row')} pyramid of {len(bricks)} 2x2 bricks"
        detail = "rows bottom to top: " + ", ".join(row_colours)
    total = len(bricks)
    dims = "2x2" if task == "pyramid" else "2x4"
    description = (f"building {shape} ({detail}) on {with_article(plate)} baseplate, one step at "
                   "a time from the bottom up")
    studs = max(b[0] + b[2] for b in bricks)
    rows_high = max(b[1] for b in bricks) + 1
    # As large as fits, with room above the build for the next brick in a hand:
    # a step changes the picture where a brick lands and where the hand moves.
    u = w * 0.84 / studs
    hb = min(h * 0.86 / (rows_high + _HEADROOM), 1.5 * u)
    u = min(u, 2.5 * hb)
    slack = max(0.0, (w - studs * u) / 2 - u)
    x0 = (w - studs * u) / 2 + float(rng.uniform(-0.6, 0.6)) * slack
    top = h * 0.9
    stud_h = max(2.0, min(u, hb) * 0.2)

    def step(i: int) -> str:
        lo, hi = (0 if i == 0 else count_shown(i - 1, n, total)), count_shown(i, n, total)
        new = bricks[lo:hi]
        rows = sorted({b[1] + 1 for b in new})
        where = f"row {rows[0]}" if len(rows) == 1 else "rows " + join_words([str(r) for r in rows])
        if len(new) == 1:
            text = f"Brick {hi} of {total}: {with_article(new[0][3])} {dims} brick goes on {where}."
        else:
            text = (f"Bricks {lo + 1} to {hi} of {total}: {join_words([b[3] for b in new])} "
                    f"{dims} bricks go on {where}.")
        return text + (f" {shape[0].upper()}{shape[1:]} is complete." if hi == total else "")

    px = gradient(size, setting.backdrop_top, setting.backdrop_bottom)
    px[int(top):] = setting.table
    background = to_image(px)
    d = ImageDraw.Draw(background)
    prgb = _PLATES[plate]
    d.rectangle((x0 - u, top, x0 + (studs + 1) * u, top + h * 0.04), fill=prgb,
                outline=darker(prgb))
    for j in range(-1, studs + 1):
        d.rectangle((x0 + (j + 0.22) * u, top - stud_h, x0 + (j + 0.78) * u, top), fill=prgb,
                    outline=darker(prgb))

    def brick(d: ImageDraw.ImageDraw, x1: float, y2: float, width: int, colour: str) -> None:
        rgb = COLOURS[colour]
        d.rectangle((x1, y2 - hb, x1 + width * u, y2), fill=rgb, outline=darker(rgb), width=2)
        for j in range(width):
            d.rectangle((x1 + (j + 0.22) * u, y2 - hb - stud_h, x1 + (j + 0.78) * u, y2 - hb),
                        fill=mix(rgb, WHITE, 0.2), outline=darker(rgb))

    def hand(d: ImageDraw.ImageDraw, x1: float, y2: float, width: int) -> None:
        """A hand reaching down from above, holding the brick at (x1, y2) by its sides."""
        cx, half = x1 + width * u / 2, min(width * u / 2 + 3, 34)
        palm = y2 - hb - stud_h - max(8.0, hb * 0.7)
        d.rectangle((cx - half * 0.7, 0, cx + half * 0.7, palm), fill=_SLEEVE,
                    outline=darker(_SLEEVE))
        d.rounded_rectangle((cx - half, palm - 4, cx + half, y2 - hb - stud_h + 2), radius=5,
                            fill=_SKIN, outline=darker(_SKIN))
        for side in (-1, 1):
            x = cx + side * (width * u / 2 + 2)
            d.rounded_rectangle((min(x, x + side * 6), palm, max(x, x + side * 6),
                                 y2 - hb * 0.35), radius=3, fill=_SKIN, outline=darker(_SKIN))

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        placed = count_shown(i, n, total)
        for col, row, width, colour in bricks[:placed]:
            brick(d, x0 + col * u, top - row * hb, width, colour)
        if placed < total:  # the next brick, held above where it goes
            col, row, width, colour = bricks[placed]
            lifted = top - (row + _LIFT) * hb
            brick(d, x0 + col * u, lifted, width, colour)
            hand(d, x0 + col * u, lifted, width)
        return img

    return Plan(task, description, tuple(step(i) for i in range(n)), render, look)
