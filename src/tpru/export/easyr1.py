"""Export for EasyR1: one parquet file per split and the format prompt template.

Layout::

    OUT/
      train.parquet         problem, answer, images, task, scenario, negative, id
      test.parquet
      format_prompt.jinja   the think/answer template EasyR1 renders ``problem`` with

EasyR1 reads it with ``data.train_files=OUT/train.parquet`` (or ``OUT@train``
style hub names), ``data.prompt_key=problem``, ``data.answer_key=answer``,
``data.image_key=images`` and ``data.format_prompt=OUT/format_prompt.jinja``.
It renders ``problem`` through the template and splits it on ``<image>``, so
``problem`` holds exactly one placeholder per entry of ``images`` (checked for
every row). The template is kept as a file, not applied here, so that a user
can change the prompt without exporting again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from tpru.curriculum import check_order
from tpru.dataset import Dataset
from tpru.export.arrow import DEFAULT_BATCH_SIZE, write_parquet
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    FORMAT_PROMPT_FILE,
    absolute_image_path,
    image_bytes,
    load_format_prompt,
    log,
    problem_text,
    select_splits,
    split_samples,
    staged_output,
)

_EMBEDDED_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _schema(embed_images: bool) -> pa.Schema:
    return pa.schema([
        ("problem", pa.string()),
        ("answer", pa.string()),
        ("images", pa.list_(_EMBEDDED_IMAGE if embed_images else pa.string())),
        ("task", pa.string()),
        ("scenario", pa.string()),
        ("negative", pa.bool_()),
        ("id", pa.string()),
    ])


def _rows(dataset: Dataset, split: str, embed_images: bool, order: str,
          seed: int) -> Iterator[dict[str, Any]]:
    for sample in split_samples(dataset, split, order, seed):
        images: list[Any]
        if embed_images:
            images = [{"bytes": image_bytes(dataset, rel), "path": Path(rel).name}
                      for rel in sample.images]
        else:
            images = [absolute_image_path(dataset, rel) for rel in sample.images]
        yield {
            "problem": problem_text(sample),
            "answer": sample.answer,
            "images": images,
            "task": sample.task,
            "scenario": sample.scenario,
            "negative": sample.negative,
            "id": sample.id,
        }


def export(dataset: Dataset, out: Path, *, splits: Sequence[str] | None = None,
           overwrite: bool = False, embed_images: bool = False,
           format_prompt: str | os.PathLike[str] = BUILTIN_FORMAT_PROMPT,
           batch_size: int = DEFAULT_BATCH_SIZE, order: str = "dataset",
           seed: int = 0) -> list[Path]:
    """Write `dataset` as EasyR1 parquet files under `out`.

    Args:
        splits: the splits to write (default: all).
        overwrite: replace an earlier export at `out` (never a folder tpru did not write).
        embed_images: store each image as ``{"bytes", "path"}`` inside the
            parquet (portable, larger) instead of its absolute path (small,
            but tied to where the dataset lies).
        format_prompt: the template copied to ``format_prompt.jinja``: tpru's
            think/answer template by default, or the path of your own.
        batch_size: rows per parquet row group.
        order: the order of each split's rows: ``dataset`` (as stored; the
            default), ``shuffled`` or ``curriculum`` (easy to hard by
            ``meta.difficulty.score``); see `tpru.curriculum`.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Returns:
        the files written.
    """
    check_order(order)
    template = load_format_prompt(format_prompt)
    assert template is not None
    schema = _schema(embed_images)
    with staged_output(out, overwrite=overwrite, inputs=[dataset.root]) as stage:
        for split in select_splits(dataset, splits):
            count = write_parquet(stage.path / f"{split}.parquet",
                                  _rows(dataset, split, embed_images, order, seed), schema,
                                  batch_size=batch_size)
            log.info("easyr1: %s: %d samples", split, count)
        (stage.path / FORMAT_PROMPT_FILE).write_text(template, encoding="utf-8")
    return stage.written
