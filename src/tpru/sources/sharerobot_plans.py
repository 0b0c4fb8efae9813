"""Plans and goals in ShareRobot's planning conversations.

The dataset documents no plan format; these read what its questions and
answers contain: numbered items ("1. pick up the banana",
"1-<pick up the banana>"), and the long-horizon goal quoted in ``<...>``
("The objective is <put the banana in the mug>, ..."). A plan is a numbered
answer, or the numbered steps already done in a planning-with-context
question followed by its answer (`plan_of`).
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"(?<![\w.<])(\d{1,2})\s*[.):-](?:\s+|(?=<))")
_BRACKETED = re.compile(r"<([^<>]+)>")
_IMAGE_TAG = re.compile(r"^\s*image\b", re.IGNORECASE)
_NUMBERED_BEFORE = re.compile(r"\d{1,2}\s*[.):-]\s*$")


def numbered_items(text: str) -> tuple[int, list[str]]:
    """The first run of consecutively numbered items in `text`, and its first number.

    Items look like ``1. pick up the cup`` (one per line or sentence) or
    ``1-<pick up the cup>``; a bracketed item ends at its ``>``, any other at
    the end of its line.

    Example:
        >>> numbered_items("Done: 1-<grasp the cup>, 2-<lift it>. What next?")
        (1, ['grasp the cup', 'lift it'])
        >>> numbered_items("no plan here, only 1.5 metres")
        (0, [])
    """
    markers = list(_MARKER.finditer(text))
    items: list[str] = []
    start = 0
    for i, marker in enumerate(markers):
        number = int(marker.group(1))
        if items and number != start + len(items):
            break
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        item = _item_text(text[marker.end():end])
        if not item:
            break
        if not items:
            start = number
        items.append(item)
    return (start, items) if items else (0, [])


def _item_text(chunk: str) -> str:
    chunk = chunk.strip()
    if chunk.startswith("<"):
        closing = chunk.find(">")
        chunk = chunk[1:closing] if closing > 0 else chunk[1:]
    else:
        chunk = chunk.split("\n", 1)[0]
    return chunk.strip().rstrip(",;.").strip()


def goal_of(question: str) -> str | None:
    """The first ``<...>`` phrase of a planning question that is neither an image tag
    nor a numbered step already done."""
    for match in _BRACKETED.finditer(question):
        phrase = match.group(1).strip()
        if phrase and not _IMAGE_TAG.match(phrase) \
                and not _NUMBERED_BEFORE.search(question[:match.start()]):
            return phrase
    return None


def plan_of(question_type: str | None, question: str, answer: str) -> list[str]:
    """The plan one question/answer pair spells out (see the module docstring)."""
    h_start, done = numbered_items(question)
    g_start, told = numbered_items(answer)
    if done and h_start == 1 and told and g_start == len(done) + 1:
        return done + told
    if told and g_start == 1:
        return told
    if done and h_start == 1:
        kind = (question_type or "").lower()
        next_step = _item_text(answer)
        if not told and next_step and ("context" in kind or "remaining" in kind):
            return [*done, next_step]
        return done
    return []

