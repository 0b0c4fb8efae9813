"""Task formulation: a window of frames in chronological order becomes a `Sample`.

The three tasks keep the paper's wording (wording 0); a few seeded rewordings
vary the question for robustness. Formulators are pure: the frames, the
distractors, the gold letter and a seeded generator go in, a `Sample` comes
out, so the same inputs always give the same sample (see the golden tests).
`FORMULATORS` names them: each task is an order task (a shuffled window to put
in order) or an image-choice task (one hidden frame to find among images), so
a new task of either kind is one entry there.

Options have ``candidates`` choices plus "None of the choices provided". The
gold letter comes from the caller (a `LetterBalancer`, so letters are
balanced across a dataset); the None option goes to a random other letter in
positive samples and is gold in negative ones:

- ``mismatch``: the intro describes a different process; the true frame (or
  order) is still among the choices, but the text does not fit the images.
- ``missing``: the true frame (or order) is left out of the choices.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tpru.builder.orders import order_options
from tpru.schema import IMAGE_OPTION, IMAGE_PLACEHOLDER, NONE_OPTION, Sample, option_letter

ORDERING_WORDING = (
    "Below are {n} images in random order, labeled as {labels}. "
    "What is the correct sequence of these images?",
    "The {n} images below are shuffled and labeled as {labels}. "
    "Which sequence lists them in the order they happened?",
    "These {n} images, labeled as {labels}, are out of order. "
    "What order puts them in chronological sequence?",
)
LETTERS_SUFFIX = " Answer with the labels in chronological order."

NEXT_WORDING = (
    ("The 1st step is {first}", ", followed by step {k} {img}",
     ". Select the correct option of step {gap}, which can reach the final step {n} {img}."),
    ("Step 1 is {first}", ", then step {k} is {img}",
     ". Which option shows step {gap}, the one that leads to the final step {n} {img}?"),
)
PREV_WORDING = (
    ("The 2nd {noun} is step 2 {img}", ", followed by step {k} {img}",
     ", and the final {noun} is step {n} {img}. Please select the option of step 1."),
    ("Step 2 is {img}", ", step {k} is {img}",
     ", and the last step, step {n}, is {img}. Which option shows step 1, where the "
     "process starts?"),
)


@dataclass(frozen=True)
class Header:
    """What identifies a sample and where it came from."""

    id: str
    scenario: str
    episode_id: str


class LetterBalancer:
    """Draws gold positions so every letter is gold equally often.

    Positions come in shuffled blocks of ``range(n)``, one block sequence per
    key (e.g. split, task and option count), from its own seeded generator.

    Example:
        >>> b = LetterBalancer(seed=0)
        >>> sorted(b.draw(("train", "next_frame"), 5) for _ in range(5))
        [0, 1, 2, 3, 4]
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._queues: dict[tuple[Any, ...], tuple[random.Random, list[int]]] = {}

    def draw(self, key: tuple[Any, ...], n: int) -> int:
        full_key = (*key, n)
        if full_key not in self._queues:
            self._queues[full_key] = (random.Random(f"{self._seed}:{full_key!r}"), [])
        rng, queue = self._queues[full_key]
        if not queue:
            queue.extend(range(n))
            rng.shuffle(queue)
        return queue.pop()


def number_labels(n: int, letters: bool) -> list[str]:
    return [option_letter(i) if letters else str(i + 1) for i in range(n)]


def list_words(items: Sequence[str]) -> str:
    """"1, 2, 3, and 4" (the paper's style)."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def arrange_options(truth: str | None, distractors: Sequence[str], gold: int, n_options: int,
                    negative: bool, rng: random.Random) -> list[str]:
    """Place the truth, the distractors and the None option into `n_options` slots.

    Positive: the truth at `gold`, None at a random other slot. Negative: None
    at `gold`; the truth (when given, the ``mismatch`` kind) at a random other
    slot. Distractors fill the rest in the order given.
    """
    slots: list[str | None] = [None] * n_options
    free = [i for i in range(n_options) if i != gold]
    rng.shuffle(free)
    if negative:
        slots[gold] = NONE_OPTION
        if truth is not None:
            slots[free.pop()] = truth
    else:
        if truth is None:
            raise ValueError("a positive sample needs its true option")
        slots[gold] = truth
        slots[free.pop()] = NONE_OPTION
    needed = len(free)
    if len(distractors) < needed:
        raise ValueError(f"{needed} distractors needed, {len(distractors)} given")
    for slot, item in zip(sorted(free), distractors, strict=False):
        slots[slot] = item
    return [s for s in slots if s is not None]


def ordering_options(header: Header, frames: Sequence[str], intro: str, *, candidates: int,
                     gold: int, negative_kind: str | None, rng: random.Random, wording: int = 0,
                     meta: Mapping[str, Any] | None = None,
                     orders: Sequence[str] | None = None) -> Sample:
    """Ordering with permutations as choices: "A. 1 3 4 2" ... "E. None of the choices provided".

    The orders shown come from `tpru.builder.orders` (a set that looks the same from each
    of its members, with or without the truth), unless `orders` gives them: a twin
    shows the orders its negative showed.
    """
    n = len(frames)
    shown = list(range(n))
    rng.shuffle(shown)  # shown[p] = chronological step of the image labelled p + 1
    where = {step: p for p, step in enumerate(shown)}
    true_order = tuple(where[step] for step in range(n))
    truth = order_text(true_order)
    keep_truth = negative_kind != "missing"
    if orders is None:
        orders = [order_text(o) for o in order_options(true_order, candidates,
                                                        include_truth=keep_truth, rng=rng)]
    if (truth in orders) != keep_truth or len(set(orders)) != candidates:
        raise ValueError(f"{candidates} distinct orders needed, the truth among them only if "
                         f"it is not missing; got {list(orders)}")
    negative = negative_kind is not None
    options = arrange_options(truth if keep_truth else None, [o for o in orders if o != truth],
                              gold, candidates + 1, negative, rng)
    labels = number_labels(n, letters=False)
    question = _ordering_question(intro, labels, wording, letters=False)
    return Sample(
        id=header.id, task="ordering", scenario=header.scenario, episode_id=header.episode_id,
        question=question, options=tuple(options), answer=option_letter(gold),
        images=tuple(frames[step] for step in shown), negative=negative,
        meta={**(meta or {}), "form": "options", "negative_kind": negative_kind,
              "wording": wording, "order": truth},
    )


def order_text(order: Sequence[int]) -> str:
    """An order of image indexes as an option's text: (0, 2, 3, 1) -> "1 3 4 2"."""
    return " ".join(str(i + 1) for i in order)


def ordering_letters(header: Header, frames: Sequence[str], intro: str, *, rng: random.Random,
                     wording: int = 0, meta: Mapping[str, Any] | None = None) -> Sample:
    """Ordering answered by a letter sequence such as "CABD" (no options, never negative)."""
    n = len(frames)
    shown = list(range(n))
    rng.shuffle(shown)
    where = {step: p for p, step in enumerate(shown)}
    answer = "".join(option_letter(where[step]) for step in range(n))
    if n > 1 and answer == "".join(option_letter(i) for i in range(n)) and rng.random() < 0.9:
        # An already sorted shuffle teaches "answer ABCD"; keep it rare.
        return ordering_letters(header, frames, intro, rng=rng, wording=wording, meta=meta)
    question = _ordering_question(intro, number_labels(n, letters=True), wording, letters=True)
    return Sample(
        id=header.id, task="ordering", scenario=header.scenario, episode_id=header.episode_id,
        question=question, options=None, answer=answer,
        images=tuple(frames[step] for step in shown), negative=False,
        meta={**(meta or {}), "form": "letters", "negative_kind": None, "wording": wording},
    )


def _ordering_question(intro: str, labels: list[str], wording: int, *, letters: bool) -> str:
    text = ORDERING_WORDING[wording].format(n=len(labels), labels=list_words(labels))
    if letters:
        text += LETTERS_SUFFIX
    lines = [f"Image {label}: {IMAGE_PLACEHOLDER}" for label in labels]
    return _join(intro, text) + "\n" + "\n".join(lines)


def next_frame(header: Header, frames: Sequence[str], distractors: Sequence[str], intro: str, *,
               candidates: int, gold: int, negative_kind: str | None, rng: random.Random,
               wording: int = 0, meta: Mapping[str, Any] | None = None) -> Sample:
    """Given steps 1..n-2 and the final step n, choose step n-1 among image candidates."""
    n = len(frames)
    start, middle, end = NEXT_WORDING[wording]
    text = start.format(first=IMAGE_PLACEHOLDER)
    text += "".join(middle.format(k=k, img=IMAGE_PLACEHOLDER) for k in range(2, n - 1))
    text += end.format(gap=n - 1, n=n, img=IMAGE_PLACEHOLDER)
    shown = [*frames[: n - 2], frames[n - 1]]
    return _image_choice(header, "next_frame", _join(intro, text), shown, frames[n - 2],
                         distractors, candidates=candidates, gold=gold,
                         negative_kind=negative_kind, rng=rng,
                         meta={**(meta or {}), "wording": wording})


def prev_frame(header: Header, frames: Sequence[str], distractors: Sequence[str], intro: str, *,
               candidates: int, gold: int, negative_kind: str | None, rng: random.Random,
               wording: int = 0, meta: Mapping[str, Any] | None = None) -> Sample:
    """Given steps 2..n, choose step 1 among image candidates."""
    n = len(frames)
    noun = "screen" if header.scenario == "gui" else "frame"
    start, middle, end = PREV_WORDING[wording]
    text = start.format(noun=noun, img=IMAGE_PLACEHOLDER)
    text += "".join(middle.format(k=k, img=IMAGE_PLACEHOLDER) for k in range(3, n))
    text += end.format(noun=noun, n=n, img=IMAGE_PLACEHOLDER)
    return _image_choice(header, "prev_frame", _join(intro, text), list(frames[1:]), frames[0],
                         distractors, candidates=candidates, gold=gold,
                         negative_kind=negative_kind, rng=rng,
                         meta={**(meta or {}), "wording": wording})


def _image_choice(header: Header, task: str, question: str, shown: Sequence[str], truth: str,
                  distractors: Sequence[str], *, candidates: int, gold: int,
                  negative_kind: str | None, rng: random.Random,
                  meta: Mapping[str, Any]) -> Sample:
    negative = negative_kind is not None
    keep_truth = negative_kind != "missing"
    options = arrange_options(truth if keep_truth else None, list(distractors), gold,
                              candidates + 1, negative, rng)
    option_images = [o for o in options if o != NONE_OPTION]
    return Sample(
        id=header.id, task=task, scenario=header.scenario, episode_id=header.episode_id,
        question=question,
        options=tuple(NONE_OPTION if o == NONE_OPTION else IMAGE_OPTION for o in options),
        answer=option_letter(gold), images=(*shown, *option_images), negative=negative,
        meta={**meta, "negative_kind": negative_kind,
              "truth_option": None if not keep_truth else option_letter(options.index(truth))},
    )


def distractors_needed(candidates: int, negative_kind: str | None) -> int:
    """Image distractors a choice sample needs (one more when the truth is left out)."""
    return candidates if negative_kind == "missing" else candidates - 1


def _join(intro: str, text: str) -> str:
    return f"{intro} {text}" if intro else text


class OptionsOrdering(Protocol):
    """Makes an ordering sample whose choices are orders (see `ordering_options`)."""

    def __call__(self, header: Header, frames: Sequence[str], intro: str, *, candidates: int,
                 gold: int, negative_kind: str | None, rng: random.Random, wording: int = 0,
                 meta: Mapping[str, Any] | None = None,
                 orders: Sequence[str] | None = None) -> Sample: ...


class LettersOrdering(Protocol):
    """Makes an ordering sample answered by a letter sequence (see `ordering_letters`)."""

    def __call__(self, header: Header, frames: Sequence[str], intro: str, *,
                 rng: random.Random, wording: int = 0,
                 meta: Mapping[str, Any] | None = None) -> Sample: ...


class ImageChoice(Protocol):
    """Makes a sample whose choices are images, one of them the truth (see `next_frame`)."""

    def __call__(self, header: Header, frames: Sequence[str], distractors: Sequence[str],
                 intro: str, *, candidates: int, gold: int, negative_kind: str | None,
                 rng: random.Random, wording: int = 0,
                 meta: Mapping[str, Any] | None = None) -> Sample: ...


@dataclass(frozen=True)
class OrderTask:
    """A task that shows a whole window shuffled and asks for its order.

    The build makes it in the forms of ``tasks.ordering_forms``, in turn.
    """

    options: OptionsOrdering
    letters: LettersOrdering
    wordings: int
    """How many wordings `options` and `letters` know (0 is the paper's)."""


@dataclass(frozen=True)
class ImageChoiceTask:
    """A task that hides one frame of a window and asks for it among image candidates."""

    formulate: ImageChoice
    truth: int
    """The window position of the frame asked for (an index, so -2 is the one before last)."""
    wordings: int
    """How many wordings `formulate` knows (0 is the paper's)."""


TaskSpec = OrderTask | ImageChoiceTask
"""How the build makes one task: its kind and its formulators."""

FORMULATORS: dict[str, TaskSpec] = {
    "ordering": OrderTask(ordering_options, ordering_letters, wordings=len(ORDERING_WORDING)),
    "next_frame": ImageChoiceTask(next_frame, truth=-2, wordings=len(NEXT_WORDING)),
    "prev_frame": ImageChoiceTask(prev_frame, truth=0, wordings=len(PREV_WORDING)),
}
"""Task name -> how the build makes it; the names are `tpru.schema.TASKS`, in that order.

A new task is a formulator above and an entry here (and its name in
`tpru.schema.TASKS`, which records are checked against).
"""
