"""Text helpers shared by the sources: instructions turned into process phrases,
and the few phrase builders the simulators and the synthetic scenes write
descriptions with (`join_words`, `with_article`, `agree_articles`).

Descriptions follow "These photos show the process of ...", so they read
best as gerund phrases. Datasets give instructions instead: R2R's are
several sentences ("Walk down the stairs, turn right, and walk into the
bedroom. Stop at the bed."), GUI Odyssey's join clauses ("Enable or disable
..., and then launch ..."), some are all capitals. `process_phrase` makes a
short phrase of the first sentence (and of the next ones while they are
short instructions too) with the verb of every clause in its ``-ing`` form.

English inflection comes from two well-kept libraries rather than word lists
kept here: lemminflect (a dictionary of English lemmas by part of speech, and
the inflection rules: "stop" -> "stopping") and inflect (the indefinite
article by sound: "an hour", "a user", "an 8x8 plate"). Neither tags parts of
speech in context, so a word that the dictionary gives as both noun and verb
("chair", "wait") counts as a verb after "and" or a comma only when what
follows it starts a complement ("and turn left", not "the table and chair").

Example:
    >>> process_phrase("Pick up the red block")
    'picking up the red block'
    >>> process_phrase("Walk down the stairs, turn right, and walk into the bedroom. Stop.")
    'walking down the stairs, turning right, and walking into the bedroom, stopping'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

MAX_WORDS = 15
"""About how long a process phrase gets: whole clauses are kept while they fit."""

# Direction and place words that the dictionary also lists as verbs ("down the
# stairs", "right at the sofa"): at the head of an instruction's clause they are
# never its verb.
_NOT_VERBS = frozenset({"up", "down", "out", "off", "right", "forward", "near", "over",
                        "top", "last", "next", "round", "till", "home", "sink", "table"})
# Verbs of instructions that the dictionary also lists as nouns ("stop", "wait"):
# after "and" or a comma these count as verbs even with nothing after them
# ("... and stop.") or an odd word after them ("and go passed the bar").
_COMMON_VERBS = frozenset({"stop", "wait", "stay", "halt", "pause", "rest", "return", "turn",
                           "exit", "finish", "stand", "sit", "go", "come", "look", "repeat",
                           "walk", "head", "move", "step", "take", "make", "keep", "pass",
                           "climb", "face", "click", "tap", "type", "search", "open", "close"})
# Words that open a complement but that the dictionary lists as nouns.
_DETERMINERS = frozenset({"your", "my", "his", "her", "their", "its", "it", "them", "this",
                          "that", "these", "those", "all", "each", "another", "some", "any",
                          "both", "every", "one", "two", "three", "four", "five"})
# Words that join clauses; the word after them may be a clause's verb.
_COORDINATORS = frozenset({"and", "or", "then", "but"})
# Words that may stand before a clause's verb ("then turn", "and then open").
_LEADERS = _COORDINATORS | {"so", "now", "next", "finally", "first", "also", "please",
                            "again", "lastly", "afterwards"}
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_SPACE_AFTER = re.compile(r"([,;]|[.!?](?=[A-Z][a-z]))(?=[A-Za-z])")  # "right,turn": "right, turn"
_WORD = re.compile(r"^(\W*)([A-Za-z]+)(\W*)$")
_ARTICLE = re.compile(r"\b(a|an|A|An|AN)(\s+)([\"'(]?)([A-Za-z0-9][\w'-]*)")


@functools.cache
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    from lemminflect import getAllLemmas

    found: dict[str, tuple[str, ...]] = getAllLemmas(word)
    return found


def is_base_verb(word: str) -> bool:
    """Whether lower-case `word` is the base form of a verb in lemminflect's dictionary.

    Example:
        >>> [is_base_verb(w) for w in ("walk", "walked", "kitchen", "enable")]
        [True, False, False, True]
    """
    return word in _lemmas(word).get("VERB", ())


def gerund(verb: str) -> str:
    """The ``-ing`` form of a (lower-case) English verb, from lemminflect.

    Example:
        >>> [gerund(v) for v in ("pick", "place", "put", "open", "tie", "wait", "quit")]
        ['picking', 'placing', 'putting', 'opening', 'tying', 'waiting', 'quitting']
    """
    from lemminflect import getInflection

    forms: tuple[str, ...] = getInflection(verb, tag="VBG")
    return forms[0] if forms else verb + "ing"


def process_phrase(text: str, *, max_words: int = MAX_WORDS) -> str:
    """`text` (an instruction, usually) as a short phrase that reads after "the process of".

    All-capital text is lower-cased. The first sentence is kept, cut to its
    first clauses when longer than about `max_words` words; the next sentences
    are added while they are instructions too and the phrase stays short. Each
    clause's imperative verb becomes a gerund, articles are made to agree, and
    the final full stop goes. Text that is not an instruction keeps its words
    ("the banana goes into the mug"). Callers keep the full instruction in the
    episode's meta.

    Example:
        >>> process_phrase("Enable or disable notifications, and then launch the app.")
        'enabling or disabling notifications, and then launching the app'
        >>> process_phrase("The banana goes into the mug")
        'the banana goes into the mug'
    """
    text = _SPACE_AFTER.sub(r"\1 ", " ".join(text.split()))
    if not text:
        return text
    if _mostly_capitals(text):
        text = text.lower()
    sentences = [(s.lower() if _mostly_capitals(s) else s).split()
                 for s in _SENTENCE_END.split(text) if s.strip()]
    first = _clauses_within(sentences[0], max_words)
    chosen = [first]
    if len(first) == len(sentences[0]) and _opens_with_verb(first):
        size = len(first)
        for sentence in sentences[1:]:  # whole short instructions after a whole first one
            size += len(sentence)
            if size > max_words or not _opens_with_verb(sentence):
                break
            chosen.append(sentence)
    words: list[str] = []
    for sentence in chosen:  # gerunds sentence by sentence: each opens a clause afresh
        if words:
            words[-1] = _strip_end(words[-1]) + ","
        done = _gerunds(sentence)
        words += [_lower_first(done[0]), *done[1:]] if words else done
    words[-1] = _strip_end(words[-1])
    return _lower_first(agree_articles(" ".join(w for w in words if w)))


def _lower_first(text: str) -> str:
    """`text` with a leading capital lower-cased, unless the word is all capitals (LEGO)."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _mostly_capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(text.split()) >= 3 and sum(c.isupper() for c in letters) > 0.8 * len(letters)


def _strip_end(token: str) -> str:
    return token.rstrip(" .!?;:,")


def _clauses_within(words: list[str], max_words: int) -> list[str]:
    """The first clauses of a sentence's `words` that fit in `max_words` (at least one).

    A clause ends at a comma, or before "and"/"or"/"then" when a verb follows.
    """
    if len(words) <= max_words:
        return words
    ends = [i + 1 for i, w in enumerate(words[:-1]) if w.endswith((",", ";", ":"))]
    ends += [i for i in range(1, len(words) - 1) if _bare(words[i]) in _COORDINATORS
             and _bare(words[i - 1]) not in _LEADERS  # "and then turn": cut before "and"
             and _opens_with_verb(words[i:], coordinated=True)]
    fitting = [end for end in ends if end <= max_words]
    if fitting:
        return words[:max(fitting)]
    return words[:min(ends)] if ends else words


def _bare(token: str) -> str:
    match = _WORD.match(token)
    return match[2].lower() if match else ""


def _opens_with_verb(words: Sequence[str], *, coordinated: bool = False) -> bool:
    i = 0
    while i < len(words) - 1 and _bare(words[i]) in _LEADERS:
        i += 1
    return i < len(words) and _is_verb(words, i, coordinated=coordinated)


def _is_verb(words: Sequence[str], i: int, *, coordinated: bool) -> bool:
    """Whether ``words[i]`` is a clause's imperative verb (see the module docstring)."""
    word = _bare(words[i])
    if not word or word in _NOT_VERBS or not is_base_verb(word):
        return False
    if not coordinated or set(_lemmas(word)) <= {"VERB"}:
        return True
    if word in _COMMON_VERBS:
        return True
    if i + 1 == len(words) or words[i].endswith((".", "!", "?", ";", ",")):
        return False
    follower = _bare(words[i + 1]) or words[i + 1]
    if follower in _COORDINATORS:  # "the table and chair and ...": a list of things
        return False
    lemmas = _lemmas(follower)
    return (not lemmas or "ADV" in lemmas or follower in _DETERMINERS
            or follower[0].isdigit())


def _gerunds(words: list[str]) -> list[str]:
    """`words` with the verb heading each clause in its ``-ing`` form."""
    out = list(words)
    expect, coordinated = True, False
    for i, token in enumerate(words):
        word = _bare(token)
        if expect and word in _LEADERS and i + 1 < len(words):
            coordinated = coordinated or word in _COORDINATORS - {"then"}
            continue
        if expect and _is_verb(words, i, coordinated=coordinated):
            match = _WORD.match(token)
            assert match is not None
            out[i] = match[1] + gerund(word) + match[3]
        expect = token.endswith((",", ";", ":")) or word in _COORDINATORS
        coordinated = expect and (token.endswith(",") or word in _COORDINATORS - {"then"})
    return out


@functools.cache
def _inflect_engine() -> Any:
    import inflect  # imported when first needed: it takes a second or two to import

    return inflect.engine()


@functools.cache
def indefinite_article(word: str) -> str:
    """``"a"`` or ``"an"`` for `word`, by its sound (inflect's rules; numbers read out).

    Example:
        >>> [indefinite_article(w) for w in ("orange", "user", "hour", "8x8", "11-stud", "1x4")]
        ['an', 'a', 'an', 'an', 'an', 'a']
    """
    engine = _inflect_engine()
    number = re.match(r"\d+", word)
    if number:  # inflect reads digits as letters: "a 8"
        word = str(engine.number_to_words(number[0], andword=""))
    article = str(engine.a(word)).split(" ", 1)[0]
    return "an" if article.lower() == "an" else "a"


def with_article(word: str) -> str:
    """`word` with its indefinite article: ``"a red"``, ``"an orange"``, ``"an 8x8"``."""
    return f"{indefinite_article(word)} {word}"


def agree_articles(text: str) -> str:
    """`text` with every "a"/"an" agreeing with the sound of the word after it.

    A swapped word (a colour, an object) or a generated phrase may leave
    "a orange marker"; "a" before a function word ("plan a or b") is left.

    Example:
        >>> agree_articles("put a orange marker on an blue tray, then an 8x8 plate")
        'put an orange marker on a blue tray, then an 8x8 plate'
    """
    if not re.search(r"\b[Aa][Nn]?\s", text):
        return text

    def fix(match: re.Match[str]) -> str:
        article, space, quote, word = match.groups()
        if word in _COORDINATORS or (word.isalpha() and word.islower() and not _lemmas(word)
                                     and word not in _DETERMINERS):
            return match[0]
        wanted = indefinite_article(word)
        if wanted == article.lower():
            return match[0]
        if article.isupper() and len(article) > 1:
            wanted = wanted.upper()
        elif article[0].isupper():
            wanted = wanted.capitalize()
        return f"{wanted}{space}{quote}{word}"

    return _ARTICLE.sub(fix, text)


def join_words(words: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"`` (no comma before "and")."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
