"""Reading LDraw files: the steps of the library's example models, regrouped and recoloured.

`tpru.sources.sim.lego` builds the example models the LDraw library ships
(``car.ldr``, ``pyramid.ldr``) in as many steps as frames are asked for;
these functions do the text work for it: read a model's part lines step by
step (`read_steps`), regroup them into steps of similar weight (`regroup`),
change their colours (`recoloured`), and name a part in words from its
file's title line (`part_title`). They need no engine, so they are tested
on their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def read_steps(text: str) -> list[list[str]]:
    """The type-1 (part) lines of an LDraw file, grouped by ``0 STEP``; empty steps dropped."""
    steps: list[list[str]] = [[]]
    for line in text.splitlines():
        fields = line.split()
        if fields[:2] == ["0", "STEP"]:
            steps.append([])
        elif len(fields) >= 15 and fields[0] == "1":
            steps[-1].append(" ".join(fields))
    return [step for step in steps if step]


def regroup(steps: list[list[str]], count: int,
             weight: Callable[[str], int]) -> list[list[str]] | None:
    """The parts regrouped into exactly `count` steps of similar weight, in their order.

    The model's own steps are kept where possible: a step much lighter than the average
    (a single small brick on top) joins its lighter neighbour, the heaviest step is split at
    half its weight while there are too few, and the lightest neighbouring pair is merged
    while there are too many. None when there are fewer parts than steps.
    """
    if sum(len(step) for step in steps) < count:
        return None
    groups = [list(step) for step in steps if step]

    def total(group: list[str]) -> int:
        return sum(weight(line) for line in group)

    def merge(i: int) -> None:
        groups[i:i + 2] = [groups[i] + groups[i + 1]]

    mean = sum(map(total, groups)) / len(groups)
    light = [i for i, g in enumerate(groups) if total(g) < mean / 4]
    while light and len(groups) > 1:
        i = light[0]
        before = total(groups[i - 1]) if i > 0 else None
        after = total(groups[i + 1]) if i + 1 < len(groups) else None
        merge(i - 1 if after is None or (before is not None and before <= after) else i)
        light = [i for i, g in enumerate(groups) if total(g) < mean / 4]
    while len(groups) < count:
        i = max((k for k in range(len(groups)) if len(groups[k]) > 1),
                key=lambda k: total(groups[k]))
        running, cut = 0, 1
        for cut in range(1, len(groups[i])):
            running += weight(groups[i][cut - 1])
            if 2 * running >= total(groups[i]):
                break
        groups[i:i + 1] = [groups[i][:cut], groups[i][cut:]]
    while len(groups) > count:
        merge(min(range(len(groups) - 1),
                  key=lambda k: total(groups[k]) + total(groups[k + 1])))
    return groups


def recoloured(line: str, recolour: dict[int, int]) -> str:
    fields = line.split()
    fields[1] = str(recolour.get(int(fields[1]), int(fields[1])))
    return " ".join(fields)


def part_title(first_line: str) -> str:
    """``"2x4 brick"`` from a part file's title line ``0 Brick  2 x  4``."""
    title = " ".join(first_line.split()[1:]).lstrip("~")
    title = re.sub(r"\s*\([^)]*\)", "", title).strip()
    match = re.match(r"^([A-Za-z][A-Za-z ]*?) (\d+) x (\d+)(?: x (\d+))?(.*)$", title)
    if match is None:
        # "Tyre 6/50 x 8 Offset Tread": keep the words, drop the measurements.
        words = [w for w in title.split() if not any(ch.isdigit() for ch in w) and w != "x"]
        return " ".join(words).lower()
    kind, a, b, c, rest = match.groups()
    dims = f"{a}x{b}" + (f"x{c}" if c else "")
    return f"{dims} {kind.lower()}{rest.lower()}"
