"""Formulators: golden files pin the exact wording, options and answers."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from tpru.builder.tasks import (
    FORMULATORS,
    NEXT_WORDING,
    ORDERING_WORDING,
    PREV_WORDING,
    Header,
    ImageChoiceTask,
    LetterBalancer,
    arrange_options,
    list_words,
    next_frame,
    ordering_letters,
    ordering_options,
    ordinal,
    prev_frame,
)
from tpru.schema import IMAGE_OPTION, NONE_OPTION, TASKS, Sample

GOLDEN = Path(__file__).parent / "golden"
INTRO = "These photos show the process of stacking the red block on the blue block."


def frames(n: int) -> list[str]:
    return [f"images/step{i + 1}.jpg" for i in range(n)]


def distractors(n: int) -> list[str]:
    return [f"images/other{i + 1}.jpg" for i in range(n)]


def make(case: str) -> Sample:
    rng = random.Random(7)
    header = Header(f"ep/w0/{case}", "robot", "ep")
    if case == "ordering_options":
        return ordering_options(header, frames(4), INTRO, candidates=4, gold=2,
                                negative_kind=None, rng=rng)
    if case == "ordering_options_missing":
        return ordering_options(header, frames(4), INTRO, candidates=4, gold=0,
                                negative_kind="missing", rng=rng)
    if case == "ordering_letters":
        return ordering_letters(header, frames(4), INTRO, rng=rng)
    if case == "ordering_letters_6_reworded":
        return ordering_letters(header, frames(6), INTRO, rng=rng, wording=2)
    if case == "next_frame":
        return next_frame(header, frames(4), distractors(3), INTRO, candidates=4, gold=1,
                          negative_kind=None, rng=rng)
    if case == "next_frame_5_reworded":
        return next_frame(header, frames(5), distractors(3), INTRO, candidates=4, gold=3,
                          negative_kind=None, rng=rng, wording=1)
    if case == "next_frame_mismatch":
        return next_frame(header, frames(4), distractors(3), "These photos show the process of "
                          "pushing the green ball.", candidates=4, gold=4,
                          negative_kind="mismatch", rng=rng)
    if case == "prev_frame_gui":
        return prev_frame(Header("g/w0/prev", "gui", "g"), frames(4), distractors(3), INTRO,
                          candidates=4, gold=3, negative_kind=None, rng=rng)
    if case == "prev_frame_missing_3":
        return prev_frame(header, frames(3), distractors(4), "", candidates=4, gold=2,
                          negative_kind="missing", rng=rng)
    raise KeyError(case)


CASES = ["ordering_options", "ordering_options_missing", "ordering_letters",
         "ordering_letters_6_reworded", "next_frame", "next_frame_5_reworded",
         "next_frame_mismatch", "prev_frame_gui", "prev_frame_missing_3"]


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    sample = make(case)
    path = GOLDEN / f"{case}.json"
    got = json.dumps(sample.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("TPRU_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with TPRU_UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8")
    assert Sample.from_dict(json.loads(got)) == sample


def test_paper_wording_of_the_three_tasks() -> None:
    """The paper's figure: question shapes for 4 frames (wording 0)."""
    rng = random.Random(0)
    h = Header("x", "gui", "e")
    order = ordering_options(h, frames(4), INTRO, candidates=4, gold=0, negative_kind=None,
                             rng=rng)
    assert order.question.startswith(INTRO + " Below are 4 images in random order, labeled as "
                                     "1, 2, 3, and 4. What is the correct sequence of these "
                                     "images?")
    nxt = next_frame(h, frames(4), distractors(3), "", candidates=4, gold=0,
                     negative_kind=None, rng=rng)
    assert nxt.question == ("The 1st step is <image>, followed by step 2 <image>. Select the "
                            "correct option of step 3, which can reach the final step 4 "
                            "<image>.")
    prev = prev_frame(h, frames(4), distractors(3), "", candidates=4, gold=0,
                      negative_kind=None, rng=rng)
    assert prev.question == ("The 2nd screen is step 2 <image>, followed by step 3 <image>, "
                             "and the final screen is step 4 <image>. Please select the option "
                             "of step 1.")
    assert len(nxt.images) == 7 and len(prev.images) == 7  # 3 shown + 4 candidates


@pytest.mark.parametrize("n", range(3, 9))
def test_every_length_and_truth(n: int) -> None:
    rng = random.Random(n)
    h = Header("x", "robot", "e")
    letters = ordering_letters(h, frames(n), INTRO, rng=rng)
    # Undo the shuffle with the answer: the k-th letter names the k-th step's image.
    restored = [letters.images[ord(c) - ord("A")] for c in letters.answer]
    assert restored == frames(n)
    opts = ordering_options(h, frames(n), INTRO, candidates=4, gold=1, negative_kind=None,
                            rng=rng)
    assert opts.options is not None and len(set(opts.options)) == 5
    chosen = opts.options[1].split()
    assert [opts.images[int(k) - 1] for k in chosen] == frames(n)
    nxt = next_frame(h, frames(n), distractors(3), INTRO, candidates=4, gold=2,
                     negative_kind=None, rng=rng)
    assert nxt.question.count("<image>") == n - 1
    assert nxt.option_images[_image_index(nxt, "C")] == frames(n)[n - 2]
    prev = prev_frame(h, frames(n), distractors(3), INTRO, candidates=4, gold=4,
                      negative_kind=None, rng=rng)
    assert prev.option_images[_image_index(prev, "E")] == frames(n)[0]


def _image_index(sample: Sample, letter: str) -> int:
    """Position among the option images of the option at `letter`."""
    assert sample.options is not None
    index = ord(letter) - ord("A")
    assert sample.options[index] == IMAGE_OPTION
    return sum(1 for o in sample.options[:index] if o == IMAGE_OPTION)


def test_negatives() -> None:
    rng = random.Random(3)
    h = Header("x", "robot", "e")
    missing = next_frame(h, frames(4), distractors(4), INTRO, candidates=4, gold=2,
                         negative_kind="missing", rng=rng)
    assert missing.negative and missing.options is not None
    assert missing.options[2] == NONE_OPTION and missing.answer == "C"
    assert frames(4)[2] not in missing.option_images
    mismatch = prev_frame(h, frames(4), distractors(3), INTRO, candidates=4, gold=0,
                          negative_kind="mismatch", rng=rng)
    assert mismatch.negative and mismatch.answer == "A"
    assert frames(4)[0] in mismatch.option_images  # the truth stays; the text is wrong
    order = ordering_options(h, frames(4), INTRO, candidates=4, gold=3,
                             negative_kind="missing", rng=rng)
    assert order.options is not None and order.meta["order"] not in order.options


def test_arrange_options_positions() -> None:
    rng = random.Random(0)
    pos = arrange_options("T", ["a", "b", "c"], gold=1, n_options=5, negative=False, rng=rng)
    assert pos[1] == "T" and pos.count(NONE_OPTION) == 1 and len(pos) == 5
    neg = arrange_options("T", ["a", "b", "c"], gold=4, n_options=5, negative=True, rng=rng)
    assert neg[4] == NONE_OPTION and "T" in neg
    with pytest.raises(ValueError):
        arrange_options("T", ["a"], gold=0, n_options=5, negative=False, rng=rng)


def test_none_position_varies_in_positives() -> None:
    rng = random.Random(0)
    where = Counter(arrange_options("T", ["a", "b", "c"], gold=0, n_options=5, negative=False,
                                    rng=rng).index(NONE_OPTION) for _ in range(400))
    assert set(where) == {1, 2, 3, 4}


def test_letter_balancer_is_balanced_and_deterministic() -> None:
    a = LetterBalancer(seed=1)
    draws = [a.draw(("train", "next_frame"), 5) for _ in range(500)]
    assert Counter(draws) == {i: 100 for i in range(5)}
    b = LetterBalancer(seed=1)
    assert draws == [b.draw(("train", "next_frame"), 5) for _ in range(500)]


def test_words() -> None:
    assert list_words(["1", "2", "3", "4"]) == "1, 2, 3, and 4"
    assert list_words(["A", "B"]) == "A and B"
    assert [ordinal(i) for i in (1, 2, 3, 4, 11, 12, 13, 21, 22)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd"]


def test_formulators_name_every_task_of_the_records() -> None:
    assert tuple(FORMULATORS) == TASKS
    assert [spec.wordings for spec in FORMULATORS.values()] == \
        [len(ORDERING_WORDING), len(NEXT_WORDING), len(PREV_WORDING)]
    rng = random.Random(0)
    for task, spec in FORMULATORS.items():
        if isinstance(spec, ImageChoiceTask):
            sample = spec.formulate(Header("x", "robot", "e"), frames(4), distractors(3), "",
                                    candidates=4, gold=1, negative_kind=None, rng=rng)
            assert sample.task == task
            assert sample.option_images[_image_index(sample, "B")] == frames(4)[spec.truth]
