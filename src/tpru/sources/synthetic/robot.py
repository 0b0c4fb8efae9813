"""Robot episodes (side view): a gripper stacks three blocks on a base block,
puts them into a tray, or takes a tower of them apart into a row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tpru.sources.synthetic.draw import (
    COLOURS,
    RGB,
    VIVID,
    Plan,
    Point,
    along,
    darker,
    gradient,
    mix,
    path_length,
    pick,
    sample,
    to_image,
)
from tpru.sources.text import join_words

EPISODE_TASKS = ("stack", "tray", "unstack")
"""The kinds of episode drawn here, in turn (an episode's ``meta.task``); not the
sample tasks of `tpru.schema.TASKS`."""


@dataclass(frozen=True)
class Look:
    """The room around the blocks: the wall, top to bottom, and the wooden table."""

    wall_top: RGB
    wall_bottom: RGB
    table: RGB


LOOKS: dict[str, Look] = {
    "grey lab": Look((238, 240, 244), (212, 216, 224), (150, 104, 62)),
    "cream workshop": Look((244, 238, 226), (222, 210, 190), (118, 84, 56)),
    "blue studio": Look((226, 234, 244), (194, 206, 224), (176, 140, 96)),
}
"""A small pool of rooms shared by all robot episodes, so other episodes' frames are
plausible candidates by look and only the blocks and moves tell them apart."""


def plan(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> Plan:
    """Three blocks moved one by one; the frames sample the gripper's path evenly."""
    w, h = size
    look = pick(rng, tuple(LOOKS))
    s, table = min(h * 0.17, w * 0.128), h * 0.87    # block side, table top
    k = 3
    colours = sample(rng, VIVID, k + 1)
    slots = [w * (0.08 + 0.15 * j) for j in range(k)]
    tray = pick(rng, ["grey", "white", "black"])
    tray_x1 = w * 0.97
    tray_x0 = tray_x1 - (k * 1.1 + 0.3) * s
    # Block j has colour colours[j] and starts at start[j] = (centre x, bottom y);
    # move m takes block moves[m][0] to (moves[m][1], moves[m][2]).
    if task == "unstack":
        tower_x = pick(rng, slots[:2])
        start = [(tower_x, table - level * s) for level in range(k)]
        moves = [(k - 1 - j, w * 0.5 + j * 1.25 * s, table) for j in range(k)]
    else:
        start = [(x, table) for x in slots]
        order = [int(j) for j in rng.permutation(k)]
        if task == "stack":
            base_x = w * pick(rng, [0.72, 0.82])
            start.append((base_x, table))
            moves = [(b, base_x, table - (m + 1) * s) for m, b in enumerate(order)]
        else:
            moves = [(b, tray_x0 + (0.65 + m * 1.1) * s, table - 4) for m, b in enumerate(order)]
    moved = [colours[b] for b, _, _ in moves]
    clear = table - (k + 0.3) * s                    # carried blocks pass above every stack
    home = (w * 0.5, clear - s)

    # The gripper's whole path, leg by leg: reach a block (up, across, down to
    # its top), then carry it the same way to its target.
    legs: list[tuple[int, bool, list[Point]]] = []   # (move, carrying?, gripper path)
    grip, pos = home, list(start)
    for m, (b, x, y) in enumerate(moves):
        bx, by = pos[b]
        legs.append((m, False, [grip, (grip[0], clear - s), (bx, clear - s), (bx, by - s)]))
        legs.append((m, True, [(bx, by - s), (bx, clear - s), (x, clear - s), (x, y - s)]))
        grip, pos[b] = (x, y - s), (x, y)
    lengths = [path_length(path) for _, _, path in legs]

    def state(i: int) -> tuple[list[Point], Point, int | None, int, str]:
        """Blocks, gripper, held block, moves done, and "reach", "carry" or "placed".

        Frames sample the path at equal distances, so every step moves the
        gripper (and what it holds) as far as every other.
        """
        left = sum(lengths) * i / (n - 1)
        pos, grip = list(start), home
        for (m, carrying, path), length in zip(legs, lengths, strict=True):
            if left < length:
                grip = along(path, left / length)
                if not carrying:
                    return pos, grip, None, m, "placed" if left == 0 < m else "reach"
                b = moves[m][0]
                pos[b] = (grip[0], grip[1] + s)
                return pos, grip, b, m, "carry"
            left -= length
            if carrying:
                pos[moves[m][0]] = moves[m][1:]
            grip = path[-1]
        return pos, grip, None, k, "placed"

    target = {"stack": f"the stack on the {colours[k]} block", "tray": f"the {tray} tray",
              "unstack": "the row on the right"}[task]
    if task == "unstack":
        description = (f"taking apart a tower of {k} blocks ({join_words(colours[:k][::-1])}, "
                       "top to bottom) and lining them up from left to right on the right of "
                       "the table")
        first = f"A tower of {k} blocks stands on the table; the gripper waits above it."
        last = f"The tower is taken apart: {join_words(moved)} stand in a row."
    else:
        verb, where = (("stacking", f"on the {colours[k]} block") if task == "stack"
                       else ("putting", f"into the {tray} tray"))
        description = (f"{verb} the {join_words(moved)} blocks, in that order, {where} on the "
                       "right of the table")
        first = f"{k} loose blocks ({join_words(colours[:k])}) lie on the table; the gripper waits."
        last = (f"All {k} blocks are stacked on the {colours[k]} block." if task == "stack"
                else f"All {k} blocks are in the {tray} tray.")

    def step(i: int) -> str:
        _, _, _, m, doing = state(i)
        if i == 0:
            return first
        if i == n - 1:
            return last
        if doing == "placed":
            where = "on top of the stack" if task == "stack" else f"in {target}"
            return f"The {moved[m - 1]} block is placed {where}; {m} of {k} done."
        if doing == "reach":
            return f"The gripper moves to the {moved[m]} block ({m} of {k} done)."
        return f"The gripper carries the {moved[m]} block to {target}."

    room = LOOKS[look]
    wall = gradient(size, room.wall_top, room.wall_bottom)
    yy, xx = np.mgrid[int(table):h, 0:w]
    grain = 14 * np.sin(xx * 0.045 + 3 * np.sin(yy * 0.21)) + 6 * np.sin(xx * 0.31)
    wall[int(table):] = np.array(room.table) + grain[..., None]
    background = to_image(wall)
    arm, edge = (66, 70, 82), (30, 30, 36)
    tray_rgb = {"grey": (128, 128, 132), "white": (235, 235, 230), "black": (40, 40, 45)}[tray]

    def render(i: int) -> Image.Image:
        pos, (gx, gy), held, _, _ = state(i)
        img = background.copy()
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, w, 6), fill=(70, 74, 82))
        if task == "tray":
            x1 = tray_x1
            d.rectangle((tray_x0, table - 5, x1, table), fill=tray_rgb, outline=darker(tray_rgb))
            d.rectangle((tray_x0, table - s * 0.45, tray_x0 + 5, table), fill=tray_rgb)
            d.rectangle((x1 - 5, table - s * 0.45, x1, table), fill=tray_rgb)
        for j in sorted(range(len(pos)), key=lambda j: (j == held, -pos[j][1])):
            x, y = pos[j]
            rgb = COLOURS[colours[j]]
            d.rectangle((x - s / 2, y - s, x + s / 2, y), fill=rgb, outline=darker(rgb), width=2)
            d.line((x - s / 2 + 4, y - s + 5, x + s / 2 - 4, y - s + 5),
                   fill=mix(rgb, (255, 255, 255), 0.45), width=2)
        d.rectangle((gx - 18, 0, gx + 18, 14), fill=(230, 120, 30), outline=(60, 40, 20))
        # A heavy arm: where the gripper goes, a large dark shape moves with it.
        d.rectangle((gx - 10, 14, gx + 10, max(14, gy - 12)), fill=arm, outline=edge)
        d.rectangle((gx - s * 0.75, gy - 16, gx + s * 0.75, gy - 4), fill=arm, outline=edge)
        gap = s / 2 if held is not None else s / 2 + 7
        for side in (-1, 1):
            inner, outer = gx + side * gap, gx + side * (gap + 9)
            d.rectangle((min(inner, outer), gy - 6, max(inner, outer), gy + s * 0.6),
                        fill=arm, outline=edge)
        return img

    return Plan(task, description, tuple(step(i) for i in range(n)), render, look)

