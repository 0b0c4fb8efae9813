"""Counted skips: bad input is reported, counted by reason, and skipped.

Every stage that meets bad input (an unreadable image, a manifest line of the
wrong type, a path escaping its root) calls `Skips.skip` with a short reason
key and a message naming the file. The build report lists the counts; with
``strict`` the first skip stops the build instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

log = logging.getLogger("tpru")


class InputError(Exception):
    """Bad input that stops a command; the message is one line naming the file."""


class Skips:
    """Counts skipped inputs by reason and keeps a few examples of each.

    Example:
        >>> skips = Skips()
        >>> skips.skip("missing_file", "frames/ep1/003.jpg: no such file")
        >>> skips.counts["missing_file"]
        1
    """

    def __init__(self, *, strict: bool = False, examples_per_reason: int = 5) -> None:
        self.strict = strict
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._keep = examples_per_reason

    def skip(self, reason: str, message: str) -> None:
        """Record one skipped input; raise `InputError` instead when strict."""
        if self.strict:
            raise InputError(f"{message} (reason: {reason}; --strict stops at the first bad input)")
        self.counts[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < self._keep:
            kept.append(message)
        log.warning("skipped: %s", message)

    def add(self, counts: Mapping[str, int],
            examples: Mapping[str, list[str]] | None = None) -> None:
        """Merge counts (and examples) gathered elsewhere, e.g. in a worker process."""
        self.counts.update(counts)
        for reason, items in (examples or {}).items():
            kept = self.examples.setdefault(reason, [])
            kept.extend(items[: max(0, self._keep - len(kept))])

    def as_dict(self) -> dict[str, object]:
        return {"counts": dict(sorted(self.counts.items())),
                "examples": {k: v for k, v in sorted(self.examples.items())}}
