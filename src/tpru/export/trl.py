"""Export for TRL's GRPOTrainer: a Hugging Face `DatasetDict` saved to disk.

Load it with ``datasets.load_from_disk(OUT)``. Columns:

- ``prompt``: conversational, one user message whose ``content`` interleaves
  ``{"type": "text", "text": ...}`` and ``{"type": "image"}`` parts in the order
  the ``<image>`` placeholders had in the rendered question (format prompt
  applied), one image part per image. (Arrow gives every part both keys, so
  an image part reads back as ``{"type": "image", "text": None}``.)
- ``images``: the images themselves (``datasets.Image``), decoded to PIL on
  access; TRL pairs them with the image parts in order. Images are never put
  inside ``prompt``.
- ``answer`` and ``solution``: the gold letter(s). TRL passes every extra
  column to reward functions as a keyword argument; ``solution`` is the name
  TRL's own reward examples use, ``answer`` the one tpru's rewards use.
- ``id``, ``task``, ``scenario``, ``negative``: for per-task metrics.
- ``frames`` and ``difficulty``: the sequence's number of frames and its
  ``meta.difficulty.score`` (null where the dataset has none), so that a
  trainer can order or group samples by them (`tpru.curriculum`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets

from tpru.curriculum import check_order, difficulty_score, sample_frames
from tpru.dataset import Dataset
from tpru.export.arrow import DEFAULT_BATCH_SIZE, build_hf_dataset, quiet_progress
from tpru.export.common import (
    BUILTIN_FORMAT_PROMPT,
    formatted_prompt,
    image_bytes,
    load_format_prompt,
    log,
    make_formatter,
    select_splits,
    split_samples,
    staged_output,
)
from tpru.schema import IMAGE_PLACEHOLDER


def features() -> datasets.Features:
    """The columns of a TRL export."""
    return datasets.Features({
        "id": datasets.Value("string"),
        "prompt": [{
            "role": datasets.Value("string"),
            "content": [{"type": datasets.Value("string"), "text": datasets.Value("string")}],
        }],
        "images": [datasets.Image()],
        "answer": datasets.Value("string"),
        "solution": datasets.Value("string"),
        "task": datasets.Value("string"),
        "scenario": datasets.Value("string"),
        "negative": datasets.Value("bool"),
        "frames": datasets.Value("int32"),
        "difficulty": datasets.Value("float64"),
    })


def content_parts(text: str) -> list[dict[str, str | None]]:
    """Chat content parts for `text`: its pieces, with an image part at each ``<image>``.

    Example:
        >>> content_parts("Step 1 <image> then <image>?")  # doctest: +NORMALIZE_WHITESPACE
        [{'type': 'text', 'text': 'Step 1 '}, {'type': 'image', 'text': None},
         {'type': 'text', 'text': ' then '}, {'type': 'image', 'text': None},
         {'type': 'text', 'text': '?'}]
    """
    parts: list[dict[str, str | None]] = []
    for i, piece in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i > 0:
            parts.append({"type": "image", "text": None})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def _rows(dataset: Dataset, split: str,
          formatter: Callable[[str], str], order: str,
          seed: int) -> Iterator[dict[str, Any]]:
    for sample in split_samples(dataset, split, order, seed):
        text = formatted_prompt(sample, formatter)
        yield {
            "id": sample.id,
            "prompt": [{"role": "user", "content": content_parts(text)}],
            "images": [{"bytes": image_bytes(dataset, rel), "path": Path(rel).name}
                       for rel in sample.images],
            "answer": sample.answer,
            "solution": sample.answer,
            "task": sample.task,
            "scenario": sample.scenario,
            "negative": sample.negative,
            "frames": sample_frames(sample),
            "difficulty": difficulty_score(sample.meta),
        }


def export(dataset: Dataset, out: Path, *, splits: Sequence[str] | None = None,
           overwrite: bool = False,
           format_prompt: str | os.PathLike[str] | None = BUILTIN_FORMAT_PROMPT,
           batch_size: int = DEFAULT_BATCH_SIZE, order: str = "dataset",
           seed: int = 0) -> list[Path]:
    """Write `dataset` as a TRL-ready `DatasetDict` saved at `out`.

    Args:
        splits: the splits to write (default: all).
        overwrite: replace an earlier export at `out` (never a folder tpru did not write).
        format_prompt: the template the prompt text is rendered with: tpru's
            think/answer template by default, the path of your own, or None.
        batch_size: rows per Arrow batch.
        order: the order of each split's rows: ``dataset`` (as stored; the
            default), ``shuffled`` or ``curriculum`` (easy to hard by
            ``meta.difficulty.score``); see `tpru.curriculum`.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Returns:
        the files written (``dataset_dict.json`` and each split's files).
    """
    check_order(order)
    formatter = make_formatter(load_format_prompt(format_prompt))
    columns = features()
    with staged_output(out, overwrite=overwrite, inputs=[dataset.root]) as stage, quiet_progress():
        work = stage.path / ".work"
        work.mkdir()
        parts = {}
        for split in select_splits(dataset, splits):
            parts[split] = build_hf_dataset(_rows(dataset, split, formatter, order, seed), columns,
                                            work / f"{split}.arrow", split=split,
                                            batch_size=batch_size)
            log.info("trl: %s: %d samples", split, parts[split].num_rows)
        datasets.DatasetDict(parts).save_to_disk(str(stage.path))
        del parts  # release the memory maps before deleting their files
        shutil.rmtree(work)
    return stage.written
