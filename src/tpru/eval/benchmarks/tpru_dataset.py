"""A dataset folder written by ``tpru build``, evaluated as a benchmark.

Each `Sample` becomes an `Item` with the same id, question, options, answer
and image order; images are the dataset's own files (absolute paths, no
copy). Sample -> Item: ``task``, ``scenario`` and ``negative`` as they are;
``category`` is the negative kind (``mismatch`` or ``missing``) of a negative
sample and None for a positive one; ``counterpart`` is the sample's twin
(``meta["twin"]``: a negative and its positive twin from the same window)
where the builder linked one; ``frames`` and ``difficulty`` are the sample's
``meta.frames`` (else its question images) and ``meta.difficulty.score``
(`tpru.curriculum`); ``meta`` keeps the split and episode.

Which split: the ``test`` split by default, since a benchmark score over the
training split says nothing about generalisation; a dataset without one is
an error that lists its splits. A named split is read alone, and
`ALL_SPLITS` (``all``) reads every split in the build's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tpru.curriculum import difficulty_score, sample_frames
from tpru.dataset import Dataset
from tpru.diagnostics import InputError, Skips
from tpru.eval.items import ALL_SPLITS, Benchmark, Item
from tpru.schema import Sample

NAME = "tpru-dataset"

DEFAULT_SPLIT = "test"
"""The split scored when none is named."""


def load(source: str | None, *, cache_dir: Path, split: str | None = None) -> Benchmark:
    """The dataset folder `source` (`cache_dir` is unused: its images are files already).

    Args:
        split: a split name, `ALL_SPLITS` for every split, or None for `DEFAULT_SPLIT`.

    Raises:
        InputError: no dataset at `source`, or no such split (the message lists the
            dataset's splits and how to choose one).
    """
    if source is None:
        raise InputError("a tpru dataset benchmark needs the dataset folder: dataset:PATH")
    dataset = Dataset.open(source)
    chosen = split or DEFAULT_SPLIT
    names = dataset.splits if chosen == ALL_SPLITS else [chosen]
    if chosen != ALL_SPLITS and chosen not in dataset.splits:
        which = f"no split {chosen!r}" if split else f"no split {chosen!r} to score by default"
        raise InputError(f"{dataset.root}: {which} (splits: {', '.join(dataset.splits) or 'none'})"
                         f"; pass --split NAME, or --split {ALL_SPLITS} for every split")

    def read(skips: Skips) -> Iterator[Item]:
        for name in names:
            root = Dataset(dataset.root.resolve())  # resolved once, not per image
            for sample in root.samples(name):
                item = _item(root, sample, name)
                if item is None:
                    skips.skip("missing_image", f"{dataset.split_path(name)}: sample "
                               f"{sample.id}: an image file is missing")
                    continue
                yield item

    return Benchmark(name=NAME, source=str(dataset.root), split=chosen, default_prompt="tpru",
                     read=read)


def _item(dataset: Dataset, sample: Sample, split: str) -> Item | None:
    paths = [dataset.image_path(relative) for relative in sample.images]
    if not all(p.is_file() for p in paths):
        return None
    kind = sample.meta.get("negative_kind") if sample.negative else None
    twin = sample.meta.get("twin")
    return Item(
        id=sample.id, benchmark=NAME, question=sample.question, options=sample.options,
        answer=sample.answer, images=tuple(str(p) for p in paths), task=sample.task,
        category=str(kind) if kind is not None else None, scenario=sample.scenario,
        negative=sample.negative, counterpart=None if twin is None else str(twin),
        frames=sample_frames(sample), difficulty=difficulty_score(sample.meta),
        meta={"split": split, "episode_id": sample.episode_id},
    )
