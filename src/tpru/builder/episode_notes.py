"""The model stages' notes per episode (`tpru.builder.model_stages`): what the judge and
the describer said, kept in an SQLite file in the work folder and read one episode at a
time in pass 2, so the driver's memory does not grow with the number of episodes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpru.builder.work_db import finished_database, scratch_database

NOTES = "notes.sqlite"
"""The file of the model stages' notes (`NotesFile`) in the work folder."""


@dataclass
class EpisodeNotes:
    """What the model stages decided and wrote for one episode.

    Attributes:
        drop: ``judge_rejected`` or ``judge_unclear`` when the episode goes, else None.
        message: the reason with the model's answer, for ``drop_examples``.
        description: the model's description (a gerund phrase), or None.
        captions: frame position in the episode -> the model's caption.
        negative: a model-written description the frames do not show, or None.
        paraphrases: model paraphrases of `description` (or of the source's).
    """

    drop: str | None = None
    message: str = ""
    description: str | None = None
    captions: dict[int, str] = field(default_factory=dict)
    negative: str | None = None
    paraphrases: tuple[str, ...] = ()


class NotesFile(Mapping[str, EpisodeNotes]):
    """The model stages' notes by episode id, in the SQLite file `path` (a build's work
    folder; replaced if it exists): pass 2 reads an episode's notes when it gets to it,
    so the driver holds none (a build may have a million episodes, each with captions
    and paraphrases). Episodes without notes (`EpisodeNotes()`) are not stored; looking
    one up gives `EpisodeNotes()` as well.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = scratch_database(path)
        self._db.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, note TEXT) WITHOUT ROWID")

    @classmethod
    def open(cls, path: Path) -> NotesFile:
        """The notes a build wrote to `path`, read-only (a pass-2 worker's view of them)."""
        notes = cls.__new__(cls)
        notes.path = path
        notes._db = finished_database(path)
        return notes

    def extend(self, notes: Mapping[str, EpisodeNotes]) -> None:
        """Store these episodes' notes (replacing any the same ids had)."""
        self._db.executemany("INSERT OR REPLACE INTO notes VALUES (?, ?)",
                             ((episode, _dump_note(note)) for episode, note in notes.items()
                              if note != _NO_NOTES))
        self._db.commit()

    def __getitem__(self, episode: str) -> EpisodeNotes:
        found = self._db.execute("SELECT note FROM notes WHERE id = ?", (episode,)).fetchone()
        if found is None:
            raise KeyError(episode)
        return _load_note(found[0])

    def get(self, episode: str, default: Any = None) -> Any:  # one query, not two
        found = self._db.execute("SELECT note FROM notes WHERE id = ?", (episode,)).fetchone()
        return default if found is None else _load_note(found[0])

    def __iter__(self) -> Iterator[str]:
        return (str(row[0]) for row in self._db.execute("SELECT id FROM notes ORDER BY id"))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM notes").fetchone()[0])

    def close(self) -> None:
        self._db.close()


_NO_NOTES = EpisodeNotes()


def _dump_note(note: EpisodeNotes) -> str:
    # Captions as pairs, not an object: their keys are integers and their order is kept.
    return json.dumps([note.drop, note.message, note.description,
                       list(note.captions.items()), note.negative, list(note.paraphrases)])


def _load_note(text: str) -> EpisodeNotes:
    drop, message, description, captions, negative, paraphrases = json.loads(text)
    return EpisodeNotes(drop, message, description, {int(k): v for k, v in captions},
                        negative, tuple(paraphrases))
