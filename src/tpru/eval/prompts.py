"""Prompt builders: an `Item` in, the text a model sees out.

Every builder keeps one ``<image>`` placeholder per image, in the order of
`Item.images` (the question's, then the image options'), so a backend can
put each image where its placeholder is. Published numbers move by points
with the prompt, so each protocol is stated exactly below, and each
benchmark names the one it was published with (`Benchmark.default_prompt`);
``--prompt NAME`` picks another.

``default`` and ``muirbench``: the direct-answer multiple-choice prompt of
MuirBench as VLMEvalKit (``MUIRDataset.build_prompt``) and lmms-eval build it::

    {question}
    A. {option A}
    B. {option B}
    Answer with the option's letter from the given choices directly.

An image option is written ``A. <image>``. For a sequence item (the letter
form of ordering) the last line is `SEQUENCE_INSTRUCTION` instead, after the
option lines if there are any.

``muirbench-authors``: the prompt of MuirBench's own evaluation code
(``eval/utils/preprocess.py``, ``create_prompt`` with its default hint),
after MathVista's; no line ends with a space and the whole is stripped::

    Question: {question}
    Choices:
    (A) {option A}
    (B) {option B}
    Hint: Please provide the correct option letter, such as A, B, C, D, directly.
    Answer:

For a sequence item the hint is "Hint: " and `SEQUENCE_INSTRUCTION`, and an
item without options has no "Choices:" block (MuirBench has neither).

``lego``: VLMEvalKit's multiple-choice prompt, as its LEGO-Puzzles dataset
uses it; every line ends with a newline, the last one included::

    Hint: {hint}
    Question: {question}
    Options:
    A. {option A}
    ...
    Please select the correct answer from the options above.

The "Hint:" line is there only when the item has a hint; the last line ends
with a space before its newline, as VLMEvalKit writes it. For a sort item the
last line is "Please respond with only the sequence of letters (e.g., 'BDAC')
that correctly orders the steps." The lines from "Options:" on appear only
when there are options, except that a sequence item without options still
gets the sort sentence. Images that VLMEvalKit shows before the text (a row without
``<image k>`` markers, ``meta["images_first"]``) come first here too.

``tpru``: the release's training format. The content is the question and
then one line "A. {option}" per option (the text tpru exports for EasyR1),
or, for TPRU-Test, the ``problem`` exactly as published
(``meta["problem"]``); it is put through tpru's
``templates/format_prompt.jinja``: the content, a blank line, then the
request to reason inside ``<think> </think>`` and answer inside
``<answer> </answer>`` (one letter, or the letters in chronological order).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from tpru.eval.items import Item
from tpru.export.common import BUILTIN_FORMAT_PROMPT, load_format_prompt, make_formatter
from tpru.schema import IMAGE_PLACEHOLDER, option_letter

PromptBuilder = Callable[[Item], str]

DIRECT_INSTRUCTION = "Answer with the option's letter from the given choices directly."
SEQUENCE_INSTRUCTION = ("Answer with the sequence of letters in the correct order directly, "
                        "for example CABD.")
AUTHORS_HINT = "Please provide the correct option letter, such as A, B, C, D, directly."
LEGO_CHOICE = "Please select the correct answer from the options above. \n"
LEGO_SORT = ("Please respond with only the sequence of letters (e.g., 'BDAC') "
             "that correctly orders the steps.\n")


def option_lines(item: Item) -> list[str]:
    """One "A. {option}" line per option (none for an item without options)."""
    return [f"{option_letter(i)}. {option}" for i, option in enumerate(item.options or ())]


def direct_prompt(item: Item) -> str:
    """MuirBench's direct-answer protocol (see the module docstring)."""
    last = DIRECT_INSTRUCTION if item.answer_form == "choice" else SEQUENCE_INSTRUCTION
    return "\n".join([item.question, *option_lines(item), last])


def muirbench_authors_prompt(item: Item) -> str:
    """MuirBench's own evaluation prompt (see the module docstring)."""
    lines = [f"Question: {item.question}"]
    if item.options:
        lines += ["Choices:", *(f"({option_letter(i)}) {option}"
                                for i, option in enumerate(item.options))]
    hint = AUTHORS_HINT if item.answer_form == "choice" else SEQUENCE_INSTRUCTION
    lines += [f"Hint: {hint}", "Answer:"]
    return "\n".join(lines).strip()


def lego_prompt(item: Item) -> str:
    """VLMEvalKit's multiple-choice protocol for LEGO-Puzzles (see the module docstring)."""
    question, lead = item.question, ""
    if item.meta.get("images_first"):
        count = len(item.question_images)
        if question.startswith(IMAGE_PLACEHOLDER * count):
            lead = IMAGE_PLACEHOLDER * count
            question = question[len(lead):].lstrip("\n")
    prompt = lead
    hint = item.meta.get("hint")
    if hint:
        prompt += f"Hint: {hint}\n"
    prompt += f"Question: {question}\n"
    if item.options:
        prompt += "Options:\n" + "".join(f"{line}\n" for line in option_lines(item))
    if item.answer_form == "sequence":
        prompt += LEGO_SORT
    elif item.options:
        prompt += LEGO_CHOICE
    return prompt


def tpru_prompt(item: Item) -> str:
    """The release's think/answer format around the question (see the module docstring)."""
    content = item.meta.get("problem")
    if not isinstance(content, str):
        content = "\n".join([item.question.rstrip(), *option_lines(item)])
    return _format_prompt()(content)


@cache
def _format_prompt() -> Callable[[str], str]:
    return make_formatter(load_format_prompt(BUILTIN_FORMAT_PROMPT))


PROMPTS: dict[str, PromptBuilder] = {
    "default": direct_prompt,
    "muirbench": direct_prompt,
    "muirbench-authors": muirbench_authors_prompt,
    "lego": lego_prompt,
    "tpru": tpru_prompt,
}


def render_prompt(item: Item, name: str) -> str:
    """The prompt `name` for `item`, checked to hold one ``<image>`` per image.

    Raises:
        KeyError: `name` is not in `PROMPTS`.
        ValueError: the text does not hold one placeholder per image (a
            question or option that itself contains the literal ``<image>``).
    """
    text = PROMPTS[name](item)
    found = text.count(IMAGE_PLACEHOLDER)
    if found != len(item.images):
        raise ValueError(f"item {item.id!r}: prompt {name!r} has {found} {IMAGE_PLACEHOLDER} "
                         f"placeholders for {len(item.images)} images")
    return text
