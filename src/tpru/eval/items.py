"""What the evaluation runner reads: `Item`s, and the `Benchmark` that yields them.

Every benchmark loader (MuirBench, LEGO-Puzzles, TPRU-Test, a dataset folder
written by ``tpru build``) turns its own format into `Item`s, so that prompts,
the runner and reports handle one record whatever the benchmark.

An item's images follow the convention of tpru's `Sample`: ``images`` lists
the question's images first, in the order of the ``<image>`` placeholders in
``question``, then the images of the options that are images (an option
that is exactly ``<image>``), in option order.

Example:
    >>> item = Item(id="q1", benchmark="demo", question="Which comes next? <image>",
    ...             options=("<image>", "<image>", "None of the choices provided"),
    ...             answer="B", images=("a.png", "b.png", "c.png"), task="next_frame")
    >>> item.question_images, item.answer_form, item.sequence_length
    (('a.png',), 'choice', None)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpru.diagnostics import Skips
from tpru.schema import IMAGE_PLACEHOLDER

ALL_SPLITS = "all"
"""The split name that means every split (``--split all``), as run.json records it."""


@dataclass(frozen=True)
class Item:
    """One benchmark question, ready to be rendered into a prompt.

    Attributes:
        id: unique within the benchmark (the runner refuses duplicates).
        benchmark: the loader's name (``muirbench``, ``lego-puzzles``, ...).
        question: text with one ``<image>`` placeholder per question image.
        options: the choices in letter order (``<image>`` for an image
            option, "None of the choices provided" for the None option), or
            None for the letter-sequence ordering form.
        answer: the gold: a letter ("C") or a letter sequence ("CABD").
        images: image file paths: the question's images in placeholder
            order, then the image options' images in option order.
        task: the benchmark's task name (MuirBench ``task``, LEGO-Puzzles'
            task as the paper names it, mapped from its ``category`` label;
            tpru's ``ordering``/``next_frame``/``prev_frame``).
        category: a second grouping the benchmark defines (MuirBench
            ``image_relation``, LEGO-Puzzles' ability level), or None.
        scenario: MuirBench ``image_type``, tpru's scenario, or None.
        negative: the gold is the None option by construction (tpru), or
            None where the benchmark does not say.
        answerable: MuirBench only: False for the unanswerable twin.
        counterpart: the id of the item's twin, where the benchmark pairs
            items: MuirBench's answerable/unanswerable counterpart, a tpru
            dataset's negative sample and its positive twin from the same
            window (``Sample.meta["twin"]``). A report scores a pair as
            right only when both are (pair accuracy).
        frames: the sequence's number of frames where the source records it
            (a tpru dataset's ``meta.frames``); None elsewhere, where a report
            counts the question's images instead.
        difficulty: a tpru sample's ``meta.difficulty.score`` in [0, 1]; None
            where there is none (reported as the ``unknown`` bucket).
        meta: anything else the source knows (raw fields, provenance).
    """

    id: str
    benchmark: str
    question: str
    options: tuple[str, ...] | None
    answer: str
    images: tuple[str, ...]
    task: str
    category: str | None = None
    scenario: str | None = None
    negative: bool | None = None
    answerable: bool | None = None
    counterpart: str | None = None
    frames: int | None = None
    difficulty: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_question = self.question.count(IMAGE_PLACEHOLDER)
        n_options = sum(o.count(IMAGE_PLACEHOLDER) for o in self.options or ())
        if n_question + n_options != len(self.images):
            raise ValueError(f"item {self.id!r}: {len(self.images)} images for {n_question} "
                             f"question placeholders and {n_options} in the options")
        if not self.answer or not self.answer.isascii() or not self.answer.isalpha() \
                or not self.answer.isupper():
            raise ValueError(f"item {self.id!r}: answer {self.answer!r} is not capital letters")

    @property
    def question_images(self) -> tuple[str, ...]:
        """The images of the question's placeholders (not the option images)."""
        return self.images[: self.question.count(IMAGE_PLACEHOLDER)]

    @property
    def answer_form(self) -> str:
        """``choice`` (one letter among `options`) or ``sequence`` (letters in order).

        A sequence item may still list options: LEGO-Puzzles' ordering items
        name the steps A..D and ask for them in order ("BDAC").
        """
        return "choice" if self.options is not None and len(self.answer) == 1 else "sequence"

    @property
    def sequence_length(self) -> int | None:
        """For a sequence item, how many letters a full answer has; None for a choice.

        The letters label the options when there are options (LEGO-Puzzles),
        else the question's images (tpru's letter form of ordering).
        """
        if self.answer_form == "choice":
            return None
        if self.options is not None:
            return len(self.options)
        return len(self.question_images)


ItemReader = Callable[[Skips], Iterator[Item]]
"""Yields a benchmark's items in a fixed order; bad rows are counted in the `Skips`."""


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: where it came from and how to read its items.

    Items are read lazily, each time `items` is called, so that a run with
    ``--limit 10`` materialises only the first ten items' images.

    Attributes:
        name: the loader's name, e.g. ``muirbench``; recorded in results.
        source: the hub id or local path the items are read from.
        split: the split read, as run.json records it: a split name, or
            `ALL_SPLITS` for every split (or a file that has none).
        default_prompt: the name of the prompt (tpru.eval.prompts) that
            reproduces the benchmark's published protocol.
        read: yields the items, counting skipped rows.
    """

    name: str
    source: str
    split: str | None
    default_prompt: str
    read: ItemReader

    def items(self, skips: Skips | None = None) -> Iterator[Item]:
        """The items in the benchmark's own order; bad rows are skipped and counted."""
        return self.read(skips if skips is not None else Skips())


def items_fingerprint(items: Iterable[Item]) -> str:
    """A SHA-256 over what the items ask, in order: whether two reads hold the same benchmark.

    Every field of every item counts (id, question, options, answer, task,
    groupings, meta), and each image by its file name and size: a ``stat``,
    not a read, so MuirBench's 2,600 items take well under a second. That is
    enough because the images of hub and TSV benchmarks are cached under
    their content hash and a ``tpru build`` dataset names its images the same
    way: the name stands for the content. An image given as a path in a
    benchmark file counts by name and size only.

    Example:
        >>> a = Item(id="q1", benchmark="demo", question="Which?", options=("x", "y"),
        ...          answer="A", images=(), task="choice")
        >>> items_fingerprint([a]) == items_fingerprint([a])
        True
        >>> items_fingerprint([a]) == items_fingerprint([])
        False
    """
    digest = hashlib.sha256()
    for item in items:
        images = [[Path(image).name, _size(image)] for image in item.images]
        record = [item.id, item.benchmark, item.question, item.options, item.answer, images,
                  item.task, item.category, item.scenario, item.negative, item.answerable,
                  item.counterpart, dict(item.meta)]
        digest.update(json.dumps(record, ensure_ascii=False, sort_keys=True,
                                 default=str).encode() + b"\n")
    return digest.hexdigest()


def _size(path: str) -> int:
    """The file's size in bytes, or -1 when it cannot be read (which a fingerprint records)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1
