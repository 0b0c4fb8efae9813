"""MuirBench (hub ``MUIRBENCH/MUIRBENCH``, split ``test``): 2,600 multi-image questions.

Read in either of two layouts, chosen by the columns present:

- the hub's parquet: ``idx``, ``task``, ``image_relation``, ``image_type``,
  ``question`` (one ``<image>`` per question image), ``options`` (a list; an
  option may be ``<image>``), ``answer`` (a letter), ``image_list`` (the
  question's images, then the image options', in order) and
  ``counterpart_idx``;
- VLMEvalKit's ``MUIRBench.tsv`` (options in columns ``A``, ``B``, ...):
  ``index``, ``question`` (the same ``<image>`` placeholders), ``A``..,
  ``answer``, ``image`` (one base64 image, a list literal of them in the same
  order as ``image_list``, or another row's index whose images it reuses;
  or ``image_path``) and ``category`` (the task). ``image_relation``,
  ``image_type`` and ``counterpart_idx`` are read when the file has them.

Half of the items are unanswerable twins of the other half: the twin's
gold option is "None of the choices provided", and ``counterpart_idx``
links each item to its twin.

Mapping to `Item`: ``task`` (TSV: ``category``) -> task, ``image_relation``
-> category, ``image_type`` -> scenario, ``answerable`` is False for the
twin whose gold is the None option, ``counterpart`` is the twin's ``idx``;
``negative`` is left None (MuirBench reports answerability, not tpru's
negatives). The same item gives the same `Item` from either layout, so a
run scores the same (``meta["row"]`` aside, which counts rows of the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tpru.diagnostics import Skips
from tpru.eval.baselines import is_none_option
from tpru.eval.benchmarks.common import (
    RowError,
    SharedImages,
    as_list,
    convert_rows,
    find_column,
    gold_letters,
    has_option_columns,
    open_table,
    option_columns,
    scored_split,
    text,
)
from tpru.eval.benchmarks.images import store_image
from tpru.eval.items import Benchmark, Item
from tpru.schema import IMAGE_PLACEHOLDER

NAME = "muirbench"
HUB_ID = "MUIRBENCH/MUIRBENCH"
DEFAULT_SPLIT = "test"


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """MuirBench from the hub (`source` None: `HUB_ID`), a local parquet file or folder,
    or VLMEvalKit's TSV."""
    where = source or HUB_ID

    def read(skips: Skips) -> Iterator[Item]:
        table = open_table(where, split=split, default_split=DEFAULT_SPLIT)
        in_columns = has_option_columns(table)
        cols = {
            "question": find_column(table, ("question", "problem", "prompt"), "question"),
            "options": None if in_columns else find_column(
                table, ("options", "choices"), "options (or option columns A, B, ...)"),
            "answer": find_column(table, ("answer", "solution", "ground_truth"), "answer"),
            "images": find_column(table, ("image_list", "images", "image", "image_path"),
                                  "image_list"),
            "id": find_column(table, ("idx", "id", "index"), "idx", required=False),
            "task": find_column(table, ("task", "category"), "task", required=False),
        }
        shared = SharedImages(table, cols["id"], cols["images"])

        def convert(row: dict[str, Any], number: int) -> Item:
            return _item(row, number, cols, shared, cache_dir, table.base_dir)
        return convert_rows(table, convert, skips)

    return Benchmark(name=NAME, source=where, split=scored_split(where, split, DEFAULT_SPLIT),
                     default_prompt="muirbench", read=read)


def _item(row: dict[str, Any], number: int, cols: dict[str, str | None], shared: SharedImages,
          cache_dir: Path, base_dir: Path | None) -> Item:
    def cell(key: str) -> Any:
        column = cols[key]
        return None if column is None else row.get(column)

    item_id = text(cell("id")) or str(number)
    question = text(cell("question"))
    if question is None:
        raise RowError(f"item {item_id}: empty question")
    if cols["options"] is None:
        options = option_columns(row, item_id)
    else:
        options = tuple(str(o).strip() for o in as_list(cell("options")))
    if len(options) < 2:
        raise RowError(f"item {item_id}: {len(options)} options")
    answer = gold_letters(cell("answer"))
    position = ord(answer) - ord("A")
    if len(answer) != 1 or position >= len(options):
        raise RowError(f"item {item_id}: answer {answer!r} is not one of {len(options)} options")
    raw_images = as_list(shared.resolve(cell("images")))
    expected = sum(part.count(IMAGE_PLACEHOLDER) for part in (question, *options))
    if len(raw_images) != expected:
        raise RowError(f"item {item_id}: {len(raw_images)} images in the image list for "
                       f"{expected} <image> placeholders in question and options")
    images = tuple(store_image(v, cache_dir, base_dir) for v in raw_images)
    counterpart = text(row.get("counterpart_idx"))
    return Item(
        id=item_id, benchmark=NAME, question=question, options=options, answer=answer,
        images=images, task=text(cell("task")) or "unknown",
        category=text(row.get("image_relation")), scenario=text(row.get("image_type")),
        negative=None, answerable=not is_none_option(options[position]),
        counterpart=None if counterpart in (None, "-1", "None", "nan") else counterpart,
        meta={"row": number},
    )
