"""Pass 2's kept episodes, in files: what it knows of each episode costs no Python object.

A `KeptEpisode` per episode, with its id and description as Python strings,
is about a kilobyte; Open X-Embodiment has over a million episodes. So
`load_tables` writes each episode's id, description, scenario and first frame
row to columns in the work folder (`EpisodeWriter`), and pass 2 reads them back
memory-mapped (`EpisodeTable`), making a `KeptEpisode` only for the episode
at hand. Strings are stored end to end in one file with their end offsets in
another (`StringColumn`); scenarios, of which there are few, as integer codes.
Which episodes each split's samples use is a mask over the episodes
(`EpisodeUse`), not a set of ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from tpru.builder.candidates import release
from tpru.builder.drafts import KeptEpisode
from tpru.builder.episode_notes import EpisodeNotes

_NO_NOTES = EpisodeNotes()


def _mapped(path: Path, dtype: str, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class StringColumn(Sequence[str]):
    """Strings written end to end in ``<path>.utf8``, their end offsets in ``<path>.ends``
    (int64), both memory-mapped: a sequence of strings that holds none in memory."""

    def __init__(self, path: Path, count: int) -> None:
        self.ends = _mapped(_beside(path, ".ends"), "int64", count)
        size = int(self.ends[-1]) if count else 0
        self.text = _mapped(_beside(path, ".utf8"), "uint8", size)

    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = int(self.ends[i - 1]) if i else 0
        return bytes(self.text[start:int(self.ends[i])]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def release(self) -> None:
        release(self.ends, self.text)


class _StringWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = _beside(path, ".utf8").open("wb")
        self.ends = _beside(path, ".ends").open("wb")
        self.size = 0

    def add(self, text: str) -> None:
        data = text.encode("utf-8")
        self.text.write(data)
        self.size += len(data)
        self.ends.write(np.int64(self.size).tobytes())

    def close(self) -> None:
        self.text.close()
        self.ends.close()


class Coded(Sequence[str]):
    """A sequence of strings from few distinct values: a code per item, and the values."""

    def __init__(self, codes: np.ndarray, names: Sequence[str]) -> None:
        self.codes, self.names = codes, list(names)

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self.names[c] for c in self.codes[i].tolist()]
        return self.names[int(self.codes[i])]

    def __iter__(self) -> Iterator[str]:
        names = self.names
        for start in range(0, len(self.codes), 1 << 16):
            for code in self.codes[start:start + (1 << 16)].tolist():
                yield names[code]


def _id_hash(episode_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(episode_id.encode("utf-8"), digest_size=8).digest(),
                          "little")


class EpisodeTable:
    """The kept episodes, by index (the ``episode`` column of the `FrameTable`): a
    `KeptEpisode` made on demand from columns in files (see the module docstring).

    It only maps the files `EpisodeWriter` wrote, so a worker can open the same table
    again from the work folder (`tpru.builder.partitions`)."""

    def __init__(self, folder: Path, count: int, scenario_names: Sequence[str],
                 notes: Mapping[str, EpisodeNotes]) -> None:
        self.ids = StringColumn(folder / "episodes.id", count)
        self.descriptions = StringColumn(folder / "episodes.description", count)
        self.scenarios = Coded(_mapped(folder / "episodes.scenario", "int32", count),
                               scenario_names)
        self.starts = _mapped(folder / "episodes.start", "int64", count + 1 if count else 0)
        """Each episode's first frame row, and the number of rows at the end."""
        self.notes = notes
        self._order = _mapped(folder / "episodes.by_hash", "int64", count)
        self._hashes = _mapped(folder / "episodes.hash", "uint64", count)

    def __len__(self) -> int:
        return len(self.scenarios)

    def __getitem__(self, e: int) -> KeptEpisode:
        episode_id = self.ids[e]
        note = self.notes.get(episode_id, _NO_NOTES)
        return KeptEpisode(episode_id, self.scenarios[e], self.descriptions[e] or None,
                           self.rows(e), captions=note.captions, negative=note.negative,
                           paraphrases=note.paraphrases)

    def rows(self, e: int) -> range:
        """Episode `e`'s frame rows."""
        return range(int(self.starts[e]), int(self.starts[e + 1]))

    def index(self, episode_id: str) -> int | None:
        """The index of the episode with this id, or None if no kept episode has it."""
        key = np.uint64(_id_hash(episode_id))
        at = int(np.searchsorted(self._hashes, key))
        while at < len(self._hashes) and self._hashes[at] == key:
            e = int(self._order[at])
            if self.ids[e] == episode_id:
                return e
            at += 1
        return None

    def release(self) -> None:
        """Drop the columns' pages from this process's memory (see `FrameTable.release`)."""
        self.ids.release()
        self.descriptions.release()
        release(self.scenarios.codes, self.starts, self._order, self._hashes)


class EpisodeWriter:
    """Writes the kept episodes' columns to `folder` in index order; `finish` maps them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ids = _StringWriter(folder / "episodes.id")
        self._descriptions = _StringWriter(folder / "episodes.description")
        self._scenarios = (folder / "episodes.scenario").open("wb")
        self._starts = (folder / "episodes.start").open("wb")
        self._codes: dict[str, int] = {}
        self.count = 0
        self.rows = 0

    def add(self, episode_id: str, scenario: str, description: str | None, frames: int
            ) -> None:
        """The next episode: its id, scenario, description and number of kept frames."""
        self._ids.add(episode_id)
        self._descriptions.add(description or "")
        code = self._codes.setdefault(scenario, len(self._codes))
        self._scenarios.write(np.int32(code).tobytes())
        self._starts.write(np.int64(self.rows).tobytes())
        self.rows += frames
        self.count += 1

    def finish(self, notes: Mapping[str, EpisodeNotes]) -> EpisodeTable:
        """Close the files, write the index by id beside them, and map them."""
        if self.count:
            self._starts.write(np.int64(self.rows).tobytes())
        for handle in (self._ids, self._descriptions, self._scenarios, self._starts):
            handle.close()
        # Episode index by id: the ids' 64-bit hashes sorted, and the order that sorts them.
        ids = StringColumn(self.folder / "episodes.id", self.count)
        hashes = np.fromiter((_id_hash(i) for i in ids), np.uint64, self.count)
        order = np.argsort(hashes, kind="stable")
        order.tofile(self.folder / "episodes.by_hash")
        hashes[order].tofile(self.folder / "episodes.hash")
        del ids, hashes, order
        return EpisodeTable(self.folder, self.count, self.scenario_names, notes)

    @property
    def scenario_names(self) -> list[str]:
        """The scenarios by code, in the order first seen."""
        return list(self._codes)


class EpisodeUse:
    """Which of the build's episodes each split's samples use (their own and their
    distractors'): a mask over the episodes per split, so its memory is a byte per
    episode and split; and, for the check to report, the ids used that are no kept
    episode's."""

    def __init__(self, splits: Iterable[str], episodes: int) -> None:
        self.masks = {split: np.zeros(episodes, dtype=bool) for split in splits}
        self.unknown: dict[str, set[str]] = {split: set() for split in self.masks}

    def mark(self, split: str, episode: int | None, episode_id: str) -> None:
        """Split `split` uses episode number `episode` (None: no kept episode has the id
        `episode_id`)."""
        if episode is None:
            self.unknown[split].add(episode_id)
        else:
            self.masks[split][episode] = True

    @classmethod
    def of(cls, split_episodes: Mapping[str, Collection[str]], episode_ids: Sequence[str]
           ) -> EpisodeUse:
        """From the episode ids each split uses."""
        index = {episode: e for e, episode in enumerate(episode_ids)}
        use = cls(split_episodes, len(episode_ids))
        for split, episodes in split_episodes.items():
            for episode in episodes:
                use.mark(split, index.get(episode), episode)
        return use
