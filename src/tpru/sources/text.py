"""Text helpers shared by the sources: instructions turned into process phrases,
and the few phrase builders the simulators and the synthetic scenes write
descriptions with (`join_words`, `with_article`).

Descriptions follow "These photos show the process of ...", so they read
best as gerund phrases. Datasets usually give instructions ("Pick up the red
block"); `process_phrase` turns a leading imperative verb into its gerund
("picking up the red block") and leaves anything else as it is.

Example:
    >>> process_phrase("Pick up the red block")
    'picking up the red block'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_VERB_WORDS = """
add adjust align arrange ascend assemble attach book browse build buy call change check
choose clean clear click climb close collect compare continue copy cover create cross cut
delete descend download drag draw drop edit empty enable disable enter exit fill find flip
fold follow get go grab grasp hang head hold insert install knock leave lift listen locate
look lower make move navigate open order pack pass pick place play plug pour press proceed
pull push put raise read record remove rotate scroll search select send set share shop
slide sort stack stand start stay stir stop swipe switch take tap throw toggle touch
transfer turn type unfold unplug unzip upload use utilize veer visit wait walk watch wipe
write
"""
_VERBS = frozenset(_VERB_WORDS.split())
_IRREGULAR_GERUNDS = {"be": "being", "quit": "quitting", "begin": "beginning",
                      "see": "seeing", "lie": "lying", "die": "dying", "tie": "tying"}


def gerund(verb: str) -> str:
    """The ``-ing`` form of a (lower-case) English verb.

    Example:
        >>> [gerund(v) for v in ("pick", "place", "put", "open", "tie", "wait")]
        ['picking', 'placing', 'putting', 'opening', 'tying', 'waiting']
    """
    if verb in _IRREGULAR_GERUNDS:
        return _IRREGULAR_GERUNDS[verb]
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if len(verb) > 2 and verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    # One syllable ending consonant-vowel-consonant doubles the consonant (stop -> stopping).
    if len(re.findall(r"[aeiou]+", verb)) == 1 and re.search(r"[^aeiou][aeiou][^aeiouwxy]$", verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


def process_phrase(text: str) -> str:
    """`text` as a phrase that reads after "the process of".

    An instruction opening with a known imperative verb becomes a gerund
    phrase; otherwise a leading capital of an ordinary word is lower-cased
    and the rest kept as given.

    Example:
        >>> process_phrase("Pick up the banana and place it in the mug")
        'picking up the banana and place it in the mug'
        >>> process_phrase("The banana goes into the mug")
        'the banana goes into the mug'
    """
    text = " ".join(text.split())
    first, sep, rest = text.partition(" ")
    if first.lower() in _VERBS and (first.islower() or first.istitle()):
        return gerund(first.lower()) + sep + rest
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def join_words(words: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"`` (no comma before "and")."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def with_article(word: str) -> str:
    """`word` with its indefinite article: ``"a red"``, ``"an orange"``."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"
