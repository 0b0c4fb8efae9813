"""Which split each run scored, and where runs side by side scored different ones.

A score on a dataset's training split is not a benchmark score: the model may
have trained on those very samples. Put next to a test-split score it looks
like a better model. So a report names every run's split and, where runs of
one benchmark scored different splits (or one run's split is unknown: a
run.json from before tpru recorded it), says so and asks for
``--mixed-splits`` before it puts them together.

Example:
    >>> split_name(None), split_name("test")
    ('unknown', 'test')
"""

from __future__ import annotations

from collections.abc import Sequence

from tpru.eval.report import RunReport


def split_name(split: str | None) -> str:
    """A run's split in words: its name, ``all``, or ``unknown`` (not recorded)."""
    return split if split is not None else "unknown"


def mixed_splits(reports: Sequence[RunReport]) -> list[str]:
    """One line per benchmark whose runs scored different splits (an unknown split counts
    as different from any known one), naming each run's split; empty when none do.

    Runs of different benchmarks are not compared: their numbers are not comparable
    anyway, and each benchmark has splits of its own.
    """
    lines = []
    for benchmark in dict.fromkeys(r.benchmark for r in reports):
        runs = [r for r in reports if r.benchmark == benchmark]
        if len({r.split for r in runs}) > 1:
            named = ", ".join(f"{r.label}: {split_name(r.split)}" for r in runs)
            lines.append(f"runs of {benchmark or 'one benchmark'} scored different splits "
                         f"({named})")
    return lines
