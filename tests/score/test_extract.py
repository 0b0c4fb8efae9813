"""Answer extraction: each rule on the shapes models write, totality, and recovery properties."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tpru.schema import IMAGE_OPTION, NONE_OPTION
from tpru.score.extract import RULES, Extraction, extract_answer, extract_choice, extract_sequence

IMAGES = (IMAGE_OPTION,) * 4 + (NONE_OPTION,)
PERMS = ("1 3 4 2", "4 3 2 1", NONE_OPTION, "3 2 1 4", "4 2 3 1")
TEXTS = ("The robot picks up the cup", "The robot opens the drawer", NONE_OPTION,
         "The robot pours water")


@pytest.mark.parametrize(("text", "options", "answer", "rule"), [
    # answer tags: the last complete pair with a valid answer; whitespace and case tolerated
    ("<think>hmm</think><answer>C</answer>", IMAGES, "C", "answer_tag"),
    ("< answer > D </ answer >", IMAGES, "D", "answer_tag"),
    ("<ANSWER>b</ANSWER>", IMAGES, "B", "answer_tag"),
    ("Format: <answer></answer>. <answer>A</answer> no, <answer>B</answer>", IMAGES, "B",
     "answer_tag"),
    ("<answer>A<answer>B</answer>", IMAGES, "B", "answer_tag"),
    ("<answer>The answer is E</answer>", IMAGES, "E", "answer_tag"),
    ("<answer>B. 1 3 4 2</answer>", PERMS, "B", "answer_tag"),
    ("<answer>3 2 1 4</answer>", PERMS, "D", "answer_tag"),
    ("<answer>none of the choices provided</answer>", PERMS, "C", "answer_tag"),
    ("<answer>'C'</answer>", IMAGES, "C", "answer_tag"),
    ("<answer>F</answer> so B", IMAGES, "B", "bare_letter"),  # F is not an option
    # boxed
    ("so \\boxed{\\text{C}}", IMAGES, "C", "boxed"),
    ("\\boxed{A} first, then \\boxed{D}", IMAGES, "D", "boxed"),
    # answer phrases; never the T of "The"
    ("The correct answer is (B).", IMAGES, "B", "answer_is"),
    ("Answer: b", IMAGES, "B", "answer_is"),
    ("**Answer:** D", IMAGES, "D", "answer_is"),
    ("Answer**: D", IMAGES, "D", "answer_is"),
    ("B is the correct answer.", IMAGES, "B", "answer_is"),
    ("(C) is correct", IMAGES, "C", "answer_is"),
    ("I choose option D.", IMAGES, "D", "answer_is"),
    ("A robot arm moves. Therefore the final answer: E", IMAGES, "E", "answer_is"),
    ("The answer is a red block", IMAGES, None, "none"),
    ("Answer: The red block", IMAGES, None, "none"),
    ("The correct answer is The", IMAGES, None, "none"),
    # numeric permutations mapped to the option that holds them
    ("the order is 1 3 4 2", PERMS, "A", "permutation"),
    ("so: 3,2,1,4.", PERMS, "D", "permutation"),
    ("[4, 2, 3, 1]", PERMS, "E", "permutation"),
    ("4231", PERMS, "E", "permutation"),
    ("1 -> 3 -> 4 -> 2", PERMS, "A", "permutation"),
    # option text, None in words, bare letters
    ("The robot opens the drawer, clearly.", TEXTS, "B", "option_text"),
    ("Either the cup or the water; the robot pours water? The robot picks up the cup.", TEXTS,
     None, "none"),
    ("none of the options match", PERMS, "C", "none_option"),
    (NONE_OPTION, IMAGES, "E", "none_option"),
    ("B", IMAGES, "B", "bare_letter"),
    ("(b)", IMAGES, "B", "bare_letter"),
    ("B.", IMAGES, "B", "bare_letter"),
    ("so it is (C).", IMAGES, "C", "bare_letter"),
    ("C. Because the arm moves first", IMAGES, "C", "bare_letter"),
    ("Looking at image 2, option (D) fits best here", IMAGES, "D", "bare_letter"),
    ("Option (A) or option (D) fits best here", IMAGES, None, "none"),
    ("The", IMAGES, None, "none"),
    ("T", IMAGES, None, "none"),
    ("", IMAGES, None, "none"),
    ("I think A robot picks", IMAGES, None, "none"),
])
def test_choice_shapes(text: str, options: tuple[str, ...], answer: str | None, rule: str) -> None:
    assert extract_choice(text, options) == Extraction(answer, rule)


def test_the_is_never_t_even_when_t_is_an_option() -> None:
    options = [IMAGE_OPTION] * 20
    assert extract_choice("The correct answer is (B)", options) == Extraction("B", "answer_is")
    assert extract_choice("The sequence is shown.", options).answer is None


@pytest.mark.parametrize(("text", "n", "answer", "rule"), [
    ("<answer>CABD</answer>", 4, "CABD", "answer_tag"),
    ("<answer>cabd</answer>", 4, "CABD", "answer_tag"),
    ("<answer>c, a, b, d</answer>", 4, "CABD", "answer_tag"),
    ("< answer > C A B D </ answer >", 4, "CABD", "answer_tag"),
    ("\\boxed{C,A,B,D}", 4, "CABD", "boxed"),
    ("The correct order is C, A, B, and D.", 4, "CABD", "answer_is"),
    ("Order: [C, A, B, D]", 4, "CABD", "answer_is"),
    ("The answer is DCBA.", 4, "DCBA", "answer_is"),
    ("C -> A -> B -> D", 4, "CABD", "letter_sequence"),
    ("C → A → B → D", 4, "CABD", "letter_sequence"),
    ("C then A then B then D", 4, "CABD", "letter_sequence"),
    ("Images A, B, C, D are shuffled; finally: CABD", 4, "CABD", "letter_sequence"),
    ("Answer: CABD\nI hope this helps.", 4, "CABD", "answer_is"),  # a run stops at its line
    ("CABD\nI hope this helps.", 4, "CABD", "letter_sequence"),
    ("C\nA\nB\nD", 4, "CABD", "letter_sequence"),                # one letter a line
    ("ABCDE", 4, None, "none"),          # five letters for four images
    ("CABE", 4, None, "none"),           # not a permutation of A..D
    ("A robot: B, C, D", 4, None, "none"),
    ("ABCDE", None, "ABCDE", "letter_sequence"),
    ("nothing here", 4, None, "none"),
])
def test_sequence_shapes(text: str, n: int | None, answer: str | None, rule: str) -> None:
    assert extract_sequence(text, n) == Extraction(answer, rule)


def test_extract_answer_picks_the_form() -> None:
    assert extract_answer("<answer>CABD</answer>", None, 4) == Extraction("CABD", "answer_tag")
    assert extract_answer("<answer>CABD</answer>", IMAGES) == Extraction(None, "none")
    assert extract_answer("Answer: C", IMAGES, 7) == Extraction("C", "answer_is")


def test_pathological_inputs_finish() -> None:
    # Quadratic or backtracking regexes would take minutes on these (the suite would hang);
    # how fast extraction runs is measured in bench/, not asserted here.
    for text in ("(" * 50_000, "<answer>" * 20_000, "\\boxed{" * 20_000, "1" + " " * 50_000 + "x",
                 "I" + " " * 50_000 + "x", "C, " * 30_000, "answer is " * 20_000):
        extract_choice(text, PERMS)
        extract_sequence(text, None)


# --- properties ---------------------------------------------------------------------------

_options = st.lists(st.one_of(st.sampled_from([IMAGE_OPTION, NONE_OPTION, "1 3 4 2", "2 1"]),
                              st.text(max_size=12)), max_size=8)


@given(st.text(), _options)
def test_choice_is_total_valid_and_deterministic(text: str, options: list[str]) -> None:
    result = extract_choice(text, options)
    assert result.rule in RULES
    assert (result.answer is None) == (result.rule == "none")
    assert result.answer is None or result.answer in string.ascii_uppercase[:len(options)]
    assert extract_choice(text, options) == result


@given(st.text(), st.one_of(st.none(), st.integers(-3, 30)))
def test_sequence_is_total_and_a_permutation(text: str, n: int | None) -> None:
    result = extract_sequence(text, n)
    assert result.rule in RULES
    if result.answer is not None:
        size = len(result.answer) if n is None else n
        assert sorted(result.answer) == list(string.ascii_uppercase[:size])
    assert extract_sequence(text, n) == result


# Filler that cannot form an answer phrase, a capital letter, a number or a tag: no "n" or "i"
# (answer, none, option, choice, is, then, and, sequence all need one).
_noise = st.text(alphabet="abcdefghjklmopqrstuvwxyz ,\n", max_size=120)

_CHOICE_SHAPES = {
    "answer_tag": ["{noise}<answer>{L}</answer>",
                   "<think>{noise}</think>\n< answer > {L} </ answer >",
                   "<answer></answer>{noise}<answer>({L})</answer>"],
    "boxed": ["{noise} \\boxed{{{L}}}", "{noise}\n\\boxed{{\\text{{{L}}}}}."],
    "answer_is": ["{noise}\nThe correct answer is ({L}).", "{noise}\nAnswer: {L}",
                  "{noise}. The correct option is **{L}**", "{noise}; I choose {L}.",
                  "{noise}\n{L} is the correct answer"],
    "bare_letter": ["{noise}\n({L})", "{noise} so {L}.", "{L}", "({L})"],
}


@given(st.sampled_from([(rule, shape) for rule, shapes in _CHOICE_SHAPES.items()
                        for shape in shapes]),
       _noise, st.integers(2, 8), st.data())
def test_choice_recovers_the_answer(case: tuple[str, str], noise: str, count: int,
                                    data: st.DataObject) -> None:
    rule, shape = case
    letter = data.draw(st.sampled_from(string.ascii_uppercase[:count]))
    options = [IMAGE_OPTION] * count
    text = shape.format(noise=noise, L=letter)
    assert extract_choice(text, options) == Extraction(letter, rule), text


@given(st.permutations([1, 2, 3, 4]), st.sampled_from([" ", ", ", " -> ", "→", ""]), _noise)
def test_permutation_recovers_the_option(order: list[int], sep: str, noise: str) -> None:
    others = [p for p in itertools.permutations([1, 2, 3, 4]) if list(p) != order][:3]
    texts = [" ".join(map(str, p)) for p in [*others, tuple(order)]] + [NONE_OPTION]
    gold = "D"
    text = f"{noise}\nthe order: {sep.join(map(str, order))}"
    assert extract_choice(text, texts) == Extraction(gold, "permutation"), text


@given(_noise, st.sampled_from(["None of the choices provided", "none of the options fit",
                                "There is no correct answer", "None of the above"]),
       st.integers(0, 4))
def test_none_in_words_recovers_the_none_letter(noise: str, words: str, at: int) -> None:
    options = [IMAGE_OPTION] * 4
    options.insert(at, NONE_OPTION)
    text = f"{noise}\n{words}."
    assert extract_choice(text, options) == Extraction("ABCDE"[at], "none_option"), text


@given(_noise, st.sampled_from(["cup", "drawer", "water"]))
def test_option_text_recovers_the_option(noise: str, thing: str) -> None:
    options = ["the arm lifts the cup", "the arm opens the drawer", "the arm pours water",
               NONE_OPTION]
    chosen = next(i for i, option in enumerate(options) if thing in option)
    text = f"{noise}\nI see that {options[chosen].upper()}."
    assert extract_choice(text, options) == Extraction("ABCD"[chosen], "option_text"), text


_SEQUENCE_SHAPES = {
    "answer_tag": ["{noise}<answer>{S}</answer>", "<think>{noise}</think><answer> {C} </answer>"],
    "boxed": ["{noise} \\boxed{{{C}}}"],
    "answer_is": ["{noise}\nThe correct order is {C}.", "{noise}\nAnswer: {A}"],
    "letter_sequence": ["{noise}\n{A}", "{noise} {S}."],
}


@given(st.sampled_from([(rule, shape) for rule, shapes in _SEQUENCE_SHAPES.items()
                        for shape in shapes]),
       _noise, st.integers(2, 8), st.data())
def test_sequence_recovers_the_answer(case: tuple[str, str], noise: str, n: int,
                                      data: st.DataObject) -> None:
    rule, shape = case
    order = "".join(data.draw(st.permutations(string.ascii_uppercase[:n])))
    text = shape.format(noise=noise, S=order, C=", ".join(order), A=" -> ".join(order))
    assert extract_sequence(text, n) == Extraction(order, rule), text
    assert extract_sequence(text, None) == Extraction(order, rule), text


@given(st.text(), st.sampled_from("ABCDE"))
def test_a_final_tag_wins_over_any_preceding_text(noise: str, letter: str) -> None:
    assume("answer" not in noise.lower() and "boxed" not in noise)
    text = f"{noise}\n<answer>{letter}</answer>"
    assert extract_choice(text, IMAGES) == Extraction(letter, "answer_tag")
