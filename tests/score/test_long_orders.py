"""Orders of 3, 8 and 16 items: extraction and partial credit work past the letter H and 9.

With 16 images the letter labels run A..P (past "H", through "I"), an option's
order of image numbers has two-digit numbers ("10 12 1 ...") that must not be
read as "1", "0", "1", "2", and the partial credit must stay polynomial. The
expected credits are closed forms:

- swapping the first two items moves two items by one place and inverts one
  pair: displacement 1 - 2 / floor(n^2 / 2), position (n - 2) / n, kendall
  1 - 1 / C(n, 2);
- moving the first item to the end moves it n - 1 places and every other item
  one place, and inverts the n - 1 pairs it is in: displacement
  1 - 2 (n - 1) / floor(n^2 / 2), position 0, kendall 1 - 2 / n;
- the reverse: displacement and kendall 0, position 1/n for odd n (the middle
  item stays), else 0.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
import sys
from math import comb
from pathlib import Path

import pytest

import tpru.score
from tpru.schema import IMAGE_OPTION, NONE_OPTION
from tpru.score.extract import Extraction, extract_choice, extract_sequence
from tpru.score.extract_rules import choice_form
from tpru.score.rewards import ORDERING_METHODS, extracted, ordering_credit, ordering_partial

SIZES = (3, 8, 16)


def _gold(n: int) -> str:
    """A fixed shuffled order of the first n letters (not the identity)."""
    letters = list(string.ascii_uppercase[:n])
    random.Random(n).shuffle(letters)
    if letters == sorted(letters):
        letters.reverse()
    return "".join(letters)


def _numbers(n: int, seed: int) -> list[int]:
    numbers = list(range(1, n + 1))
    random.Random(seed).shuffle(numbers)
    return numbers


def _swap_first_two(order: str) -> str:
    return order[1] + order[0] + order[2:]


def _first_to_last(order: str) -> str:
    return order[1:] + order[0]


# --- extraction of a letter sequence ------------------------------------------------------

_SEQUENCE_SHAPES = [
    ("<answer>{S}</answer>", "answer_tag"),
    ("<think>r</think><answer>{lower}</answer>", "answer_tag"),
    ("<answer>{commas}</answer>", "answer_tag"),
    ("\\boxed{{{commas}}}", "boxed"),
    ("The correct order is {commas}.", "answer_is"),
    ("Answer: [{commas}]", "answer_is"),
    ("So I think the order is {S}", "answer_is"),
    ("{arrows}", "letter_sequence"),
    ("Images are shuffled; finally: {S}.", "letter_sequence"),
    ("{thens}", "letter_sequence"),
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("shape", "rule"), _SEQUENCE_SHAPES)
def test_a_correct_letter_sequence_is_extracted(n: int, shape: str, rule: str) -> None:
    gold = _gold(n)
    text = shape.format(S=gold, lower=gold.lower(), commas=", ".join(gold),
                        arrows=" -> ".join(gold), thens=" then ".join(gold))
    assert extract_sequence(text, n) == Extraction(gold, rule), text
    assert extract_sequence(text, None) == Extraction(gold, rule), text


def test_sixteen_labels_run_through_p() -> None:
    gold = _gold(16)
    assert set(gold) == set("ABCDEFGHIJKLMNOP") and "I" in gold
    assert extract_sequence(f"<answer>{gold}</answer>", 16).answer == gold
    assert extract_sequence(", ".join(gold[:-1]) + ", and " + gold[-1], 16).answer == gold


# --- extraction of an option whose text is an order of image numbers ----------------------

def _order_options(n: int) -> tuple[list[str], list[int]]:
    """Four options that are orders of 1..n (gold at C) and the None option."""
    orders = [_numbers(n, seed) for seed in (1, 2, 3, 4)]
    if n == 3:  # few orders of three: make the four distinct by hand
        orders = [[1, 3, 2], [2, 1, 3], [3, 1, 2], [2, 3, 1]]
    assert len({tuple(order) for order in orders}) == 4
    options = [" ".join(map(str, order)) for order in orders]
    return [*options[:4], NONE_OPTION], orders[2]


@pytest.mark.parametrize("n", SIZES)
def test_option_numbers_are_whole_numbers(n: int) -> None:
    options, gold = _order_options(n)
    form = choice_form(options)
    assert form.permutations[tuple(gold)] == "C"
    assert all(sorted(numbers) == list(range(1, n + 1)) for numbers in form.permutations)
    assert form.single_digits == (n < 10)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("shape", "rule"), [
    ("the order is {spaces}", "permutation"),
    ("so: {commas}.", "permutation"),
    ("[{commas}]", "permutation"),
    ("{arrows}", "permutation"),
    ("<answer>{spaces}</answer>", "answer_tag"),
    ("<answer>C. {spaces}</answer>", "answer_tag"),
    ("<answer>A</answer> no wait, <answer>{commas}</answer>", "answer_tag"),
])
def test_an_option_order_is_extracted(n: int, shape: str, rule: str) -> None:
    options, gold = _order_options(n)
    text = shape.format(spaces=" ".join(map(str, gold)), commas=", ".join(map(str, gold)),
                        arrows=" -> ".join(map(str, gold)))
    assert extract_choice(text, options) == Extraction("C", rule), text


def test_two_digit_numbers_are_not_split() -> None:
    gold = [10, 12, 1, 16, 2, 11, 3, 13, 4, 14, 5, 15, 6, 9, 7, 8]
    split = [int(d) for d in "".join(map(str, gold))]  # what reading digit by digit gives
    options = [" ".join(map(str, gold)), " ".join(map(str, sorted(gold))), NONE_OPTION]
    assert tuple(gold) in choice_form(options).permutations
    assert tuple(split) not in choice_form(options).permutations
    assert extract_choice("The order is 10 12 1 16 2 11 3 13 4 14 5 15 6 9 7 8.",
                          options) == Extraction("A", "permutation")
    # Run together, two-digit orders are ambiguous: read as nothing, not as single digits.
    assert extract_choice("The order is " + "".join(map(str, gold)), options).answer is None
    assert extract_choice("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", options) == Extraction(
        "B", "permutation")


@pytest.mark.parametrize("count", SIZES)
def test_every_option_letter_is_read(count: int) -> None:
    options = [IMAGE_OPTION] * count
    for letter in string.ascii_uppercase[:count]:
        assert extract_choice(f"<answer>{letter}</answer>", options) == Extraction(
            letter, "answer_tag")
        assert extract_choice(f"The answer is ({letter}).", options) == Extraction(
            letter, "answer_is")
    outside = string.ascii_uppercase[count]
    assert extract_choice(f"<answer>{outside}</answer>", options) == Extraction(None, "none")


# --- partial credit -----------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_the_truth_gets_full_credit(n: int) -> None:
    gold = _gold(n)
    for method in ORDERING_METHODS:
        assert ordering_credit(gold, gold, method) == 1.0
    score = ordering_partial(f"<think>r</think><answer>{gold}</answer>", gold)
    assert score == {"overall": pytest.approx(0.92), "format": 0.2, "accuracy": 1.0,
                     "exact": 1.0}
    assert extracted(f"The correct order is {', '.join(gold)}.", gold)["accuracy"] == 1.0


@pytest.mark.parametrize(("n", "displacement", "position", "kendall"), [
    (3, 0.5, 1 / 3, 2 / 3),
    (8, 0.9375, 0.75, 27 / 28),
    (16, 0.984375, 0.875, 119 / 120),
])
def test_swapping_the_first_two(n: int, displacement: float, position: float,
                                kendall: float) -> None:
    gold = _gold(n)
    predicted = _swap_first_two(gold)
    assert displacement == pytest.approx(1 - 2 / (n * n // 2))
    assert kendall == pytest.approx(1 - 1 / comb(n, 2))
    assert ordering_credit(predicted, gold) == pytest.approx(displacement)
    assert ordering_credit(predicted, gold, "position") == pytest.approx(position)
    assert ordering_credit(predicted, gold, "kendall") == pytest.approx(kendall)
    score = ordering_partial(f"<think>r</think><answer>{predicted}</answer>", gold)
    assert score == {"overall": pytest.approx(0.9 * displacement + 0.02), "format": 0.2,
                     "accuracy": pytest.approx(displacement), "exact": 0.0}


@pytest.mark.parametrize(("n", "displacement", "kendall"), [
    (3, 0.0, 1 / 3),
    (8, 0.5625, 0.75),
    (16, 0.765625, 0.875),
])
def test_moving_the_first_to_the_end(n: int, displacement: float, kendall: float) -> None:
    gold = _gold(n)
    predicted = _first_to_last(gold)
    assert ordering_credit(predicted, gold) == pytest.approx(displacement)
    assert ordering_credit(predicted, gold, "position") == 0.0
    assert ordering_credit(predicted, gold, "kendall") == pytest.approx(kendall)


@pytest.mark.parametrize("n", SIZES)
def test_the_reverse_gets_next_to_nothing(n: int) -> None:
    gold = _gold(n)
    assert ordering_credit(gold[::-1], gold) == 0.0
    assert ordering_credit(gold[::-1], gold, "kendall") == 0.0
    assert ordering_credit(gold[::-1], gold, "position") == pytest.approx((n % 2) / n)


@pytest.mark.parametrize("n", (*SIZES, 26))
def test_credit_is_bounded_and_only_the_truth_scores_one(n: int) -> None:
    gold = _gold(n)
    rng = random.Random(f"credit-{n}")
    for _ in range(300):
        predicted = "".join(rng.sample(gold, n))
        for method in ORDERING_METHODS:
            credit = ordering_credit(predicted, gold, method)
            assert 0.0 <= credit <= 1.0
            assert (credit == 1.0) == (predicted == gold)


# --- malformed answers --------------------------------------------------------------------

def _malformed(order: str) -> dict[str, str]:
    n = len(order)
    return {"repeated letter": order[:-1] + order[0], "missing item": order[:-1],
            "outside the range": order[:-1] + string.ascii_uppercase[n]}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", ["repeated letter", "missing item", "outside the range"])
def test_malformed_orders_score_as_short_ones_do(n: int, kind: str) -> None:
    gold = _gold(n)
    bad = _malformed(gold)[kind]
    short = _malformed("CABD")[kind]
    assert extract_sequence(f"<answer>{bad}</answer>", n) == Extraction(None, "none")
    for method in ORDERING_METHODS:
        assert ordering_credit(bad, gold, method) == 0.0
    for response in ("<think>r</think><answer>{}</answer>", "<think>r</think><answer>{}",
                     "<answer>{}</answer>"):
        score = ordering_partial(response.format(bad), gold)
        assert score == ordering_partial(response.format(short), "CABD")
        assert score["accuracy"] == score["exact"] == 0.0
    assert ordering_partial(f"<think>r</think><answer>{bad}</answer>", gold)["overall"] == (
        pytest.approx(0.02))
    # Separated letters break the release's format as well: no format score either.
    assert ordering_partial(f"<think>r</think><answer>{', '.join(bad)}</answer>",
                            gold)["overall"] == 0.0
    assert extracted(f"<answer>{bad}</answer>", gold) == extracted(
        f"<answer>{short}</answer>", "CABD")


# --- a copy of the package, without tpru --------------------------------------------------

_COPY_SCRIPT = """\
import json, sys
sys.path.insert(0, sys.argv[1])
from copied_score.extract import extract_answer
from copied_score.rewards import ORDERING_METHODS, ordering_credit, score_response
cases = json.loads(sys.stdin.read())
print(json.dumps({
    "extracted": [extract_answer(text, options, n).answer for text, options, n in cases["extract"]],
    "credit": [[ordering_credit(p, g, m) for m in ORDERING_METHODS] for p, g in cases["credit"]],
    "scores": [score_response(name, text, gold) for name, text, gold in cases["score"]],
}))
"""


def test_a_copy_handles_long_orders_without_tpru(tmp_path: Path) -> None:
    cases: dict[str, list[list[object]]] = {"extract": [], "credit": [], "score": []}
    pairs: list[tuple[str, str]] = []
    for n in SIZES:
        gold = _gold(n)
        options, numbers = _order_options(n)
        cases["extract"] += [[f"<answer>{', '.join(gold)}</answer>", None, n],
                             [f"the order is {' '.join(map(str, numbers))}", options, None]]
        pairs += [(_swap_first_two(gold), gold), (gold[::-1], gold)]
        cases["score"] += [["ordering_kendall", f"<think>r</think><answer>{gold}</answer>", gold],
                           ["ordering_partial", f"<answer>{_malformed(gold)['missing item']}"
                                                "</answer>", gold]]
    cases["credit"] = [list(pair) for pair in pairs]
    folder = tmp_path / "elsewhere"
    shutil.copytree(Path(tpru.score.__file__).parent, folder / "copied_score",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-I", "-S", "-c", _COPY_SCRIPT, str(folder)],
                          input=json.dumps(cases), capture_output=True, text=True, check=False,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["extracted"] == [answer for n in SIZES for answer in (_gold(n), "C")]
    assert found["credit"] == [[ordering_credit(p, g, m) for m in ORDERING_METHODS]
                               for p, g in pairs]
    assert [s["overall"] for s in found["scores"]] == pytest.approx([0.92, 0.0] * len(SIZES))
