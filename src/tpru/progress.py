"""Progress bars for long work, shown with rich when a person is watching."""

from __future__ import annotations

from collections.abc import Iterator
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


@contextmanager
def progress_bar(description: str, *, show: bool = True, unit: str = "items",
                 total: float | None = None) -> Iterator[Bar]:
    """A progress bar with a rate (``unit``/s) on standard error, when `show` and a terminal."""
    console = Console(stderr=True)
    if not show or not console.is_terminal:
        yield Bar(None, None, unit)
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        yield Bar(progress, progress.add_task(description, total=total, rate=""), unit)
