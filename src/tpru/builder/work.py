"""Pass 1's work files, and reading them back.

Pass 1 (`tpru.builder.measure`, driven by `tpru.builder.pipeline`) appends one JSON
record per episode to ``work/episodes.jsonl`` and the kept frames' thumbnails and
embeddings to flat binary files beside it. `read_done` trims what a killed build
left half-written so it can resume; `load_tables` streams the records into the
per-frame columns pass 2 needs (files, memory-mapped), applying the model stages'
decisions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tpru.builder.candidates import FrameTable
from tpru.builder.config import BuildConfig
from tpru.builder.episode_notes import EpisodeNotes
from tpru.builder.episodes import EpisodeTable, EpisodeWriter
from tpru.builder.images import THUMB_SIDE
from tpru.dataset import WORK_DIR
from tpru.diagnostics import InputError

WORK = WORK_DIR
"""The folder of pass 1's files in ``DIR.partial`` (named where `tpru.dataset`
recognises an unfinished build)."""
RECORDS = "episodes.jsonl"
THUMBS = "thumbs.u8"
EMBEDDINGS = "embeddings.f32"
COLUMNS = ("digest", "ext", "phash", "position", "episode")
"""`FrameTable` columns `load_tables` writes, as ``table.<name>``, for pass 2 to map."""


def read_done(work: Path) -> tuple[set[str], int, int]:
    """Ids of finished episodes; trims a half-written last record and the arrays after it."""
    records = work / RECORDS
    done: set[str] = set()
    rows = 0
    good_bytes = 0
    dim = 0
    if records.exists():
        with records.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                try:
                    record = json.loads(line)
                except ValueError:
                    break
                done.add(record["episode"]["id"])
                rows += len(record["frames"])
                dim = record.get("embedding_dim", dim) or dim
                good_bytes += len(line)
        with records.open("r+b") as handle:
            handle.truncate(good_bytes)
    for name, width in ((THUMBS, THUMB_SIDE ** 2), (EMBEDDINGS, 4 * dim)):
        path = work / name
        if path.exists():
            with path.open("r+b") as handle:
                handle.truncate(rows * width)
    return done, rows, len(done)


@dataclass
class Pass1:
    """What pass 1 recorded, as pass 2 needs it."""

    episodes: EpisodeTable
    table: FrameTable
    frame_drops: Counter[str]
    episode_drops: Counter[str]
    examples: dict[str, list[str]]
    frames_read: int


def load_tables(work: Path, config: BuildConfig, notes: Mapping[str, EpisodeNotes]
                ) -> Pass1:
    """Stream the episode records into compact per-frame arrays, applying the model
    stages' `notes` (episodes the judge dropped, model descriptions; a `NotesFile`, read
    an episode at a time)."""
    frame_drops: Counter[str] = Counter()
    episode_drops: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    frames_read = 0
    dim = 1
    n = 0
    last_ordinal = -1
    # The per-frame columns go to files beside the records and come back memory-mapped:
    # pass 2's memory does not grow with the number of frames; nor, the episodes' columns
    # going the same way (`EpisodeWriter`), with the number of episodes.
    episodes = EpisodeWriter(work)
    with (work / RECORDS).open(encoding="utf-8") as handle, \
            ExitStack() as stack:
        columns = {name: stack.enter_context((work / f"table.{name}").open("wb"))
                   for name in COLUMNS}
        for line in handle:
            record = json.loads(line)
            if record["ordinal"] <= last_ordinal:
                raise InputError(f"{work / RECORDS}: records out of order; run the build "
                                 "again without --resume")
            last_ordinal = record["ordinal"]
            frames_read += record["frames_read"]
            frame_drops.update(record["drops"])
            for reason, items in record["examples"].items():
                kept = examples.setdefault(reason, [])
                kept.extend(items[: max(0, 5 - len(kept))])
            ep = record["episode"]
            note = notes.get(ep["id"], EpisodeNotes())
            description = episode_description(config, ep.get("description") or None, note)
            if not record["dropped"] and note.drop:
                record["dropped"], record["message"] = note.drop, note.message
            elif not record["dropped"] and config.text.require_description and not description:
                record["dropped"] = "no_description"
                record["message"] = (f"episode {ep['id']}: no description from the source or "
                                     "the model (text.require_description is on)")
            if record["dropped"]:
                episode_drops[record["dropped"]] += 1
                kept = examples.setdefault(record["dropped"], [])
                if len(kept) < 5:
                    kept.append(record["message"])
                continue
            frames = record["frames"]
            columns["digest"].write(b"".join(f["digest"].encode().ljust(32, b"\0")
                                             for f in frames))
            columns["ext"].write(b"".join(f["ext"].encode().ljust(4, b"\0") for f in frames))
            columns["phash"].write(np.array([f["phash"] for f in frames], np.uint64).tobytes())
            columns["position"].write(np.array([f["index"] for f in frames], np.int32).tobytes())
            columns["episode"].write(np.full(len(frames), episodes.count, np.int32).tobytes())
            dim = record["embedding_dim"]
            episodes.add(ep["id"], ep["scenario"], description, len(frames))
            n += len(frames)
    return Pass1(episodes.finish(notes), map_table(work, n, dim), frame_drops, episode_drops,
                 examples, frames_read)


def map_table(work: Path, n: int, dim: int) -> FrameTable:
    """The `FrameTable` of `n` frames `load_tables` wrote to `work`, memory-mapped."""
    side = THUMB_SIDE ** 2

    def column(name: str, dtype: str, shape: tuple[int, ...], path: Path | None = None
               ) -> np.ndarray:
        if not n:
            return np.zeros((0, *shape[1:]), dtype)
        return np.memmap(path or work / f"table.{name}", dtype=dtype, mode="r", shape=shape)

    return FrameTable(
        episode=column("episode", "int32", (n,)), position=column("position", "int32", (n,)),
        phash=column("phash", "uint64", (n,)),
        thumbs=column("thumbs", "uint8", (n, side), work / THUMBS),
        embeddings=column("embeddings", "float32", (n, dim), work / EMBEDDINGS),
        digest=column("digest", "S32", (n,)), ext=column("ext", "S4", (n,)))


def episode_description(config: BuildConfig, source: str | None, note: EpisodeNotes) -> str | None:
    """The episode's description: the model's (``describe.mode``: always, or missing and
    the source gave none) when it wrote one, else the source's."""
    if note.description and (config.describe.mode == "always" or not source):
        return note.description
    return source
