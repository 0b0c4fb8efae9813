"""SQLite files in a build's work folder (the model stages' notes, the pool of
descriptions): written by the driver as scratch files, then read by pass 2's workers."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def scratch_database(path: Path | None) -> sqlite3.Connection:
    """A new database at `path` (one a killed or resumed build left is replaced; in memory
    for None), without a journal: a scratch file has nothing to recover."""
    if path is not None:
        path.unlink(missing_ok=True)
    db = sqlite3.connect(":memory:" if path is None else str(path))
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4096"):
        db.execute(f"PRAGMA {pragma}")
    return db


def finished_database(path: Path) -> sqlite3.Connection:
    """The database at `path`, whose writer is done, read-only and as immutable: no locks
    taken, so it reads the same from every process and over a shared filesystem."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
