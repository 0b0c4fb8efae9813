"""Export as a Hugging Face dataset: loadable from disk, from parquet, or from the hub.

Layout::

    OUT/
      README.md                      dataset card; its YAML ``configs:`` names the parquet files
      data/train-00000-of-00001.parquet
      data/test-00000-of-00001.parquet
      dataset_dict.json              the same data as written by save_to_disk
      train/ test/

So ``datasets.load_from_disk(OUT)`` and ``datasets.load_dataset(OUT)`` both
work, and ``huggingface-cli upload`` of the folder (without the
save_to_disk part if you like) publishes it.

Columns mirror `tpru.schema.Sample`: ``id``, ``task``, ``scenario``,
``episode_id``, ``question`` (with ``<image>`` placeholders), ``options``
(an empty list for the letter form of ordering, whose `Sample.options` is
None), ``answer``, ``images`` (``datasets.Image``, question images then option
images), ``negative``, ``meta`` (a JSON string, since its keys vary).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets
import yaml

from tpru.curriculum import check_order
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.arrow import DEFAULT_BATCH_SIZE, build_hf_dataset, quiet_progress
from tpru.export.common import image_bytes, log, select_splits, split_samples, staged_output
from tpru.schema import SCHEMA_VERSION

DATA_DIR = "data"


def features() -> datasets.Features:
    """The columns of a Hugging Face export."""
    text = datasets.Value("string")
    return datasets.Features({
        "id": text,
        "task": text,
        "scenario": text,
        "episode_id": text,
        "question": text,
        "options": [text],
        "answer": text,
        "images": [datasets.Image()],
        "negative": datasets.Value("bool"),
        "meta": text,
    })


def parquet_name(split: str) -> str:
    """Where a split's parquet file lies inside the export."""
    return f"{DATA_DIR}/{split}-00000-of-00001.parquet"


def _rows(dataset: Dataset, split: str, order: str, seed: int) -> Iterator[dict[str, Any]]:
    for sample in split_samples(dataset, split, order, seed):
        yield {
            "id": sample.id,
            "task": sample.task,
            "scenario": sample.scenario,
            "episode_id": sample.episode_id,
            "question": sample.question,
            "options": list(sample.options or ()),
            "answer": sample.answer,
            "images": [{"bytes": image_bytes(dataset, rel), "path": Path(rel).name}
                       for rel in sample.images],
            "negative": sample.negative,
            "meta": json.dumps(dict(sample.meta), ensure_ascii=False, sort_keys=True),
        }


def dataset_card(splits: dict[str, int], source: str) -> str:
    """README.md: YAML front matter that tells ``load_dataset`` the files, then a note."""
    front = {
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": s, "path": parquet_name(s)} for s in splits],
        }],
        "tags": ["tpru", "multi-image", "temporal-reasoning"],
    }
    counts = "\n".join(f"| {s} | {n} |" for s, n in splits.items())
    return (
        "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n"
        "# TPRU-style temporal reasoning questions\n\n"
        f"Exported by `tpru export --to hf` from `{source}` "
        f"(Sample schema version {SCHEMA_VERSION}).\n\n"
        "| split | samples |\n|---|---|\n" + counts + "\n\n"
        "Each row is one multi-image question: `question` has one `<image>` per "
        "question image; `images` lists those images, then the images of the options "
        "(an image option is the text `<image>`). `answer` is an option letter, or a "
        "letter sequence such as `CABD` when `options` is empty. `negative` rows have "
        "the gold option \"None of the choices provided\". `meta` is JSON.\n\n"
        "```python\nimport datasets\nds = datasets.load_dataset(\"PATH/TO/THIS/FOLDER\")\n```\n"
    )


def export(dataset: Dataset, out: Path, *, splits: Sequence[str] | None = None,
           overwrite: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
           order: str = "dataset", seed: int = 0) -> list[Path]:
    """Write `dataset` as a Hugging Face dataset folder at `out`.

    Args:
        splits: the splits to write (default: all).
        overwrite: replace an earlier export at `out` (never a folder tpru did not write).
        batch_size: rows per Arrow batch.
        order: the order of each split's rows: ``dataset`` (as stored; the
            default), ``shuffled`` or ``curriculum`` (easy to hard by
            ``meta.difficulty.score``); see `tpru.curriculum`.
        seed: seeds ``shuffled`` and the order of ``curriculum`` ties.

    Returns:
        the files written.
    """
    check_order(order)
    chosen = select_splits(dataset, splits)
    if DATA_DIR in chosen:
        raise InputError(f"a split named {DATA_DIR!r} would collide with the parquet folder")
    columns = features()
    with staged_output(out, overwrite=overwrite, inputs=[dataset.root]) as stage, quiet_progress():
        work = stage.path / ".work"
        work.mkdir()
        (stage.path / DATA_DIR).mkdir()
        parts = {}
        for split in chosen:
            parts[split] = build_hf_dataset(_rows(dataset, split, order, seed), columns,
                                            work / f"{split}.arrow", split=split,
                                            batch_size=batch_size)
            parts[split].to_parquet(str(stage.path / parquet_name(split)), batch_size=batch_size)
            log.info("hf: %s: %d samples", split, parts[split].num_rows)
        datasets.DatasetDict(parts).save_to_disk(str(stage.path))
        card = dataset_card({s: p.num_rows for s, p in parts.items()}, dataset.root.name)
        (stage.path / "README.md").write_text(card, encoding="utf-8")
        del parts  # release the memory maps before deleting their files
        shutil.rmtree(work)
    return stage.written
