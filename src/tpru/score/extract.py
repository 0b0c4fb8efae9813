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
    training reward in `tpru.score.rewards` reproduces the TPRU release, which reads
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

Every function is total (it never raises, whatever the text) and
deterministic. This module is the order of trust and the public interface;
what each rule looks for is in `tpru.score.extract_rules`.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from .extract_rules import LETTERS as LETTERS
from .extract_rules import (
    ChoiceForm,
    bare_letter,
    boxed_contents,
    choice_form,
    last_sequence,
    none_option_letter,
    option_text_letter,
    permutation_letter,
    phrase_letter,
    phrase_sequence,
    read_choice_content,
    read_sequence_content,
    tag_contents,
)

RULES = ("answer_tag", "boxed", "answer_is", "letter_sequence", "permutation",
         "option_text", "none_option", "bare_letter", "none")
"""Every value `Extraction.rule` takes, most trusted first."""

@dataclass(frozen=True)
class Extraction:
    """What a response answers and which rule found it.

    Attributes:
        answer: a choice letter ("C"), a letter sequence ("CABD"), or None.
        rule: one of `RULES`.
    """

    answer: str | None
    rule: str


def _first(contents: list[str], read: Callable[[str], str | None]) -> str | None:
    """The first answer `read` finds in `contents` (tags or boxes, last first)."""
    for content in contents:
        answer = read(content)
        if answer is not None:
            return answer
    return None


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
        form = choice_form(list(options))
    except TypeError:
        return Extraction(None, "none")
    read = partial(read_choice_content, form=form)
    found = _first(tag_contents(text), read)
    if found:
        return Extraction(found, "answer_tag")
    found = _first(boxed_contents(text), read)
    if found:
        return Extraction(found, "boxed")
    rules: tuple[tuple[str, Callable[[str, ChoiceForm], str | None]], ...] = (
        ("answer_is", phrase_letter), ("permutation", permutation_letter),
        ("option_text", option_text_letter), ("none_option", none_option_letter),
        ("bare_letter", bare_letter))
    for name, rule in rules:
        found = rule(text, form)
        if found:
            return Extraction(found, name)
    return Extraction(None, "none")


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
    read = partial(read_sequence_content, n=n)
    found = _first(tag_contents(text), read)
    if found:
        return Extraction(found, "answer_tag")
    found = _first(boxed_contents(text), read)
    if found:
        return Extraction(found, "boxed")
    found = phrase_sequence(text, n)
    if found:
        return Extraction(found, "answer_is")
    found = last_sequence(text, n)
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
