"""Export for verl: one parquet file per split in verl's RLHF row format.

Layout: ``OUT/<split>.parquet``, each row::

    {"data_source": "tpru",
     "prompt": [{"role": "user", "content": "<question and options, format prompt applied>"}],
     "images": [{"bytes": ...}, ...],
     "ability": "temporal_reasoning",
     "reward_model": {"style": "rule", "ground_truth": "C"},
     "extra_info": {"split", "index", "id", "task", "scenario", "negative"}}

verl splits the user content on ``<image>`` and pairs the pieces with
``images`` in order, so the content holds exactly one placeholder per image.
Unlike EasyR1, verl has no prompt template of its own, so the format prompt
is applied here. With ``embed_images=False`` an image is ``{"image": PATH}``
(an absolute path): verl hands a dict without ``bytes`` to qwen-vl-utils,
which reads the file at ``image``; a bare path string is not accepted there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from tpru.curriculum import check_order
from tpru.dataset import Dataset
from tpru.export.arrow import DEFAULT_BATCH_SIZE, write_parquet
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    absolute_image_path,
    formatted_prompt,
    image_bytes,
    load_format_prompt,
    log,
    make_formatter,
    select_splits,
    split_samples,
    staged_output,
)

DATA_SOURCE = "tpru"
"""``data_source`` of every row; a verl reward function can dispatch on it."""

ABILITY = "temporal_reasoning"


def _schema(embed_images: bool) -> pa.Schema:
    image = (pa.struct([("bytes", pa.binary())]) if embed_images
             else pa.struct([("image", pa.string())]))
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(image)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([
            ("split", pa.string()),
            ("index", pa.int64()),
            ("id", pa.string()),
            ("task", pa.string()),
            ("scenario", pa.string()),
            ("negative", pa.bool_()),
        ])),
    ])


def _rows(dataset: Dataset, split: str, embed_images: bool,
          formatter: Callable[[str], str], order: str,
          seed: int) -> Iterator[dict[str, Any]]:
    for index, sample in enumerate(split_samples(dataset, split, order, seed)):
        images = ([{"bytes": image_bytes(dataset, rel)} for rel in sample.images] if embed_images
                  else [{"image": absolute_image_path(dataset, rel)} for rel in sample.images])
        yield {
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": formatted_prompt(sample, formatter)}],
            "images": images,
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": sample.answer},
            "extra_info": {
                "split": split,
                "index": index,
                "id": sample.id,
                "task": sample.task,
                "scenario": sample.scenario,
                "negative": sample.negative,
            },
        }


def export(dataset: Dataset, out: Path, *, splits: Sequence[str] | None = None,
           overwrite: bool = False, embed_images: bool = True,
           format_prompt: str | os.PathLike[str] | None = BUILTIN_FORMAT_PROMPT,
           batch_size: int = DEFAULT_BATCH_SIZE, order: str = "dataset",
           seed: int = 0) -> list[Path]:
    """Write `dataset` as verl parquet files under `out`.

    Args:
        splits: the splits to write (default: all).
        overwrite: replace an earlier export at `out` (never a folder tpru did not write).
        embed_images: store image bytes in the parquet (default, as verl's own
            examples do) or ``{"image": ABSOLUTE_PATH}``.
        format_prompt: the template the user content is rendered with: tpru's
            think/answer template by default, the path of your own, or None
            for the bare question.
        batch_size: rows per parquet row group.
        order: the order of each split's rows: ``dataset`` (as stored; the
            default), ``shuffled`` or ``curriculum`` (easy to hard by
            ``meta.difficulty.score``); see `tpru.curriculum`.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Returns:
        the files written.
    """
    check_order(order)
    formatter = make_formatter(load_format_prompt(format_prompt))
    schema = _schema(embed_images)
    with staged_output(out, overwrite=overwrite, inputs=[dataset.root]) as stage:
        for split in select_splits(dataset, splits):
            count = write_parquet(stage.path / f"{split}.parquet",
                                  _rows(dataset, split, embed_images, formatter, order, seed),
                                  schema,
                                  batch_size=batch_size)
            log.info("verl: %s: %d samples", split, count)
    return stage.written
