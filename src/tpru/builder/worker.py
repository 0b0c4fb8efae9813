"""What pass 1 runs on a build's workers, whichever engine runs them.

Two kinds of shard go to the workers (`tpru.builder.engine`):

- `measure_shard`: episodes with their ordinals, measured (`measure_episode`);
- `open_shard`: keys of a `tpru.sources.base.SplitSource` (a simulator's
  seeds, video paths, annotated procedures), whose episodes the worker
  makes: the source is opened again there from its ``KIND:PATH`` and
  options (`SourceRef`), once per worker process.

Both are pure functions of their input, so a shard retried after a lost node
gives the same result. What a source reports while making an episode (a
failed render) is recorded on the worker, not counted there, and replayed on
the driver in episode order (`replay`): the counts and examples in
``build.json`` are the same as in a build on one process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpru.builder.config import BuildConfig
from tpru.builder.engine import Engine
from tpru.builder.measure import EpisodeResult, measure_episode
from tpru.diagnostics import Skips
from tpru.schema import Episode
from tpru.sources import open_source
from tpru.sources.base import Opened, Source, SplitSource, flatten

Event = tuple[str, str, str, bool]
"""One report of a source: ``("skip", reason, message, quiet)`` or
``("warn", key, message, False)``."""


class RecordingSkips(Skips):
    """Skips that record what a source reports instead of counting it (see `replay`)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def skip(self, reason: str, message: str, *, quiet: bool = False) -> None:
        self.events.append(("skip", reason, message, quiet))

    def warn(self, key: str, message: str) -> None:
        self.events.append(("warn", key, message, False))


def replay(events: Sequence[Event], skips: Skips) -> None:
    """Count on `skips` what a worker recorded, in the order it happened."""
    for kind, key, message, quiet in events:
        if kind == "skip":
            skips.skip(key, message, quiet=quiet)
        else:
            skips.warn(key, message)


@dataclass(frozen=True)
class SourceRef:
    """How a worker opens the source the driver opened: its spec and the build's options."""

    spec: str
    options: str  # JSON of the options per kind: hashable, so opened sources are cached

    @classmethod
    def of(cls, spec: str, options: Mapping[str, Mapping[str, Any]]) -> SourceRef:
        return cls(spec, json.dumps(options, sort_keys=True))


_OPENED: dict[SourceRef, tuple[Source, RecordingSkips]] = {}
"""Sources a worker process has opened: a simulator's engine starts once per process."""


def _opened(ref: SourceRef) -> tuple[Source, RecordingSkips]:
    if ref not in _OPENED:
        recorder = RecordingSkips()
        source = open_source(ref.spec, skips=recorder, options=json.loads(ref.options))
        _OPENED[ref] = (source, recorder)
    source, recorder = _OPENED[ref]
    recorder.events = []  # what opening reported, the driver counted when it opened it
    return source, recorder


def close_opened() -> None:
    """Close the sources this process opened (a simulator's browser) and forget them."""
    for source, _ in _OPENED.values():
        close = getattr(source, "close", None)
        if callable(close):
            close()
    _OPENED.clear()


def open_shard(keys: Sequence[Any], ref: SourceRef) -> list[tuple[Opened, list[Event]]]:
    """Make the episodes of `keys`, each key's with what the source reported making them."""
    source, recorder = _opened(ref)
    assert isinstance(source, SplitSource)
    made = []
    for key in keys:
        episode = source.open_episode(key)
        made.append((episode, recorder.events))
        recorder.events = []
    return made


def measure_shard(items: Sequence[tuple[Episode, int]], config: BuildConfig,
                  stage: Path) -> list[EpisodeResult]:
    """`measure_episode` of each (episode, ordinal), in order."""
    return [measure_episode(episode, ordinal, config, stage) for episode, ordinal in items]


def episodes_of(engine: Engine, spec: str, source: Source,
                options: Mapping[str, Mapping[str, Any]], skips: Skips) -> Iterator[Episode]:
    """The episodes of one source, made on the engine's workers where the source is split.

    A plain source lists its episodes here (cheaply: the frames are read by
    `measure_shard`); a `SplitSource`'s episodes are made by `open_shard` on
    the workers, and admitted here in key order.
    """
    if not isinstance(source, SplitSource):
        yield from source.iter_episodes()
        return
    made = engine.map(open_shard, source.episode_keys(), SourceRef.of(spec, options))

    def replayed() -> Iterator[Opened]:
        for (episodes, events), _node in made:
            replay(events, skips)
            yield episodes

    try:
        yield from source.admit(flatten(replayed()))
    finally:
        made.close()  # keys made ahead of what admit wanted are dropped
        close_opened()  # those a one-process build opened here; workers' end with them
