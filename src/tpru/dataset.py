"""Reading a dataset folder written by `tpru build`.

Layout::

    DATASET/
      build.json          resolved config, seed, schema version, counts, drops, content hash
      train.jsonl         one Sample per line (one file per split)
      test.jsonl
      images/ab/abcdef....jpg   content-addressed images, referenced by samples

A folder is complete only when ``build.json`` (`tpru.records.BuildRecord`)
exists: the builder writes it last. Exports, stats and the viewer all read
datasets through `Dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tpru.diagnostics import InputError
from tpru.records import BuildRecord
from tpru.schema import Sample, read_jsonl

BUILD_FILE = "build.json"
IMAGES_DIR = "images"


@dataclass(frozen=True)
class Dataset:
    """A built dataset folder."""

    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Open `path`, refusing a folder that is missing or not a finished build."""
        root = Path(path)
        if not root.is_dir():
            raise InputError(f"{root}: is a file, not a dataset folder" if root.exists()
                             else f"{root}: no such dataset folder")
        if not (root / BUILD_FILE).is_file():
            raise InputError(f"{root}: not a finished tpru dataset (no {BUILD_FILE}); "
                             "was the build interrupted? Run it again with --resume")
        return cls(root)

    @property
    def info(self) -> BuildRecord:
        """The ``build.json``, read (and checked) afresh on each access.

        Raises:
            InputError: build.json is not valid JSON, not a build record, or
                from a newer tpru; the message names the file.
        """
        return BuildRecord.load(self.root / BUILD_FILE)

    @property
    def splits(self) -> list[str]:
        """Split names, in the order the build wrote them (a build.json that does not
        list them: every ``*.jsonl`` file, by name)."""
        names = self.info.splits
        if names:
            return list(names)
        return sorted(p.stem for p in self.root.glob("*.jsonl"))

    def split_path(self, split: str) -> Path:
        return self.root / f"{split}.jsonl"

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        """Samples of one split, or of every split in order when `split` is None."""
        for name in [split] if split is not None else self.splits:
            path = self.split_path(name)
            if not path.is_file():
                raise InputError(f"{path}: split {name!r} not found in {self.root}")
            yield from read_jsonl(path, Sample)

    def image_path(self, relative: str) -> Path:
        """Absolute path of an image referenced by a sample."""
        return self.root / relative
