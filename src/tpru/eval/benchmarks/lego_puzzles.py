"""LEGO-Puzzles (hub ``KexianTang/LEGO-Puzzles``): 1,100 questions, 11 tasks of 100.

Read in VLMEvalKit's TSV format: ``index``, ``image`` (a base64 image, a
list literal of them, or the index of another row whose images it reuses;
or ``image_path``), ``question`` with numbered markers ``<image 1>``,
``<image 2>``, ..., option columns ``A``..``D`` (empty when absent),
``answer``, ``category`` (the task: height, adjacency, ...) and
``question_type`` (``sort`` for ordering, whose answer is a letter
permutation such as ``BDAC``). The same columns are read from a parquet or
JSONL file, or from the hub (its TSV when the repo has one, else
``datasets.load_dataset``).

Mapping to `Item`, following how VLMEvalKit builds the prompt:

- Each marker ``<image k>`` in the question and then in the options (in
  that order, the order the prompt shows them) becomes ``<image>``, and the
  k-th image of the row is appended to ``images``: a marker may name any
  image, and an image no marker names is not shown, as in VLMEvalKit. An
  option that is only a marker becomes the image option ``<image>``.
- A row without markers shows all its images before the text, so the
  question starts with one ``<image>`` per image and ``meta["images_first"]``
  is True (the ``lego`` prompt then puts them before "Question:").
- Sort items keep their options and the answer as given; they are scored in
  the letter-sequence form (`Item.answer_form` is ``sequence``).
- ``category`` -> task; the task's ability level in the paper (spatial
  understanding, single-step or multi-step sequential reasoning) -> category.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tpru.diagnostics import Skips
from tpru.eval.benchmarks.common import (
    RowError,
    SourceTable,
    as_list,
    convert_rows,
    find_column,
    gold_letters,
    hub_file,
    is_hub_id,
    open_table,
    read_tsv,
    scored_split,
    text,
)
from tpru.eval.benchmarks.images import store_image
from tpru.eval.items import Benchmark, Item
from tpru.schema import IMAGE_PLACEHOLDER

NAME = "lego-puzzles"
HUB_ID = "KexianTang/LEGO-Puzzles"
DEFAULT_SPLIT = "test"
"""The hub split read when none is named (the published benchmark is its test set)."""

_MARKER = re.compile(r"<image\s*(\d+)>", re.IGNORECASE)
_LETTERS = "ABCDEFGHIJ"

LEVELS = {
    "height": "spatial understanding", "adjacency": "spatial understanding",
    "rotation": "spatial understanding", "multiview": "spatial understanding",
    "nextstep": "single-step reasoning", "dependency": "single-step reasoning",
    "rotationstatus": "single-step reasoning", "position": "single-step reasoning",
    "backwards": "multi-step reasoning", "ordering": "multi-step reasoning",
    "outlier": "multi-step reasoning",
}
"""The paper's three ability levels, by task name in lower case without spaces or dashes."""


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """LEGO-Puzzles from the hub (`source` None: `HUB_ID`) or a local TSV/parquet/JSONL."""
    where = source or HUB_ID

    def read(skips: Skips) -> Iterator[Item]:
        table = _open(where, split)
        cols = {
            "question": find_column(table, ("question", "problem", "prompt"), "question"),
            "answer": find_column(table, ("answer", "solution", "ground_truth"), "answer"),
            "images": find_column(table, ("image", "images", "image_path", "image_list"),
                                  "image"),
            "id": find_column(table, ("index", "id", "idx"), "index", required=False),
        }
        shared = _images_by_index(table, cols)

        def convert(row: dict[str, Any], number: int) -> Item:
            return _item(row, number, cols, shared, cache_dir, table.base_dir)
        return convert_rows(table, convert, skips)

    return Benchmark(name=NAME, source=where, split=scored_split(where, split, DEFAULT_SPLIT),
                     default_prompt="lego", read=read)


def _open(where: str, split: str | None) -> SourceTable:
    if is_hub_id(where):
        tsv = hub_file(where, ".tsv")
        if tsv is not None:
            return read_tsv(tsv)
    return open_table(where, split=split, default_split=DEFAULT_SPLIT)


def _images_by_index(table: SourceTable, cols: dict[str, str | None]) -> dict[str, Any]:
    """Image cells by row index, to resolve a row that names another row's index."""
    if not isinstance(table.rows, list) or cols["id"] is None:
        return {}
    return {str(row.get(cols["id"])): row.get(cols["images"] or "") for row in table.rows}


def _item(row: dict[str, Any], number: int, cols: dict[str, str | None],
          shared: dict[str, Any], cache_dir: Path, base_dir: Path | None) -> Item:
    item_id = text(row.get(cols["id"] or "")) or str(number)
    question = text(row.get(cols["question"] or ""))
    if question is None:
        raise RowError(f"item {item_id}: empty question")
    cell = row.get(cols["images"] or "")
    if isinstance(cell, str) and cell.strip() in shared and len(cell.strip()) < 16:
        cell = shared[cell.strip()]
    raw_images = as_list(cell)
    if not raw_images:
        raise RowError(f"item {item_id}: no images")
    options = _options(row, item_id)
    hint = text(row.get("hint"))
    if hint is not None and _MARKER.search(hint):
        raise RowError(f"item {item_id}: image markers in the hint are not supported")

    order: list[int] = []

    def replace(match: re.Match[str]) -> str:
        k = int(match.group(1))
        if not 1 <= k <= len(raw_images):
            raise RowError(f"item {item_id}: marker <image {k}> for {len(raw_images)} images")
        order.append(k - 1)
        return IMAGE_PLACEHOLDER

    question_text = _MARKER.sub(replace, question)
    option_texts = tuple(_MARKER.sub(replace, o) for o in options) if options else None
    images_first = not order
    if images_first:
        question_text = IMAGE_PLACEHOLDER * len(raw_images) + "\n" + question_text
        order = list(range(len(raw_images)))
    images = [store_image(raw_images[i], cache_dir, base_dir) for i in order]

    answer = gold_letters(row.get(cols["answer"] or ""))
    question_type = text(row.get("question_type"))
    _check_answer(item_id, answer, len(option_texts or ()), question_type)
    task = text(row.get("category")) or "unknown"
    level = LEVELS.get(re.sub(r"[^a-z]", "", task.lower()))
    return Item(
        id=item_id, benchmark=NAME, question=question_text, options=option_texts,
        answer=answer, images=tuple(images), task=task,
        category=level or text(row.get("l2-category")), scenario=None,
        meta={"row": number, "question_type": question_type, "hint": hint,
              "images_first": images_first},
    )


def _check_answer(item_id: str, answer: str, n_options: int, question_type: str | None) -> None:
    """Refuse a gold that cannot be scored: a letter beyond the options, or several letters
    where the row is not a ``sort`` item (with that column absent: letters that are not an
    order of all the options). Without options the letters order the images: any go."""
    letters = _LETTERS[:n_options]
    if len(answer) == 1 and question_type != "sort":
        if answer not in letters:
            raise RowError(f"item {item_id}: answer {answer!r} is not one of "
                           f"{n_options} options")
        return
    if question_type not in (None, "sort"):
        raise RowError(f"item {item_id}: answer {answer!r} has several letters but the "
                       f"question_type is {question_type!r}, not sort")
    if n_options and (any(c not in letters for c in answer) or len(set(answer)) < len(answer)):
        raise RowError(f"item {item_id}: answer {answer!r} is not an order of the "
                       f"{n_options} options' letters (each at most once)")
    if n_options and question_type is None and sorted(answer) != list(letters):
        raise RowError(f"item {item_id}: answer {answer!r} has several letters but is not "
                       f"an order of all {n_options} options and the row has no "
                       "question_type sort")


def _options(row: dict[str, Any], item_id: str) -> tuple[str, ...]:
    """The option columns A, B, ... up to the first empty one; a later one is an error,
    and so is a single option (nothing to choose from)."""
    values = [text(row.get(letter)) for letter in _LETTERS]
    count = next((i for i, v in enumerate(values) if v is None), len(values))
    if any(v is not None for v in values[count:]):
        raise RowError(f"item {item_id}: option {_LETTERS[count]} is empty but a later one "
                       "is not")
    if count == 1:
        raise RowError(f"item {item_id}: only option A is given; an item needs at least two")
    return tuple(v for v in values[:count] if v is not None)

