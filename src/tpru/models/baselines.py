"""Baselines: a random answerer, and any backend with its images taken away.

`RandomBackend` is the chance level a report compares against: it reads the
choices off the prompt the way a person would (the "A. ..." option lines the
prompt builders put at the end, or the image labels A, B, C, ... of a
letter-sequence ordering question) and picks one at random. `BlindBackend`
measures what the text alone gives away: the wrapped model gets the same
prompts with every image removed.

Example:
    >>> prompt = "Which comes next?\\nA. <image>\\nB. <image>\\nC. None of the choices provided"
    >>> parse_options(prompt)
    ['<image>', '<image>', 'None of the choices provided']
    >>> parse_labels("Order the images labeled as A, B, and C.\\nImage A: \\nImage B: \\nImage C:")
    3
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence

from tpru.models.base import Backend, Request, Response
from tpru.schema import IMAGE_PLACEHOLDER

SEQUENCE_CUES = ("sequence of letters",)
"""Phrases (lower case) of the instructions that ask for an order of the lettered options,
as LEGO-Puzzles' sort items and tpru's direct prompt for sequence items do."""

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.*?)\s*$")
_IMAGE_LABEL_LINE = re.compile(r"^\s*Image ([A-Z])\s*:")
_LABELED_AS = re.compile(r"label(?:l)?ed as ((?:[A-Z](?:,\s*|\s+))+(?:and\s+)?[A-Z])\b")


def parse_options(prompt: str) -> list[str]:
    """The option texts of the last run of lines lettered "A.", "B.", ... in `prompt`.

    A run starts at "A" and goes on while the next line carries the next
    letter ("A. x", "A) x", "(A) x" and "A: x" all count); text after the run
    (an answer instruction, a format prompt) is allowed. Fewer than two
    lettered lines is no run: the result is then empty.
    """
    runs: list[list[str]] = []
    current: list[str] = []
    for line in prompt.splitlines():
        match = _OPTION_LINE.match(line)
        if match and ord(match.group(1)) - ord("A") == len(current):
            current.append(match.group(2))
            continue
        if len(current) >= 2:
            runs.append(current)
        current = []
        if match and match.group(1) == "A":
            current = [match.group(2)]
    if len(current) >= 2:
        runs.append(current)
    return runs[-1] if runs else []


def parse_labels(prompt: str) -> int:
    """How many images a letter-sequence ordering prompt labels A, B, C, ... (0 if none).

    Reads "Image A:" lines (the form tpru's builder writes) or, failing
    those, a phrase like "labeled as A, B, C, and D".
    """
    letters = [m.group(1) for line in prompt.splitlines()
               if (m := _IMAGE_LABEL_LINE.match(line))]
    count = 0
    for letter in letters:
        if ord(letter) - ord("A") == count:
            count += 1
    if count >= 2:
        return count
    phrase = _LABELED_AS.search(prompt)
    if phrase:
        found = re.findall(r"[A-Z]", phrase.group(1))
        if found == [chr(ord("A") + i) for i in range(len(found))]:
            return len(found)
    return 0


class RandomBackend:
    """Answers each request with a uniformly random valid answer.

    A multiple-choice prompt gets one of its option letters (the None option
    included); a letter-sequence ordering prompt gets a random permutation of
    its image labels, or of its option letters when the prompt asks for "the
    sequence of letters" of lettered options (LEGO-Puzzles' sort items). The
    answer is written as ``<answer>X</answer>``, the form tpru's prompts ask
    for. Each request draws from a generator seeded by (seed, request id), so
    an answer does not depend on the order or batching of the requests. A
    prompt with neither options nor labels gets a response with `error` set.

    Args:
        seed: picks one of many equally random runs.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "random" if seed == 0 else f"random(seed={seed})"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [self._answer(request) for request in requests]

    def _answer(self, request: Request) -> Response:
        rng = random.Random(f"{self.seed}:{request.id}")
        options = parse_options(request.prompt)
        wants_sequence = any(cue in request.prompt.lower() for cue in SEQUENCE_CUES)
        if options and not wants_sequence:
            answer = chr(ord("A") + rng.randrange(len(options)))
        elif (n := len(options) or parse_labels(request.prompt)) > 0:
            letters = [chr(ord("A") + i) for i in range(n)]
            rng.shuffle(letters)
            answer = "".join(letters)
        else:
            return Response(request.id, "", error="random: the prompt has no lettered option "
                                                  "lines and no image labels A, B, ...")
        return Response(request.id, f"<answer>{answer}</answer>")


def strip_images(request: Request) -> Request:
    """`request` without images: every ``<image>`` placeholder dropped, no image files."""
    return dataclasses.replace(request, prompt=request.prompt.replace(IMAGE_PLACEHOLDER, ""),
                               images=())


class BlindBackend:
    """Another backend, given the same prompts with all images removed.

    What a blind model still answers correctly is what the text gives away:
    the audit and the reports set it beside the full model's score.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"blind:{inner.name}"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return self.inner.generate([strip_images(request) for request in requests])
