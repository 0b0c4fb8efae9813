"""The rules of `tpru.score.extract`: how each one finds an answer in a response.

`tpru.score.extract` tries these in order of trust and records which one
answered; this module holds what each rule looks for. A choice rule reads a response
against a `ChoiceForm` (the letters, the None option, the permutation and
text options of one question) and returns a valid letter or None; a sequence
rule returns a permutation of the first n letters or None. Answer tags and
``\\boxed{}`` are found here too, and their content is read by
`read_choice_content` or `read_sequence_content`.

The rules never raise, whatever the text, and the patterns are compiled once
at import; the scans that a backtracking pattern would make quadratic (tags,
boxes, a letter at the end) are single linear passes.

Example:
    >>> form = choice_form(["<image>", "<image>", "None of the choices provided"])
    >>> phrase_letter("The correct answer is (B).", form)
    'B'
    >>> none_option_letter("I'd say none of the options fits.", form)
    'C'
    >>> tag_contents("<answer>A</answer> no, <answer>B</answer>")
    ['B', 'A']
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from .shared import IMAGE_OPTION, NONE_OPTION

LETTERS = string.ascii_uppercase
"""The choice letters in order: option i is ``LETTERS[i]``."""


# --- patterns, compiled once --------------------------------------------------------------

_TAG = re.compile(r"<\s*(/?)\s*answer\s*>", re.I)
_BOXED = re.compile(r"\\boxed\s*\{")
_BRACE = re.compile(r"[{}]")
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_DECOR = " \t\r\n\"'`*_"

# A phrase after which the answer follows: "the answer is", "Answer:", "I choose", "order is".
_PHRASE = re.compile(r"""
    (?:
        (?i:\b(?:answer|option|choice|selection|sequence|order|ordering)s?\b)[*_]*
        (?:\s+(?i:is|would\s+be|will\s+be|should\s+be|must\s+be)\b|\s*[:=]|\s+[-–—]\s)
      | (?i:\bI(?:\s+(?:would|will)|['’]d)?\s+(?:choose|select|pick|go\s+with)\b)
    )
    (?:\s+(?i:therefore|thus|then|clearly|probably|likely|definitely)\b)?
    [\s*_"'`:]*(?:(?i:option|choice|letter)\b[\s*_"'`:]*)?
    """, re.X)
# "B is the correct answer", "(B) is correct", "Option B is right".
_REVERSE = re.compile(r"""
    (?<![A-Za-z0-9'’])[(\[]?([A-Z])[)\]]?[*_]*\s+(?i:is|would\s+be)\s+
    (?i:(?:the\s+)?(?:correct|right|best|true)\b|the\s+answer\b)
    """, re.X)
_TOKEN = re.compile(r"[(\[]?([A-Za-z])[)\]]?")

# Letter sequences: "CABD", "C, A, B, D", "C -> A -> B -> D", "C then A then B then D".
_SEP = r"(?:\s*(?:,\s*(?i:and|then)\b|,|;|-+>|→|⟶|=>|>|-|–|—|(?i:then|and|followed\s+by))\s*|\s+)?"
_RUN = re.compile(rf"(?<![A-Za-z0-9])[\[(]?([A-Z](?:{_SEP}[A-Z]){{0,25}})[\])]?(?![A-Za-z0-9])")
_RUN_AT = re.compile(rf"[\[(]?([A-Z](?:{_SEP}[A-Z]){{0,25}})[\])]?(?![A-Za-z0-9])")
_SEQ_LETTERS = re.compile(r"[A-Z]")

# Numeric permutations: "1 3 4 2", "1, 3, 4, 2", "[1,3,4,2]", "1->3->4->2", "1342".
_NUM_SEP = r"(?:\s*(?:,|;|-+>|→|=>|>|-|–)\s*|\s+)"
_NUM_RUN = re.compile(rf"(?<!\d)(?<!\d\.)(\d{{1,2}}(?:{_NUM_SEP}\d{{1,2}}){{1,25}}|\d{{2,9}})"
                      r"(?!\d|\.\d)")
_NUMBERS = re.compile(r"\d+")
_PERMUTATION_TEXT = re.compile(r"[\d\s,;>→=\-–\[\]()]+")

_NONE_WORDS = re.compile(r"""(?i:
    \bnone\s+of\s+(?:the\s+)?(?:above|choices|options|answers|candidates|them|
                               (?:provided|given|listed)\s+(?:choices|options|answers))\b
  | \bnone\s+(?:is|are)\s+correct\b
  | \bno\s+(?:correct|valid|right|matching)\s+(?:answer|option|choice)s?\b
  | \bneither\s+of\s+(?:the\s+)?(?:options|choices)\b
)""", re.X)

_WHOLE_LETTER = re.compile(r"[\s*_\"'`(\[]*([A-Za-z])[\s*_\"'`)\].:!]*")
_END_LETTER = re.compile(r"(?<![A-Za-z0-9'’])[(\[*_]*([A-Z])[)\]*_]*[\s.!*_\"'`)\]]*\Z")
_START_LETTER = re.compile(r"[\s*_\"'`]*[(\[]?([A-Z])(?:[)\]]|[.:](?:\s|\Z)|[ \t]*\n)")
_MARKED_LETTER = re.compile(r"(?<![A-Za-z0-9])(?:\(([A-Z])\)|\*\*([A-Z])\*\*)(?![A-Za-z0-9])")
_LEAD_LETTER = re.compile(r"[(\[]?([A-Z])(?:[)\]]|[.:](?:\s|\Z)|\s*[-–—]\s|\Z)")
_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9'’])([A-Z])(?![A-Za-z0-9'’])")
_SPACES = re.compile(r"\s+")
_WORD_AFTER = re.compile(r"\s+[a-z]|['’]")


# --- the forms an answer can take ---------------------------------------------------------

@dataclass(frozen=True)
class ChoiceForm:
    """What counts as an answer to a multiple-choice question (made by `choice_form`).

    Attributes:
        letters: the valid letters, "ABCDE" for five options.
        none_letter: the letter of the None option, if there is one.
        permutations: an option written as numbers ("1 3 4 2") -> its letter.
        texts: (letter, normalised text) of each option written in words.
        single_digits: every permutation uses digits 1-9 only, so "1342" can be read.
    """

    letters: str
    none_letter: str | None
    permutations: dict[tuple[int, ...], str]
    texts: tuple[tuple[str, str], ...]  # (letter, normalised option text)
    single_digits: bool


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().strip(".;,").lower()


def choice_form(options: Sequence[str]) -> ChoiceForm:
    """What counts as an answer to a question with `options` in letter order."""
    letters = LETTERS[: min(len(options), len(LETTERS))]
    none_letter = None
    permutations: dict[tuple[int, ...], str] = {}
    texts: list[tuple[str, str]] = []
    for letter, option in zip(letters, options, strict=False):
        option = str(option)
        norm = _normalise(option)
        if norm == NONE_OPTION.lower() or _NONE_WORDS.fullmatch(norm):
            none_letter = none_letter or letter
        elif _PERMUTATION_TEXT.fullmatch(option) and _NUMBERS.search(option):
            numbers = tuple(int(n) for n in _NUMBERS.findall(option))
            if len(numbers) == 1 and len(str(numbers[0])) > 1:
                numbers = tuple(int(d) for d in str(numbers[0]))  # "1342"
            permutations.setdefault(numbers, letter)
        elif option.strip() != IMAGE_OPTION and len(norm) >= 2:
            texts.append((letter, norm))
    single = all(n < 10 for perm in permutations for n in perm)
    return ChoiceForm(letters, none_letter, permutations, tuple(texts), single)


def _valid_letter(text: str, match: re.Match[str], group: int, letters: str,
                  *, lower_ok: bool) -> str | None:
    """The matched letter if it is a valid choice and stands as an answer, not a word."""
    char = match.group(group)
    if char is None:
        return None
    if char.islower():
        # "the answer is a red block": a lowercase letter counts only before punctuation/end.
        rest = text[match.end():match.end() + 2]
        if not lower_ok or (rest[:1].isalnum() or (rest.startswith(" ") and rest[1:].isalnum())):
            return None
        char = char.upper()
    if char == "I" and _WORD_AFTER.match(text, match.end(group)):
        return None  # the pronoun: "the answer is I think B"
    return char if char in letters else None


# --- rules shared by both forms -----------------------------------------------------------

def tag_contents(text: str) -> list[str]:
    """Contents of complete answer tags, last first.

    Each closing tag pairs with the nearest opening tag before it, so an
    unclosed ``<answer>`` earlier in the text is ignored. One linear pass.
    """
    found, opened = [], -1
    for match in _TAG.finditer(text):
        if not match.group(1):
            opened = match.end()
        elif opened >= 0:
            found.append(text[opened:match.start()])
            opened = -1
    return found[::-1]


def boxed_contents(text: str) -> list[str]:
    """Contents of ``\\boxed{...}`` with balanced braces, last first. One linear pass."""
    starts = {m.end() - 1 for m in _BOXED.finditer(text)}
    if not starts:
        return []
    found, stack = [], []
    for match in _BRACE.finditer(text):
        if match.group() == "{":
            stack.append(match.start())
        elif stack:
            start = stack.pop()
            if start in starts:
                found.append((start, _LATEX_WRAP.sub(r"\1", text[start + 1:match.start()])))
    return [content for _, content in sorted(found, reverse=True)]


# --- multiple choice ----------------------------------------------------------------------

def phrase_letter(text: str, form: ChoiceForm) -> str | None:
    """The letter named by the last answer phrase ("the answer is (B)") with a valid letter."""
    for match in reversed(list(_PHRASE.finditer(text))):
        token = _TOKEN.match(text, match.end())
        if token and not text[token.end():token.end() + 1].isalnum():
            letter = _valid_letter(text, token, 1, form.letters, lower_ok=True)
            if letter:
                return letter
    for match in reversed(list(_REVERSE.finditer(text))):
        letter = _valid_letter(text, match, 1, form.letters, lower_ok=False)
        if letter:
            return letter
    return None


def permutation_letter(text: str, form: ChoiceForm) -> str | None:
    """The option whose numbers the last permutation in `text` ("1 3 4 2") matches."""
    if not form.permutations:
        return None
    for match in reversed(list(_NUM_RUN.finditer(text))):
        run = match.group(0)
        numbers = _NUMBERS.findall(run)
        if len(numbers) == 1:
            if not form.single_digits:
                continue
            numbers = list(run)
        letter = form.permutations.get(tuple(int(n) for n in numbers))
        if letter:
            return letter
    return None


def option_text_letter(text: str, form: ChoiceForm) -> str | None:
    """The letter of the one option whose text `text` contains (not counting sub-texts)."""
    if not form.texts:
        return None
    norm = _normalise(text)
    found = [(letter, option) for letter, option in form.texts
             if re.search(rf"(?<!\w){re.escape(option)}(?!\w)", norm)]
    found = [(letter, option) for letter, option in found
             if not any(option != other and option in other for _, other in found)]
    letters = {letter for letter, _ in found}
    return letters.pop() if len(letters) == 1 else None


def none_option_letter(text: str, form: ChoiceForm) -> str | None:
    """The None option's letter if `text` says none of the options fits."""
    return form.none_letter if form.none_letter and _NONE_WORDS.search(text) else None


def bare_letter(text: str, form: ChoiceForm) -> str | None:
    """A letter standing alone: the whole text, its end, its start, or the only marked one."""
    whole = _WHOLE_LETTER.fullmatch(text)
    if whole:
        letter = whole.group(1).upper()
        return letter if letter in form.letters else None
    # Only the tail can end the text: searching all of it would be quadratic on "((((...".
    tail = text.rstrip()
    end = _END_LETTER.search(tail, max(0, len(tail) - 32))
    for match in (end, _START_LETTER.match(text)):
        if match:
            letter = _valid_letter(text, match, 1, form.letters, lower_ok=False)
            if letter:
                return letter
    marked = {m.group(1) or m.group(2) for m in _MARKED_LETTER.finditer(text)}
    marked &= set(form.letters)
    return marked.pop() if len(marked) == 1 else None


def read_choice_content(content: str, form: ChoiceForm) -> str | None:
    """Read the content of an answer tag or box: a letter, a phrase, a permutation, a text."""
    content = content.strip(_DECOR)
    whole = _WHOLE_LETTER.fullmatch(content)
    if whole and whole.group(1).upper() in form.letters:
        return whole.group(1).upper()
    lead = _LEAD_LETTER.match(content)
    if lead and lead.group(1) in form.letters:
        return lead.group(1)
    for rule in (phrase_letter, permutation_letter, option_text_letter, none_option_letter):
        letter = rule(content, form)
        if letter:
            return letter
    lone = {m.group(1) for m in _LONE_LETTER.finditer(content)
            if not (m.group(1) in "AI" and _WORD_AFTER.match(content, m.end()))}
    lone &= set(form.letters)
    return lone.pop() if len(lone) == 1 else None


# --- letter-sequence ordering -------------------------------------------------------------

def _as_sequence(run: str, n: int | None) -> str | None:
    """The letters of `run` if they are a permutation of the first n letters (any n if None)."""
    letters = "".join(_SEQ_LETTERS.findall(run))
    size = len(letters) if n is None else n
    if (n is None and size < 2) or len(letters) != size:
        return None
    return letters if sorted(letters) == list(LETTERS[:size]) else None


def _run_sequence(run: str, n: int | None, *, last: bool) -> str | None:
    """The valid sequence in a matched run, or in one of its lines.

    A run may continue over a line break into the next line's first capital
    ("CABD\nI hope this helps" reads as CABDI); the whole run is tried first,
    then its lines, the last one first when `last`.
    """
    sequence = _as_sequence(run, n)
    if sequence or "\n" not in run:
        return sequence
    lines = run.split("\n")
    for line in reversed(lines) if last else lines:
        sequence = _as_sequence(line, n)
        if sequence:
            return sequence
    return None


def last_sequence(text: str, n: int | None) -> str | None:
    """The last run of letters in `text` ("C, A, B, D") that is a valid sequence."""
    for match in reversed(list(_RUN.finditer(text))):
        sequence = _run_sequence(match.group(1), n, last=True)
        if sequence:
            return sequence
    return None


def phrase_sequence(text: str, n: int | None) -> str | None:
    """The valid sequence named by the last answer phrase ("the correct order is CABD")."""
    for match in reversed(list(_PHRASE.finditer(text))):
        run = _RUN_AT.match(text, match.end())
        sequence = _run_sequence(run.group(1), n, last=False) if run else None
        if sequence:
            return sequence
    return None


def read_sequence_content(content: str, n: int | None) -> str | None:
    """Read the content of an answer tag or box: a sequence, lowercase too, or a phrase."""
    content = content.strip(_DECOR + ".")
    shouted = content.upper()
    if content != shouted and content.lower() == content and _RUN_AT.fullmatch(shouted):
        content = shouted  # "<answer>cabd</answer>", "<answer>c, a, b, d</answer>"
    whole = _RUN_AT.fullmatch(content)
    return ((_as_sequence(whole.group(1), n) if whole else None)
            or phrase_sequence(content, n) or last_sequence(content, n))


