"""A dataset folder written by ``tpru build``, evaluated as a benchmark.

Each `Sample` becomes an `Item` with the same id, question, options, answer
and image order; images are the dataset's own files (absolute paths, no
copy). Sample -> Item: ``task``, ``scenario`` and ``negative`` as they are;
``category`` is the negative kind (``mismatch`` or ``missing``) of a negative
sample and None for a positive one; ``meta`` keeps the split and episode.
One split is read when named, else every split in the build's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tpru.dataset import Dataset
from tpru.diagnostics import InputError, Skips
from tpru.eval.items import Benchmark, Item
from tpru.schema import Sample

NAME = "tpru-dataset"


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """The dataset folder `source` (`cache_dir` is unused: its images are files already)."""
    if source is None:
        raise InputError("a tpru dataset benchmark needs the dataset folder: dataset:PATH")
    dataset = Dataset.open(source)
    if split is not None and split not in dataset.splits:
        raise InputError(f"{dataset.root}: no split {split!r} "
                         f"(splits: {', '.join(dataset.splits) or 'none'})")

    def read(skips: Skips) -> Iterator[Item]:
        for name in [split] if split is not None else dataset.splits:
            root = Dataset(dataset.root.resolve())  # resolved once, not per image
            for sample in root.samples(name):
                item = _item(root, sample, name)
                if item is None:
                    skips.skip("missing_image", f"{dataset.split_path(name)}: sample "
                               f"{sample.id}: an image file is missing")
                    continue
                yield item

    return Benchmark(name=NAME, source=str(dataset.root), split=split, default_prompt="tpru",
                     read=read)


def _item(dataset: Dataset, sample: Sample, split: str) -> Item | None:
    paths = [dataset.image_path(relative) for relative in sample.images]
    if not all(p.is_file() for p in paths):
        return None
    kind = sample.meta.get("negative_kind") if sample.negative else None
    return Item(
        id=sample.id, benchmark=NAME, question=sample.question, options=sample.options,
        answer=sample.answer, images=tuple(str(p) for p in paths), task=sample.task,
        category=str(kind) if kind is not None else None, scenario=sample.scenario,
        negative=sample.negative,
        meta={"split": split, "episode_id": sample.episode_id},
    )
