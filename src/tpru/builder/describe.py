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
from collections.abc import Iterable

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

    Example:
        >>> pool = DescriptionPool()
        >>> pool.add("train", "robot", "stacking the red block")
        >>> pool.add("train", "robot", "Stacking the red block.")
        >>> pool.add("train", "robot", "pushing the blue ball")
        >>> pool.negative_for("train", "robot", "stacking the red block", random.Random(0))
        'pushing the blue ball'
    """

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str], dict[str, str]] = {}

    def add(self, split: str, scenario: str, description: str) -> None:
        key = normalise_text(description)
        if key:
            self._texts.setdefault((split, scenario), {}).setdefault(key, description)

    def extend(self, items: Iterable[tuple[str, str, str]]) -> None:
        for split, scenario, description in items:
            self.add(split, scenario, description)

    def negative_for(self, split: str, scenario: str, description: str | None,
                     rng: random.Random) -> str | None:
        """A description of a different process, or None when the split has none."""
        own = normalise_text(description or "")
        same = self._choices(split, scenario, own)
        if same:
            return rng.choice(same)
        others = [text for (s, sc), _ in sorted(self._texts.items())
                  if s == split and sc != scenario for text in self._choices(s, sc, own)]
        return rng.choice(others) if others else None

    def _choices(self, split: str, scenario: str, own: str) -> list[str]:
        texts = self._texts.get((split, scenario), {})
        return [texts[key] for key in sorted(texts) if key != own]
