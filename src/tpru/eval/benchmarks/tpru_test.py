"""TPRU-Test (hub ``Stephengzk/TPRU-test``): 461 hand-checked questions.

The release does not document its columns; its training config reads
``problem`` (one ``<image>`` per image), ``answer`` and ``images``, so this
loader accepts those and common variants:

- question: ``problem``, ``question``, ``prompt``, ``query``;
- images: ``images``, ``image``, ``image_list``, ``frames``, ``image_paths``;
- answer: ``answer``, ``solution``, ``ground_truth``, ``gt``, ``label``;
- optional: ``options``/``choices`` (a list), ``id``/``idx``/``index``,
  ``task``/``task_type``/``type``, ``scenario``/``scene``/``domain``,
  ``category``.

A missing required column is an error naming the variants looked for and
the columns found.

Options: an options column when there is one; otherwise option lines parsed
out of the problem: the last run of lines "A. ...", "B. ...", ... (also "(A) ..." and
"A) ..."), or one line "A. x; B. y; ...". They must come after every
question image. The problem minus those lines becomes `Item.question`, and
the problem itself is kept in ``meta["problem"]`` so the ``tpru`` prompt
renders exactly the text the release trains on. An answer of one letter with
no options found is a counted skip (it could not be scored); an answer of
several letters with no options is the letter form of ordering.

Task: the task column when present; otherwise ``ordering`` when the answer is
a letter sequence or the options are image orders ("1 3 4 2"), else
``choice``. ``negative`` is True when the gold option is "None of the
choices provided".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tpru.diagnostics import Skips
from tpru.eval.baselines import is_none_option
from tpru.eval.benchmarks.common import (
    RowError,
    as_list,
    convert_rows,
    find_column,
    gold_letters,
    open_table,
    scored_split,
    text,
)
from tpru.eval.benchmarks.images import store_image
from tpru.eval.items import Benchmark, Item
from tpru.schema import IMAGE_PLACEHOLDER

NAME = "tpru-test"
HUB_ID = "Stephengzk/TPRU-test"

QUESTION = ("problem", "question", "prompt", "query")
IMAGES = ("images", "image", "image_list", "frames", "image_paths")
ANSWER = ("answer", "solution", "ground_truth", "gt", "label")

_OPTION_LINE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])[.):])\s*(.*?)\s*$")
_INLINE_OPTION = re.compile(r"(?:^|(?<=[\s;,]))([A-J])[.)]\s+")
_ORDER = re.compile(r"^\d+(?:[\s,>-]+\d+)+$")


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """TPRU-Test from the hub (`source` None: `HUB_ID`) or a local parquet/JSONL/folder."""
    where = source or HUB_ID

    def read(skips: Skips) -> Iterator[Item]:
        table = open_table(where, split=split)
        cols = {
            "question": find_column(table, QUESTION, "question"),
            "images": find_column(table, IMAGES, "images"),
            "answer": find_column(table, ANSWER, "answer"),
            "options": find_column(table, ("options", "choices"), "options", required=False),
            "id": find_column(table, ("id", "idx", "index", "question_id"), "id",
                              required=False),
            "task": find_column(table, ("task", "task_type", "type"), "task", required=False),
            "scenario": find_column(table, ("scenario", "scene", "domain"), "scenario",
                                    required=False),
            "category": find_column(table, ("category",), "category", required=False),
        }

        def convert(row: dict[str, Any], number: int) -> Item:
            def cell(key: str) -> Any:
                column = cols[key]
                return None if column is None else row.get(column)
            return _item(cell, number, cache_dir, table.base_dir)
        return convert_rows(table, convert, skips)

    return Benchmark(name=NAME, source=where, split=scored_split(where, split, None),
                     default_prompt="tpru", read=read)


def _item(cell: Callable[[str], Any], number: int, cache_dir: Path, base_dir: Path | None) -> Item:
    item_id = text(cell("id")) or str(number)
    problem = text(cell("question"))
    if problem is None:
        raise RowError(f"item {item_id}: empty problem")
    raw_images = as_list(cell("images"))
    if len(raw_images) != problem.count(IMAGE_PLACEHOLDER):
        raise RowError(f"item {item_id}: {len(raw_images)} images for "
                       f"{problem.count(IMAGE_PLACEHOLDER)} <image> placeholders")
    question, options = split_options(problem)
    listed = [str(o).strip() for o in as_list(cell("options"))]
    if listed:  # an options column wins over option lines (which are still cut off)
        options = tuple(listed)
    if options is not None and len(options) < 2:
        raise RowError(f"item {item_id}: {len(options)} option; an item needs at least two")
    answer = gold_letters(cell("answer"))
    if options is None and len(answer) == 1:
        raise RowError(f"item {item_id}: answer {answer!r} but no options found in the problem")
    if options is not None and any(ord(c) - ord("A") >= len(options) for c in answer):
        raise RowError(f"item {item_id}: answer {answer!r} is not "
                       f"{'one' if len(answer) == 1 else 'an order'} of {len(options)} options")
    images = tuple(store_image(v, cache_dir, base_dir) for v in raw_images)
    negative = (len(answer) == 1 and options is not None
                and is_none_option(options[ord(answer) - ord("A")]))
    return Item(
        id=item_id, benchmark=NAME, question=question, options=options, answer=answer,
        images=images, task=text(cell("task")) or _infer_task(answer, options),
        category=text(cell("category")), scenario=text(cell("scenario")),
        negative=negative, meta={"row": number, "problem": problem},
    )


def split_options(problem: str) -> tuple[str, tuple[str, ...] | None]:
    """Split option lines off a problem: (question, options), or (problem, None).

    Example:
        >>> split_options("Order these: <image> <image>\\nA. 1 2\\nB. 2 1\\nAnswer now.")
        ('Order these: <image> <image>\\nAnswer now.', ('1 2', '2 1'))
    """
    lines = problem.split("\n")
    for end in range(len(lines), 0, -1):
        start, options = _block_ending_at(lines, end)
        if options is not None:
            before, after = lines[:start], lines[end:]
            if IMAGE_PLACEHOLDER in "\n".join(after):
                return problem, None
            return "\n".join(before + after).rstrip(), options
    for index in range(len(lines) - 1, -1, -1):
        inline = _inline_options(lines[index])
        if inline is not None:
            head, options = inline
            if IMAGE_PLACEHOLDER in "\n".join(lines[index + 1:]):
                return problem, None
            kept = [*lines[:index], head] if head else lines[:index]
            return "\n".join(kept + lines[index + 1:]).rstrip(), options
    return problem, None


def _block_ending_at(lines: list[str], end: int) -> tuple[int, tuple[str, ...] | None]:
    """The run of option lines A, B, ... just before `end`, if it has at least two."""
    pairs: list[tuple[str, str]] = []
    start = end
    while start > 0 and (match := _OPTION_LINE.match(lines[start - 1])) is not None:
        pairs.insert(0, (match.group(1) or match.group(2), match.group(3)))
        start -= 1
    # A line above the block may look like an option ("C) ..."): the block starts at its last A.
    letters = "".join(letter for letter, _ in pairs)
    first = letters.rfind("A")
    tail = letters[first:] if first >= 0 else ""
    if len(tail) < 2 or tail != "ABCDEFGHIJ"[: len(tail)] or not all(t for _, t in pairs[first:]):
        return end, None
    return start + first, tuple(t for _, t in pairs[first:])


def _inline_options(line: str) -> tuple[str, tuple[str, ...]] | None:
    """``"Pick one. A. x; B. y"`` -> ("Pick one.", ("x", "y")), when the letters run A, B, ..."""
    marks = list(_INLINE_OPTION.finditer(line))
    first = next((i for i, m in enumerate(marks) if m.group(1) == "A"), None)
    if first is None:
        return None
    marks = marks[first:]
    if len(marks) < 2 or "".join(m.group(1) for m in marks) != "ABCDEFGHIJ"[: len(marks)]:
        return None
    texts = [line[m.end(): nxt.start()] for m, nxt in itertools.pairwise(marks)]
    texts.append(line[marks[-1].end():])
    options = tuple(t.strip().rstrip(";,").strip() for t in texts)
    if any(not o for o in options):
        return None
    return line[: marks[0].start()].rstrip(), options


def _infer_task(answer: str, options: tuple[str, ...] | None) -> str:
    if len(answer) > 1 or options is None:
        return "ordering"
    if any(_ORDER.match(o) for o in options if not is_none_option(o)):
        return "ordering"
    return "choice"
