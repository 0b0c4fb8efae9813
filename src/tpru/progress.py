"""Progress for long work: a rich bar on a terminal, a plain line now and then elsewhere.

On a terminal the bar redraws in place. When standard error is not a terminal
(``nohup``, a batch job, ``> log 2>&1``), a bar would print nothing, and a
long evaluation would look hung; instead a plain line goes to the ``tpru``
logger every `LOG_EVERY_S` seconds and once at the end::

    reading frames: 1,200 frames, 40.0 frames/s, 30 s
    writing samples: 120/400 episodes (30%), 4.0 episodes/s, 30 s
    reading frames: done, 3,600 frames in 1 min 30 s

``show=False`` (``-q`` on the command line) shows neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("tpru")

LOG_EVERY_S = 30.0
"""Seconds between plain progress lines when standard error is not a terminal."""


class Bar:
    """One task of a progress display; `advance` counts work done and shows the rate."""

    def __init__(self, progress: Progress | None, task: TaskID | None, unit: str) -> None:
        self._progress = progress
        self._task = task
        self._unit = unit

    def advance(self, amount: float = 1) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.advance(self._task, amount)
        speed = self._progress.tasks[self._task].speed
        if speed:
            self._progress.update(self._task, rate=f"{speed:,.1f} {self._unit}/s")

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.log(text)


class LogBar(Bar):
    """The same calls as `Bar`, written as a plain log line every `every` seconds.

    Args:
        clock: seconds, increasing (`time.monotonic`; a test passes its own).
    """

    def __init__(self, description: str, unit: str, total: float | None, every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(None, None, unit)
        self._description = description
        self._total = total
        self._every = every
        self._clock = clock
        self._start = self._last = clock()
        self.done: float = 0

    def advance(self, amount: float = 1) -> None:
        self.done += amount
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            log.info("%s: %s", self._description, self._status(now))

    def note(self, text: str) -> None:
        log.info("%s: %s", self._description, text)

    def finish(self) -> None:
        """The last line: how much, in how long."""
        elapsed = self._clock() - self._start
        log.info("%s: done, %s %s in %s", self._description, _count(self.done), self._unit,
                 _duration(elapsed))

    def _status(self, now: float) -> str:
        elapsed = now - self._start
        done = _count(self.done)
        if self._total:
            done = f"{done}/{_count(self._total)} {self._unit} " \
                   f"({100 * self.done / self._total:.0f}%)"
        else:
            done = f"{done} {self._unit}"
        rate = f", {self.done / elapsed:,.1f} {self._unit}/s" if elapsed > 0 else ""
        return f"{done}{rate}, {_duration(elapsed)}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 0 min``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


@contextmanager
def progress_bar(description: str, *, show: bool = True, unit: str = "items",
                 total: float | None = None) -> Iterator[Bar]:
    """Progress on standard error with a rate (``unit``/s), when `show` (see the module
    docstring): a bar on a terminal, else a log line every `LOG_EVERY_S` seconds."""
    if not show:
        yield Bar(None, None, unit)
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        bar = LogBar(description, unit, total, LOG_EVERY_S)
        yield bar
        bar.finish()
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        yield Bar(progress, progress.add_task(description, total=total, rate=""), unit)
