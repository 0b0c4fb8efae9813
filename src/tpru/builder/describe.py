"""Descriptions: the sentence that says what process the images show.

The positive sentence is the paper's "These photos show the process of
<description>." or, at ``TextConfig.paraphrase_rate``, one of a few seeded
paraphrases (robustness augmentation). A negative sentence describes a
different process: drawn from other episodes of the same split, preferring the
same scenario (so it is plausible), never one whose text is the same process
after normalisation.

Descriptions read best as a gerund or noun phrase ("stacking the red block
on the blue block"), since they follow "the process of". Whatever wrote one
(a source, a simulator, a model), its indefinite articles are made to agree
with the word after them when the sentence is written ("a orange marker" ->
"an orange marker").
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tpru.builder.work_db import finished_database, scratch_database
from tpru.sources.text import agree_articles

DESCRIPTION_TEMPLATES = (
    "These photos show the process of {d}.",
    "The following images capture the process of {d}.",
    "These pictures document the process of {d}.",
    "This image sequence records the process of {d}.",
    "Here is a sequence of photos of the process of {d}.",
)
"""Index 0 is the paper's wording; the others are paraphrases."""


def normalise_text(text: str) -> str:
    """Lower-case words only, for deciding whether two texts are the same process."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def clean_description(text: str) -> str:
    """Trim and drop a final full stop; lower-case a leading capital of a normal word;
    make "a"/"an" agree with the word after them."""
    text = agree_articles(" ".join(text.split()).rstrip(".").strip())
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def description_sentence(description: str, rng: random.Random, paraphrase_rate: float
                         ) -> tuple[str, int]:
    """The sentence for `description` and the index of the template used."""
    index = 0
    if paraphrase_rate > 0 and rng.random() < paraphrase_rate:
        index = rng.randrange(1, len(DESCRIPTION_TEMPLATES))
    return DESCRIPTION_TEMPLATES[index].format(d=clean_description(description)), index


class DescriptionPool:
    """Distinct descriptions by (split, scenario), for drawing negatives.

    The descriptions are kept in SQLite, in the file `path` (a build's work
    folder; replaced if it exists) or in memory if None: a build of a million episodes may have as
    many descriptions, and draws one for each mismatch negative. A draw is
    the same as a choice from the list of the group's distinct descriptions
    (first written of each normalised text, in the order of those texts),
    without making that list.

    Example:
        >>> pool = DescriptionPool()
        >>> pool.add("train", "robot", "stacking the red block")
        >>> pool.add("train", "robot", "Stacking the red block.")
        >>> pool.add("train", "robot", "pushing the blue ball")
        >>> pool.negative_for("train", "robot", "stacking the red block", random.Random(0))
        'pushing the blue ball'
    """

    def __init__(self, path: Path | None = None) -> None:
        self._db = scratch_database(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS texts (grp INTEGER, key TEXT, "
                         "description TEXT, PRIMARY KEY (grp, key)) WITHOUT ROWID")
        self._groups: dict[tuple[str, str], int] = {}
        self._sizes: dict[int, int] | None = None
        """Distinct texts per group, once ranked (`_rank`)."""

    @classmethod
    def open(cls, path: Path) -> DescriptionPool:
        """The pool a build wrote to `path` and `finish`ed, read-only (a pass-2 worker's
        view of it: its draws are the writer's)."""
        pool = cls.__new__(cls)
        pool._db = finished_database(path)
        pool._groups = {(str(split), str(scenario)): int(group) for split, scenario, group
                        in pool._db.execute("SELECT split, scenario, grp FROM groups")}
        pool._sizes = dict(pool._db.execute("SELECT grp, COUNT(*) FROM texts GROUP BY grp"))
        return pool

    def finish(self) -> None:
        """Rank the texts and store the groups: after the last `add`, before `open`."""
        self._rank()
        self._db.execute("DROP TABLE IF EXISTS groups")
        self._db.execute("CREATE TABLE groups (split TEXT, scenario TEXT, grp INTEGER)")
        self._db.executemany("INSERT INTO groups VALUES (?, ?, ?)",
                             ((split, scenario, group)
                              for (split, scenario), group in self._groups.items()))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def add(self, split: str, scenario: str, description: str) -> None:
        self.extend([(split, scenario, description)])

    def extend(self, items: Iterable[tuple[str, str, str]]) -> None:
        def rows() -> Iterator[tuple[int, str, str]]:
            for split, scenario, description in items:
                key = normalise_text(description)
                if key:
                    group = self._groups.setdefault((split, scenario), len(self._groups))
                    yield group, key, description

        # The first description of a text stays (INSERT OR IGNORE).
        self._db.executemany("INSERT OR IGNORE INTO texts VALUES (?, ?, ?)", rows())
        self._sizes = None

    def negative_for(self, split: str, scenario: str, description: str | None,
                     rng: random.Random) -> str | None:
        """A description of a different process, or None when the split has none."""
        own = normalise_text(description or "")
        sizes = self._rank()
        same = self._groups.get((split, scenario))
        if same is not None and (n := self._count(same, own)):
            return self._nth(same, own, rng.choice(range(n)))
        others = [(g, self._count(g, own)) for (s, sc), g in sorted(self._groups.items())
                  if s == split and sc != scenario and sizes.get(g)]
        total = sum(n for _, n in others)
        if not total:
            return None
        i = rng.choice(range(total))  # the draw rng.choice makes from a list of them all
        for group, n in others:
            if i < n:
                return self._nth(group, own, i)
            i -= n
        raise AssertionError("unreachable")  # pragma: no cover

    def _rank(self) -> dict[int, int]:
        """Number each group's texts in their order (once after the last `add`)."""
        if self._sizes is None:
            db = self._db
            db.execute("DROP TABLE IF EXISTS ranked")
            db.execute("CREATE TABLE ranked (grp INTEGER, rank INTEGER, key TEXT, "
                       "description TEXT, PRIMARY KEY (grp, rank)) WITHOUT ROWID")
            # SQLite orders TEXT by its UTF-8 bytes: as Python orders the strings.
            db.execute("INSERT INTO ranked SELECT grp, ROW_NUMBER() OVER (PARTITION BY grp "
                       "ORDER BY key) - 1, key, description FROM texts")
            db.execute("CREATE INDEX ranked_key ON ranked (grp, key)")
            db.commit()
            self._sizes = dict(db.execute("SELECT grp, COUNT(*) FROM texts GROUP BY grp"))
        return self._sizes

    def _own_rank(self, group: int, own: str) -> int | None:
        found = self._db.execute("SELECT rank FROM ranked WHERE grp = ? AND key = ?",
                                 (group, own)).fetchone()
        return None if found is None else int(found[0])

    def _count(self, group: int, own: str) -> int:
        """The group's texts other than `own`."""
        size = self._rank().get(group, 0)
        return size - (self._own_rank(group, own) is not None)

    def _nth(self, group: int, own: str, i: int) -> str:
        """The `i`-th of the group's texts other than `own`, in their order."""
        own_rank = self._own_rank(group, own)
        rank = i + (own_rank is not None and i >= own_rank)
        found = self._db.execute("SELECT description FROM ranked WHERE grp = ? AND rank = ?",
                                 (group, rank)).fetchone()
        return str(found[0])
