"""Counted skips: bad input is reported, counted by reason, and skipped.

Every stage that meets bad input (an unreadable image, a manifest line of the
wrong type, a path escaping its root) calls `Skips.skip` with a short reason
key and a message naming the file. The build report lists the counts; with
``strict`` the first skip stops the build instead.

Input that is used, but not quite as written (an unknown key in an episode
record, which is ignored), is a warning instead: `Skips.warn` logs the first
few of each kind and counts the rest, so a typo repeated on 10,000 manifest
lines gives three log lines and one total, not 10,000 lines.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping

# Defined in tpru.score, which EasyR1 run folders copy without the rest of tpru; the same class.
from tpru.score.shared import InputError as InputError

log = logging.getLogger("tpru")

WARNINGS_SHOWN = 3
"""Messages logged per warning key (`Skips.warn`); later ones are only counted."""


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
        self.warning_counts: Counter[str] = Counter()
        self.warning_examples: dict[str, list[str]] = {}
        self._keep = examples_per_reason

    def skip(self, reason: str, message: str, *, quiet: bool = False) -> None:
        """Record one skipped input; raise `InputError` instead when strict.

        Args:
            quiet: count and keep the example, but do not log it: for a caller
                that logs one summary line for many skips of one cause (4,000
                unrendered episodes of one split are one problem, not 4,000).
        """
        if self.strict:
            raise InputError(f"{message} (reason: {reason}; --strict stops at the first bad input)")
        self.counts[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < self._keep:
            kept.append(message)
        if not quiet:
            log.warning("skipped: %s", message)

    def warn(self, key: str, message: str) -> None:
        """Record input that is used anyway (e.g. an unknown key, ignored); never stops.

        Only the first `WARNINGS_SHOWN` messages of each `key` are logged and
        kept; `log_warning_totals` and `warning_summary` give the totals.
        """
        self.warning_counts[key] += 1
        if self.warning_counts[key] <= WARNINGS_SHOWN:
            self.warning_examples.setdefault(key, []).append(message)
            log.warning("%s", message)

    def log_warning_totals(self) -> None:
        """Log how many there were of each warning that was shown only in part."""
        for key in sorted(self.warning_counts):
            count = self.warning_counts[key]
            if count > WARNINGS_SHOWN:
                log.warning("%s: %d times in all (the first %d shown above)", key, count,
                            WARNINGS_SHOWN)

    def warning_summary(self) -> list[str]:
        """One line per warning key: its first message, and how many more there were."""
        lines = []
        for key in sorted(self.warning_counts):
            count = self.warning_counts[key]
            first = self.warning_examples[key][0]
            lines.append(first if count == 1 else f"{first} (and {count - 1} more like it)")
        return lines

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


def warn_unknown_keys(skips: Skips, data: Mapping[str, object], known: Collection[str],
                      where: str) -> None:
    """Warn (through `skips`) about each key of `data` not in `known`, with a guess.

    Example:
        >>> skips = Skips()
        >>> warn_unknown_keys(skips, {"descripton": "x"}, ["description"], "m.jsonl, line 3")
        >>> skips.warning_examples["unknown key 'descripton'"]
        ["m.jsonl, line 3: unknown key 'descripton' is ignored (did you mean 'description'?)"]
    """
    for key in sorted(set(data) - set(known)):
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
        skips.warn(f"unknown key {key!r}", f"{where}: unknown key {key!r} is ignored ({hint})")


def json_problem(err: json.JSONDecodeError | UnicodeDecodeError, *, line: bool = True) -> str:
    """What is wrong with a JSON text, for a message: "Expecting value at line 3, column 5"
    (without the line for a one-line record), or "not UTF-8 at byte 17"."""
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 at byte {err.start}"
    # json's message for a control character ends in "at": "Invalid control character at"
    where = f"line {err.lineno}, column {err.colno}" if line else f"column {err.colno}"
    return f"{err.msg.removesuffix(' at')} at {where}"


def first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (its type's name when it has none),
    for a one-line reason: libraries often add pages of advice below the cause."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
