"""MuirBench (hub ``MUIRBENCH/MUIRBENCH``, split ``test``): 2,600 multi-image questions.

Columns read: ``idx``, ``task``, ``image_relation``, ``image_type``,
``question`` (one ``<image>`` per question image), ``options`` (a list; an
option may be ``<image>``), ``answer`` (a letter), ``image_list`` (the
question's images, then the image options', in order) and
``counterpart_idx``. Half of the items are unanswerable twins of the other
half: the twin's gold option is "None of the choices provided", and
``counterpart_idx`` links each item to its twin.

Mapping to `Item`: ``task`` -> task, ``image_relation`` -> category,
``image_type`` -> scenario, ``answerable`` is False for the twin whose gold
is the None option, ``counterpart`` is the twin's ``idx``; ``negative`` is
left None (MuirBench reports answerability, not tpru's negatives).
"""

from __future__ import annotations

from collections.abc import Iterator
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

NAME = "muirbench"
HUB_ID = "MUIRBENCH/MUIRBENCH"
DEFAULT_SPLIT = "test"


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """MuirBench from the hub (`source` None: `HUB_ID`) or a local parquet file or folder."""
    where = source or HUB_ID

    def read(skips: Skips) -> Iterator[Item]:
        table = open_table(where, split=split, default_split=DEFAULT_SPLIT)
        cols = {
            "question": find_column(table, ("question", "problem", "prompt"), "question"),
            "options": find_column(table, ("options", "choices"), "options"),
            "answer": find_column(table, ("answer", "solution", "ground_truth"), "answer"),
            "images": find_column(table, ("image_list", "images", "image"), "image_list"),
            "id": find_column(table, ("idx", "id", "index"), "idx", required=False),
        }

        def convert(row: dict[str, Any], number: int) -> Item:
            return _item(row, number, cols, cache_dir, table.base_dir)
        return convert_rows(table, convert, skips)

    return Benchmark(name=NAME, source=where, split=scored_split(where, split, DEFAULT_SPLIT),
                     default_prompt="muirbench", read=read)


def _item(row: dict[str, Any], number: int, cols: dict[str, str | None], cache_dir: Path,
          base_dir: Path | None) -> Item:
    def cell(key: str) -> Any:
        column = cols[key]
        return None if column is None else row.get(column)

    item_id = text(cell("id")) or str(number)
    question = text(cell("question"))
    if question is None:
        raise RowError(f"item {item_id}: empty question")
    options = tuple(str(o).strip() for o in as_list(cell("options")))
    if len(options) < 2:
        raise RowError(f"item {item_id}: {len(options)} options")
    answer = gold_letters(cell("answer"))
    position = ord(answer) - ord("A")
    if len(answer) != 1 or position >= len(options):
        raise RowError(f"item {item_id}: answer {answer!r} is not one of {len(options)} options")
    raw_images = as_list(cell("images"))
    expected = sum(part.count(IMAGE_PLACEHOLDER) for part in (question, *options))
    if len(raw_images) != expected:
        raise RowError(f"item {item_id}: {len(raw_images)} images in the image list for "
                       f"{expected} <image> placeholders in question and options")
    images = tuple(store_image(v, cache_dir, base_dir) for v in raw_images)
    counterpart = text(row.get("counterpart_idx"))
    return Item(
        id=item_id, benchmark=NAME, question=question, options=options, answer=answer,
        images=images, task=text(row.get("task")) or "unknown",
        category=text(row.get("image_relation")), scenario=text(row.get("image_type")),
        negative=None, answerable=not is_none_option(options[position]),
        counterpart=None if counterpart in (None, "-1", "None", "nan") else counterpart,
        meta={"row": number},
    )
