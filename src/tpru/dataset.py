"""Reading a dataset folder written by `tpru build`.

Layout::

    DATASET/
      build.json          resolved config, seed, schema version, counts, drops, content hash
      train.jsonl         one Sample per line (one file per split)
      test.jsonl
      images/ab/abcdef....jpg   content-addressed images, referenced by samples

A folder is complete only when ``build.json`` (`tpru.records.BuildRecord`)
exists: the builder writes it last, inside ``DATASET.partial``, then renames
that folder to ``DATASET`` (`partial_folder`). Exports, stats and the viewer all read
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

PARTIAL_SUFFIX = ".partial"
"""A build of ``DIR`` writes into ``DIR.partial`` and renames it to ``DIR`` when finished."""

STATE_FILE = "state.json"
WORK_DIR = "work"
WORK_FILES = (STATE_FILE, WORK_DIR)
"""What a build's folder holds until it finishes (its fingerprint, `tpru.builder.inputs.STATE`,
and pass 1's files, `tpru.builder.work.WORK`): a folder with either is an unfinished build."""


def partial_folder(out: Path) -> Path:
    """The folder a build of `out` writes into until it finishes (``OUT.partial``)."""
    return out.with_name(out.name + PARTIAL_SUFFIX)


def unfinished_build_note(partial: Path, *,
                          then: str = "continue it with the same tpru build command and "
                                      "--resume") -> str:
    """Where an unfinished build is and what to do with it: one wording for every message
    that names one (a failed or interrupted build, a dataset that is not finished):
    "the unfinished build is kept in data.partial; continue it with the same tpru build
    command and --resume, or delete that folder"."""
    return f"the unfinished build is kept in {partial}; {then}, or delete that folder"


@dataclass(frozen=True)
class Dataset:
    """A built dataset folder."""

    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Open `path`, refusing a folder that is missing or not a finished build."""
        root = Path(path)
        if not root.is_dir():
            if root.exists():
                raise InputError(f"{root}: is a file, not a dataset folder")
            partial = partial_folder(root)
            raise InputError(f"{root}: no such dataset folder" + (
                f"; {unfinished_build_note(partial)}" if partial.is_dir() else ""))
        if not (root / BUILD_FILE).is_file():
            # Only a build's own folder hints at an interruption; any other is just not a dataset.
            if root.name.endswith(PARTIAL_SUFFIX) or any((root / n).exists() for n in WORK_FILES):
                raise InputError(f"{root}: not a finished tpru dataset (no {BUILD_FILE}); "
                                 f"{unfinished_build_note(root)}")
            raise InputError(f"{root}: not a tpru dataset (no {BUILD_FILE}); give a folder "
                             "written by tpru build")
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
