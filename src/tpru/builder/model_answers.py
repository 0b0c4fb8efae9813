"""Reading what a model answered to the build's prompts (see `tpru.builder.model_stages`).

Only what the prompts ask for counts: the judge's first "yes" or "no" (inside
``<answer>`` tags when there are any); the ``Process:``, ``Step k:`` and
``Wrong process:`` labelled lines; numbered or bulleted lines for paraphrases.
Text without them reads as nothing, so a model that rambles adds nothing to a
dataset. Every parser is total: any string in, a value or None out.
"""

from __future__ import annotations

import re

from tpru.builder.describe import clean_description, normalise_text

STOPWORDS = frozenset({"a", "an", "the", "of", "on", "in", "into", "onto", "to", "from", "with",
                       "and", "or", "then", "at", "by", "for", "its", "their", "it", "them",
                       "is", "are"})
"""Words left out when comparing a negative description with the positive one."""

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_LABELLED = re.compile(r"^[\s*#>_-]*(?P<label>[a-z][a-z ]{0,20}?)\s*(?P<number>\d+)?\s*"
                       r"[*_]*\s*[:.)\-–]\s*[*_]*\s*(?P<text>.+)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*(?:\d+[.):]|[-*•])\s*(?P<text>.+)$")


def parse_verdict(text: str) -> bool | None:
    """The judge's yes (True) or no (False): inside ``<answer>`` tags if any, else the
    first "yes" or "no" word; None when there is neither.

    Example:
        >>> parse_verdict("Yes, the frames show stacking."), parse_verdict("**No**.")
        (True, False)
        >>> parse_verdict("The frames are unclear.") is None
        True
    """
    tagged = _ANSWER_TAG.search(text)
    match = _VERDICT.search(tagged.group(1) if tagged else text)
    return None if match is None else match.group(1).lower() == "yes"


def _phrase(text: str) -> str | None:
    """A cleaned description phrase, or None when `text` does not look like one."""
    text = text.strip().strip("\"'`*_ ").strip()
    text = clean_description(text)
    words = text.split()
    if not 2 <= len(words) <= 40 or "<" in text or not re.search(r"[a-zA-Z]{2}", text):
        return None
    return text


def parse_description(text: str) -> tuple[str | None, dict[int, str]]:
    """The ``Process:`` phrase and the ``Step k:`` captions (1-based k) of an answer.

    Only labelled lines count (the prompts ask for the labels): text without
    them is no description, so a model that rambles adds nothing to a dataset.

    Example:
        >>> parse_description("Process: stacking the red block\\nStep 1: a red block\\n"
        ...                   "Step 2: the block on top")
        ('stacking the red block', {1: 'a red block', 2: 'the block on top'})
    """
    description = None
    captions: dict[int, str] = {}
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        match = _LABELLED.match(line)
        if match is None:
            continue
        label = match.group("label").strip().lower()
        if label in ("process", "description") and description is None:
            description = _phrase(match.group("text"))
        elif label in ("step", "frame") and match.group("number"):
            caption = " ".join(match.group("text").split()).strip("*_ ")
            if caption:
                captions.setdefault(int(match.group("number")), caption)
    return description, captions


def parse_negative(text: str) -> str | None:
    """The phrase after ``Wrong process:`` (labelled lines only, as for descriptions)."""
    for line in text.strip().splitlines():
        match = _LABELLED.match(line)
        if match is not None and match.group("label").strip().lower() in (
                "wrong process", "process", "negative", "description"):
            return _phrase(match.group("text"))
    return None


def parse_paraphrases(text: str) -> list[str]:
    """The phrases of the numbered (or bulleted) lines, in order; other lines are ignored."""
    phrases = []
    for line in text.strip().splitlines():
        match = _NUMBERED.match(line)
        phrase = _phrase(match.group("text")) if match else None
        if phrase is not None:
            phrases.append(phrase)
    return phrases


def content_words(text: str) -> set[str]:
    return {w for w in normalise_text(text).split() if w not in STOPWORDS}


def word_overlap(a: str, b: str) -> float:
    """Jaccard overlap of the content words of two phrases (0: none, 1: the same words)."""
    x, y = content_words(a), content_words(b)
    return len(x & y) / len(x | y) if x | y else 1.0
