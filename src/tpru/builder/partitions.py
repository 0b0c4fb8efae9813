"""Pass 2's formulation on the engine's workers, by partition.

A partition is a split, a scenario and a chunk of that split and scenario's
episodes (`tpru.builder.drafts.episode_chunks`), and an episode's samples
depend only on the earlier episodes of its own partition. So the partitions
are dealt into groups (`deal`), each group is formulated by one worker task,
in episode order, into a file of its own in ``work/samples/``
(`formulate_groups`), and the driver reads the groups' files back merged in
episode order (`merged`): the split files get the bytes a build in one
process writes, whatever the engine, the number of workers or the retries.

A worker opens the tables pass 2 reads from the work folder (frames,
episodes, model notes, the pool of descriptions, the neighbour indexes), all
of them files mapped or opened read-only: like pass 1's staged images, the
output folder must be on a filesystem every node sees.

Example (three partitions in two groups of about equal frames):

    >>> groups = deal([("train", "a", 0), ("train", "b", 0), ("test", "a", 0),
    ...                ("train", "a", 0)], [10, 30, 5, 10], groups=2)
    >>> [group.partitions for group in groups]
    [(('train', 'b', 0),), (('train', 'a', 0), ('test', 'a', 0))]
"""

from __future__ import annotations

import heapq
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpru.builder.candidates import NeighbourIndex, one_faiss_thread
from tpru.builder.config import BuildConfig
from tpru.builder.describe import DescriptionPool
from tpru.builder.engine import Engine
from tpru.builder.episode_notes import NOTES, NotesFile
from tpru.builder.episodes import Coded, EpisodeTable
from tpru.builder.formulate import POOL_FILE, Formulator
from tpru.builder.work import map_table
from tpru.progress import progress_bar
from tpru.schema import Sample, dumps

log = logging.getLogger("tpru")

SAMPLES = "samples"
"""The folder in ``work/`` of the groups' samples, ``<group>.jsonl``."""
SPLITS = "episodes.split"
"""In ``work/``: each kept episode's split, as a uint8 code into `Pass2Tables.splits`."""
CHUNKS = "episodes.chunk"
"""In ``work/``: each kept episode's chunk (int32, `tpru.builder.drafts.episode_chunks`)."""
GROUPS_PER_CPU = 4
"""Groups dealt per CPU of the engine: enough that one large partition does not leave the
other CPUs idle for long."""
MAX_GROUPS = 256
"""At most this many groups (their files are read together by the driver's merge)."""


@dataclass(frozen=True)
class Group:
    """Partitions one worker task formulates, in episode order."""

    number: int
    partitions: tuple[tuple[str, str, int], ...]
    """(split, scenario, chunk) triples."""


@dataclass(frozen=True)
class Pass2Tables:
    """Where a worker finds pass 2's tables in the work folder, and their sizes."""

    work: str
    frames: int
    dim: int
    episodes: int
    scenarios: tuple[str, ...]
    """Scenario names by code (the episode table's)."""
    splits: tuple[str, ...]
    """Split names by code (`SPLITS`)."""
    notes: bool
    """Whether the model stages left notes (``work/notes.sqlite``)."""
    indexes: Mapping[tuple[str, str], NeighbourIndex]
    """The neighbour indexes by (split, scenario), on disk."""


def deal(partitions: Iterable[tuple[str, str, int]], frames: Iterable[int], *,
         groups: int) -> list[Group]:
    """The partitions of the episodes (each episode's, with its frames) dealt into at
    most `groups` groups of about equal frames: the largest partition first, each to the
    group with the fewest frames so far (the lowest numbered on a tie). Empty groups are
    left out."""
    totals: dict[tuple[str, str, int], int] = {}
    for key, n in zip(partitions, frames, strict=True):
        totals[key] = totals.get(key, 0) + n
    loads = [0] * max(1, min(groups, len(totals)))
    members: list[list[tuple[str, str, int]]] = [[] for _ in loads]
    for key in sorted(totals, key=lambda k: (-totals[k], k)):
        lightest = loads.index(min(loads))
        loads[lightest] += totals[key]
        members[lightest].append(key)
    return [Group(i, tuple(keys)) for i, keys in enumerate(members) if keys]


def group_count(cpus: int) -> int:
    """How many groups to deal for an engine with `cpus` CPUs."""
    return min(MAX_GROUPS, GROUPS_PER_CPU * cpus)


def write_partitions(work: Path, split_of: Sequence[str], splits: Sequence[str],
                     chunks: np.ndarray) -> None:
    """Each episode's split (a code into `splits`) and chunk, for the workers (`SPLITS`,
    `CHUNKS`)."""
    code = {name: i for i, name in enumerate(splits)}
    np.fromiter((code[s] for s in split_of), np.uint8, len(split_of)).tofile(work / SPLITS)
    np.asarray(chunks, np.int32).tofile(work / CHUNKS)


def formulate_groups(groups: list[Group], config: BuildConfig, tables: Pass2Tables
                     ) -> list[dict[str, Any]]:
    """Formulate each group's episodes into ``work/samples/<group>.jsonl`` (a line
    ``<episode index><TAB><sample JSON>`` per sample, in episode order; written to a
    temporary name and renamed, so a retried task leaves one whole file). Returns what
    each group's formulator counted (`Formulator.counts`).

    faiss searches here on one thread: the workers are the parallelism, and each
    worker's OpenMP threads for every core would crowd the others out (pass 2 at 200,000
    frames took 95 s on 2 workers against 54 s on 1 before)."""
    work = Path(tables.work)
    table = map_table(work, tables.frames, tables.dim)
    notes = NotesFile.open(work / NOTES) if tables.notes else {}
    episodes = EpisodeTable(work, tables.episodes, tables.scenarios, notes)
    codes, chunks = (np.memmap(work / name, dtype=dtype, mode="r", shape=(tables.episodes,))
                     if tables.episodes else np.zeros(0, dtype)
                     for name, dtype in ((SPLITS, np.uint8), (CHUNKS, np.int32)))
    split_of = Coded(codes, tables.splits)
    pool = DescriptionPool.open(work / POOL_FILE)
    results = []
    try:
        with one_faiss_thread():
            for group in groups:
                formulator = Formulator(config, table, split_of, episodes, tables.indexes,
                                        chunks, pool=pool)
                wanted = {(tables.splits.index(split), tables.scenarios.index(scenario),
                           chunk) for split, scenario, chunk in group.partitions}
                path = work / SAMPLES / f"{group.number}.jsonl"
                temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                with temporary.open("w", encoding="utf-8", newline="\n") as out:
                    for e in _members(codes, episodes.scenarios.codes, chunks, wanted):
                        for sample in formulator.samples_for(e):
                            out.write(f"{e}\t{dumps(sample)}\n")
                        table.release()
                        episodes.release()
                os.replace(temporary, path)
                results.append(formulator.counts())
    finally:
        pool.close()
        if isinstance(notes, NotesFile):
            notes.close()
    return results


def _members(split_codes: np.ndarray, scenario_codes: np.ndarray, chunks: np.ndarray,
             wanted: set[tuple[int, int, int]]) -> Iterator[int]:
    """The episodes whose (split code, scenario code, chunk) is in `wanted`, in order."""
    def packed(split: Any, scenario: Any, chunk: Any) -> Any:
        return (split << 56) | (scenario << 32) | chunk

    want = np.array([packed(*key) for key in wanted], np.int64)
    block = 1 << 16
    for start in range(0, len(split_codes), block):
        keys = packed(np.asarray(split_codes[start:start + block], np.int64),
                      np.asarray(scenario_codes[start:start + block], np.int64),
                      np.asarray(chunks[start:start + block], np.int64))
        for at in np.flatnonzero(np.isin(keys, want)).tolist():
            yield start + at


def merged(work: Path, groups: Sequence[Group]) -> Iterator[tuple[int, str]]:
    """The groups' samples, as ``(episode index, sample JSON)``, in episode order (within
    an episode, in the order its group wrote them)."""
    handles = [(work / SAMPLES / f"{group.number}.jsonl").open(encoding="utf-8")
               for group in groups]
    try:
        streams = [_lines(handle) for handle in handles]
        # An episode's samples are all in one file: merging on the episode index alone
        # keeps each file's order among them.
        yield from heapq.merge(*streams, key=lambda item: item[0])
    finally:
        for handle in handles:
            handle.close()


def _lines(handle: Any) -> Iterator[tuple[int, str]]:
    for line in handle:
        episode, _, sample = line.rstrip("\n").partition("\t")
        yield int(episode), sample


def samples_in_order(formulator: Formulator, engine: Engine, work: Path,
                     split_names: Sequence[str], *, notes: bool, show_progress: bool
                     ) -> Iterator[tuple[int, str, Sample]]:
    """Every sample as ``(episode index, its JSON line, the sample)``, in episode order:
    made here, or, with more than one CPU in the engine and more than one partition,
    by the engine's workers per group of partitions, their counts added to
    `formulator`'s. Either way the same lines in the same order. `notes`: the model
    stages left notes in the work folder."""
    episodes, split_of = formulator.episodes, formulator.split_of
    assert isinstance(episodes, EpisodeTable)
    chunks = formulator.chunks
    cpus = engine.free_cpus() if engine.cpus > 1 else 1
    if engine.cpus > 1 and cpus < 1:
        log.warning("no CPU of the %s is free for pass 2's tasks (model actors hold them?): "
                    "making the samples in this process (the same bytes, more slowly)",
                    engine.name)
    groups = deal(zip(split_of, episodes.scenarios, chunks.tolist(), strict=True),
                  np.diff(episodes.starts).tolist(), groups=group_count(cpus)) \
        if cpus > 1 else []
    if len(groups) < 2:
        for e in range(len(episodes)):
            for sample in formulator.samples_for(e):
                yield e, dumps(sample), sample
        return
    write_partitions(work, split_of, split_names, chunks)
    (work / SAMPLES).mkdir(exist_ok=True)
    tables = Pass2Tables(str(work), len(formulator.table.digest),
                         int(formulator.table.embeddings.shape[1]), len(episodes),
                         tuple(episodes.scenarios.names), tuple(split_names),
                         notes, formulator.indexes)
    with progress_bar("formulating", show=show_progress, unit="groups",
                      total=len(groups)) as bar:
        bar.note(f"{len(groups)} groups of partitions on {engine.describe()}")
        for counts, _node in engine.map(formulate_groups, iter(groups), formulator.config,
                                        tables):
            formulator.add(counts)
            bar.advance(1)
    for e, line in merged(work, groups):
        yield e, line, Sample.from_dict(json.loads(line))


def by_episode(samples: Iterator[tuple[int, str, Sample]], count: int
               ) -> Iterator[tuple[int, list[tuple[str, Sample]]]]:
    """Every episode index below `count` in order, with its samples (none for some)."""
    ahead = next(samples, None)
    for e in range(count):
        mine = []
        while ahead is not None and ahead[0] == e:
            mine.append((ahead[1], ahead[2]))
            ahead = next(samples, None)
        yield e, mine
