"""tpru's own sample episodes: small procedural scenes with visible progress.

`write_synthetic_episodes` draws episodes for four scenarios, each with three
kinds of task taking turns, and writes them as frame folders that `FrameFolderSource`
reads (``root/<scenario>/ep000/000.jpg ... episode.json``):

- ``robot`` (side view): a gripper stacks blocks on a base block, puts them
  into a tray, or takes a tower apart into a row;
- ``lego`` (side view): bricks added one step at a time to a tower, a wall or
  a pyramid on a baseplate;
- ``gui``: an app window where a form is filled in and submitted, a to-do list
  grows, or settings switches are turned on;
- ``nav``: walking down a corridor towards a coloured door (first person),
  crossing a maze to a goal, or collecting items in a room (top down).

Every episode shows monotonic progress (no two frames alike, the last far
from the first), has a description precise enough to tell it from the other
episodes (colours, counts, names, targets; duplicates within a scenario are
redrawn) and one step text per frame. A fixed per-episode noise texture keeps
the frames sharp for blur checks without making unchanged pixels differ. At
up to 7 frames per episode each step changes the picture enough to pass the
builder's near-duplicate check; with more frames the steps get smaller.

Everything is drawn from ``numpy.random.default_rng([seed, scenario, episode])``,
so the same seed writes byte-identical files, and adding episodes or
scenarios does not change the others.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

SCENARIOS = ("robot", "lego", "gui", "nav")
TASKS: dict[str, tuple[str, ...]] = {
    "robot": ("stack", "tray", "unstack"),
    "lego": ("tower", "wall", "pyramid"),
    "gui": ("form", "todo", "settings"),
    "nav": ("corridor", "maze", "collect"),
}
MIN_FRAMES, MAX_FRAMES = 3, 12
"""Frames per episode that every task can show as distinct steps."""

RGB = tuple[int, int, int]
COLOURS: dict[str, RGB] = {
    "red": (210, 40, 40), "orange": (240, 130, 30), "yellow": (235, 200, 30),
    "green": (40, 155, 60), "blue": (35, 85, 205), "purple": (125, 55, 170),
    "pink": (235, 105, 165), "cyan": (30, 175, 200),
}
NAMES = tuple(COLOURS)
VIVID = tuple(c for c in NAMES if c != "yellow")
"""Colours that stand out from light backgrounds in grey too (thumbnails, hashes)."""
DARK = ("red", "green", "blue", "purple")
T = TypeVar("T")


@dataclass(frozen=True)
class _Plan:
    """One episode before it is written: texts, and a renderer per frame index."""

    task: str
    description: str
    steps: tuple[str, ...]
    render: Callable[[int], Image.Image]


def write_synthetic_episodes(root: Path, *, episodes: int, frames: int = 6, seed: int,
                             size: tuple[int, int] = (320, 240),
                             scenarios: Sequence[str] = SCENARIOS) -> list[Path]:
    """Write `episodes` episodes per scenario as frame folders under `root`.

    Args:
        root: output folder; episodes go to ``root/<scenario>/ep<NNN>/``.
            Earlier frames and ``episode.json`` there are replaced.
        episodes: episodes per scenario.
        frames: frames per episode, `MIN_FRAMES` to `MAX_FRAMES`.
        seed: the only source of randomness (a non-negative integer).
        size: (width, height) of the frames, at least 64x64. Scenes are drawn
            on the smallest canvas of at least 320x240 with the same aspect
            ratio and resized, so every size shows the same layout.
        scenarios: which of `SCENARIOS` to write.

    Returns:
        The episode folders, scenario by scenario.

    Example:
        >>> import tempfile
        >>> paths = write_synthetic_episodes(Path(tempfile.mkdtemp()), episodes=1,
        ...                                  seed=0, scenarios=["lego"])
        >>> sorted(p.name for p in paths[0].iterdir())[:2]
        ['000.jpg', '001.jpg']
    """
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be {MIN_FRAMES} to {MAX_FRAMES}, got {frames}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if min(size) < 64 or max(size) > 4 * min(size):
        raise ValueError(f"size must be at least 64x64 and at most 4:1, got {size[0]}x{size[1]}")
    canvas = _canvas(size)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})")
    written: list[Path] = []
    for scenario in scenarios:
        seen: set[str] = set()
        for index in range(episodes):
            rng = np.random.default_rng([seed, SCENARIOS.index(scenario), index])
            # Tasks take turns, so any three episodes in a row cover all three.
            task = TASKS[scenario][(seed + index) % len(TASKS[scenario])]
            plan = _PLANNERS[scenario](rng, frames, canvas, task)
            for _ in range(50):  # redraw the rare episode described like an earlier one
                if plan.description not in seen:
                    break
                plan = _PLANNERS[scenario](rng, frames, canvas, task)
            seen.add(plan.description)
            folder = root / scenario / f"ep{index:03d}"
            noise = np.round(rng.normal(0.0, 6.0, (size[1], size[0], 1))).astype(np.int16)
            _write(folder, scenario, plan, frames, noise, seed)
            written.append(folder)
    log.info("wrote %d synthetic episodes under %s", len(written), root)
    return written


def _write(folder: Path, scenario: str, plan: _Plan, frames: int, noise: np.ndarray,
           seed: int) -> None:
    """Render, resize to the noise's size, add the noise, and write frames and episode.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if re.fullmatch(r"\d{3}\.jpg", old.name):
            old.unlink()
    size = (noise.shape[1], noise.shape[0])
    for i in range(frames):
        drawn = plan.render(i)
        if drawn.size != size:
            drawn = drawn.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(drawn, dtype=np.int16) + noise
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:03d}.jpg", "JPEG", quality=90)
    info = {"scenario": scenario, "description": plan.description, "steps": list(plan.steps),
            "meta": {"task": plan.task, "generator": "tpru.sources.synthetic", "seed": seed}}
    (folder / "episode.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")


# ---- small helpers ---------------------------------------------------------------


def _canvas(size: tuple[int, int]) -> tuple[int, int]:
    """The smallest size of at least 320x240 with the aspect ratio of `size`."""
    w, h = size
    scale = max(320 / w, 240 / h)
    return round(w * scale), round(h * scale)


def _pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def _sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    return [items[int(i)] for i in rng.permutation(len(items))[:k]]


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in [low, high]."""
    return int(rng.integers(low, high + 1))


def _count(i: int, n: int, total: int) -> int:
    """How many of `total` things frame `i` of `n` shows: strictly rising when total >= n."""
    return ((i + 1) * total) // n


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _a(word: str) -> str:
    """``word`` with its indefinite article: "a red", "an orange"."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def _dark(c: RGB) -> RGB:
    return _mix(c, (0, 0, 0), 0.45)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size[1])[:, None, None]
    column = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.broadcast_to(column, (size[1], size[0], 3)).copy()


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


Point = tuple[float, float]


def _along(points: Sequence[Point], t: float) -> Point:
    """The point a fraction `t` (0-1) of the way along a polyline, by length."""
    lengths = [math.dist(p, q) for p, q in itertools.pairwise(points)]
    left = t * sum(lengths)
    for (p, q), length in zip(itertools.pairwise(points), lengths, strict=True):
        if left <= length and length > 0:
            r = left / length
            return _lerp(p[0], q[0], r), _lerp(p[1], q[1], r)
        left -= length
    return points[-1]


def _progress(i: int, n: int, k: int) -> tuple[int, float]:
    """Frame `i` of `n` spread over `k` equal parts: (parts done, fraction of the next)."""
    done, rest = divmod(i * k, n - 1)
    return done, rest / (n - 1)


# ---- robot: a gripper moving blocks (side view) -----------------------------------


def _robot(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> _Plan:
    """Three blocks moved one by one; the frames sample the gripper's motion evenly."""
    w, h = size
    s, table = min(h * 0.17, w * 0.128), h * 0.87    # block side, table top
    k = 3
    colours = _sample(rng, VIVID, k + 1)
    slots = [w * (0.08 + 0.15 * j) for j in range(k)]
    tray = _pick(rng, ["grey", "white", "black"])
    tray_x1 = w * 0.97
    tray_x0 = tray_x1 - (k * 1.1 + 0.3) * s
    # Block j has colour colours[j] and starts at start[j] = (centre x, bottom y);
    # move m takes block moves[m][0] to (moves[m][1], moves[m][2]).
    if task == "unstack":
        tower_x = _pick(rng, slots[:2])
        start = [(tower_x, table - level * s) for level in range(k)]
        moves = [(k - 1 - j, w * 0.5 + j * 1.25 * s, table) for j in range(k)]
    else:
        start = [(x, table) for x in slots]
        order = [int(j) for j in rng.permutation(k)]
        if task == "stack":
            base_x = w * _pick(rng, [0.72, 0.82])
            start.append((base_x, table))
            moves = [(b, base_x, table - (m + 1) * s) for m, b in enumerate(order)]
        else:
            moves = [(b, tray_x0 + (0.65 + m * 1.1) * s, table - 4) for m, b in enumerate(order)]
    moved = [colours[b] for b, _, _ in moves]
    clear = table - (k + 0.3) * s                    # carried blocks pass above every stack
    home = (w * 0.5, clear - s)

    def state(i: int) -> tuple[list[Point], Point, int | None, int, float]:
        m, f = _progress(i, n, k)
        pos = list(start)
        for b, x, y in moves[:m]:
            pos[b] = (x, y)
        grip = home if m == 0 else (moves[m - 1][1], moves[m - 1][2] - s)
        held = None
        if m < k and f > 0:
            b, x, y = moves[m]
            bx, by = pos[b]
            if f < 0.4:   # reach: up, across, down to the top of the block
                grip = _along([grip, (grip[0], clear - s), (bx, clear - s), (bx, by - s)], f / 0.4)
            else:         # carry the block the same way to its target
                pos[b] = _along([(bx, by), (bx, clear), (x, clear), (x, y)], (f - 0.4) / 0.6)
                grip, held = (pos[b][0], pos[b][1] - s), b
        return pos, grip, held, m, f

    target = {"stack": f"the stack on the {colours[k]} block", "tray": f"the {tray} tray",
              "unstack": "the row on the right"}[task]
    if task == "unstack":
        description = (f"A robot gripper takes apart a tower of {k} blocks "
                       f"({_join(colours[:k][::-1])}, top to bottom) and lines them up from "
                       "left to right on the right of the table.")
        first = f"A tower of {k} blocks stands on the table; the gripper waits above it."
        last = f"The tower is taken apart: {_join(moved)} stand in a row."
    else:
        verb, where = (("stacks", f"on the {colours[k]} block") if task == "stack"
                       else ("puts", f"into the {tray} tray"))
        description = (f"A robot gripper {verb} the {_join(moved)} blocks, in that order, "
                       f"{where} on the right of the table.")
        first = f"{k} loose blocks ({_join(colours[:k])}) lie on the table; the gripper waits."
        last = (f"All {k} blocks are stacked on the {colours[k]} block." if task == "stack"
                else f"All {k} blocks are in the {tray} tray.")

    def step(i: int) -> str:
        _, _, _, m, f = state(i)
        if i == 0:
            return first
        if i == n - 1:
            return last
        if f == 0:
            where = "on top of the stack" if task == "stack" else f"in {target}"
            return f"The {moved[m - 1]} block is placed {where}; {m} of {k} done."
        if f < 0.4:
            return f"The gripper moves to the {moved[m]} block ({m} of {k} done)."
        return f"The gripper carries the {moved[m]} block to {target}."

    wall = _gradient(size, (205, 210, 220), (170, 178, 192))
    yy, xx = np.mgrid[int(table):h, 0:w]
    grain = 14 * np.sin(xx * 0.045 + 3 * np.sin(yy * 0.21)) + 6 * np.sin(xx * 0.31)
    wall[int(table):] = np.array((150, 104, 62)) + grain[..., None]
    background = _image(wall)
    arm, edge = (95, 100, 112), (40, 40, 48)
    tray_rgb = {"grey": (128, 128, 132), "white": (235, 235, 230), "black": (40, 40, 45)}[tray]

    def render(i: int) -> Image.Image:
        pos, (gx, gy), held, _, _ = state(i)
        img = background.copy()
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, w, 6), fill=(70, 74, 82))
        if task == "tray":
            x1 = tray_x1
            d.rectangle((tray_x0, table - 5, x1, table), fill=tray_rgb, outline=_dark(tray_rgb))
            d.rectangle((tray_x0, table - s * 0.45, tray_x0 + 5, table), fill=tray_rgb)
            d.rectangle((x1 - 5, table - s * 0.45, x1, table), fill=tray_rgb)
        for j in sorted(range(len(pos)), key=lambda j: (j == held, -pos[j][1])):
            x, y = pos[j]
            rgb = COLOURS[colours[j]]
            d.rectangle((x - s / 2, y - s, x + s / 2, y), fill=rgb, outline=_dark(rgb), width=2)
            d.line((x - s / 2 + 4, y - s + 5, x + s / 2 - 4, y - s + 5),
                   fill=_mix(rgb, (255, 255, 255), 0.45), width=2)
        d.rectangle((gx - 14, 0, gx + 14, 10), fill=(230, 120, 30), outline=(60, 40, 20))
        d.rectangle((gx - 4, 10, gx + 4, max(10, gy - 10)), fill=arm)
        d.rectangle((gx - s * 0.7, gy - 12, gx + s * 0.7, gy - 4), fill=arm, outline=edge)
        gap = s / 2 if held is not None else s / 2 + 7
        for side in (-1, 1):
            inner, outer = gx + side * gap, gx + side * (gap + 6)
            d.rectangle((min(inner, outer), gy - 6, max(inner, outer), gy + s * 0.5),
                        fill=arm, outline=edge)
        return img

    return _Plan(task, description, tuple(step(i) for i in range(n)), render)


# ---- lego: bricks added to a build on a baseplate (side view) -----------------------


_PLATES: dict[str, RGB] = {"green": (60, 150, 70), "grey": (150, 150, 155),
                           "blue": (60, 110, 200), "tan": (205, 180, 130)}


def _lego(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> _Plan:
    """A build of at least `n` bricks; every frame shows one or more bricks more."""
    w, h = size
    plate = _pick(rng, tuple(_PLATES))
    # A brick is (first stud, row, width in studs, colour), in building order.
    bricks: list[tuple[int, int, int, str]] = []
    if task == "tower":
        for row in range(n + _int(rng, 0, 2)):
            choices = [c for c in VIVID if not bricks or c != bricks[-1][3]]
            bricks.append((0, row, 4, _pick(rng, choices)))
        shape = f"a tower of {len(bricks)} 2x4 bricks"
        detail = "bottom to top: " + ", ".join(b[3] for b in bricks)
    elif task == "wall":
        per_row = 2
        rows = -(-(max(n, 5) + _int(rng, 0, 2)) // per_row)
        pair = _sample(rng, VIVID, 2)
        bricks = [(2 * (r % 2) + 4 * j, r, 4, pair[(r + j) % 2])
                  for r in range(rows) for j in range(per_row)]
        shape = f"a wall of {rows} rows of {per_row} 2x4 bricks"
        detail = f"{pair[0]} and {pair[1]} in a staggered checker pattern"
    else:
        base = next(b for b in range(1, n + 1) if b * (b + 1) // 2 >= n)
        row_colours = _sample(rng, VIVID, base)
        bricks = [(r + 2 * j, r, 2, row_colours[r]) for r in range(base) for j in range(base - r)]
        shape = f"a {base}-row pyramid of {len(bricks)} 2x2 bricks"
        detail = "rows bottom to top: " + ", ".join(row_colours)
    total = len(bricks)
    dims = "2x2" if task == "pyramid" else "2x4"
    description = (f"Building {shape} ({detail}) on {_a(plate)} baseplate, one step at a time "
                   "from the bottom up.")
    studs = max(b[0] + b[2] for b in bricks)
    rows_high = max(b[1] for b in bricks) + 1
    # As large as fits: a new brick should change the picture clearly.
    u = w * 0.84 / studs
    hb = min(h * 0.7 / rows_high, 1.5 * u)
    u = min(u, 2.5 * hb)
    slack = max(0.0, (w - studs * u) / 2 - u)
    x0 = (w - studs * u) / 2 + float(rng.uniform(-0.6, 0.6)) * slack
    top = h * 0.9

    def step(i: int) -> str:
        lo, hi = (0 if i == 0 else _count(i - 1, n, total)), _count(i, n, total)
        new = bricks[lo:hi]
        rows = sorted({b[1] + 1 for b in new})
        where = f"row {rows[0]}" if len(rows) == 1 else "rows " + _join([str(r) for r in rows])
        if len(new) == 1:
            text = f"Brick {hi} of {total}: {_a(new[0][3])} {dims} brick goes on {where}."
        else:
            text = (f"Bricks {lo + 1} to {hi} of {total}: {_join([b[3] for b in new])} {dims} "
                    f"bricks go on {where}.")
        return text + (f" {shape[0].upper()}{shape[1:]} is complete." if hi == total else "")

    px = _gradient(size, (235, 228, 215), (200, 190, 170))
    px[int(top):] = (120, 90, 60)
    background = _image(px)
    d = ImageDraw.Draw(background)
    prgb = _PLATES[plate]
    stud_h = max(2.0, min(u, hb) * 0.2)
    d.rectangle((x0 - u, top, x0 + (studs + 1) * u, top + h * 0.04), fill=prgb, outline=_dark(prgb))
    for j in range(-1, studs + 1):
        d.rectangle((x0 + (j + 0.22) * u, top - stud_h, x0 + (j + 0.78) * u, top), fill=prgb,
                    outline=_dark(prgb))

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        for col, row, width, colour in bricks[:_count(i, n, total)]:
            rgb, x1, y2 = COLOURS[colour], x0 + col * u, top - row * hb
            d.rectangle((x1, y2 - hb, x1 + width * u, y2), fill=rgb, outline=_dark(rgb), width=2)
            for j in range(width):
                d.rectangle((x1 + (j + 0.22) * u, y2 - hb - stud_h, x1 + (j + 0.78) * u, y2 - hb),
                            fill=_mix(rgb, (255, 255, 255), 0.2), outline=_dark(rgb))
        return img

    return _Plan(task, description, tuple(step(i) for i in range(n)), render)


# ---- gui: an app window where a form, a list or switches change --------------------


_ACCENTS = ("red", "orange", "green", "blue", "purple", "pink", "cyan")
_FIRST = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kira", "Leo", "Maya", "Noah", "Olga", "Pablo")
_LAST = ("Berg", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
         "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Rossi")
_CITIES = ("Oslo", "Lyon", "Porto", "Kyoto", "Austin", "Cairo", "Lima", "Perth", "Turin", "Seoul")
_FORMS = ("New contact", "Sign up", "Job application", "Guest list", "Member profile")
_TODOS = ("buy milk", "call the dentist", "water the plants", "pay the rent",
          "book train tickets", "return library books", "fix the bike", "send the invoice",
          "clean the kitchen", "walk the dog", "renew the passport", "bake bread", "email Sam",
          "plan the trip", "buy a gift", "recycle bottles", "back up photos", "cancel the gym")
_LISTS = ("Today", "Weekend", "Errands", "This week", "Home", "Before the trip")
_SETTINGS = ("Wi-Fi", "Bluetooth", "Dark mode", "Airplane mode", "Location", "Notifications",
             "Auto-brightness", "Do not disturb", "Battery saver", "Hotspot", "Auto-update",
             "Sync", "Night light", "Screen lock")
_WHITE: RGB = (255, 255, 255)
_INK: RGB = (35, 38, 45)


def _form_values(rng: np.random.Generator) -> dict[str, str]:
    first, last = _pick(rng, _FIRST), _pick(rng, _LAST)
    domain = _pick(rng, ["mail.com", "post.org", "inbox.net"])
    return {
        "Name": f"{first} {last}",
        "Email": f"{first.lower()}.{last.lower()}@{domain}",
        "Phone": "+" + "".join(str(_int(rng, 0, 9)) for _ in range(10)),
        "City": _pick(rng, _CITIES),
        "Company": _pick(rng, ["Acme", "Globex", "Initech", "Hooli", "Vandelay", "Soylent"]),
        "Job title": _pick(rng, ["Engineer", "Designer", "Teacher", "Nurse", "Chef", "Pilot"]),
        "Birthday": f"{_int(rng, 1, 28):02d}/{_int(rng, 1, 12):02d}/{_int(rng, 1950, 2005)}",
        "Username": f"{first.lower()}{_int(rng, 10, 99)}",
        "Website": f"{last.lower()}.example.org",
        "Country": _pick(rng, ["Norway", "France", "Japan", "Peru", "Kenya", "Canada"]),
    }


def _gui(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> _Plan:
    """An app window; each frame fills a field, adds list items or turns switches on."""
    w, h = size
    accent_name = _pick(rng, _ACCENTS)
    accent = COLOURS[accent_name]
    pale, m = _mix(accent, _WHITE, 0.7), 10
    y0, y1 = m + 22 + 8, h - m - 8                  # the window's content area
    steps: list[str]
    total = max(n - 1, 4)                           # list items or switches, over n - 1 steps

    def count_at(i: int) -> int:
        return (i * total) // (n - 1)

    def added(i: int) -> list[int]:
        return list(range(count_at(i - 1), count_at(i)))
    if task == "form":
        title = _pick(rng, _FORMS)
        values = _form_values(rng)
        labels = ["Name", *sorted(_sample(rng, list(values)[1:], n - 3), key=list(values).index)]
        shown = [f"{label} '{values[label]}'" for label in labels]
        description = (f"Filling in the '{title}' form of {_a(accent_name)} app: "
                       f"{_join(shown)}, then pressing Submit.")
        steps = ([f"The '{title}' form is empty."]
                 + [f"{labels[i]} filled in: '{values[labels[i]]}' ({i + 1} of {len(labels)} "
                    "fields)." for i in range(len(labels))]
                 + ["Submit pressed: the form shows 'Saved'."])
        rows = len(labels) + 1
    elif task == "todo":
        title = _pick(rng, _LISTS)
        labels = _sample(rng, _TODOS, total)
        description = (f"Adding {total} tasks to the '{title}' list of {_a(accent_name)} to-do "
                       f"app, in order: {_join([repr(t) for t in labels])}.")
        steps = [f"The '{title}' list is empty."] + [
            f"Task{'s' if len(new) > 1 else ''} {_join([str(j + 1) for j in new])} added: "
            f"{_join([repr(labels[j]) for j in new])}." for new in map(added, range(1, n))]
        rows = total + 1
    else:
        title = "Settings"
        labels = _sample(rng, _SETTINGS, min(len(_SETTINGS), total + _int(rng, 0, 2)))
        order = [int(j) for j in rng.permutation(len(labels))[:total]]
        description = (f"Turning on {total} of the {len(labels)} switches in {_a(accent_name)} "
                       f"Settings window, in this order: {_join([labels[j] for j in order])}.")
        steps = [f"All {len(labels)} switches are off."] + [
            f"{_join([repr(labels[order[j]]) for j in new])} switched on "
            f"({new[-1] + 1} of {total})." for new in map(added, range(1, n))]
        rows = len(labels)
    row_h = min(28.0, (y1 - y0) / rows)
    font = _font(max(9, min(13, int(row_h * 0.55))))
    desktop = _gradient(size, _mix(accent, (20, 20, 30), 0.6), _mix(accent, _WHITE, 0.3))
    background = _image(desktop)
    d = ImageDraw.Draw(background)
    d.rectangle((m, m, w - m, h - m), fill=(248, 248, 246), outline=_INK)
    d.rectangle((m, m, w - m, m + 22), fill=accent)
    d.text((m + 8, m + 5), title if task != "todo" else f"To-do: {title}", fill=_WHITE,
           font=_font(12))
    for j, colour in enumerate(((240, 90, 80), (240, 190, 60), (90, 190, 90))):
        d.ellipse((w - m - 18 - 14 * j, m + 6, w - m - 8 - 14 * j, m + 16), fill=colour)

    def row_box(j: int) -> tuple[float, float, float, float]:
        top = y0 + j * row_h
        return m + 8, top + 2, w - m - 8, top + row_h - 2

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        if task == "form":
            filled = min(i, len(labels))
            for j, label in enumerate(labels):
                x1, t1, x2, t2 = row_box(j)
                d.text((x1, t1 + 2), label, fill=_INK, font=font)
                box = (x1 + 80, t1, x2, t2)
                if j < filled:
                    d.rectangle(box, fill=accent if j == filled - 1 else pale, outline=_INK)
                    d.text((box[0] + 4, t1 + 2), values[label], font=font,
                           fill=_WHITE if j == filled - 1 else _INK)
                else:
                    d.rectangle(box, fill=_WHITE, outline=(150, 150, 150))
            x1, t1, x2, t2 = row_box(len(labels))
            if i == n - 1:
                d.rectangle((x1, t1 - 2, x2, t2 + 2), fill=(40, 150, 70))
                d.text((x1 + 8, t1 + 2), f"Saved: {values['Name']}", fill=_WHITE, font=font)
            else:
                d.rectangle((x2 - 80, t1, x2, t2), fill=accent, outline=_INK)
                d.text((x2 - 70, t1 + 2), "Submit", fill=_WHITE, font=font)
        elif task == "todo":
            if i == 0:
                d.text((m + 16, y0 + 8), "No tasks yet", fill=(140, 140, 140), font=font)
            for j in range(count_at(i)):
                x1, t1, x2, t2 = row_box(j)
                newest = i > 0 and j in added(i)
                d.rectangle((x1, t1, x2, t2), fill=accent if newest else pale)
                d.rectangle((x1 + 4, t1 + 3, x1 + 4 + (t2 - t1 - 6), t2 - 3), outline=_INK,
                            fill=_WHITE)
                d.text((x1 + t2 - t1 + 8, t1 + 2), labels[j], font=font,
                       fill=_WHITE if newest else _INK)
        else:
            on = order[:count_at(i)]
            fresh = [order[j] for j in added(i)] if i > 0 else []
            for j, label in enumerate(labels):
                x1, t1, x2, t2 = row_box(j)
                if j in on:
                    d.rectangle((x1, t1, x2, t2), fill=accent if j in fresh else pale)
                d.text((x1 + 6, t1 + 2), label, fill=_INK, font=font)
                pill = (x2 - 44, t1 + 2, x2 - 6, t2 - 2)
                knob = t2 - t1 - 6
                d.rounded_rectangle(pill, radius=knob / 2 + 1, outline=_INK,
                                    fill=(60, 170, 90) if j in on else (190, 190, 190))
                kx = pill[2] - knob - 2 if j in on else pill[0] + 2
                d.ellipse((kx, t1 + 4, kx + knob, t2 - 4), fill=_WHITE, outline=_INK)
        return img

    return _Plan(task, description, tuple(steps), render)


# ---- nav: a corridor walk (first person), a maze and a room (top down) --------------


_WALLS: dict[str, RGB] = {"grey": (150, 150, 156), "cream": (215, 200, 168),
                          "pale blue": (160, 182, 210), "pale green": (168, 200, 168)}
Cell = tuple[int, int]


def _nav(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> _Plan:
    """A walk towards a goal: first person down a corridor, or top down on a grid."""
    if task == "corridor":
        return _corridor(rng, n, size)
    return _grid_walk(rng, n, size, task)


def _corridor(rng: np.random.Generator, n: int, size: tuple[int, int]) -> _Plan:
    """A pinhole view down a corridor; the far door grows as the camera walks on."""
    w, h = size
    length = _int(rng, 8, 14)
    door = _pick(rng, NAMES)
    wall_name = _pick(rng, tuple(_WALLS))
    wall = _WALLS[wall_name]
    end = length - 1.6                              # metres walked by the last frame
    cx, cy, f, near = w / 2, h * 0.45, w * 0.55, 0.35

    def p(x: float, y: float, z: float) -> Point:
        return cx + f * x / z, cy - f * y / z

    def camera(i: int) -> float:
        """Metres walked by frame `i`: the door's apparent size grows evenly."""
        return length - 1 / _lerp(1 / length, 1 / (length - end), i / (n - 1))

    # Each poster stands a little ahead of where some frame is taken, so the
    # walk passes them one by one.
    k = min(_int(rng, 2, 4), n - 2)
    at = sorted(_sample(rng, [camera(i) + 1.3 for i in range(1, n - 1)], k))
    sides = [_pick(rng, ["left", "right"]) for _ in range(k)]
    posters = _sample(rng, [c for c in NAMES if c != door], k)

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

    background = _image(_gradient(size, _mix(wall, _WHITE, 0.5), _mix(wall, _INK, 0.4)))

    def render(i: int) -> Image.Image:
        z = camera(i)
        far = length - z
        img = background.copy()
        d = ImageDraw.Draw(img)

        def quad(x1: float, y1: float, x2: float, y2: float, z1: float, z2: float) -> list[Point]:
            return [p(x1, y1, z1), p(x2, y2, z1), p(x2, y2, z2), p(x1, y1, z2)]

        d.polygon(quad(-1.2, -1, 1.2, -1, near, far), fill=_mix(wall, _INK, 0.55))
        d.polygon(quad(-1.2, 1, 1.2, 1, near, far), fill=_mix(wall, _WHITE, 0.35))
        d.polygon(quad(-1.2, -1, -1.2, 1, near, far), fill=_mix(wall, _INK, 0.12))
        d.polygon(quad(1.2, -1, 1.2, 1, near, far), fill=_mix(wall, _INK, 0.22))
        d.rectangle((*p(-1.2, 1, far), *p(1.2, -1, far)), fill=wall, outline=_INK)
        for metre in range(math.ceil(z + near), length):
            zr = metre - z
            d.line((*p(-1.2, -1, zr), *p(1.2, -1, zr)), fill=_mix(wall, _INK, 0.75), width=2)
            d.line((*p(-0.3, 1, zr), *p(0.3, 1, zr)), fill=_WHITE, width=3)
        for j in range(k):
            z1, z2 = max(at[j] - 0.35 - z, near), at[j] + 0.35 - z
            if z2 > near:
                x = -1.19 if sides[j] == "left" else 1.19
                rgb = COLOURS[posters[j]]
                d.polygon([p(x, 0.5, z1), p(x, 0.5, z2), p(x, -0.2, z2), p(x, -0.2, z1)],
                          fill=rgb, outline=_dark(rgb))
        rgb = COLOURS[door]
        d.rectangle((*p(-0.45, 0.55, far), *p(0.45, -1, far)), fill=rgb, outline=_dark(rgb),
                    width=max(1, int(6 / far)))
        kx, ky = p(0.32, -0.2, far)
        r = 0.05 * f / far
        d.ellipse((kx - r, ky - r, kx + r, ky + r), fill=(230, 200, 90))
        return img

    placed = ", ".join(f"{c} on the {s}" for c, s in zip(posters, sides, strict=True))
    description = (f"Walking down {_a(wall_name)} corridor to the {door} door at its end, "
                   f"{length} m away, passing {k} poster{'s' if k > 1 else ''} ({placed}).")
    return _Plan("corridor", description, tuple(step(i) for i in range(n)), render)


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
        nr, nc = _pick(rng, nexts)
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


def _trail_grows(route: list[Cell], n: int) -> bool:
    """Whether the trail (the cells walked so far) grows clearly every frame, to 25+ cells."""
    gain = max(2, min(5, 30 // (n - 1)))  # a 13x9 grid has room for about 30 steps
    sizes = [len(set(route[: int(i / (n - 1) * (len(route) - 1)) + 1])) for i in range(n)]
    return sizes[-1] > 24 and all(b - a >= gain for a, b in itertools.pairwise(sizes))


def _grid_walk(rng: np.random.Generator, n: int, size: tuple[int, int], task: str) -> _Plan:
    """A top-down walk over a grid: through a maze to a goal, or collecting items."""
    w, h = size
    trail_name = _pick(rng, DARK)
    goal_name = _pick(rng, [c for c in NAMES if c != trail_name])
    items: list[tuple[Cell, str]] = []
    reached: list[int] = []                        # route index where each item is picked up
    side = ""
    for _ in range(1000):
        if task == "maze":
            corners = {"top-left": (1, 1), "top-right": (1, 11), "bottom-left": (7, 1),
                       "bottom-right": (7, 11)}
            corner = _pick(rng, tuple(corners))
            grid = _maze(rng, 6, 4, corners[corner])
            parents = _bfs(grid, corners[corner])
            route = _route(parents, list(parents)[-1]) or []  # to the farthest cell
        else:
            grid = np.ones((9, 13), bool)
            grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = False
            free = [(r, c) for r in range(1, 8) for c in range(1, 12)]
            for cell in _sample(rng, free, 10):
                grid[cell] = False
            free = [cell for cell in free if grid[cell]]
            side = _pick(rng, ["north", "south", "west", "east"])
            door = {"north": (0, _int(rng, 2, 10)), "south": (8, _int(rng, 2, 10)),
                    "west": (_int(rng, 2, 6), 0), "east": (_int(rng, 2, 6), 12)}[side]
            grid[door] = True
            picks = _sample(rng, free, _int(rng, 2, 4) + 1)
            others = [c for c in NAMES if c != trail_name]
            items = list(zip(picks[1:], _sample(rng, others, len(picks) - 1), strict=True))
            route, reached = [picks[0]], []
            for target in [cell for cell, _ in items] + [door]:
                leg = _route(_bfs(grid, route[-1]), target)
                if leg is None:
                    route = []
                    break
                route += leg[1:]
                reached.append(len(route) - 1)  # where the route reaches this item
        if route and _trail_grows(route, n):
            break
    else:
        raise RuntimeError("no long enough walk found")  # not seen; keeps the loop finite
    kind = _pick(rng, ["coin", "gem"])
    c = min(w // grid.shape[1], h // grid.shape[0])
    ox, oy = (w - c * grid.shape[1]) / 2, (h - c * grid.shape[0]) / 2
    floor: RGB = (226, 220, 204)
    wall: RGB = (58, 64, 80)
    trail = _mix(COLOURS[trail_name], (0, 0, 0), 0.15)
    big = np.kron(grid, np.ones((c, c), bool))
    px = np.zeros((h, w, 3))
    px[:] = wall
    px[int(oy):int(oy) + big.shape[0], int(ox):int(ox) + big.shape[1]][big] = floor
    background = _image(px)

    def box(cell: Cell, inset: float = 0.0) -> tuple[float, float, float, float]:
        x, y = ox + cell[1] * c, oy + cell[0] * c
        return x + inset, y + inset, x + c - inset, y + c - inset

    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in map(box, route)]
    if task == "collect":
        ImageDraw.Draw(background).rectangle(box(route[-1]), fill=(150, 100, 55))

    def at(i: int) -> float:
        return i / (n - 1) * (len(route) - 1)

    def render(i: int) -> Image.Image:
        img = background.copy()
        d = ImageDraw.Draw(img)
        here = at(i)
        for cell in route[: int(here) + 1]:
            d.rectangle(box(cell), fill=trail)
        if task == "maze":
            rgb = COLOURS[goal_name]
            d.rectangle(box(route[-1], 2), fill=rgb, outline=_dark(rgb), width=2)
        for j, (cell, colour) in enumerate(items):
            rgb = COLOURS[colour]
            if reached[j] > here:
                x1, y1, x2, y2 = box(cell, c * 0.2)
                if kind == "coin":
                    d.ellipse((x1, y1, x2, y2), fill=rgb, outline=_dark(rgb), width=2)
                else:
                    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
                    d.polygon([(mx, y1), (x2, my), (mx, y2), (x1, my)], fill=rgb,
                              outline=_dark(rgb))
            slot = (ox + 4 + j * 14, oy + 2, ox + 14 + j * 14, oy + 12)
            d.rectangle(slot, fill=rgb if reached[j] <= here else wall, outline=_WHITE)
        x, y = _along(centres, i / (n - 1))
        r = c * 0.33
        d.ellipse((x - r, y - r, x + r, y + r), fill=_WHITE, outline=_INK, width=2)
        return img

    steps_total = len(route) - 1
    if task == "maze":
        goal_at = _region(route[-1], grid.shape)
        description = (f"Top-down view of a 6x4 maze: an agent walks from the {corner} corner to "
                       f"the {goal_name} goal at the {goal_at}, {steps_total} squares away, "
                       f"leaving {_a(trail_name)} trail.")

        def step(i: int) -> str:
            if i == 0:
                return f"The agent starts in the {corner} corner of the maze."
            if i == n - 1:
                return f"The agent reaches the {goal_name} goal after {steps_total} squares."
            return f"{steps_total - round(at(i))} squares left to the {goal_name} goal."
    else:
        names = [f"{colour} {kind}" for _, colour in items]
        description = (f"Top-down view of a room: an agent collects the {_join(names)}, in that "
                       f"order, then leaves through the door on the {side} wall, leaving a "
                       f"{trail_name} trail.")

        def step(i: int) -> str:
            got = sum(r <= at(i) for r in reached)
            if i == 0:
                return f"The agent starts; {len(items)} {kind}s to collect."
            if i == n - 1:
                return (f"All {len(items)} {kind}s collected; the agent leaves through the door "
                        f"on the {side} wall.")
            if got < len(items):
                left = reached[got] - int(at(i))
                return (f"{got} of {len(items)} collected; the {names[got]} is {left} squares "
                        "away.")
            return f"All {len(items)} {kind}s collected; heading for the door on the {side} wall."

    return _Plan(task, description, tuple(step(i) for i in range(n)), render)


_PLANNERS: dict[str, Callable[[np.random.Generator, int, tuple[int, int], str], _Plan]] = {
    "robot": _robot, "lego": _lego, "gui": _gui, "nav": _nav,
}
