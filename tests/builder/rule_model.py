"""A rule-based vision model for the model-stage tests, served over real HTTP.

`RuleModel` is a `tpru.models.base.Backend` that looks at the pixels of the
frames it is sent (episodes written by `episode_files`: a white square on a
blocky background, moving right a step per frame) and answers the build's
prompts the way a capable VLM would:

- judge: "yes" when the square moves right from each frame to the next (the
  frames are in chronological order), "no" when it jumps about; "It is hard to
  say." for backgrounds listed in `unclear`.
- describe: "Process: sliding the white square to the right over the <colour>
  background" and "Step k: ..." with the square's position.
- negative: a different process, or for backgrounds listed in `close` one
  that only adds a word to the positive (the build must refuse it).
- paraphrase: three numbered rewordings, the last the same as the original.
- a dataset question with a "None of the choices provided" option: that
  option's letter, whatever the images (a text-only shortcut, for the audit);
  "A" for any other question in the think/answer format.

The background's colour is its strongest channel. Its answers are a fixed
function of the images, so a test knows what the build must do with them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
from episode_files import frame_image, write_image
from PIL import Image

from tpru.models.base import Request, Response
from tpru.models.baselines import parse_options
from tpru.schema import NONE_OPTION

COLOURS = ("red", "green", "blue")


def square_x(path: str) -> float:
    """The mean column of the white pixels (the square), or -1 when there are none."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    white = (pixels > 235).all(axis=2)
    columns = np.nonzero(white)[1]
    return float(columns.mean()) if columns.size else -1.0


def background(path: str) -> str:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return COLOURS[int(np.argmax(pixels.reshape(-1, 3).mean(axis=0)))]


@dataclass
class RuleModel:
    """See the module docstring; `asked` counts the prompts by stage."""

    unclear: frozenset[str] = frozenset()
    close: frozenset[str] = frozenset({"green"})
    name: str = "rule-model"
    asked: Counter[str] = field(default_factory=Counter)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.id, self._answer(r)) for r in requests]

    def _answer(self, request: Request) -> str:
        prompt = request.prompt
        options = parse_options(prompt)
        if options or "<answer>" in prompt:
            self.asked["question"] += 1
            letter = chr(ord("A") + options.index(NONE_OPTION)) if NONE_OPTION in options \
                else "A"
            return f"<think>The text decides.</think><answer>{letter}</answer>"
        if "yes or no" in prompt:
            self.asked["judge"] += 1
            if background(request.images[0]) in self.unclear:
                return "It is hard to say."
            xs = [square_x(p) for p in request.images]
            ordered = all(b > a for a, b in pairwise(xs))
            return "Yes, the square moves steadily." if ordered else "No."
        if "Wrong process" in prompt:
            self.asked["negative"] += 1
            colour = background(request.images[0])
            if colour in self.close:
                return (f"Wrong process: sliding the white square to the right over the "
                        f"{colour} background slowly")
            return f"Wrong process: stacking {colour} cups on a shelf"
        if "Rewrite it" in prompt:
            self.asked["paraphrase"] += 1
            original = prompt.split('"')[1]
            return ("1. pushing the white square rightwards\n"
                    "2. moving the white square towards the right edge\n"
                    f"3. {original}")
        self.asked["describe"] += 1
        colour = background(request.images[0])
        steps = "\n".join(f"Step {k}: the white square at x={square_x(p):.0f}"
                          for k, p in enumerate(request.images, 1))
        return (f"Process: sliding the white square to the right over the {colour} "
                f"background\n{steps}")


def write_recordings(root: Path) -> None:
    """Ten episodes in order and three with their frames shuffled (the judge drops those)."""
    for e in range(13):
        colour = COLOURS[e % 3]
        order = list(range(6)) if e < 10 else [3, 0, 5, 1, 4, 2]
        for k, step in enumerate(order):
            pixels = np.asarray(frame_image(200 + e, step)).copy()
            channel = COLOURS.index(colour)
            pixels[..., channel] = 128 + pixels[..., channel] // 2
            write_image(root / f"ep{e:02d}" / f"{k:03d}.jpg", Image.fromarray(pixels))
        (root / f"ep{e:02d}" / "episode.json").write_text(json.dumps(
            {"scenario": "robot", "description": f"moving a square in recording {e}"}))
