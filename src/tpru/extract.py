"""Answer extraction: the choice a model's free text commits to.

Evaluation compares a model's prediction with the gold answer, so the text a
model writes must first be turned into a choice letter (``"C"``), a letter
sequence for the ordering form (``"CABD"``), or None when it commits to
nothing. Models answer in many shapes, so the rules below are tried in order
of trust and the first one that finds a valid answer wins; each
`Extraction` records the rule that found it, so that a report can say how
many predictions came from strict tags and how many from a lenient guess.

Rules, most trusted first:

``answer_tag``
    ``<answer>...</answer>`` (case and whitespace inside the tags tolerated).
    The **last** complete pair whose content reads as a valid answer counts:
    a model that restates the instructions ("I will put my answer in
    <answer></answer>") or revises itself puts its final answer last. (The
    training reward in `tpru.rewards` reproduces the TPRU release, which reads
    the *first* tag; that reward stays strict on purpose.) The content is read
    with the rules below, so ``<answer>(B) 1 3 4 2</answer>`` gives B.
``boxed``
    ``\\boxed{...}`` (braces may nest, ``\\text{B}`` is unwrapped); the last one.
``answer_is``
    A phrase that names the answer: "the answer is (B)", "Answer: B",
    "correct option is B", "I choose B", "B is the correct answer", "the
    correct order is C, A, B, D". The letter must stand alone after the
    phrase, so "The correct answer is (B)" gives B and never the T of "The".
``letter_sequence``
    (ordering form only) "CABD", "C, A, B, D", "C -> A -> B -> D", "[C, A, B, D]";
    it must be a permutation of the first n letters; the last one counts.
``permutation``
    (choice form) numbers such as "1 3 4 2", "1, 3, 4, 2", "1->3->4->2" or
    "1342", mapped to the option whose text holds that permutation.
``option_text``
    exactly one option's text appears in the response (image options and
    the None option excluded; an option contained in another found one does
    not count).
``none_option``
    "None of the choices provided" or close wording ("none of the options",
    "no correct answer") mapped to the None option's letter.
``bare_letter``
    a letter standing alone: the whole response ("B", "(B)", "B."), at the
    end ("... so (B)."), at the start ("B. The robot ..."), or the only letter
    written as ``(X)`` or ``**X**``.
``none``
    nothing found: ``answer`` is None.

Every function is total (it never raises, whatever the text), deterministic,
and uses regular expressions compiled once at import.

Example:
    >>> options = ["<image>", "<image>", "None of the choices provided"]
    >>> extract_choice("The correct answer is (B).", options)
    Extraction(answer='B', rule='answer_is')
    >>> extract_choice("I'd say none of the options fits.", options)
    Extraction(answer='C', rule='none_option')
    >>> extract_sequence("Order: C -> A -> B -> D", 4)
    Extraction(answer='CABD', rule='answer_is')
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from tpru.schema import IMAGE_OPTION, NONE_OPTION

RULES = ("answer_tag", "boxed", "answer_is", "letter_sequence", "permutation",
         "option_text", "none_option", "bare_letter", "none")
"""Every value `Extraction.rule` takes, most trusted first."""

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Extraction:
    """What a response answers and which rule found it.

    Attributes:
        answer: a choice letter ("C"), a letter sequence ("CABD"), or None.
        rule: one of `RULES`.
    """

    answer: str | None
    rule: str


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
class _Choice:
    """What counts as an answer to a multiple-choice question."""

    letters: str
    none_letter: str | None
    permutations: dict[tuple[int, ...], str]
    texts: tuple[tuple[str, str], ...]  # (letter, normalised option text)
    single_digits: bool


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().strip(".;,").lower()


def _choice_form(options: Sequence[str]) -> _Choice:
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
    return _Choice(letters, none_letter, permutations, tuple(texts), single)


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

def _tag_contents(text: str) -> list[str]:
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


def _boxed_contents(text: str) -> list[str]:
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


def _first(contents: list[str], read: Callable[[str], str | None]) -> str | None:
    for content in contents:
        answer = read(content)
        if answer is not None:
            return answer
    return None


# --- multiple choice ----------------------------------------------------------------------

def _phrase_letter(text: str, form: _Choice) -> str | None:
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


def _permutation_letter(text: str, form: _Choice) -> str | None:
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


def _option_text_letter(text: str, form: _Choice) -> str | None:
    if not form.texts:
        return None
    norm = _normalise(text)
    found = [(letter, option) for letter, option in form.texts
             if re.search(rf"(?<!\w){re.escape(option)}(?!\w)", norm)]
    found = [(letter, option) for letter, option in found
             if not any(option != other and option in other for _, other in found)]
    letters = {letter for letter, _ in found}
    return letters.pop() if len(letters) == 1 else None


def _none_letter(text: str, form: _Choice) -> str | None:
    return form.none_letter if form.none_letter and _NONE_WORDS.search(text) else None


def _bare_letter(text: str, form: _Choice) -> str | None:
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


def _read_choice_content(content: str, form: _Choice) -> str | None:
    """Read the content of an answer tag or box: a letter, a phrase, a permutation, a text."""
    content = content.strip(_DECOR)
    whole = _WHOLE_LETTER.fullmatch(content)
    if whole and whole.group(1).upper() in form.letters:
        return whole.group(1).upper()
    lead = _LEAD_LETTER.match(content)
    if lead and lead.group(1) in form.letters:
        return lead.group(1)
    for rule in (_phrase_letter, _permutation_letter, _option_text_letter, _none_letter):
        letter = rule(content, form)
        if letter:
            return letter
    lone = {m.group(1) for m in _LONE_LETTER.finditer(content)
            if not (m.group(1) in "AI" and _WORD_AFTER.match(content, m.end()))}
    lone &= set(form.letters)
    return lone.pop() if len(lone) == 1 else None


def extract_choice(text: str, options: Sequence[str]) -> Extraction:
    """The choice letter `text` commits to, for a question with `options` in letter order.

    Args:
        text: the model's response (anything: a non-string gives no answer).
        options: the option texts in letter order (A, B, ...); an option may be
            ``"<image>"``; the None option is "None of the choices provided".

    Returns:
        the letter and the rule that found it, or ``Extraction(None, "none")``.
    """
    if not isinstance(text, str) or not options:
        return Extraction(None, "none")
    try:
        form = _choice_form(list(options))
    except TypeError:
        return Extraction(None, "none")
    read = partial(_read_choice_content, form=form)
    found = _first(_tag_contents(text), read)
    if found:
        return Extraction(found, "answer_tag")
    found = _first(_boxed_contents(text), read)
    if found:
        return Extraction(found, "boxed")
    rules: tuple[tuple[str, Callable[[str, _Choice], str | None]], ...] = (
        ("answer_is", _phrase_letter), ("permutation", _permutation_letter),
        ("option_text", _option_text_letter), ("none_option", _none_letter),
        ("bare_letter", _bare_letter))
    for name, rule in rules:
        found = rule(text, form)
        if found:
            return Extraction(found, name)
    return Extraction(None, "none")


# --- letter-sequence ordering -------------------------------------------------------------

def _as_sequence(run: str, n: int | None) -> str | None:
    """The letters of `run` if they are a permutation of the first n letters (any n if None)."""
    letters = "".join(_SEQ_LETTERS.findall(run))
    size = len(letters) if n is None else n
    if (n is None and size < 2) or len(letters) != size:
        return None
    return letters if sorted(letters) == list(LETTERS[:size]) else None


def _last_sequence(text: str, n: int | None) -> str | None:
    for match in reversed(list(_RUN.finditer(text))):
        sequence = _as_sequence(match.group(1), n)
        if sequence:
            return sequence
    return None


def _phrase_sequence(text: str, n: int | None) -> str | None:
    for match in reversed(list(_PHRASE.finditer(text))):
        run = _RUN_AT.match(text, match.end())
        sequence = _as_sequence(run.group(1), n) if run else None
        if sequence:
            return sequence
    return None


def _read_sequence_content(content: str, n: int | None) -> str | None:
    content = content.strip(_DECOR + ".")
    shouted = content.upper()
    if content != shouted and content.lower() == content and _RUN_AT.fullmatch(shouted):
        content = shouted  # "<answer>cabd</answer>", "<answer>c, a, b, d</answer>"
    whole = _RUN_AT.fullmatch(content)
    return ((_as_sequence(whole.group(1), n) if whole else None)
            or _phrase_sequence(content, n) or _last_sequence(content, n))


def extract_sequence(text: str, n: int | None) -> Extraction:
    """The letter sequence (e.g. "CABD") `text` gives for n images labelled A, B, ...

    Args:
        text: the model's response.
        n: the number of images; the answer must be a permutation of the first
            n letters. None accepts a permutation of any length of at least 2.

    Returns:
        the sequence and the rule that found it, or ``Extraction(None, "none")``.
    """
    if not isinstance(text, str) or (n is not None and not 1 <= n <= len(LETTERS)):
        return Extraction(None, "none")
    read = partial(_read_sequence_content, n=n)
    found = _first(_tag_contents(text), read)
    if found:
        return Extraction(found, "answer_tag")
    found = _first(_boxed_contents(text), read)
    if found:
        return Extraction(found, "boxed")
    found = _phrase_sequence(text, n)
    if found:
        return Extraction(found, "answer_is")
    found = _last_sequence(text, n)
    if found:
        return Extraction(found, "letter_sequence")
    return Extraction(None, "none")


def extract_answer(text: str, options: Sequence[str] | None,
                   n_images: int | None = None) -> Extraction:
    """The answer `text` gives: a choice letter, or with ``options=None`` a letter sequence.

    Args:
        text: the model's response.
        options: the option texts in letter order, or None for the
            letter-sequence ordering form.
        n_images: for the letter-sequence form, the number of images labelled
            A, B, ...; None accepts any length.
    """
    if options is None:
        return extract_sequence(text, n_images)
    return extract_choice(text, options)
