"""LEGO-Puzzles (hub ``KexianTang/LEGO-Puzzles``): 1,100 questions, 11 tasks of 100.

Read in VLMEvalKit's TSV format: ``index``, ``image`` (a base64 image, a
list literal of them, or the index of another row whose images it reuses;
or ``image_path``), ``question`` with numbered markers ``<image 1>``,
``<image 2>``, ..., option columns ``A``..``D`` (empty when absent),
``answer``, ``category`` (the task: ``1_Adjacency``, ``4_Height``, ...) and
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
- ``category`` -> task, named as the paper's table names it (`paper_task`):
  the released labels ``1_Adjacency`` ... ``12_rotate_composition`` are 12
  for the paper's 11 tasks, so ``10_rotate_1`` and ``11_rotate_2`` are both
  Rotation, ``12_rotate_composition`` is Rotation Status, ``3_Error`` is
  Outlier and ``9_reverse`` Backwards. The task's ability level (spatial
  understanding, single-step or multi-step sequential reasoning) ->
  category; the label as released -> ``meta["label"]``. A label the table
  does not know stays the task as given, with no ability level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tpru.diagnostics import Skips
from tpru.eval.benchmarks.common import (
    OPTION_COLUMNS,
    RowError,
    SharedImages,
    SourceTable,
    as_list,
    convert_rows,
    find_column,
    gold_letters,
    hub_file,
    is_hub_id,
    open_table,
    option_columns,
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
_LETTERS = OPTION_COLUMNS

SPATIAL = "spatial understanding"
SINGLE_STEP = "single-step reasoning"
MULTI_STEP = "multi-step reasoning"

PAPER_TASKS: dict[str, tuple[str, str]] = {
    # The released labels (after `label_key`), in their order.
    "adjacency": ("Adjacency", SPATIAL),
    "dependency": ("Dependency", SINGLE_STEP),
    "error": ("Outlier", MULTI_STEP),
    "height": ("Height", SPATIAL),
    "multiview": ("Multiview", SPATIAL),
    "nextstep": ("Next-Step", SINGLE_STEP),
    "ordering": ("Ordering", MULTI_STEP),
    "position": ("Position", SINGLE_STEP),
    "reverse": ("Backwards", MULTI_STEP),
    # Two labels for one task: the paper has one Rotation column (100 items) and
    # one Rotation Status column; the merge is read from the names, as no public
    # source states it (docs/evaluation.md).
    "rotate1": ("Rotation", SPATIAL),
    "rotate2": ("Rotation", SPATIAL),
    "rotatecomposition": ("Rotation Status", SINGLE_STEP),
    # The paper's own names, for files that use them.
    "backwards": ("Backwards", MULTI_STEP),
    "outlier": ("Outlier", MULTI_STEP),
    "rotation": ("Rotation", SPATIAL),
    "rotationstatus": ("Rotation Status", SINGLE_STEP),
    "rotstat": ("Rotation Status", SINGLE_STEP),
}
"""The paper's task and its ability level, by `label_key` of a ``category`` label."""


def label_key(label: str) -> str:
    """A label without its leading number, lower case, letters and digits only:
    ``10_rotate_1`` -> ``rotate1``, ``5_Multi_view`` -> ``multiview``, ``Next-Step`` ->
    ``nextstep``."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^\d+_", "", label.strip()).lower())


def paper_task(label: str) -> tuple[str, str] | None:
    """The paper's (task, ability level) for a ``category`` label, or None if unknown.

    Example:
        >>> paper_task("11_rotate_2"), paper_task("3_Error")
        (('Rotation', 'spatial understanding'), ('Outlier', 'multi-step reasoning'))
    """
    return PAPER_TASKS.get(label_key(label))


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
        shared = SharedImages(table, cols["id"], cols["images"])

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


def _item(row: dict[str, Any], number: int, cols: dict[str, str | None],
          shared: SharedImages, cache_dir: Path, base_dir: Path | None) -> Item:
    item_id = text(row.get(cols["id"] or "")) or str(number)
    question = text(row.get(cols["question"] or ""))
    if question is None:
        raise RowError(f"item {item_id}: empty question")
    raw_images = as_list(shared.resolve(row.get(cols["images"] or "")))
    if not raw_images:
        raise RowError(f"item {item_id}: no images")
    options = option_columns(row, item_id)
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
    label = text(row.get("category")) or "unknown"
    task, level = paper_task(label) or (label, text(row.get("l2-category")))
    return Item(
        id=item_id, benchmark=NAME, question=question_text, options=option_texts,
        answer=answer, images=tuple(images), task=task, category=level, scenario=None,
        meta={"row": number, "question_type": question_type, "hint": hint,
              "images_first": images_first, "label": label},
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
